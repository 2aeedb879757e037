"""History comfort (HC), v1 comfort (C) and extended comfort (EC), batched in torch.

Savitzky-Golay filtering is linear, so each filter (scipy's `savgol_filter`, mode 'interp', including its
even-window behaviour) is turned once into a (T, T) matrix by filtering the identity, then applied as a
matmul.
Rounding to 8 decimals and the bounds follow NAVSIM `pdm_comfort_metrics.py`. States are (N, T, 11) in
NAVSIM `StateIndex` order at the rear axle.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from training.scoring.config import ComfortBounds

ACC_WINDOW, ACC_POLY = 8, 2
JERK_WINDOW, JERK_POLY = 15, 2
# NAVSIM's `_extract_ego_yaw_rate` does not pass its window to `_approximate_derivatives`, whose default is 5.
YAW_WINDOW = 5


@lru_cache(maxsize=64)
def _savgol_matrix(n: int, window: int, poly: int, deriv: int, delta: float) -> np.ndarray:
    from scipy.signal import savgol_filter

    w = min(window, n)
    rows = savgol_filter(np.eye(n), window_length=w, polyorder=poly, deriv=deriv, delta=delta, axis=-1)
    return np.ascontiguousarray(rows.T)


def _filt(x: torch.Tensor, window: int, poly: int, deriv: int = 0, delta: float = 1.0) -> torch.Tensor:
    m = torch.from_numpy(_savgol_matrix(x.shape[-1], window, poly, deriv, delta)).to(x)
    return x @ m.T


def _round8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x, decimals=8)


def _unwrap(h: torch.Tensor) -> torch.Tensor:
    """NAVSIM `_phase_unwrap`: subtract 2 pi * cumulative rounded jumps."""
    two_pi = 2.0 * math.pi
    adj = torch.cumsum(torch.round(torch.diff(h, dim=-1) / two_pi), -1)
    return torch.cat([h[..., :1], h[..., 1:] - two_pi * adj], -1)


def _acc(
    states: torch.Tensor, which: str, rear_axle_to_center: float, center_shift: bool, window: int = ACC_WINDOW
) -> torch.Tensor:
    ax, ay = states[..., 5], states[..., 6]
    if which == "magnitude":
        a = torch.hypot(ax, ay)
    elif which == "x":
        a = ax + rear_axle_to_center * (states[..., 9] ** 2 + states[..., 10]) if center_shift else ax
    else:
        a = ay
    return _round8(_filt(a, window, ACC_POLY))


def _jerk(acc: torch.Tensor, dt: float, window: int = JERK_WINDOW) -> torch.Tensor:
    return _round8(_filt(acc, window, JERK_POLY, 1, dt))


def _yaw(states: torch.Tensor, deriv: int, poly: int, dt: float) -> torch.Tensor:
    return _round8(_filt(_unwrap(states[..., 2]), YAW_WINDOW, poly, deriv, dt))


def _abs_lt(x: torch.Tensor, bound: float) -> torch.Tensor:
    """|x| < bound at every step of the last dim -> bool, as max and min (no |x| temporary); a NaN fails, as
    with `x.abs().amax(-1) < bound`."""
    return (x.amax(-1) < bound) & (x.amin(-1) > -bound)


def comfortable(
    states: torch.Tensor,
    dt: float,
    rear_axle_to_center: float,
    bounds: ComfortBounds,
    center_shift: bool = True,
) -> torch.Tensor:
    """All six nuPlan comfort bounds hold at every time step -> (N,) bool.

    `center_shift=True` is v2's History Comfort (lon. acceleration moved to the centre with NAVSIM's formula
    ax + d (yaw_rate^2 + yaw_accel)); False is v1.1's comfort: rear-axle ax, ay as is and, as v1.1's
    `_compute_*` functions pass `window_length=n_time`, the bound-checked accelerations are smoothed over the
    whole horizon and the jerk derivative too (the acceleration inside the jerk keeps its window of 8).
    """
    n_time = states.shape[-2]
    wa = ACC_WINDOW if center_shift else n_time
    wj = JERK_WINDOW if center_shift else n_time
    lon = _acc(states, "x", rear_axle_to_center, center_shift, wa)
    lat = _acc(states, "y", rear_axle_to_center, center_shift, wa)
    mag = _acc(states, "magnitude", rear_axle_to_center, center_shift)
    jerk = _jerk(mag, dt, wj)
    lon_jerk = _jerk(_acc(states, "x", rear_axle_to_center, center_shift) if not center_shift else lon, dt, wj)
    heading = _unwrap(states[..., 2])  # shared by both yaw features
    yaw_rate = _round8(_filt(heading, YAW_WINDOW, 2, 1, dt))
    yaw_acc = _round8(_filt(heading, YAW_WINDOW, 3, 2, dt))
    # strict bounds at every step, as reductions (min/max, or max |x| for symmetric bounds; NaN fails both)
    ok = (lon.amin(-1) > bounds.min_lon_accel) & (lon.amax(-1) < bounds.max_lon_accel)
    ok &= _abs_lt(lat, bounds.max_abs_lat_accel)
    ok &= _abs_lt(jerk, bounds.max_abs_jerk)
    ok &= _abs_lt(lon_jerk, bounds.max_abs_lon_jerk)
    ok &= _abs_lt(yaw_acc, bounds.max_abs_yaw_accel)
    ok &= _abs_lt(yaw_rate, bounds.max_abs_yaw_rate)
    return ok


def _ec_features(states: torch.Tensor, dt: float) -> list[torch.Tensor]:
    mag = _acc(states, "magnitude", 0.0, False)
    heading = _unwrap(states[..., 2])
    yaw_rate = _round8(_filt(heading, YAW_WINDOW, 2, 1, dt))
    yaw_acc = _round8(_filt(heading, YAW_WINDOW, 2, 2, dt))
    return [mag, _jerk(mag, dt), yaw_rate, yaw_acc]


def extended_comfort(current: torch.Tensor, previous: torch.Tensor, dt: float, bounds: ComfortBounds) -> torch.Tensor:
    """EC of current states (N, T, 11) vs the previous frame's states (T, 11) at the same times -> (N,)."""
    fc = _ec_features(current, dt)
    fp = _ec_features(previous[None], dt)
    thr = (bounds.ec_acceleration, bounds.ec_jerk, bounds.ec_yaw_rate, bounds.ec_yaw_accel)
    ok = torch.ones(current.shape[0], dtype=torch.bool, device=current.device)
    for a, b, t in zip(fc, fp, thr, strict=True):
        rms = torch.sqrt(torch.mean((a - b) ** 2, -1))
        ok &= rms <= t
    return ok

"""History comfort (HC), v1 comfort (C) and extended comfort (EC), batched in torch.

Layout: simulated states come component-major and time-major, `comp` (11, T, N) in NAVSIM `StateIndex` order at
the rear axle (`comp[k]` is the (T, N) series of component k, the layout `simulate` returns), so every filter is
a (T, T) @ (T, N) product and every reduction over time runs over dim 0 (whole rows, vectorised across
proposals). History Comfort's past states (H, 11) are written only into the H leading rows of the few filter
inputs, never joined with all the simulated components.

Savitzky-Golay filtering is linear, so each filter (scipy's `savgol_filter`, mode 'interp', including its
even-window behaviour) is turned once into a (T, T) matrix by filtering the identity. The matrix is banded
(window 5, 8 or 15 of 55 columns), so it is applied block by block: 8 output rows at a time times only the
input rows where that block is non-zero. The terms skipped are exact zeros and MKL sums the rest in the same
order, so the values are bit-identical to the dense product (checked for 8 to 8192 columns). Below 8 columns
(one or two plans, e.g. the one-row reference and human rows) each column is one (1, T) @ (T, T) product, as
before: MKL's small-matrix kernels order their sums by the number of columns. Filters of one input share one
product (stacked matrices); inputs of one filter share one product (stacked along the columns). Extended
comfort keeps per-plan (N, T) dense products, so its RMS means sum each plan's row in the original order.

Rounding to 8 decimals and the bounds follow NAVSIM `pdm_comfort_metrics.py`. Rounding is monotone, so the
min / max over time of a rounded series is the rounded min / max: series that are only bound-checked are
reduced first and only their (N,) extremes are rounded; series that feed another filter are rounded whole.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from training.scoring.config import ComfortBounds
from training.scoring.geometry import vector_hypot

ACC_WINDOW, ACC_POLY = 8, 2
JERK_WINDOW, JERK_POLY = 15, 2
# NAVSIM's `_extract_ego_yaw_rate` does not pass its window to `_approximate_derivatives`, whose default is 5.
YAW_WINDOW = 5
# Output rows per block of a banded filter product, and the fewest columns that use the blocks.
_BLOCK_ROWS = 8
_BANDED_MIN_COLUMNS = 8
# StateIndex components.
_HEADING, _AX, _AY, _YAW_RATE, _YAW_ACCEL = 2, 5, 6, 9, 10
_TWO_PI = 2.0 * math.pi
# Headings spanning less than this (rad) have no step that unwrapping changes: round(step / 2 pi) = 0 for
# |step| <= pi.
_NO_WRAP_STEP = 3.0

# (window, poly order, derivative order, delta is dt) of one Savitzky-Golay filter
FilterSpec = tuple[int, int, int, bool]


@lru_cache(maxsize=64)
def _savgol_matrix(n: int, window: int, poly: int, deriv: int, delta: float) -> np.ndarray:
    from scipy.signal import savgol_filter

    w = min(window, n)
    rows = savgol_filter(np.eye(n), window_length=w, polyorder=poly, deriv=deriv, delta=delta, axis=-1)
    return np.ascontiguousarray(rows.T)


class _Filters:
    """Savitzky-Golay filters of one input length n stacked into an (F n, n) matrix, with its banded blocks."""

    def __init__(self, n: int, specs: tuple[FilterSpec, ...], dt: float, device: torch.device, dtype: torch.dtype):
        mats = [_savgol_matrix(n, w, p, d, dt if use_dt else 1.0) for w, p, d, use_dt in specs]
        self.n_rows = n * len(specs)
        self.matrix = torch.from_numpy(np.concatenate(mats, 0)).to(device, dtype)
        blocks: list[tuple[int, int, int, int]] = []
        for i, m in enumerate(mats):  # blocks never straddle two filters (their bands do not line up)
            for r0 in range(0, n, _BLOCK_ROWS):
                r1 = min(r0 + _BLOCK_ROWS, n)
                cols = np.flatnonzero(np.any(m[r0:r1] != 0.0, axis=0))
                c0, c1 = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 0)
                blocks.append((i * n + r0, i * n + r1, c0, c1))
        self.blocks = tuple(blocks)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Filtered series (F n, B) of the series x (n, B) (time-major; any row stride)."""
        if 0 < x.shape[1] < _BANDED_MIN_COLUMNS:  # one (1, n) @ (n, F n) product per column
            return torch.cat([torch.mm(x[:, j : j + 1].t(), self.matrix.t()) for j in range(x.shape[1])]).t()
        out = x.new_empty(self.n_rows, x.shape[1])
        for r0, r1, c0, c1 in self.blocks:
            if c1 > c0:
                torch.mm(self.matrix[r0:r1, c0:c1], x[c0:c1], out=out[r0:r1])
            else:
                out[r0:r1] = 0.0
        return out

    def per_plan(self, x: torch.Tensor) -> torch.Tensor:
        """Filtered series (B, F n), one row per plan, of the time-major series x (n, B): the dense product."""
        return torch.mm(x.t(), self.matrix.t())


@lru_cache(maxsize=64)
def _filters(n: int, specs: tuple[FilterSpec, ...], dt: float, device: torch.device, dtype: torch.dtype) -> _Filters:
    return _Filters(n, specs, dt, device, dtype)


def _acc_filter(n: int, window: int, x: torch.Tensor) -> _Filters:
    return _filters(n, ((window, ACC_POLY, 0, False),), 1.0, x.device, x.dtype)


def _jerk_filter(n: int, window: int, dt: float, x: torch.Tensor) -> _Filters:
    return _filters(n, ((window, JERK_POLY, 1, True),), dt, x.device, x.dtype)


def _yaw_filters(n: int, accel_poly: int, dt: float, x: torch.Tensor) -> _Filters:
    """Yaw rate (poly 2, 1st derivative) and yaw acceleration (`accel_poly`, 2nd derivative), stacked."""
    return _filters(n, ((YAW_WINDOW, 2, 1, True), (YAW_WINDOW, accel_poly, 2, True)), dt, x.device, x.dtype)


def _round8(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x, decimals=8)


def _rounded_range(x: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max over `dim` of the series x rounded to 8 decimals (NaN propagates). `amin` and `amax` are
    each ~4x faster than one `aminmax` here."""
    return _round8(x.amin(dim)), _round8(x.amax(dim))


def _inside(lo_hi: tuple[torch.Tensor, torch.Tensor], low: float, high: float) -> torch.Tensor:
    """low < x < high at every step, from the min and max over time; a NaN fails."""
    return (lo_hi[0] > low) & (lo_hi[1] < high)


def _unwrap(h: torch.Tensor) -> torch.Tensor:
    """NAVSIM `_phase_unwrap` over dim 0: subtract 2 pi * cumulative rounded jumps."""
    adj = torch.cumsum(torch.round(torch.diff(h, dim=0) / _TWO_PI), 0)
    return torch.cat([h[:1], h[1:] - _TWO_PI * adj], 0)


def _turning(h: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the columns of the heading series h (T, N) that unwrapping may change: those whose headings
    (with `before`, the heading before the first row) span 3 rad or more, or hold a NaN. Elsewhere every step
    is below 3 rad, so every rounded jump round(step / 2 pi) is 0."""
    hi, lo = h.amax(0), h.amin(0)
    if before is not None:
        hi, lo = torch.maximum(hi, before), torch.minimum(lo, before)
    return torch.nonzero(~(hi - lo < _NO_WRAP_STEP)).squeeze(1)


def _unwrapped(h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
    """`_unwrap(h)` of a heading series (T, N), computed only for the columns that can change (`cols`, a
    superset of `_turning(h)`, or found here); h itself when there are none."""
    cols = _turning(h) if cols is None else cols
    if len(cols) == 0:
        return h
    return h.clone().index_copy_(1, cols, _unwrap(h.index_select(1, cols)))


def _yaw_ok(heading: torch.Tensor, accel_poly: int, dt: float, bounds: ComfortBounds) -> torch.Tensor:
    """Yaw rate and yaw acceleration bounds of the unwrapped heading series (T, N) -> (N,) bool."""
    n = heading.shape[0]
    yaw = _yaw_filters(n, accel_poly, dt, heading)(heading)
    ok = _inside(_rounded_range(yaw[:n]), -bounds.max_abs_yaw_rate, bounds.max_abs_yaw_rate)
    return ok & _inside(_rounded_range(yaw[n:]), -bounds.max_abs_yaw_accel, bounds.max_abs_yaw_accel)


def _acc_ok(lat: torch.Tensor, lon: torch.Tensor, bounds: ComfortBounds, lon_rounded: bool) -> torch.Tensor:
    """Lateral (unrounded) and longitudinal acceleration bounds of (T, N) series -> (N,) bool."""
    ok = _inside(_rounded_range(lat), -bounds.max_abs_lat_accel, bounds.max_abs_lat_accel)
    lon_range = (lon.amin(0), lon.amax(0)) if lon_rounded else _rounded_range(lon)
    return ok & _inside(lon_range, bounds.min_lon_accel, bounds.max_lon_accel)


def _jerk_ok(jerks: torch.Tensor, bounds: ComfortBounds) -> torch.Tensor:
    """Bounds of the unrounded jerk series (T, 2, N) [lon. jerk, |a| jerk] -> (N,) bool."""
    lo, hi = _rounded_range(jerks)
    ok = _inside((lo[0], hi[0]), -bounds.max_abs_lon_jerk, bounds.max_abs_lon_jerk)
    return ok & _inside((lo[1], hi[1]), -bounds.max_abs_jerk, bounds.max_abs_jerk)


class HistoryComfort(NamedTuple):
    """`history_comfort`'s result, with what extended comfort of the same plans reuses."""

    ok: torch.Tensor  # (N,) bool
    acc_norm: torch.Tensor  # (T, N) the simulated |acceleration| (a view)
    turning: torch.Tensor  # indices of the plans whose simulated headings unwrapping may change


def history_comfort(
    comp: torch.Tensor, history: torch.Tensor, dt: float, rear_axle_to_center: float, bounds: ComfortBounds
) -> HistoryComfort:
    """v2's History Comfort of the past states (H, 11) followed by each plan's simulated states (11, T, N).

    All six nuPlan comfort bounds hold at every step of the H + T series. Longitudinal acceleration at the
    centre with NAVSIM's formula ax + d (yaw_rate^2 + yaw_accel).
    """
    n_hist, (n_time, n) = history.shape[0], comp.shape[1:]
    n_all = n_hist + n_time
    # filter inputs, time-major: [lateral acc., centre lon. acc., |acc.|] (all three take the window-8 filter)
    x = comp.new_empty(n_all, 3, n)
    x[:n_hist, 0] = history[:, _AY, None]
    x[:n_hist, 1] = (history[:, _AX] + rear_axle_to_center * (history[:, _YAW_RATE] ** 2 + history[:, _YAW_ACCEL]))[
        :, None
    ]
    x[n_hist:, 0] = comp[_AY]
    shift = (comp[_YAW_RATE] ** 2).add_(comp[_YAW_ACCEL]).mul_(rear_axle_to_center)
    torch.add(comp[_AX], shift, out=x[n_hist:, 1])
    if n < _BANDED_MIN_COLUMNS:  # hypot of the contiguous H + T series, vectorised in the same chunks as before
        hax, hay = history[:, _AX, None].expand(n_hist, n), history[:, _AY, None].expand(n_hist, n)
        x[:, 2] = torch.hypot(torch.cat([hax, comp[_AX]]), torch.cat([hay, comp[_AY]]))
    else:  # the history's H values once, in hypot's vectorised steps (a broadcast input runs a slow scalar loop)
        x[:n_hist, 2] = vector_hypot(history[:, _AX], history[:, _AY])[:, None]
        torch.hypot(comp[_AX], comp[_AY], out=x[n_hist:, 2])
    acc = _acc_filter(n_all, ACC_WINDOW, x)(x.view(n_all, 3 * n)).view(n_all, 3, n)
    lon_norm = _round8(acc[:, 1:])  # (H + T, 2, N), contiguous: the jerk filter's input
    ok = _acc_ok(acc[:, 0], lon_norm[:, 0], bounds, lon_rounded=True)
    jerks = _jerk_filter(n_all, JERK_WINDOW, dt, x)(lon_norm.view(n_all, 2 * n)).view(n_all, 2, n)
    ok &= _jerk_ok(jerks, bounds)
    # heading: the history unwrapped once; columns without a wrap in (or into) the simulated part keep the
    # history's last cumulative adjustment 2 pi k; the others are unwrapped whole
    heading = comp.new_empty(n_all, n)
    h_hist, h = history[:, _HEADING], comp[_HEADING]
    heading[:n_hist] = _unwrap(h_hist)[:, None]
    torch.sub(h, _TWO_PI * torch.round(torch.diff(h_hist) / _TWO_PI).sum(), out=heading[n_hist:])
    cols = _turning(h, h_hist[-1])
    if len(cols):
        whole = torch.cat([h_hist[:, None].expand(n_hist, len(cols)), h.index_select(1, cols)])
        heading.index_copy_(1, cols, _unwrap(whole))
    ok &= _yaw_ok(heading, 3, dt, bounds)
    return HistoryComfort(ok, x[n_hist:, 2], cols)


def comfortable(comp: torch.Tensor, dt: float, bounds: ComfortBounds) -> torch.Tensor:
    """v1.1's comfort of simulated states (11, T, N): all six nuPlan bounds hold at every step -> (N,) bool.

    Rear-axle ax, ay as is and, as v1.1's `_compute_*` functions pass `window_length=n_time`, the
    bound-checked accelerations are smoothed over the whole horizon and the jerk derivative too (the
    acceleration inside the jerk keeps its window of 8).
    """
    n_time, n = comp.shape[1:]
    x = comp.new_empty(n_time, 3, n)  # [lateral acc., lon. acc., |acc.|]
    x[:, 0] = comp[_AY]
    x[:, 1] = comp[_AX]
    x[:, 2] = torch.hypot(comp[_AX], comp[_AY])
    flat = x.view(n_time, 3 * n)
    bounded = _acc_filter(n_time, n_time, x)(flat[:, : 2 * n]).view(n_time, 2, n)
    ok = _acc_ok(bounded[:, 0], bounded[:, 1], bounds, lon_rounded=False)
    lon_norm = _round8(_acc_filter(n_time, ACC_WINDOW, x)(flat[:, n:]))  # [lon., |acc.|] with window 8
    ok &= _jerk_ok(_jerk_filter(n_time, n_time, dt, x)(lon_norm).view(n_time, 2, n), bounds)
    return ok & _yaw_ok(_unwrapped(comp[_HEADING]), 3, dt, bounds)


def _ec_features(
    acc_norm: torch.Tensor, heading: torch.Tensor, dt: float, turning: torch.Tensor | None
) -> torch.Tensor:
    """EC's rounded |acceleration|, its jerk, yaw rate and yaw acceleration (N, 4, T) (per-plan rows, so the RMS
    sums run in the same order as before), from time-major (T, N) series."""
    n_time, n = acc_norm.shape
    f = acc_norm.new_empty(n, 4, n_time)
    torch.round(_acc_filter(n_time, ACC_WINDOW, acc_norm).per_plan(acc_norm), decimals=8, out=f[:, 0])
    torch.round(_jerk_filter(n_time, JERK_WINDOW, dt, acc_norm).per_plan(f[:, 0].t()), decimals=8, out=f[:, 1])
    yaw = _yaw_filters(n_time, 2, dt, heading).per_plan(_unwrapped(heading, turning))
    torch.round(yaw.view(n, 2, n_time), decimals=8, out=f[:, 2:])
    return f


def extended_comfort(
    comp: torch.Tensor,
    previous: torch.Tensor,
    dt: float,
    bounds: ComfortBounds,
    shared: HistoryComfort | None = None,
) -> torch.Tensor:
    """EC of the first P simulated states of each plan (11, >= P, N) vs the previous frame's simulated states
    (P, 11) at the same times -> (N,) bool. `shared`: History Comfort of the same plans, whose |acceleration|
    and turning plans are reused.
    """
    n_prev, n = previous.shape[0], comp.shape[2]
    cur = comp[:, :n_prev]
    acc_norm, turning = (None, None) if shared is None else (shared.acc_norm[:n_prev], shared.turning)
    if acc_norm is None or n < _BANDED_MIN_COLUMNS:  # few rows: hypot over these P steps, as before
        acc_norm = torch.hypot(cur[_AX], cur[_AY])
    fc = _ec_features(acc_norm, cur[_HEADING], dt, turning)
    prev = previous.t()[:, :, None]
    fp = _ec_features(torch.hypot(prev[_AX], prev[_AY]), prev[_HEADING], dt, None)
    thr = torch.tensor(
        (bounds.ec_acceleration, bounds.ec_jerk, bounds.ec_yaw_rate, bounds.ec_yaw_accel), dtype=fc.dtype
    ).to(fc.device)
    return (torch.sqrt(fc.sub_(fp).square_().mean(-1)) <= thr).all(-1)

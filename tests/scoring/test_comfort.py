"""Comfort metrics (HC, v1 comfort, EC) against a direct NumPy/SciPy transcription of NAVSIM's
`pdm_comfort_metrics.py`, on synthetic plans that exercise heading wraps (inside the history, from the history
into the plan, inside the plan), a NaN state (fails) and every batch-size path (per-column products, banded blocks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter

from training.scoring.comfort import comfortable, extended_comfort, history_comfort
from training.scoring.config import ComfortBounds

DT, R2C, H, T, P = 0.1, 1.461, 14, 41, 36
B = ComfortBounds()


def _unwrap(h: np.ndarray) -> np.ndarray:  # NAVSIM `_phase_unwrap`
    adj = np.zeros_like(h)
    adj[..., 1:] = np.cumsum(np.round(np.diff(h, axis=-1) / (2 * np.pi)), axis=-1)
    return h - 2 * np.pi * adj


def _sg(x: np.ndarray, window: int, poly: int, deriv: int = 0) -> np.ndarray:
    w = min(window, x.shape[-1])
    return np.round(savgol_filter(x, w, poly, deriv=deriv, delta=DT if deriv else 1.0, axis=-1), 8)


def _ref_comfort(s: np.ndarray, v2: bool) -> np.ndarray:
    """s (N, T', 11) -> all six bounds hold (NAVSIM v2 History Comfort or v1.1 comfort)."""
    n = s.shape[1]
    ax, ay = s[..., 5], s[..., 6]
    lon = ax + R2C * (s[..., 9] ** 2 + s[..., 10]) if v2 else ax
    wa = 8 if v2 else n
    wj = 15 if v2 else n
    feats = [
        (_sg(lon, wa, 2), B.min_lon_accel, B.max_lon_accel),
        (_sg(ay, wa, 2), -B.max_abs_lat_accel, B.max_abs_lat_accel),
        (_sg(_sg(np.hypot(ax, ay), 8, 2), wj, 2, 1), -B.max_abs_jerk, B.max_abs_jerk),
        (_sg(_sg(lon, 8, 2), wj, 2, 1), -B.max_abs_lon_jerk, B.max_abs_lon_jerk),
        (_sg(_unwrap(s[..., 2]), 5, 2, 1), -B.max_abs_yaw_rate, B.max_abs_yaw_rate),
        (_sg(_unwrap(s[..., 2]), 5, 3, 2), -B.max_abs_yaw_accel, B.max_abs_yaw_accel),
    ]
    ok = np.ones(s.shape[0], dtype=bool)
    for f, lo, hi in feats:
        ok &= ((f > lo) & (f < hi)).all(-1)
    return ok


def _ec_feats(s: np.ndarray) -> list[np.ndarray]:
    mag = _sg(np.hypot(s[..., 5], s[..., 6]), 8, 2)
    h = _unwrap(s[..., 2])
    return [mag, _sg(mag, 15, 2, 1), _sg(h, 5, 2, 1), _sg(h, 5, 2, 2)]


def _ref_ec(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    thr = (B.ec_acceleration, B.ec_jerk, B.ec_yaw_rate, B.ec_yaw_accel)
    ok = np.ones(cur.shape[0], dtype=bool)
    for a, b, t in zip(_ec_feats(cur), _ec_feats(prev[None]), thr, strict=True):
        ok &= np.sqrt(np.mean((a - b) ** 2, -1)) <= t
    return ok


def _wrap(h: np.ndarray) -> np.ndarray:
    return (h + np.pi) % (2 * np.pi) - np.pi


def _plans(n: int, seed: int, heading0: float) -> tuple[np.ndarray, np.ndarray]:
    """History (H, 11) and plans (N, T, 11): smooth headings from heading0 turning at various rates (so that
    some cross +-pi), accelerations of various amplitudes (some beyond the bounds)."""
    rng = np.random.default_rng(seed)
    t = np.arange(-H, T) * DT
    rate = rng.uniform(-1.1, 1.1, (n, 1))
    amp = rng.uniform(0.1, 3.0, (n, 2))
    freq = rng.uniform(0.3, 1.5, (n, 2))
    s = np.zeros((n, H + T, 11))
    s[..., 2] = _wrap(heading0 + rate * t)
    s[..., 5] = amp[:, :1] * np.sin(freq[:, :1] * t)
    s[..., 6] = amp[:, 1:] * np.cos(freq[:, 1:] * t)
    s[..., 9] = rate
    hist = s[0, :H].copy()
    # near +pi the history turns across +-pi; near -pi it stays on the other side, so the plans start with a wrap
    hist[:, 2] = _wrap(heading0 - 0.8 * np.sign(heading0) * t[:H])
    return hist, s[:, H:]


def _comp(plans: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(plans).permute(2, 1, 0).contiguous()


@pytest.mark.parametrize("heading0", [0.3, 3.0, -3.1])
def test_comfort_matches_navsim_transcription(heading0: float) -> None:
    hist, plans = _plans(40, seed=int(heading0 * 10) % 7, heading0=heading0)
    prev = plans[0, :P].copy()  # the previous frame's simulated states at the same times
    plans[1] = plans[0]  # EC passes: the plan repeats the previous frame's
    plans[2, :, 6] = plans[0, :, 6] + 0.01
    plans[2, :, 5] = plans[0, :, 5]
    plans[2, :, 2] = plans[0, :, 2]
    assert (np.abs(np.diff(plans[..., 2], axis=-1)) > 3).any()  # some plans wrap
    exp_hc = _ref_comfort(np.concatenate([np.broadcast_to(hist, (40, H, 11)), plans], 1), v2=True)
    exp_c = _ref_comfort(plans, v2=False)
    exp_ec = _ref_ec(plans[:, :P], prev)
    plans[3, 20, 5] = np.nan  # a NaN fails every metric (SciPy's 'interp' edge fit rejects NaN outright)
    exp_hc[3] = exp_c[3] = exp_ec[3] = False
    assert exp_hc.any() and not exp_hc.all() and exp_c.any() and not exp_c.all() and exp_ec.sum() >= 2
    # every batch size path: one plan, two (per-column products), 3 (banded, 9 stacked columns) and all 40
    for idx in ([0], [1, 3], [2, 3, 4], list(range(40))):
        comp = _comp(plans[idx])
        hc = history_comfort(comp, torch.from_numpy(hist), DT, R2C, B)
        assert hc.ok.tolist() == exp_hc[idx].tolist()
        assert comfortable(comp, DT, B).tolist() == exp_c[idx].tolist()
        prev_t = torch.from_numpy(prev)
        assert extended_comfort(comp, prev_t, DT, B, hc).tolist() == exp_ec[idx].tolist()
        assert extended_comfort(comp, prev_t, DT, B).tolist() == exp_ec[idx].tolist()

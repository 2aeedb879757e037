"""Driving Smoothness ("Comfortness") from the per-route `metric_info.json` files agents write at 20 Hz.

Inputs per step (CARLA world frame, left-handed): acceleration m/s², angular_velocity **deg/s**, forward and
right unit vectors. The compat path reproduces `efficiency_smoothness_benchmark.py` (7ec25d1): windows of 20
frames (the tail is dropped; ≤ 20 frames → one window over all frames), Savitzky–Golay smoothing (window
min(7, n), order 2, scipy's `mode='interp'`), `delta = 0.1` s for the jerks, the yaw "acceleration" being the
smoothed yaw *rate* in deg/s, and the six strict bounds below. Route score = fraction of comfortable windows;
Smoothness = mean over **all** records (a missing file or a route with < 3 frames kills the tool).

`strict` fixes the unit quirks (README quirk 16): angular velocity converted to rad/s, the real 0.05 s step,
the yaw acceleration a true derivative of the yaw rate; routes without a file or with < 3 frames are left out
(and listed) instead of failing.

Savitzky–Golay is implemented here in numpy (least-squares polynomial fits; edges fitted on the first / last
window as scipy's `interp` mode does) so the project needs no scipy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WINDOW_FRAMES = 20
SAVGOL_WINDOW = 7
SAVGOL_ORDER = 2
TOOL_DELTA_S = 0.1  # what the tool uses (quirk 16c)
CARLA_STEP_S = 0.05  # the real 20 Hz step

# (min, max) exclusive bounds, from nuPlan's comfort metrics as used by the tool.
BOUNDS: dict[str, tuple[float, float]] = {
    "lon_acc": (-4.05, 2.40),  # m/s²
    "lat_acc": (-4.89, 4.89),  # m/s²
    "mag_jerk": (-8.37, 8.37),  # m/s³
    "lon_jerk": (-4.13, 4.13),  # m/s³
    "yaw_acc": (-1.93, 1.93),  # rad/s² (the tool feeds the smoothed yaw rate in deg/s)
    "yaw_rate": (-0.95, 0.95),  # rad/s (the tool feeds deg/s)
}


class MetricInfoError(ValueError):
    """A metric_info.json is missing, truncated or lacks a field."""


@dataclass(frozen=True)
class MetricInfo:
    """Per-step arrays, each (T, 3), in the file's key order."""

    acceleration: np.ndarray
    angular_velocity: np.ndarray
    forward_vector: np.ndarray
    right_vector: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.acceleration.shape[0])


def load_metric_info(path: Path | str) -> MetricInfo:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetricInfoError(f"{path}: metric_info.json not found") from None
    except json.JSONDecodeError as exc:
        raise MetricInfoError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise MetricInfoError(f"{path}: expected an object of per-step entries")
    keys = ("acceleration", "angular_velocity", "forward_vector", "right_vector")
    cols: dict[str, list[list[float]]] = {k: [] for k in keys}
    for step, entry in data.items():
        for k in keys:
            val = entry.get(k) if isinstance(entry, dict) else None
            if not isinstance(val, list) or len(val) != 3:
                raise MetricInfoError(f"{path}: step {step}: {k!r} must be a list of 3 numbers")
            cols[k].append(val)
    arrays = {k: np.asarray(v, dtype=np.float64).reshape(-1, 3) for k, v in cols.items()}
    return MetricInfo(**arrays)


def _savgol_matrix(n: int, window: int, order: int, deriv: int, delta: float) -> np.ndarray:
    """(n, n) linear operator of scipy.signal.savgol_filter(mode='interp') for a length-n series."""
    window = min(window, n)
    half = window // 2
    t = np.arange(window, dtype=np.float64)
    vander = t[:, None] ** np.arange(order + 1)[None, :]  # (w, p+1)
    pinv = np.linalg.pinv(vander)  # polynomial coefficients = pinv @ y

    def eval_rows(pos: np.ndarray) -> np.ndarray:
        powers = np.arange(order + 1)
        coef = np.zeros((pos.size, order + 1))
        for j in powers[deriv:]:
            coef[:, j] = math.perm(int(j), deriv) * pos ** (j - deriv)
        return coef @ pinv / delta**deriv  # (len(pos), w)

    op = np.zeros((n, n))
    if window == n:  # one fit over the whole series, evaluated everywhere
        return eval_rows(t)
    centre = eval_rows(np.array([float(half)]))[0]
    for i in range(half, n - half):
        op[i, i - half : i - half + window] = centre
    op[:half, :window] = eval_rows(t[:half])
    op[n - half :, n - window :] = eval_rows(t[window - half :])
    return op


def savgol(
    y: np.ndarray, window: int = SAVGOL_WINDOW, order: int = SAVGOL_ORDER, deriv: int = 0, delta: float = 1.0
) -> np.ndarray:
    """Savitzky–Golay along the last axis (batched), matching scipy's `mode='interp'`."""
    n = y.shape[-1]
    if not order < min(window, n):
        raise MetricInfoError(f"{order} < {min(window, n)} does not hold (too few frames)")
    op = _savgol_matrix(n, window, order, deriv, delta)
    return np.einsum("ij,...j->...i", op, y)


def _phase_unwrap(x: np.ndarray) -> np.ndarray:
    """The tool's 2π unwrap along the last axis (applied to a rate in deg/s in compat mode)."""
    two_pi = 2.0 * np.pi
    adj = np.zeros_like(x)
    adj[..., 1:] = np.cumsum(np.round(np.diff(x, axis=-1) / two_pi), axis=-1)
    return x - two_pi * adj


def window_signals(info: MetricInfo, strict: bool = False) -> tuple[dict[str, np.ndarray], int]:
    """The six checked signals per window, each (n_windows, frames_per_window); and frames per window."""
    n = info.frames
    if n < 3:
        raise MetricInfoError(f"{n} frames: the tool's Savitzky–Golay needs at least 3")
    per = n if n <= WINDOW_FRAMES else WINDOW_FRAMES
    nw = n // per
    sl = slice(0, nw * per)

    def win(a: np.ndarray) -> np.ndarray:
        return a[sl].reshape(nw, per, *a.shape[1:])

    acc = win(info.acceleration[:, :2])
    fwd = win(info.forward_vector[:, :2])
    right = win(info.right_vector[:, :2])
    rate = win(info.angular_velocity[:, 2])
    lon = np.einsum("wij,wij->wi", acc, fwd)
    lat = np.einsum("wij,wij->wi", acc, right)
    mag = np.hypot(acc[..., 0], acc[..., 1])
    if strict:
        rate = np.deg2rad(rate)
        delta = CARLA_STEP_S
        yaw_rate = savgol(rate)
        yaw_acc = savgol(rate, deriv=1, delta=delta)
    else:
        delta = TOOL_DELTA_S
        yaw_rate = savgol(_phase_unwrap(rate))
        yaw_acc = yaw_rate  # quirk 16b: no derivative
    lon_s, lat_s, mag_s = savgol(lon), savgol(lat), savgol(mag)
    return {
        "lon_acc": lon_s,
        "lat_acc": lat_s,
        "mag_jerk": savgol(mag_s, deriv=1, delta=delta),
        "lon_jerk": savgol(lon_s, deriv=1, delta=delta),
        "yaw_acc": yaw_acc,
        "yaw_rate": yaw_rate,
    }, per


def window_verdicts(info: MetricInfo, strict: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(comfortable per window, failed-bound mask per signal), each (n_windows,)."""
    sig, _ = window_signals(info, strict)
    failed = {k: ~np.all((v > BOUNDS[k][0]) & (v < BOUNDS[k][1]), axis=-1) for k, v in sig.items()}
    ok = ~np.any(np.stack(list(failed.values())), axis=0)
    return ok, failed


def route_comfort(info: MetricInfo, strict: bool = False) -> float:
    """Fraction of comfortable windows (the tool's `seg_compute_comfort_metric`)."""
    ok, _ = window_verdicts(info, strict)
    return int(ok.sum()) / ok.size


def metric_info_path(metric_dir: Path, save_name: str) -> Path:
    return Path(metric_dir) / save_name / "metric_info.json"


@dataclass(frozen=True)
class ComfortResult:
    compat: float | None  # the tool's Driving Smoothness (fraction), None if the tool would die
    compat_error: str | None
    strict: float | None  # mean over routes with a usable file
    per_route_compat: dict[str, float]  # route_id -> route comfort
    per_route_strict: dict[str, float]
    missing: list[str]  # route_ids without a metric_info.json
    unusable: dict[str, str]  # route_id -> why


def driving_smoothness(
    merged_records: Sequence[Mapping[str, str | None]],
    metric_dir: Path,
    strict_ids: Sequence[str] | None = None,
) -> ComfortResult:
    """Compat over every merged record (order of merged.json); strict over `strict_ids` (default: all)."""
    per_c: dict[str, float] = {}
    per_s: dict[str, float] = {}
    missing: list[str] = []
    unusable: dict[str, str] = {}
    compat_scores: list[float] = []
    error: str | None = None
    for rec in merged_records:
        rid = str(rec["route_id"])
        path = metric_info_path(metric_dir, str(rec.get("save_name")))
        try:
            info = load_metric_info(path)
            c = route_comfort(info, strict=False)
            per_c[rid] = c
            per_s[rid] = route_comfort(info, strict=True)
            compat_scores.append(c)
        except MetricInfoError as exc:
            if "not found" in str(exc):
                missing.append(rid)
                error = error or f"FileNotFoundError: {path}"
            else:
                unusable[rid] = str(exc)
                error = error or f"ValueError: {exc}"
    compat = None if error or not compat_scores else sum(compat_scores) / len(compat_scores)
    ids = list(per_s) if strict_ids is None else [i for i in strict_ids if i in per_s]
    strict = math.fsum(per_s[i] for i in ids) / len(ids) if ids else None
    return ComfortResult(compat, error, strict, per_c, per_s, missing, unusable)

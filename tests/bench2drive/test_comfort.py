"""Comfortness oracle: efficiency_smoothness_benchmark.py outputs per window, per route and in total."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench2drive.comfort import (
    MetricInfo,
    MetricInfoError,
    driving_smoothness,
    load_metric_info,
    metric_info_path,
    route_comfort,
    savgol,
    window_signals,
    window_verdicts,
)
from bench2drive.summary import summarize
from tests.conftest import fixtures_dir

TOOL_NAMES = {
    "lon_acc": "lon_acc",
    "lat_acc": "lat_acc",
    "mag_jerk": "mag_jerk_dt0.1",
    "lon_jerk": "lon_jerk_dt0.1",
    "yaw_rate": "yaw_rate_deg_s_smoothed",
}
BOUND_NAMES = {
    "lon_acc": "lon_acc",
    "lat_acc": "lat_acc",
    "mag_jerk": "mag_jerk",
    "lon_jerk": "lon_jerk",
    "yaw_acc": "yaw_acc(=smoothed yaw rate)",
    "yaw_rate": "yaw_rate",
}


def _expected() -> dict[str, Any]:
    return json.loads(fixtures_dir("bench2drive", "comfort", "expected_comfort.json").read_text())


def test_windows_match_tool() -> None:
    root = fixtures_dir("bench2drive", "comfort")
    for route in _expected()["per_route"]:
        info = load_metric_info(metric_info_path(root / "metric", route["save_name"]))
        assert info.frames == route["frames"]
        sig, per = window_signals(info)
        ok, failed = window_verdicts(info)
        ok_strict, _ = window_verdicts(info, strict=True)
        assert per == 20 and ok.size == len(route["windows"])
        for w in route["windows"]:
            i = w["window"]
            assert bool(ok[i]) == w["comfortable_tool"]
            assert sorted(BOUND_NAMES[k] for k, v in failed.items() if v[i]) == sorted(w["failed_bounds_tool"])
            for ours, theirs in TOOL_NAMES.items():
                assert float(np.abs(sig[ours][i]).max()) == pytest.approx(w["max_abs"][theirs], abs=1e-9)
            assert bool(ok_strict[i]) == w["comfortable_if_rad_s_and_dt0.05"]
        assert route_comfort(info) == route["route_comfort_tool"]
        assert route_comfort(info, strict=True) == pytest.approx(route["route_comfort_if_rad_s_and_dt0.05"])


def test_driving_smoothness_and_efficiency_totals() -> None:
    root = fixtures_dir("bench2drive", "comfort")
    exp = _expected()
    s = summarize("comfort", [root / "input" / "eval_comfort.json"], metric_dir=root / "metric")
    assert s.comfort is not None
    assert s.comfort.compat == exp["driving_smoothness"]
    assert s.compat.efficiency == exp["driving_efficiency"]
    merged = json.loads((root / "merged.json").read_text())
    assert {k: v for k, v in s.merged_compat.items() if k != "_checkpoint"} == {
        k: v for k, v in merged.items() if k != "_checkpoint"
    }
    assert s.merged_compat["_checkpoint"]["records"] == merged["_checkpoint"]["records"]
    for route in exp["per_route"]:
        assert s.comfort.per_route_compat[route["route_id"]] == route["route_comfort_tool"]


def test_missing_metric_file_compat_fails_strict_skips(tmp_path: Path) -> None:
    root = fixtures_dir("bench2drive", "comfort")
    merged = json.loads((root / "merged.json").read_text())["_checkpoint"]["records"]
    keep = merged[0]["save_name"]
    shutil.copytree(root / "metric" / keep, tmp_path / keep)
    res = driving_smoothness(merged, tmp_path)
    assert res.compat is None and res.compat_error is not None
    assert res.compat_error.startswith("FileNotFoundError")
    assert len(res.missing) == 2
    assert res.strict == res.per_route_strict[merged[0]["route_id"]]


def test_short_routes() -> None:
    rng = np.random.default_rng(0)

    def info(n: int) -> MetricInfo:
        fwd = np.tile([1.0, 0.0, 0.0], (n, 1))
        right = np.tile([0.0, 1.0, 0.0], (n, 1))
        return MetricInfo(rng.normal(0, 0.1, (n, 3)), np.zeros((n, 3)), fwd, right)

    assert route_comfort(info(15)) in (0.0, 1.0)  # ≤ 20 frames: one window over everything
    assert route_comfort(info(5)) in (0.0, 1.0)
    with pytest.raises(MetricInfoError, match="at least 3"):
        route_comfort(info(2))


def test_savgol_properties() -> None:
    """Order-2 Savitzky-Golay reproduces quadratics exactly (edges included) and their derivative."""
    t = np.arange(30, dtype=float) * 0.05
    y = 1.5 - 2.0 * t + 0.7 * t**2
    assert np.allclose(savgol(y), y, atol=1e-12)
    assert np.allclose(savgol(y, deriv=1, delta=0.05), -2.0 + 1.4 * t, atol=1e-9)
    assert np.allclose(savgol(y[:5]), y[:5], atol=1e-12)  # window shrinks to n


def test_truncated_metric_info(tmp_path: Path) -> None:
    p = tmp_path / "metric_info.json"
    p.write_text('{"0": {"acceleration": [0, 0')
    with pytest.raises(MetricInfoError, match="invalid JSON"):
        load_metric_info(p)

"""Momentum-aware selection against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.selection import MomentumConfig, MomentumSelector, comfort_features

T = 8
DT = 0.5
TIMES = DT * np.arange(1, T + 1)


def constant_accel(v0: float, a: float) -> np.ndarray:
    """Straight plan x = v0·t + a·t²/2 at 0.5 … 4.0 s (EGO_REAR_AXLE)."""
    return np.stack([v0 * TIMES + 0.5 * a * TIMES**2, np.zeros(T), np.zeros(T)], -1)


def arc(v: float, omega: float) -> np.ndarray:
    h = omega * TIMES
    return np.stack([v / omega * np.sin(h), v / omega * (1 - np.cos(h)), h], -1)


def test_features_are_exact_for_constant_acceleration_and_turn_rate():
    acc, jerk, yaw_rate, yaw_acc = comfort_features(np.concatenate([np.zeros((1, 3)), constant_accel(10, -2)]), DT)
    assert np.allclose(acc, 2.0) and np.allclose(jerk, 0.0) and np.allclose(yaw_rate, 0.0)
    _, _, yaw_rate, yaw_acc = comfort_features(np.concatenate([np.zeros((1, 3)), arc(10, 0.2)]), DT)
    assert np.allclose(yaw_rate, 0.2) and np.allclose(yaw_acc, 0.0)


def test_first_frame_uses_raw_scores():
    sel = MomentumSelector()
    props = np.stack([constant_accel(10, 0), constant_accel(10, -2)])
    s = sel.select(props, np.array([0.8, 0.85]), np.zeros(3), 0.0)
    assert s.index == 1 and s.comfort is None and np.array_equal(s.scores, s.raw_scores)
    assert sel.state is not None and np.array_equal(sel.state.plan, props[1])


def test_momentum_keeps_the_comfortable_continuation_by_hand():
    sel = MomentumSelector()
    # previous frame: at WORLD (100, 50) heading north, the ego chose 10 m/s straight ahead
    sel.select(constant_accel(10, 0)[None], np.array([1.0]), np.array([100.0, 50.0, math.pi / 2]), 10.0)
    # now, 0.5 s later, the ego is 5 m further north, exactly on the plan
    ego = np.array([100.0, 55.0, math.pi / 2])
    warped, times = sel.warp_previous(ego, 10.5)
    assert np.allclose(times, np.arange(9) * 0.5 - 0.5)
    assert np.allclose(warped[:, 0], np.arange(9) * 5.0 - 5.0) and np.allclose(warped[:, 1:], 0.0, atol=1e-9)
    props = np.stack([constant_accel(10, 0), constant_accel(10, -2), constant_accel(10, -0.5), arc(10, 0.2)])
    s = sel.select(props, np.array([0.80, 0.85, 0.70, 0.90]), ego, 10.5)
    # |Δaccel| RMS: 0, 2 (> 0.7), 0.5 (≤ 0.7); the arc turns at 0.2 rad/s (> 0.1) → not comfortable
    assert s.comfort is not None and s.comfort.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert s.scores == pytest.approx([(7 * 0.8 + 1) / 8, 7 * 0.85 / 8, (7 * 0.7 + 1) / 8, 7 * 0.9 / 8])
    # momentum flips the call: 0.825 for the continuation beats 0.7875 for the raw best (the arc)
    assert s.index == 0 and s.raw_scores.argmax() == 3
    assert sel.state is not None and sel.state.timestamp == 10.5 and np.array_equal(sel.state.ego_pose, ego)


def test_lateral_offset_of_the_ego_shows_in_the_warped_plan():
    sel = MomentumSelector()
    sel.select(constant_accel(10, 0)[None], np.array([1.0]), np.array([0.0, 0.0, math.pi / 2]), 0.0)
    # ego drifted 1 m east (to its right when heading north): the old plan now lies 1 m to the left
    warped, _ = sel.warp_previous(np.array([1.0, 5.0, math.pi / 2]), 0.5)
    assert np.allclose(warped[1:, 1], 1.0) and np.allclose(warped[1:, 0], np.arange(8) * 5.0)


def test_fraction_mode_counts_passing_terms():
    sel = MomentumSelector(MomentumConfig(mode="fraction", previous_weight=3, comfort_weight=1))
    sel.select(constant_accel(10, 0)[None], np.array([1.0]), np.zeros(3), 0.0)
    s = sel.select(constant_accel(10, -2)[None], np.array([0.5]), np.array([5.0, 0.0, 0.0]), 0.5)
    assert s.comfort is not None and s.comfort.tolist() == [0.75]  # only the acceleration term fails
    assert s.scores[0] == pytest.approx((3 * 0.5 + 0.75) / 4)


def test_long_gap_reset_and_route_start():
    sel = MomentumSelector(MomentumConfig(max_gap_s=1.0))
    props = np.stack([constant_accel(10, 0), constant_accel(10, -2)])
    sel.select(props[:1], np.array([1.0]), np.zeros(3), 0.0)
    s = sel.select(props, np.array([0.8, 0.85]), np.array([15.0, 0.0, 0.0]), 1.5)  # 1.5 s gap > 1 s
    assert s.comfort is None and s.index == 1
    s = sel.select(props, np.array([0.8, 0.85]), np.array([20.0, 0.0, 0.0]), 2.0)  # 0.5 s after: applies
    assert s.comfort is not None
    s = sel.select(props, np.array([0.8, 0.85]), np.array([25.0, 0.0, 0.0]), 2.5, route_start=True)
    assert s.comfort is None
    # a short overlap (3.0 s gap allowed, but only t = 0, 0.5 remain) is not compared
    long = MomentumSelector(MomentumConfig(max_gap_s=5.0))
    long.select(props[:1], np.array([1.0]), np.zeros(3), 0.0)
    assert long.comfort(props, np.array([30.0, 0.0, 0.0]), 3.0) is None


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match=r"\(N, T, 3\)"):
        MomentumSelector().select(np.zeros((2, 8)), np.zeros(2), np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="mode"):
        MomentumConfig(mode="soft")

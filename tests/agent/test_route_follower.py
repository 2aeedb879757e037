"""The weight-free route follower (agent/baselines.py): the blind baseline drives at its intended speed.

It prefers 6 m/s and slows to 3 m/s only where the arc's lateral acceleration would pass its cap; until 2026-12-08 it
crawled at about 3 m/s whenever the target was a degree off the heading (docs/PERFORMANCE.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.baselines import RouteFollowModel
from agent.model_api import ModelInputs


def _choose(m: RouteFollowModel, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    b = math.radians(bearing_deg)
    target = np.array([dist_m * math.cos(b), dist_m * math.sin(b)])
    out = m.plan(ModelInputs(np.zeros(1), np.zeros(4), 5.0, np.zeros(2), target))
    i = int(np.argmax(out.scores))
    return float(m.speed[i]), float(m.curvature[i])


@pytest.mark.parametrize("bearing", [0.0, 0.5, 1.0, 2.0, 3.0, -4.0, 8.0, -12.0])
def test_near_straight_it_keeps_6_m_s_and_steers_toward_the_target(bearing: float) -> None:
    m = RouteFollowModel()
    speed, k = _choose(m, bearing, 10.0)
    assert speed == 6.0
    # pure pursuit: the curvature that passes through the point 12 m (2 s at 6 m/s) along the target's ray
    want = 2 * math.sin(math.radians(bearing)) / 12.0
    grid = np.unique(m.curvature)
    j = int(np.searchsorted(grid, want))
    lo, hi = grid[max(j - 1, 0)], grid[min(j, len(grid) - 1)]
    assert lo - 1e-9 <= k <= hi + 1e-9  # one of the two grid curvatures around it


@pytest.mark.parametrize("bearing", [40.0, -60.0, 90.0])
def test_in_a_sharp_turn_it_slows_to_3_m_s(bearing: float) -> None:
    speed, k = _choose(RouteFollowModel(), bearing, 7.0)
    assert speed == 3.0 and np.sign(k) == np.sign(bearing)


def test_a_target_behind_turns_hardest_toward_its_side() -> None:
    m = RouteFollowModel()
    assert _choose(m, 150.0, 5.0)[1] == pytest.approx(m.cfg.max_curvature)
    assert _choose(m, -150.0, 5.0)[1] == pytest.approx(-m.cfg.max_curvature)

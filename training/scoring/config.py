"""Typed configuration of the PDM scorer (NAVSIM v2.2 `PDMScorerConfig` defaults and v1.1 weights).

Values from NAVSIM `navsim/planning/script/config/pdm_scoring/scorer/pdm_scorer.yaml` and the comfort bounds
in `pdm_comfort_metrics.py` (see ../shared/fixtures/navsim_scorer/README.md, sections 1 and 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ComfortBounds:
    """nuPlan comfort bounds (strict inequalities), m/s^2, m/s^3, rad/s, rad/s^2."""

    min_lon_accel: float = -4.05
    max_lon_accel: float = 2.40
    max_abs_lat_accel: float = 4.89
    max_abs_jerk: float = 8.37
    max_abs_lon_jerk: float = 4.13
    max_abs_yaw_accel: float = 1.93
    max_abs_yaw_rate: float = 0.95
    # Extended comfort: RMS of the difference between two consecutive frames' plans (<= passes).
    ec_acceleration: float = 0.7
    ec_jerk: float = 0.5
    ec_yaw_rate: float = 0.1
    ec_yaw_accel: float = 0.1


@dataclass(frozen=True)
class ScorerConfig:
    """Weights and thresholds of EPDMS (v2) and PDMS (v1)."""

    # v2 weighted metrics (EPDMS = NC*DAC*DDC*TLC*(5 EP + 5 TTC + 2 LK + 2 HC + 2 EC) / 16)
    ep_weight: float = 5.0
    ttc_weight: float = 5.0
    lk_weight: float = 2.0
    hc_weight: float = 2.0
    ec_weight: float = 2.0
    # v1 weighted metrics (PDMS = NC*DAC*(5 EP + 5 TTC + 2 C) / 12)
    v1_comfort_weight: float = 2.0
    driving_direction_horizon_s: float = 1.0
    driving_direction_compliance_threshold: float = 2.0  # m
    driving_direction_violation_threshold: float = 6.0  # m
    stopped_speed_threshold: float = 5e-3  # m/s (TTC)
    collision_stopped_speed_threshold: float = 5e-2  # m/s (nuPlan collision classification)
    future_collision_horizon_window_s: float = 1.0
    ttc_projection_step: int = 3  # steps of 0.1 s between TTC projections (0, 0.3, 0.6, 0.9 s)
    progress_distance_threshold: float = 5.0  # m
    lane_keeping_deviation_limit: float = 0.5  # m
    lane_keeping_horizon_window_s: float = 2.0
    agent_ahead_angle_deg: float = 30.0
    agent_behind_angle_deg: float = 150.0
    human_penalty_filter: bool = True
    dt: float = 0.1
    num_steps: int = 41  # 0 ... 4.0 s
    comfort: ComfortBounds = field(default_factory=ComfortBounds)
    # Geometry acceleration (exactness does not depend on it, only speed and memory).
    grid_cell_m: float = 0.25

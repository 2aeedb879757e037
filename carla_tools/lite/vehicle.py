"""The ego: a kinematic bicycle with CARLA-like limits, driven by a `VehicleControl`.

State lives in the WORLD frame (right-handed, metres, heading CCW in radians) at the **rear axle**; the box
centre (CARLA's actor location) is `rear_axle_to_center` ahead. Limits approximate CARLA 0.9.15's
`vehicle.lincoln.mkz_2020` physics (front-wheel max steer 70°, ~4 m/s² full-throttle acceleration at low speed
falling with power, ~8 m/s² full braking, tyre-limited lateral acceleration); they are not a PhysX
replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drive_jepa.frames import LINCOLN_MKZ_2020, VehicleGeometry, rear_axle_to_center, wrap_angle


@dataclass
class VehicleControl:
    """Same fields and ranges as `carla.VehicleControl`: throttle/brake in [0, 1], steer in [−1, 1]
    (positive =
    right, CARLA's convention), hand_brake / reverse flags."""

    throttle: float = 0.0
    steer: float = 0.0
    brake: float = 0.0
    hand_brake: bool = False
    reverse: bool = False
    manual_gear_shift: bool = False
    gear: int = 0


def as_control(obj: Any) -> VehicleControl:
    """Read a `carla.VehicleControl`, this module's `VehicleControl` or any object with the same attributes.
    Values are clipped to CARLA's ranges; NaN becomes 0. Raises TypeError naming the missing attribute."""

    def num(name: str, lo: float, hi: float) -> float:
        if not hasattr(obj, name):
            raise TypeError(f"agent control {type(obj).__name__} has no attribute {name!r} (expected VehicleControl)")
        v = float(getattr(obj, name))
        return 0.0 if math.isnan(v) else min(max(v, lo), hi)

    return VehicleControl(
        throttle=num("throttle", 0.0, 1.0),
        steer=num("steer", -1.0, 1.0),
        brake=num("brake", 0.0, 1.0),
        hand_brake=bool(getattr(obj, "hand_brake", False)),
        reverse=bool(getattr(obj, "reverse", False)),
    )


@dataclass(frozen=True)
class VehicleLimits:
    max_steer_deg: float = 70.0  # front wheels at full lock (CARLA physics control of the MKZ 2020)
    steer_time_constant: float = 0.08  # s, first-order lag of the steering
    max_accel: float = 4.0  # m/s², full throttle at low speed
    power_per_mass: float = 90.0  # W/kg: full-throttle acceleration is min(max_accel, P/m / v)
    max_brake: float = 8.0  # m/s², full brake
    hand_brake_decel: float = 6.0  # m/s²
    rolling_decel: float = 0.15  # m/s², always opposes motion
    engine_brake: float = 0.4  # m/s², with throttle released
    drag: float = 0.00025  # 1/m: drag deceleration = drag · v²
    max_lateral_accel: float = 9.0  # m/s², tyre limit on v · yaw rate
    max_reverse_speed: float = 8.0  # m/s


@dataclass
class EgoState:
    """Rear-axle pose (WORLD), signed forward speed (m/s), current front-wheel angle (rad, CCW = left)."""

    x: float
    y: float
    heading: float
    speed: float = 0.0
    wheel_angle: float = 0.0
    accel: float = 0.0  # longitudinal, last step (m/s²)
    yaw_rate: float = 0.0  # rad/s, CCW, last step
    geometry: VehicleGeometry = field(default=LINCOLN_MKZ_2020)

    def center_pose(self) -> np.ndarray:
        """(3,) WORLD pose of the bounding-box centre (CARLA's actor location)."""
        return np.asarray(
            rear_axle_to_center(np.array([self.x, self.y, self.heading]), self.geometry.rear_axle_to_center)
        )


class BicycleModel:
    """Integrates `EgoState` for one step of `dt` seconds under a control."""

    def __init__(self, limits: VehicleLimits | None = None) -> None:
        self.limits = limits or VehicleLimits()

    def step(self, s: EgoState, control: VehicleControl, dt: float) -> EgoState:
        lim = self.limits
        # steering: CARLA steer > 0 turns right = negative (clockwise) wheel angle in WORLD
        target = -control.steer * math.radians(lim.max_steer_deg)
        alpha = 1.0 - math.exp(-dt / lim.steer_time_constant)
        wheel = s.wheel_angle + alpha * (target - s.wheel_angle)
        # longitudinal
        v = s.speed
        direction = -1.0 if control.reverse else 1.0
        drive = control.throttle * min(lim.max_accel, lim.power_per_mass / max(abs(v), 1e-3))
        a = direction * drive
        resist = lim.rolling_decel + lim.drag * v * v + (lim.engine_brake if control.throttle < 0.05 else 0.0)
        resist += control.brake * lim.max_brake + (lim.hand_brake_decel if control.hand_brake else 0.0)
        v_new = v + a * dt
        # resistances oppose motion and never reverse it
        if v_new > 0:
            v_new = max(0.0, v_new - resist * dt)
        elif v_new < 0:
            v_new = min(0.0, v_new + resist * dt)
        v_new = max(v_new, -lim.max_reverse_speed)
        # kinematic bicycle at the rear axle, yaw rate limited by the tyres
        v_mid = 0.5 * (v + v_new)
        yaw_rate = v_mid * math.tan(wheel) / s.geometry.wheel_base
        max_rate = lim.max_lateral_accel / max(abs(v_mid), 1e-3)
        yaw_rate = min(max(yaw_rate, -max_rate), max_rate)
        h_mid = s.heading + 0.5 * yaw_rate * dt
        return EgoState(
            x=s.x + v_mid * math.cos(h_mid) * dt,
            y=s.y + v_mid * math.sin(h_mid) * dt,
            heading=float(wrap_angle(s.heading + yaw_rate * dt)),
            speed=v_new,
            wheel_angle=wheel,
            accel=(v_new - v) / dt,
            yaw_rate=yaw_rate,
            geometry=s.geometry,
        )

"""Plan → control: lateral and longitudinal PID from the selected plan, with stop and creep logic.

The plan is (T, 3) poses in EGO_REAR_AXLE (x forward, y left) at `plan_dt` spacing starting at `plan_dt`.
Lateral: an aim point on the plan at a speed-dependent lookahead distance; error = its bearing (left positive);
CARLA's steer is positive to the right, so steer = −PID(bearing). Longitudinal: desired speed = plan distance over
the first `speed_horizon_s`; throttle from a speed PID; brake when the desired speed is near zero or well below
the current speed. Creep: after `creep_after_s` standing still while the plan wants to stop (e.g. a false positive),
creep forward at `creep_speed` for `creep_duration_s` (the leaderboard blocks a route after 60 s below 0.1 m/s).
Every output is finite and in range: on any bad input the controller brakes and says why.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PIDConfig:
    kp: float
    ki: float
    kd: float
    window: int = 20  # integral/derivative over the last `window` errors (as in TransFuser-style controllers)


@dataclass
class ControlConfig:
    lateral: PIDConfig = field(default_factory=lambda: PIDConfig(kp=1.25, ki=0.75, kd=0.3, window=20))
    longitudinal: PIDConfig = field(default_factory=lambda: PIDConfig(kp=5.0, ki=0.5, kd=1.0, window=20))
    plan_dt: float = 0.5
    aim_min_m: float = 2.5
    aim_max_m: float = 12.0
    aim_time_s: float = 1.0  # lookahead = clip(speed · aim_time_s, aim_min, aim_max)
    speed_horizon_s: float = 1.0
    max_speed: float = 15.0  # m/s cap on the desired speed
    brake_speed: float = 0.4  # desired speed below this → brake
    brake_ratio: float = 1.1  # current speed above desired·ratio → brake
    max_throttle: float = 0.75
    max_steer: float = 1.0
    stopped_speed: float = 0.1
    creep_after_s: float = 40.0
    creep_duration_s: float = 1.5
    creep_speed: float = 2.0
    creep_throttle: float = 0.4


@dataclass
class Control:
    throttle: float = 0.0
    steer: float = 0.0
    brake: float = 1.0
    reason: str = ""

    @staticmethod
    def emergency(reason: str) -> Control:
        return Control(0.0, 0.0, 1.0, reason)


class PID:
    def __init__(self, cfg: PIDConfig, dt: float) -> None:
        self.cfg, self.dt = cfg, dt
        self.errors: deque[float] = deque(maxlen=cfg.window)

    def reset(self) -> None:
        self.errors.clear()

    def step(self, error: float) -> float:
        self.errors.append(error)
        integral = float(np.mean(self.errors))
        derivative = (self.errors[-1] - self.errors[-2]) if len(self.errors) >= 2 else 0.0
        return self.cfg.kp * error + self.cfg.ki * integral + self.cfg.kd * derivative


def point_along(plan_xy: np.ndarray, distance: float) -> np.ndarray:
    """The point at arc length `distance` along the polyline origin → plan (clamped at its end)."""
    pts = np.concatenate([np.zeros((1, 2)), plan_xy], 0)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] <= 1e-6:
        return pts[-1]
    d = min(distance, cum[-1])
    i = int(np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(seg) - 1))
    w = 0.0 if seg[i] <= 1e-9 else (d - cum[i]) / seg[i]
    return pts[i] + w * (pts[i + 1] - pts[i])


class Controller:
    def __init__(self, cfg: ControlConfig, dt: float = 0.05) -> None:
        self.cfg, self.dt = cfg, dt
        self.lat = PID(cfg.lateral, dt)
        self.lon = PID(cfg.longitudinal, dt)
        self.stopped_for = 0.0
        self.creep_left = 0.0

    def reset(self) -> None:
        self.lat.reset()
        self.lon.reset()
        self.stopped_for = 0.0
        self.creep_left = 0.0

    def desired_speed(self, plan: np.ndarray) -> float:
        t = np.arange(1, len(plan) + 1) * self.cfg.plan_dt
        xy = np.concatenate([np.zeros((1, 2)), plan[:, :2]], 0)
        tt = np.concatenate([[0.0], t])
        end = float(np.clip(self.cfg.speed_horizon_s, tt[1], tt[-1]))
        p = np.array([np.interp(end, tt, xy[:, 0]), np.interp(end, tt, xy[:, 1])])
        # distance travelled along the plan up to `end`
        k = int(np.searchsorted(tt, end, side="right"))
        path = np.concatenate([xy[:k], p[None]], 0)
        dist = float(np.hypot(*np.diff(path, axis=0).T).sum())
        return min(dist / end, self.cfg.max_speed)

    def step(self, plan: np.ndarray | None, speed: float) -> Control:
        cfg = self.cfg
        if plan is None or plan.ndim != 2 or plan.shape[0] < 1 or plan.shape[1] < 2 or not np.all(np.isfinite(plan)):
            return Control.emergency("no valid plan")
        if not math.isfinite(speed):
            return Control.emergency("speed reading is not finite")
        speed = max(speed, 0.0)
        desired = self.desired_speed(plan)
        # lateral
        lookahead = float(np.clip(speed * cfg.aim_time_s, cfg.aim_min_m, cfg.aim_max_m))
        aim = point_along(plan[:, :2], lookahead)
        bearing = math.atan2(aim[1], aim[0]) if np.hypot(*aim) > 0.5 else 0.0
        steer = float(np.clip(-self.lat.step(bearing), -cfg.max_steer, cfg.max_steer))
        # longitudinal
        brake = desired < cfg.brake_speed or speed > desired * cfg.brake_ratio
        if speed < cfg.stopped_speed and desired < cfg.brake_speed:
            self.stopped_for += self.dt
        else:
            self.stopped_for = 0.0
        reason = ""
        if self.stopped_for >= cfg.creep_after_s and self.creep_left <= 0.0:
            self.creep_left = cfg.creep_duration_s
            self.stopped_for = 0.0
        if self.creep_left > 0.0:
            self.creep_left -= self.dt
            desired, brake, reason = cfg.creep_speed, speed > cfg.creep_speed, "creeping to unblock"
        throttle = 0.0 if brake else float(np.clip(self.lon.step(desired - speed), 0.0, cfg.max_throttle))
        if reason == "creeping to unblock" and not brake:
            throttle = max(throttle, cfg.creep_throttle)
        if brake:
            self.lon.reset()
        return Control(
            throttle=throttle,
            steer=steer if math.isfinite(steer) else 0.0,
            brake=1.0 if brake else 0.0,
            reason=reason or ("stop" if brake else ""),
        )

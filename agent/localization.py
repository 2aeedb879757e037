"""Ego localization from GNSS + IMU compass + speedometer, in the right-handed WORLD frame.

GNSS (lat, lon) → CARLA_WORLD (x, y) with the map's geo-reference, recovered from the global plan's
(gps, world) pairs (`GeoReference.from_route_pairs`), so no map file is needed. The GNSS antenna sits at the rig's
`imu_gnss_x` (−1.4 m, behind the box centre); positions are moved to the box centre and to the rear axle (the
planner's EGO_REAR_AXLE origin). Compass → heading is NaN-safe (the last good heading is kept).

Optional filtering: an extended Kalman filter on (x, y, heading, speed) with a constant-turn-rate model, driven
by the IMU yaw rate. Noise settings (stated, configurable): GNSS position σ = 0.6 m (Bench2Drive's rig adds
5e-6° lat/lon noise ≈ 0.55 m), compass σ = 0.02 rad, speed σ = 0.1 m/s; process noise σ_a = 2 m/s²,
σ_yawacc = 0.5 rad/s². CARLA's IMU gyroscope is in its left-handed axes: the right-handed yaw rate is −gyro_z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drive_jepa import frames as F


class LocalizationError(RuntimeError):
    """No usable reference or measurement yet."""


@dataclass
class LocalizationConfig:
    filter: str = "ekf"  # "ekf" or "none"
    gnss_sigma_m: float = 0.6
    compass_sigma_rad: float = 0.02
    speed_sigma: float = 0.1
    accel_sigma: float = 2.0
    yaw_acc_sigma: float = 0.5
    antenna_x: float = -1.4  # GNSS antenna along the vehicle axis, metres from the box centre (CARLA x)
    rear_axle_to_center: float = F.LINCOLN_MKZ_2020.rear_axle_to_center


@dataclass
class EgoState:
    """Ego state in WORLD (right-handed): box-centre pose, rear-axle pose, speed (m/s), yaw rate (rad/s)."""

    center: np.ndarray  # (3,) x, y, heading
    rear_axle: np.ndarray  # (3,)
    speed: float
    yaw_rate: float
    timestamp: float


def _road_option_value(x: Any) -> int:
    return int(getattr(x, "value", x))


def plan_to_arrays(gps_plan: list[Any], world_plan: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leaderboard global plans → (gps (N, 2) lat/lon, CARLA_WORLD xy (N, 2), road options (N,) int).

    gps items are ({'lat', 'lon', 'z'}, RoadOption); world items are (carla.Transform or Location or (x, y[, z]),
    RoadOption).
    """
    if len(gps_plan) != len(world_plan) or not gps_plan:
        raise LocalizationError(f"global plan: {len(gps_plan)} gps vs {len(world_plan)} world entries")
    gps = np.array([[float(g["lat"]), float(g["lon"])] for g, _ in gps_plan], dtype=np.float64)
    xy = []
    for pos, _ in world_plan:
        loc = getattr(pos, "location", pos)
        if hasattr(loc, "x"):
            xy.append([float(loc.x), float(loc.y)])
        else:
            xy.append([float(loc[0]), float(loc[1])])
    options = np.array([_road_option_value(o) for _, o in world_plan], dtype=np.int64)
    return gps, np.asarray(xy, dtype=np.float64), options


class Localizer:
    def __init__(self, cfg: LocalizationConfig) -> None:
        self.cfg = cfg
        self.reference: F.GeoReference | None = None
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None  # EKF state: x, y, heading, speed (antenna position)
        self._p = np.eye(4)
        self._t: float | None = None
        self._heading: float | None = None

    def set_reference(self, gps: np.ndarray, world_xy: np.ndarray) -> F.GeoReference:
        self.reference = F.GeoReference.from_route_pairs(gps, world_xy)
        return self.reference

    def _measure(self, gnss: np.ndarray, compass: float) -> tuple[np.ndarray, float | None]:
        if self.reference is None:
            raise LocalizationError("no geo-reference: set_global_plan was not called")
        if gnss.shape[-1] < 2 or not np.all(np.isfinite(gnss[:2])):
            raise LocalizationError(f"GNSS reading is not finite: {gnss!r}")
        xy_world = F.carla_points_to_world(self.reference.gnss_to_carla(gnss[:2]))
        heading = F.compass_to_heading(np.asarray(compass, dtype=np.float64))
        return xy_world, (float(heading) if np.isfinite(heading) else None)

    def update(self, t: float, gnss: np.ndarray, compass: float, speed: float, gyro_z: float = 0.0) -> EgoState:
        """One measurement set → EgoState. Raises LocalizationError when no heading has ever been available."""
        xy, heading = self._measure(np.asarray(gnss, dtype=np.float64), compass)
        speed = float(speed) if math.isfinite(speed) else (float(self._x[3]) if self._x is not None else 0.0)
        yaw_rate = -float(gyro_z) if math.isfinite(gyro_z) else 0.0
        if heading is None:
            heading = self._heading if self._x is None else float(self._x[2])
        if heading is None:
            raise LocalizationError("no finite compass reading yet")
        self._heading = heading
        if self.cfg.filter == "ekf":
            self._ekf(t, xy, heading, speed, yaw_rate)
            assert self._x is not None
            ant = self._x[:3].copy()
            speed = float(self._x[3])
        else:
            ant = np.array([xy[0], xy[1], heading])
        self._t = t
        center = F.rear_axle_to_center(ant, -self.cfg.antenna_x)  # antenna is |antenna_x| behind the centre
        rear = F.center_to_rear_axle(center, self.cfg.rear_axle_to_center)
        return EgoState(center, rear, speed, yaw_rate, t)

    def _ekf(self, t: float, xy: np.ndarray, heading: float, speed: float, yaw_rate: float) -> None:
        z = np.array([xy[0], xy[1], heading, speed])
        r = np.diag([self.cfg.gnss_sigma_m**2] * 2 + [self.cfg.compass_sigma_rad**2, self.cfg.speed_sigma**2])
        if self._x is None or self._t is None:
            self._x, self._p = z.copy(), r.copy()
            return
        dt = float(np.clip(t - self._t, 0.0, 1.0))
        x, y, h, v = self._x
        # predict: constant speed, heading advanced by the measured yaw rate
        hm = h + 0.5 * yaw_rate * dt
        self._x = np.array([x + v * dt * math.cos(hm), y + v * dt * math.sin(hm), F.wrap_angle(h + yaw_rate * dt), v])
        jac = np.eye(4)
        jac[0, 2], jac[0, 3] = -v * dt * math.sin(hm), dt * math.cos(hm)
        jac[1, 2], jac[1, 3] = v * dt * math.cos(hm), dt * math.sin(hm)
        q = np.diag(
            [
                (0.5 * self.cfg.accel_sigma * dt * dt) ** 2,
                (0.5 * self.cfg.accel_sigma * dt * dt) ** 2,
                (0.5 * self.cfg.yaw_acc_sigma * dt * dt) ** 2,
                (self.cfg.accel_sigma * dt) ** 2,
            ]
        )
        self._p = jac @ self._p @ jac.T + q
        # update (heading innovation on the circle)
        innov = z - self._x
        innov[2] = F.wrap_angle(innov[2])
        s = self._p + r
        k = self._p @ np.linalg.inv(s)
        self._x = self._x + k @ innov
        self._x[2] = F.wrap_angle(self._x[2])
        self._p = (np.eye(4) - k) @ self._p

"""A tiny kinematic-bicycle stand-in for a simulator, producing leaderboard-format `input_data` for agent tests.

It is not the lite world (carla_tools.lite): no map, no traffic — just enough physics to close the loop on the
policy's localization, route following and control, with the sensor formats of CARLA 0.9.15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from drive_jepa import frames as F


class RoadOption(IntEnum):  # values of CARLA's agents.navigation.local_planner.RoadOption
    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4


def l_shaped_route(step: float = 2.0) -> tuple[np.ndarray, list[RoadOption]]:
    """CARLA_WORLD points: 80 m east along y=0, then a left turn (towards −y in CARLA = north) for 80 m."""
    straight = [(x, 0.0) for x in np.arange(0.0, 80.0, step)]
    arc = [(80.0 + 15 * math.sin(a), -15 + 15 * math.cos(a)) for a in np.linspace(0, math.pi / 2, 12)]
    north = [(95.0, -15.0 - d) for d in np.arange(step, 80.0, step)]
    pts = np.array(straight + arc + north)
    opts = [RoadOption.LANEFOLLOW] * len(straight) + [RoadOption.LEFT] * len(arc) + [RoadOption.LANEFOLLOW] * len(north)
    return pts, opts


@dataclass
class BicycleSim:
    ref: F.GeoReference = field(default_factory=lambda: F.GeoReference(42.0, 2.0))
    x: float = 0.0  # CARLA_WORLD box centre
    y: float = 0.0
    yaw_deg: float = 0.0
    speed: float = 0.0
    wheel_base: float = 2.88
    max_steer_rad: float = math.radians(70.0) * 0.5
    dt: float = 0.05
    t: float = 0.0
    frame: int = 0
    gnss_noise_deg: float = 5e-6
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def global_plan(self, pts: np.ndarray, opts: list[RoadOption]) -> tuple[list, list]:
        carla = __import__("carla")
        gps = self.ref.carla_to_gnss(pts)
        gps_plan = [({"lat": float(a), "lon": float(b), "z": 0.0}, o) for (a, b), o in zip(gps, opts, strict=True)]
        world_plan = [
            (carla.Transform(carla.Location(float(x), float(y), 0.0)), o) for (x, y), o in zip(pts, opts, strict=True)
        ]
        return gps_plan, world_plan

    def input_data(self, width: int = 1600, height: int = 900, compass_nan: bool = False) -> dict:
        yaw = math.radians(self.yaw_deg)
        ant = np.array([self.x - 1.4 * math.cos(yaw), self.y - 1.4 * math.sin(yaw)])  # antenna 1.4 m behind
        lat, lon = self.ref.carla_to_gnss(ant)
        noise = self.rng.normal(0.0, self.gnss_noise_deg, 2)
        compass = float("nan") if compass_nan else (yaw + math.pi / 2) % (2 * math.pi)
        img = np.full((height, width, 4), 90, np.uint8)
        img[: height // 2, :, 0] = 200  # sky (blue in BGR)
        img[:, :, 3] = 255
        return {
            "CAM_FRONT": (self.frame, img),
            "GPS": (self.frame, np.array([lat + noise[0], lon + noise[1], 0.0])),
            "IMU": (self.frame, np.array([0.0, 0.0, 9.81, 0.0, 0.0, 0.0, compass])),
            "SPEED": (self.frame, {"speed": self.speed}),
        }

    def apply(self, control) -> None:
        acc = 4.0 * control.throttle - 8.0 * control.brake - 0.05 * self.speed
        self.speed = max(0.0, self.speed + acc * self.dt)
        steer = control.steer * self.max_steer_rad  # CARLA steer > 0 turns right = yaw increases (clockwise)
        yaw = math.radians(self.yaw_deg)
        self.x += self.speed * math.cos(yaw) * self.dt
        self.y += self.speed * math.sin(yaw) * self.dt
        self.yaw_deg += math.degrees(self.speed / self.wheel_base * math.tan(steer) * self.dt)
        self.t += self.dt
        self.frame += 1

"""CARLA-API value types for the lite world: the real `carla` classes when the client is installed, small
stand-ins with the same attribute names otherwise (so agents written for the leaderboard read them
unchanged).

`RoadOption` has the values of CARLA's `agents.navigation.local_planner.RoadOption`; the real enum is used
when CARLA's PythonAPI `agents` package is importable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class _RoadOption(IntEnum):
    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6


def road_option_enum() -> Any:
    """CARLA's RoadOption enum when `agents` is importable, else an IntEnum with the same names and values."""
    try:
        from agents.navigation.local_planner import RoadOption

        return RoadOption
    except ImportError:
        return _RoadOption


RoadOption: Any = road_option_enum()


@dataclass
class Location:
    """Stand-in for `carla.Location` (CARLA_WORLD metres)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0

    def distance(self, other: Location) -> float:
        return math.sqrt((self.x - other.x) ** 2 + (self.y - other.y) ** 2 + (self.z - other.z) ** 2)


@dataclass
class Rotation:
    """Stand-in for `carla.Rotation` (degrees, CARLA convention)."""

    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0


@dataclass
class Transform:
    """Stand-in for `carla.Transform`."""

    location: Location = field(default_factory=Location)
    rotation: Rotation = field(default_factory=Rotation)

    def get_forward_vector(self) -> Location:
        cp, sp = math.cos(math.radians(self.rotation.pitch)), math.sin(math.radians(self.rotation.pitch))
        cy, sy = math.cos(math.radians(self.rotation.yaw)), math.sin(math.radians(self.rotation.yaw))
        return Location(cy * cp, sy * cp, sp)


def make_transform(x: float, y: float, z: float, yaw_deg: float, pitch: float = 0.0, roll: float = 0.0) -> Any:
    """A `carla.Transform` (or the stand-in) at CARLA_WORLD (x, y, z) with yaw in degrees."""
    try:
        import carla

        return carla.Transform(carla.Location(x=x, y=y, z=z), carla.Rotation(pitch=pitch, yaw=yaw_deg, roll=roll))
    except ImportError:
        return Transform(Location(x, y, z), Rotation(pitch, yaw_deg, roll))

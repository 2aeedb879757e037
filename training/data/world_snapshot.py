"""A neutral, JSON-able snapshot of the world at one frame (ego, actors, traffic lights, stop signs, route target).

Written by the Bench2Drive reader for every sample so the scorer's scene converter (issue 5) can build its scene
format from it without reading Bench2Drive's annotation files again. Format `drive_jepa_world/1.0`:

* every position and heading is in WORLD (right-handed: x east, y north = −y_CARLA, z up; heading counter-clockwise
  in radians = −yaw_CARLA); lengths are **full** sizes in metres (Bench2Drive's `extent` is half sizes);
* `Box` is an oriented box: centre (x, y, z), heading, length (along heading), width, height;
* the ego carries both its rear-axle pose (the EGO_REAR_AXLE origin) and its box;
* speeds are m/s along the actor's heading; walkers' speeds are finite differences of their centres (CARLA
  reports 0 for pedestrians);
* traffic-light `trigger` boxes are CARLA's trigger volumes (the area in front of the stop line in which the light
  applies), in WORLD; `state` is one of red, yellow, green, off, unknown.

`save_snapshot` / `load_snapshot` write/read gzip JSON atomically.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drive_jepa.atomic import atomic_file

SNAPSHOT_FORMAT = "drive_jepa_world/1.0"
LIGHT_STATES = ("red", "yellow", "green", "off", "unknown")


@dataclass
class Box:
    """Oriented box in WORLD: centre (m), heading (rad, CCW from east), full length/width/height (m)."""

    x: float
    y: float
    z: float
    heading: float
    length: float
    width: float
    height: float


@dataclass
class Actor:
    """A dynamic or static obstacle. kind: vehicle, walker or static_object (cones, warning signs, debris)."""

    id: str
    kind: str
    type_id: str
    box: Box
    speed: float
    is_static: bool = False


@dataclass
class TrafficLight:
    id: str
    state: str
    x: float
    y: float
    trigger: Box
    affects_ego: bool = False


@dataclass
class StopSign:
    id: str
    trigger: Box
    affects_ego: bool = False


@dataclass
class EgoSnapshot:
    """rear_axle: WORLD (x, y, heading) of the EGO_REAR_AXLE origin; acceleration: (ax, ay) m/s² in the ego frame."""

    rear_axle: tuple[float, float, float]
    box: Box
    speed: float
    acceleration: tuple[float, float]
    rear_axle_to_center: float


@dataclass
class WorldSnapshot:
    source: str
    clip: str
    frame: int
    time_s: float
    town: str
    ego: EgoSnapshot
    actors: list[Actor] = field(default_factory=list)
    traffic_lights: list[TrafficLight] = field(default_factory=list)
    stop_signs: list[StopSign] = field(default_factory=list)
    route_target: tuple[float, float] | None = None  # WORLD (x, y) of the near route point
    command: int = -1  # RoadOption of the near route point
    format: str = SNAPSHOT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldSnapshot:
        if d.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"world snapshot format {d.get('format')!r}, expected {SNAPSHOT_FORMAT!r}")
        ego = d["ego"]
        target = d.get("route_target")
        return cls(
            source=d["source"],
            clip=d["clip"],
            frame=int(d["frame"]),
            time_s=float(d["time_s"]),
            town=d["town"],
            ego=EgoSnapshot(
                rear_axle=tuple(ego["rear_axle"]),
                box=Box(**ego["box"]),
                speed=float(ego["speed"]),
                acceleration=tuple(ego["acceleration"]),
                rear_axle_to_center=float(ego["rear_axle_to_center"]),
            ),
            actors=[Actor(**{**a, "box": Box(**a["box"])}) for a in d.get("actors", [])],
            traffic_lights=[TrafficLight(**{**t, "trigger": Box(**t["trigger"])}) for t in d.get("traffic_lights", [])],
            stop_signs=[StopSign(**{**s, "trigger": Box(**s["trigger"])}) for s in d.get("stop_signs", [])],
            route_target=None if target is None else (float(target[0]), float(target[1])),
            command=int(d.get("command", -1)),
        )


def save_snapshot(snapshot: WorldSnapshot, path: Path) -> Path:
    """Write gzip JSON atomically (temp file in the same folder, then rename)."""
    with atomic_file(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as f:
        json.dump(snapshot.to_dict(), f)
    return path


def load_snapshot(path: Path) -> WorldSnapshot:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return WorldSnapshot.from_dict(json.load(f))

"""Per-frame CARLA world snapshots for teacher generation (logged while routes run).

One JSON line per simulation frame (`snapshots.jsonl`), everything in drive-jepa's WORLD frame (right-handed:
x east, y north = -y_CARLA; metres; headings CCW radians = -yaw_CARLA; velocities m/s):

    {"format": "drive_jepa_carla_snapshot/1", "frame": int, "t_s": float (simulation time),
     "ego": {"id", "type_id", "x", "y", "heading", "vx", "vy", "speed", "length", "width", "height",
             "rear_axle": [x, y, heading]},
     "actors": [{"id", "type", "type_id", "x", "y", "heading", "vx", "vy", "length", "width", "height"}, ...],
     "traffic_lights": [{"id", "state" ("Red"|"Yellow"|"Green"|"Off"|"Unknown"),
                         "lanes": [[road_id, lane_id], ...],
                         "stop_points": [[x, y, heading], ...]}, ...],
     "town": str (optional, e.g. "Town01")}

`stop_points` are the WORLD poses of the light's affected-lane waypoints (`get_affected_lane_waypoints()`: one
per controlled lane, at its stop line, heading along the lane); the scene converter maps them onto the town's
lane connectors (training/scoring/from_snapshot.py).

Actor poses are bounding-box centres (actor transform composed with the box offset); `type` uses the nuPlan
tracked-object names the scorer expects (VEHICLE, PEDESTRIAN, BICYCLE, TRAFFIC_CONE, BARRIER, GENERIC_OBJECT).
`record_from_carla(...)` works on real `carla` value types (Transform, Vector3D, BoundingBox), so it is
testable without a server; `SnapshotLogger` walks a live `carla.World` each tick (`world.get_actors()`,
`actor.get_transform()`, `get_velocity()`, `bounding_box`, `TrafficLight.get_state()`,
`get_affected_lane_waypoints()`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from drive_jepa.frames import (
    LINCOLN_MKZ_2020,
    VehicleGeometry,
    carla_to_world,
    center_to_rear_axle,
    points_to_global,
)

FORMAT = "drive_jepa_carla_snapshot/1"


def object_type(type_id: str, attributes: dict[str, str] | None = None) -> str:
    """CARLA blueprint id -> nuPlan tracked-object type name."""
    attributes = attributes or {}
    if type_id.startswith("walker."):
        return "PEDESTRIAN"
    if type_id.startswith("vehicle."):
        wheels = attributes.get("number_of_wheels")
        base = attributes.get("base_type", "").lower()
        if base == "bicycle" or (wheels == "2" and base != "motorcycle"):
            return "BICYCLE"
        return "VEHICLE"
    if "cone" in type_id:
        return "TRAFFIC_CONE"
    if "barrier" in type_id:
        return "BARRIER"
    return "GENERIC_OBJECT"


def record_from_carla(
    actor_id: int,
    type_id: str,
    transform: Any,
    velocity: Any,
    bbox: Any,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One actor record (WORLD frame, box centre) from carla.Transform / Vector3D / BoundingBox."""
    loc, rot = transform.location, transform.rotation
    pose = carla_to_world(np.array([loc.x, loc.y, rot.yaw], dtype=np.float64))
    # the box offset is given in the actor's (left-handed) frame: flip its y to the right-handed actor frame
    off = np.array([bbox.location.x, -bbox.location.y], dtype=np.float64)
    centre = points_to_global(off, pose)
    vel = np.array([velocity.x, -velocity.y], dtype=np.float64)  # CARLA world velocity -> WORLD
    return {
        "id": int(actor_id),
        "type": object_type(type_id, attributes),
        "type_id": type_id,
        "x": float(centre[0]),
        "y": float(centre[1]),
        "heading": float(pose[2]),
        "vx": float(vel[0]),
        "vy": float(vel[1]),
        "length": 2.0 * float(bbox.extent.x),
        "width": 2.0 * float(bbox.extent.y),
        "height": 2.0 * float(bbox.extent.z),
    }


def ego_record(rec: dict[str, Any], geometry: VehicleGeometry = LINCOLN_MKZ_2020) -> dict[str, Any]:
    """Ego record: an actor record plus its rear-axle pose and speed."""
    rear = center_to_rear_axle(np.array([rec["x"], rec["y"], rec["heading"]]), geometry.rear_axle_to_center)
    out = dict(rec)
    out["rear_axle"] = [float(v) for v in rear]
    out["speed"] = math.hypot(rec["vx"], rec["vy"])
    return out


def frame_record(
    frame: int,
    t_s: float,
    ego: dict[str, Any],
    actors: list[dict[str, Any]],
    lights: list[dict[str, Any]],
    town: str | None = None,
) -> dict[str, Any]:
    rec = {
        "format": FORMAT,
        "frame": int(frame),
        "t_s": float(t_s),
        "ego": ego,
        "actors": actors,
        "traffic_lights": lights,
    }
    if town:
        rec["town"] = town
    return rec


def stop_points_from_carla(transforms: list[Any]) -> list[list[float]]:
    """carla.Transform of affected-lane waypoints -> WORLD [x, y, heading] rows."""
    if not transforms:
        return []
    raw = np.array([[t.location.x, t.location.y, t.rotation.yaw] for t in transforms], dtype=np.float64)
    return [[float(v) for v in row] for row in carla_to_world(raw)]


class SnapshotLogger:
    """Append one snapshot line per tick of a live CARLA world to `path` (flushed each frame)."""

    def __init__(
        self,
        world: Any,
        path: str | Path,
        hero_role: str = "hero",
        geometry: VehicleGeometry = LINCOLN_MKZ_2020,
    ):
        self.world = world
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hero_role = hero_role
        self.geometry = geometry
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across ticks
        self._lanes: dict[int, tuple[list[list[int]], list[list[float]]]] = {}
        # "Carla/Maps/Town01" -> "Town01"
        self.town = str(world.get_map().name).rsplit("/", 1)[-1]

    def _light_lanes(self, light: Any) -> tuple[list[list[int]], list[list[float]]]:
        if light.id not in self._lanes:  # static per light: query once
            wps = list(light.get_affected_lane_waypoints())
            lanes = sorted({(int(w.road_id), int(w.lane_id)) for w in wps})
            self._lanes[light.id] = ([list(x) for x in lanes], stop_points_from_carla([w.transform for w in wps]))
        return self._lanes[light.id]

    def log(self) -> dict[str, Any] | None:
        """Record the world's current state; returns the record (None if no hero vehicle exists yet)."""
        snap = self.world.get_snapshot()
        ego: dict[str, Any] | None = None
        actors = []
        for a in self.world.get_actors():
            tid = a.type_id
            if not (tid.startswith(("vehicle.", "walker.", "static.prop."))):
                continue
            rec = record_from_carla(a.id, tid, a.get_transform(), a.get_velocity(), a.bounding_box, dict(a.attributes))
            if tid.startswith("vehicle.") and a.attributes.get("role_name") == self.hero_role:
                ego = ego_record(rec, self.geometry)
            else:
                actors.append(rec)
        if ego is None:
            return None
        lights = []
        for tl in self.world.get_actors().filter("traffic.traffic_light"):
            lanes, stops = self._light_lanes(tl)
            lights.append({"id": int(tl.id), "state": str(tl.get_state()), "lanes": lanes, "stop_points": stops})
        rec = frame_record(snap.frame, snap.timestamp.elapsed_seconds, ego, actors, lights, self.town)
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        return rec

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


def read_snapshots(path: str | Path) -> list[dict[str, Any]]:
    """Read a snapshot log; a truncated last line (interrupted write) is skipped, other bad lines raise."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i >= len(lines) - 2:
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON line ({e})") from e
        if rec.get("format") != FORMAT:
            raise ValueError(f"{path}:{i + 1}: format {rec.get('format')!r}, expected {FORMAT!r}")
        out.append(rec)
    return out


def tracks_at_10hz(snapshots: list[dict[str, Any]], t0_s: float, steps: int = 41) -> dict[int, np.ndarray]:
    """Actor states resampled at t0 + 0.1 k (k < steps) -> {actor id: (steps, 5) x, y, heading, vx, vy}, NaN
    where the actor is not in a bracketing pair of snapshots (linear in x, y, v; heading unwrapped)."""
    times = np.array([s["t_s"] for s in snapshots])
    grid = t0_s + 0.1 * np.arange(steps)
    ids = sorted({a["id"] for s in snapshots for a in s["actors"]})
    out = {}
    for aid in ids:
        t, v = [], []
        for s, ts in zip(snapshots, times, strict=True):
            for a in s["actors"]:
                if a["id"] == aid:
                    t.append(ts)
                    v.append([a["x"], a["y"], a["heading"], a["vx"], a["vy"]])
        ta, va = np.asarray(t), np.asarray(v)
        va[:, 2] = np.unwrap(va[:, 2])
        res = np.full((steps, 5), np.nan)
        inside = (grid >= ta[0] - 1e-9) & (grid <= ta[-1] + 1e-9)
        for c in range(5):
            res[inside, c] = np.interp(grid[inside], ta, va[:, c])
        res[:, 2] = (res[:, 2] + math.pi) % (2 * math.pi) - math.pi
        out[aid] = res
    return out

"""World snapshots of the lite world in `carla_tools.snapshots`' format (`drive_jepa_carla_snapshot/1`), so that
lite runs feed teacher generation and training like CARLA logs: the ego, every background car and scenario actor
(walkers as PEDESTRIAN, cyclists as BICYCLE, cones as TRAFFIC_CONE, other props as BARRIER, debris as
GENERIC_OBJECT), and the traffic lights with the stop points of the lanes they control.

Frames: WORLD (x east, y north, heading CCW rad, box centres), as the format prescribes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carla_tools.lite.actors import PROP, SNAPSHOT_TYPE
from carla_tools.lite.criteria import light_numeric_id
from carla_tools.snapshots import ego_record, frame_record
from drive_jepa.frames import LINCOLN_MKZ_2020

if TYPE_CHECKING:
    from carla_tools.lite.world import LiteWorld

EGO_ID = 0
_STATE = {"r": "Red", "y": "Yellow", "g": "Green"}


def snapshot_record(world: LiteWorld) -> dict[str, Any]:
    """The world's current state as one snapshot record."""
    p = world.ego_pose
    v = world.ego.speed
    ego = ego_record({
        "id": EGO_ID, "type": "VEHICLE", "type_id": "vehicle.lincoln.mkz_2020", "x": float(p[0]), "y": float(p[1]),
        "heading": float(p[2]), "vx": v * math.cos(p[2]), "vy": v * math.sin(p[2]),
        "length": LINCOLN_MKZ_2020.length, "width": LINCOLN_MKZ_2020.width, "height": 1.5,
    })  # fmt: skip
    a = world.actors
    actors = []
    for i in range(len(a)):
        kind = int(a.kind[i])
        kind_type = SNAPSHOT_TYPE[kind]
        if kind == PROP and "cone" in a.type_ids[i]:
            kind_type = "TRAFFIC_CONE"
        h, sp = float(a.heading[i]), float(a.speed[i])
        actors.append({
            "id": int(a.ids[i]), "type": kind_type, "type_id": a.type_ids[i], "x": float(a.xy[i, 0]),
            "y": float(a.xy[i, 1]), "heading": h, "vx": sp * math.cos(h), "vy": sp * math.sin(h),
            "length": float(a.length[i]), "width": float(a.width[i]), "height": float(a.height[i]),
        })  # fmt: skip
    lights: dict[tuple[str, int], dict[str, Any]] = {}
    for lv in world.lights():  # one light per signalled approach lane, as CARLA has one per approach
        rec = lights.setdefault(
            (lv.tls_id, lv.from_lane),
            {"id": light_numeric_id(lv.tls_id) * 1000 + lv.from_lane % 1000, "state": _STATE[lv.state],
             "lanes": [], "stop_points": [[float(lv.stop_xy[0]), float(lv.stop_xy[1]), float(lv.heading)]]},
        )  # fmt: skip
        if lv.state == "r":  # any red connection of the approach makes it red (the straight one in CARLA)
            rec["state"] = "Red"
    return frame_record(world.frame, world.time, ego, actors, list(lights.values()), world.town.name)


class LiteSnapshotLogger:
    """Append one snapshot line per tick to `path` (use as the runner's `on_step`); flushed every frame, so an
    interrupted run leaves every complete line readable (`carla_tools.snapshots.read_snapshots`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across ticks

    def __call__(self, world: LiteWorld, input_data: Any = None) -> None:
        self._f.write(json.dumps(snapshot_record(world)) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


class RouteSnapshots:
    """`on_step` for a run of many routes: one `<folder>/<route id>.jsonl` per route. A route's file is started
    afresh when its first frame is logged, so a route rerun after an interruption never holds frames twice."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._route: str | None = None
        self._f: Any = None

    def __call__(self, world: LiteWorld, input_data: Any = None) -> None:
        if world.route_id != self._route or self._f is None:
            self.close()
            self._route = world.route_id
            self._f = open(self.folder / f"{world.route_id or 'route'}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self._f.write(json.dumps(snapshot_record(world)) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None

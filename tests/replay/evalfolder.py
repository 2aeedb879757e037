"""A tiny `drive-jepa eval` folder with real recordings written by `RecordingWriter` (no adapter, no CARLA)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agent.recording import RecordingConfig, RecordingWriter

DT = 0.1
SPEED = 5.0  # m/s along WORLD x, at WORLD y = Y
Y = 2.0
T0 = 3.0  # leaderboard timestamp of the first step
COLLISION_STEP = 12
SAVE = "{key}_Town01_Scenario_0_01_01_00_00_00"


def frame_value(i: int) -> int:
    """Grey level of step i's camera frame: the thumbnail of an infraction tells which frame it shows."""
    return 20 + 7 * i  # < 256 for the 30 steps of the tests


def write_recording(path: Path, steps: int, close: bool = True) -> Path:
    """A straight drive along WORLD x at SPEED with a flat grey frame per step; unclosed = an interrupted attempt."""
    route = np.array([[0.0, Y], [200.0, Y]])
    meta = {
        "save_name": path.parent.name,
        "camera": {"x": 0.8, "y": 0.0, "z": 1.6, "pitch": 0.0, "yaw": 0.0, "roll": 0.0, "fov": 70.0,
                   "width": 384, "height": 216},
        "rear_axle_to_center": 1.4,
        "route": {"world": route, "options": [4, 4]},
    }  # fmt: skip
    w = RecordingWriter(path, meta, RecordingConfig(image_width=0))
    for i in range(steps):
        x = SPEED * DT * i
        header = {
            "t": T0 + DT * i,
            "ego": {"center": [x, Y, 0.0], "rear_axle": [x - 1.4, Y, 0.0], "speed": SPEED, "yaw_rate": 0.0},
            "route": {"target_world": [x + 10, Y], "target_ego": [11.4, 0.0], "command": 4, "remaining_m": 100.0,
                      "done": False},
            "control": {"throttle": 0.5, "steer": 0.0, "brake": 0.0, "reason": ""},
            "selected": 0,
        }  # fmt: skip
        props = np.zeros((2, 4, 3), np.float32)
        props[:, :, 0] = np.arange(1, 5)
        arrays = {"proposals": props, "scores": np.array([0.9, 0.2], np.float32), "plan": props[0]}
        w.step(header, arrays, np.full((216, 384, 3), frame_value(i), np.uint8))
    if close:
        w.close({"ticks": 2 * steps, "last_t": T0 + DT * (steps - 1)})
    else:
        w.flush()
    return path


def collision_message(step: int) -> str:
    x, y = SPEED * DT * step, -Y  # CARLA = WORLD with y flipped
    return f"Agent collided against object with type=vehicle.audi.tt and id=42 at (x={x:.3f}, y={y:.3f}, z=0.100)"


def _record(key: str, status: str, infractions: dict[str, list[str]]) -> dict[str, object]:
    return {
        "route_id": key,
        "save_name": SAVE.format(key=key),
        "status": status,
        "num_infractions": sum(len(v) for v in infractions.values()),
        "infractions": infractions,
        "meta": {"route_length": 200.0, "duration_game": 6.0},
        "scores": {"score_route": 40.0, "score_penalty": 0.5, "score_composed": 20.0},
    }


def make_eval_folder(root: Path, steps: int = 30) -> Path:
    """RouteScenario_3 (complete recording, a located collision + an unlocated lane infraction), RouteScenario_4
    (partial recording: the attempt was interrupted; cut mid-record) and RouteScenario_5 (a record, no recording)."""
    (root / "records").mkdir(parents=True)
    routes = {
        "RouteScenario_3_rep0": _record(
            "RouteScenario_3_rep0",
            "Failed",
            {
                "collisions_vehicle": [collision_message(COLLISION_STEP)],
                "outside_route_lanes": ["Agent went outside its route lanes for about 4.2 meters"],
                "min_speed_infractions": ["Average speed is 40% of the surrounding traffic's one"],
            },
        ),
        "RouteScenario_4_rep0": _record("RouteScenario_4_rep0", "Failed - Agent crashed", {}),
        "RouteScenario_5_rep0": _record("RouteScenario_5_rep0", "Completed", {}),
    }
    for key, rec in routes.items():
        doc = {"key": key, "state": "done", "record": rec, "attempts": []}
        (root / "records" / f"{key}.json").write_text(json.dumps(doc))
    agent = root / "agent"
    write_recording(agent / SAVE.format(key="RouteScenario_3_rep0") / "replay.djr", steps)
    partial = write_recording(agent / SAVE.format(key="RouteScenario_4_rep0") / "replay.djr", 8, close=False)
    with partial.open("r+b") as f:  # the crash cut the last record short
        f.truncate(partial.stat().st_size - 100)
    return root

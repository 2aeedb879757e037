"""What the lite world hands an agent's recording about the world around the ego (never the policy's input).

`world_view(world)` → arrays named as the recording stores them (`agent.recording.WORLD_ARRAYS`): every actor within
`radius` m of the ego (id, kind, box, speed) and the signalled approaches within that radius (stop line, state,
whether it governs the ego's lane). WORLD frame (right-handed, x east, y north, heading CCW rad), metres, m/s.
Kind codes are `carla_tools.lite.actors`' (vehicle, pedestrian, bicycle, prop, emergency, debris), the order of
`agent.recording.WORLD_KINDS`.
"""

from __future__ import annotations

import numpy as np

from carla_tools.lite.criteria import light_numeric_id
from carla_tools.lite.world import LiteWorld

RADIUS_M = 60.0
LIGHT_STATES = {"r": 0, "y": 1, "g": 2}  # agent.recording.LIGHT_STATES order


def world_view(world: LiteWorld, radius: float = RADIUS_M) -> dict[str, np.ndarray]:
    """Actors and lights within `radius` of the ego's box centre, as recording arrays."""
    ego = world.ego_pose
    a = world.actors
    near = np.hypot(a.xy[:, 0] - ego[0], a.xy[:, 1] - ego[1]) <= radius if len(a) else np.zeros(0, bool)
    idx = np.nonzero(near)[0]
    boxes = np.stack(
        [a.xy[idx, 0], a.xy[idx, 1], a.heading[idx], a.length[idx], a.width[idx], a.speed[idx]], -1
    ).astype(np.float32) if len(idx) else np.zeros((0, 6), np.float32)  # fmt: skip
    lights = world.lights(radius=radius)
    ego_lane = int(world.town.nearest_lanes(ego[None, :2])[0][0]) if lights else -1
    return {
        "actor_ids": np.asarray(a.ids[idx], np.int32),
        "actor_kind": np.asarray(a.kind[idx], np.int8),
        "actor_boxes": boxes,  # x, y, heading, length, width, speed
        "lights": np.array(
            [[lv.stop_xy[0], lv.stop_xy[1], lv.heading, LIGHT_STATES.get(lv.state, 2), lv.width] for lv in lights],
            np.float32,
        ).reshape(-1, 5),  # stop-line centre x, y, lane heading, state (0 red, 1 yellow, 2 green), lane width
        "light_governs_ego": np.array([ego_lane in (lv.from_lane, lv.via_lane) for lv in lights], bool),
        "light_ids": np.array([light_numeric_id(lv.tls_id) for lv in lights], np.int32),  # as the messages name them
    }

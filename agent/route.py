"""Route following: the next target point and the 4-way driving command from the leaderboard's global plan.

RoadOption values (CARLA's `agents.navigation.local_planner.RoadOption`): VOID −1, LEFT 1, RIGHT 2, STRAIGHT 3,
LANEFOLLOW 4, CHANGELANELEFT 5, CHANGELANERIGHT 6. The model's command is NAVSIM's one-hot of 4:
(left, straight, right, unknown). Junction handling: a turn (LEFT/RIGHT/STRAIGHT at a junction) is announced as
soon as its route point is within `command_lookahead_m`, and kept until that point is passed, so the model turns
at the junction rather than after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drive_jepa import frames as F

VOID, LEFT, RIGHT, STRAIGHT, LANEFOLLOW, CHANGELANELEFT, CHANGELANERIGHT = -1, 1, 2, 3, 4, 5, 6
# RoadOption -> index into NAVSIM's (left, straight, right, unknown)
_TO_NAVSIM = {LEFT: 0, CHANGELANELEFT: 0, STRAIGHT: 1, LANEFOLLOW: 1, RIGHT: 2, CHANGELANERIGHT: 2, VOID: 3}


def navsim_command(option: int) -> np.ndarray:
    """One-hot (4,) float32 of a RoadOption value; unknown values map to 'unknown'."""
    out = np.zeros(4, dtype=np.float32)
    out[_TO_NAVSIM.get(int(option), 3)] = 1.0
    return out


@dataclass
class RouteConfig:
    reached_distance_m: float = 7.5  # a route point counts as passed within this distance (or once behind)
    command_lookahead_m: float = 20.0
    target_min_distance_m: float = 3.0  # the target point is the first remaining point farther than this


@dataclass
class RouteState:
    target_world: np.ndarray  # (2,) WORLD
    target_ego: np.ndarray  # (2,) EGO_REAR_AXLE
    command: int  # RoadOption value given to the model
    command_onehot: np.ndarray  # (4,)
    remaining_m: float
    done: bool


class RoutePlanner:
    def __init__(self, cfg: RouteConfig) -> None:
        self.cfg = cfg
        self.points = np.zeros((0, 2))
        self.options = np.zeros(0, dtype=np.int64)
        self.index = 0

    def set_route(self, world_xy: np.ndarray, options: np.ndarray) -> None:
        """Route points in WORLD (right-handed) and their RoadOption values."""
        if len(world_xy) == 0:
            raise ValueError("empty route")
        self.points = np.asarray(world_xy, dtype=np.float64)
        self.options = np.asarray(options, dtype=np.int64)
        self.index = 0

    def update(self, ego_rear_axle_world: np.ndarray) -> RouteState:
        if len(self.points) == 0:
            raise ValueError("route not set: set_global_plan was not called")
        pos = ego_rear_axle_world[:2]
        # pass points that are close, or behind the ego while the next one is closer
        while self.index < len(self.points) - 1:
            d = np.linalg.norm(self.points[self.index] - pos)
            local = F.points_to_local(self.points[self.index], ego_rear_axle_world)
            nxt = np.linalg.norm(self.points[self.index + 1] - pos)
            if d < self.cfg.reached_distance_m or (local[0] < 0 and nxt < d + 1e-9):
                self.index += 1
            else:
                break
        rest = self.points[self.index :]
        dists = np.linalg.norm(rest - pos, axis=1)
        far = np.nonzero(dists > self.cfg.target_min_distance_m)[0]
        target = rest[far[0]] if len(far) else rest[-1]
        seg = np.diff(rest, axis=0)
        remaining = float(dists[0] + np.hypot(seg[:, 0], seg[:, 1]).sum()) if len(rest) else 0.0
        # command: the first non-LANEFOLLOW option within the lookahead along the route, else the current one
        along = dists[0] + np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        opts = self.options[self.index :]
        command = int(opts[0])
        near = np.nonzero((along <= self.cfg.command_lookahead_m) & (opts != LANEFOLLOW) & (opts != VOID))[0]
        if len(near):
            command = int(opts[near[0]])
        elif command == VOID:
            command = LANEFOLLOW
        done = self.index == len(self.points) - 1 and dists[-1] < self.cfg.reached_distance_m
        return RouteState(
            target_world=target,
            target_ego=F.points_to_local(target, ego_rear_axle_world),
            command=command,
            command_onehot=navsim_command(command),
            remaining_m=remaining,
            done=bool(done),
        )

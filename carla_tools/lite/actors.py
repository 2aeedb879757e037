"""The actors of the lite world as one set of arrays: SUMO background cars and scenario actors alike.

Every actor is a box in the WORLD frame (centre xy, heading CCW rad, length, width, height in metres, speed m/s
along its heading) with a kind (what it is for the criteria, the renderer, the expert and the snapshots) and a
CARLA-like blueprint id (what the leaderboard's messages name, e.g. ``walker.pedestrian.0001``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# kinds (int codes; an array of them travels with the boxes)
VEHICLE = 0  # cars and trucks (background, parked, accident, cut-in, flows)
PEDESTRIAN = 1  # walkers
BICYCLE = 2  # cyclists (a vehicle for the collision test, as in CARLA: type vehicle.*)
PROP = 3  # static props that block: cones, warning boards, barriers, vending machines
EMERGENCY = 4  # police / ambulance / fire truck with sirens (a vehicle for the collision test)
DEBRIS = 5  # flat debris on the road (ControlLoss): drawn, never collided with

KIND_NAMES = {VEHICLE: "vehicle", PEDESTRIAN: "pedestrian", BICYCLE: "bicycle", PROP: "prop",
              EMERGENCY: "emergency", DEBRIS: "debris"}  # fmt: skip
# the CollisionTest's results key per kind (scenario_runner: type_id walker.* / vehicle.* / static.*)
COLLISION_KEY = {VEHICLE: "collisions_vehicle", BICYCLE: "collisions_vehicle", EMERGENCY: "collisions_vehicle",
                 PEDESTRIAN: "collisions_pedestrian", PROP: "collisions_layout"}  # fmt: skip
# nuPlan tracked-object type per kind (world snapshots / the scorer)
SNAPSHOT_TYPE = {VEHICLE: "VEHICLE", EMERGENCY: "VEHICLE", BICYCLE: "BICYCLE", PEDESTRIAN: "PEDESTRIAN",
                 PROP: "BARRIER", DEBRIS: "GENERIC_OBJECT"}  # fmt: skip
BACKGROUND_TYPE = "vehicle.lite.sumo"  # type_id reported for SUMO background vehicles


@dataclass(frozen=True)
class Actors:
    """Actors near the ego. xy (N, 2) box centres and heading (N,) in WORLD; speed m/s; length / width /
    height metres; numeric ids (stable per actor within a route); kind (N,) codes above; type_ids (N,)
    blueprint ids. `kind`, `height` and `type_ids` default to background cars."""

    ids: np.ndarray
    xy: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    length: np.ndarray
    width: np.ndarray
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    height: np.ndarray = field(default_factory=lambda: np.zeros(0))
    type_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.kind) != n:
            object.__setattr__(self, "kind", np.full(n, VEHICLE, np.int8))
        if len(self.height) != n:
            object.__setattr__(self, "height", np.full(n, 1.5))
        if len(self.type_ids) != n:
            object.__setattr__(self, "type_ids", (BACKGROUND_TYPE,) * n)

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def empty() -> Actors:
        z = np.zeros(0)
        return Actors(np.zeros(0, np.int64), np.zeros((0, 2)), z, z, z, z)

    def select(self, mask: np.ndarray) -> Actors:
        idx = np.nonzero(np.asarray(mask))[0]
        return Actors(
            self.ids[idx], self.xy[idx], self.heading[idx], self.speed[idx], self.length[idx], self.width[idx],
            self.kind[idx], self.height[idx], tuple(self.type_ids[i] for i in idx),
        )  # fmt: skip

    @staticmethod
    def concat(parts: list[Actors]) -> Actors:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Actors.empty()
        if len(parts) == 1:
            return parts[0]
        return Actors(
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.xy for p in parts]),
            np.concatenate([p.heading for p in parts]),
            np.concatenate([p.speed for p in parts]),
            np.concatenate([p.length for p in parts]),
            np.concatenate([p.width for p in parts]),
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.height for p in parts]),
            tuple(t for p in parts for t in p.type_ids),
        )

    def boxes(self) -> np.ndarray:
        """(N, 5) x, y, heading, length, width."""
        return np.stack([self.xy[:, 0], self.xy[:, 1], self.heading, self.length, self.width], -1).reshape(-1, 5)

    def solid(self) -> Actors:
        """The actors one can collide with (everything but flat debris)."""
        return self.select(self.kind != DEBRIS) if (self.kind == DEBRIS).any() else self

"""The world around the ego in CARLA, for recordings only (never the policy): the leaderboard process's actors.

`carla_world_observer()` gives the leaderboard agent (`set_world_observer`) a callable that reads, at each recorded
step, every vehicle, walker and static prop within 60 m of the hero and the traffic lights near it from
scenario_runner's `CarlaDataProvider` (the evaluator's own cache of the world, ticked by the leaderboard), in the
arrays of `agent.recording.WORLD_ARRAYS`. `world_arrays(...)` is the conversion (CARLA's left-handed frame, yaw in
degrees → WORLD), written over plain values so it runs with the real `carla` value types and no server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.recording import LIGHT_STATES, WORLD_KINDS
from drive_jepa import frames as F

RADIUS_M = 60.0
# blueprint families (CARLA 0.9.15 catalogue) that are not ordinary cars for the criteria's purposes
BICYCLES = ("vehicle.bh.crossbike", "vehicle.diamondback.century", "vehicle.gazelle.omafiets")
EMERGENCY = ("vehicle.dodge.charger_police", "vehicle.ford.ambulance", "vehicle.carlamotors.firetruck")


def kind_of(type_id: str) -> int:
    """A CARLA blueprint id → index into WORLD_KINDS."""
    if type_id.startswith("walker."):
        return WORLD_KINDS.index("pedestrian")
    if type_id.startswith(BICYCLES):
        return WORLD_KINDS.index("bicycle")
    if type_id.startswith(EMERGENCY):
        return WORLD_KINDS.index("emergency")
    if type_id.startswith("static."):
        return WORLD_KINDS.index("prop")
    return WORLD_KINDS.index("vehicle")


@dataclass
class CarlaActorState:
    """One actor as CARLA reports it: its transform (location m, rotation deg), bounding-box extent (half sizes, m)
    and velocity (m/s) — `carla.Transform`, `carla.Vector3D` or anything with the same attributes."""

    actor_id: int
    type_id: str
    transform: Any
    extent: Any
    velocity: Any


@dataclass
class CarlaLightState:
    """One traffic light: its first stop waypoint's transform, its state name ('Red', 'Yellow', 'Green', 'Off'),
    the lane width there, whether it is the light affecting the hero, and its actor id."""

    transform: Any
    state: str
    lane_width: float
    governs_ego: bool
    light_id: int = -1


def world_arrays(
    ego_location_xy: Sequence[float],
    actors: Sequence[CarlaActorState],
    lights: Sequence[CarlaLightState],
    radius: float = RADIUS_M,
) -> dict[str, np.ndarray]:
    """CARLA actors and lights → the recording's world arrays (WORLD frame), those within `radius` of the ego
    (`ego_location_xy`: CARLA x, y of the hero)."""
    ex, ey = float(ego_location_xy[0]), float(ego_location_xy[1])

    def near_pose(transform: Any) -> tuple[float, float, float] | None:
        """WORLD (x, y, heading) of a CARLA transform within `radius` of the ego, else None."""
        loc = transform.location
        if math.hypot(loc.x - ex, loc.y - ey) > radius:
            return None
        x, y, h = F.carla_to_world(np.array([loc.x, loc.y, transform.rotation.yaw], np.float64))
        return float(x), float(y), float(h)

    rows, ids, kinds = [], [], []
    for a in actors:
        pose = near_pose(a.transform)
        if pose is None:
            continue
        x, y, h = pose
        speed = math.sqrt(a.velocity.x**2 + a.velocity.y**2 + a.velocity.z**2)
        rows.append([x, y, h, 2 * a.extent.x, 2 * a.extent.y, speed])
        ids.append(int(a.actor_id))
        kinds.append(kind_of(a.type_id))
    light_rows, governs, light_ids = [], [], []
    for lt in lights:
        pose = near_pose(lt.transform)
        if pose is None:
            continue
        x, y, h = pose
        name = {"Red": "red", "Yellow": "yellow"}.get(str(lt.state), "green")
        light_rows.append([x, y, h, LIGHT_STATES.index(name), lt.lane_width])
        governs.append(bool(lt.governs_ego))
        light_ids.append(int(lt.light_id))
    return {
        "actor_ids": np.asarray(ids, np.int32),
        "actor_kind": np.asarray(kinds, np.int8),
        "actor_boxes": np.asarray(rows, np.float32).reshape(-1, 6),
        "lights": np.asarray(light_rows, np.float32).reshape(-1, 5),
        "light_governs_ego": np.asarray(governs, bool),
        "light_ids": np.asarray(light_ids, np.int32),
    }


def carla_world_observer(radius: float = RADIUS_M) -> Callable[[], dict[str, np.ndarray]] | None:
    """A world observer over scenario_runner's CarlaDataProvider, or None outside a leaderboard process (no
    scenario_runner importable, or no world/hero yet: the lite world gives its own observer instead)."""
    try:
        from srunner.scenariomanager.carla_data_provider import CarlaDataProvider
    except ImportError:
        return None

    def observe() -> dict[str, np.ndarray]:
        hero = CarlaDataProvider.get_hero_actor()
        world = CarlaDataProvider.get_world()
        if hero is None or world is None:
            return world_arrays((0.0, 0.0), [], [], radius)
        here = CarlaDataProvider.get_location(hero) or hero.get_location()
        everything = CarlaDataProvider.get_all_actors()
        actors = [
            CarlaActorState(a.id, a.type_id, a.get_transform(), a.bounding_box.extent, a.get_velocity())
            for a in everything
            if a.id != hero.id and a.type_id.startswith(("vehicle.", "walker.", "static.prop"))
            and a.get_location().distance(here) <= radius
        ]  # fmt: skip
        own = hero.get_traffic_light()
        lights = []
        for tl in everything.filter("traffic.traffic_light*"):
            if tl.get_location().distance(here) > radius + 20:
                continue
            for wp in tl.get_stop_waypoints()[:1]:
                lights.append(
                    CarlaLightState(wp.transform, str(tl.get_state()), float(wp.lane_width),
                                    own is not None and tl.id == own.id, int(tl.id))
                )  # fmt: skip
        return world_arrays((here.x, here.y), actors, lights, radius)

    return observe

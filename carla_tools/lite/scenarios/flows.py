"""Streams of scenario cars along a path: scenario_runner's ActorFlow (constant velocity, ignoring everyone
until the flow's first collision) and OppositeActorFlow (cars that keep their distance to what is ahead of
them on their path, the ego included)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from carla_tools.lite.criteria import boxes_overlap
from carla_tools.lite.scenarios.base import LiteScenario, Polyline, ScenarioActor
from drive_jepa.frames import LINCOLN_MKZ_2020

ACCEL = 3.0  # m/s², flow cars speeding up
BRAKE = 6.0  # m/s², flow cars braking for what is ahead
PULL_OVER = 0.9  # m a reactive (oncoming) car edges to its right while the ego blocks its lane
YIELD_BRAKE = 8.0  # m/s², a flow car braking for an ego already on its path (an emergency stop)


class Flow:
    """Cars spawned at the start of `path` every U[gap] m, driven to its end at `speed` m/s and removed there.

    reactive=False: constant velocity (ActorFlow) that ignores the ego until one of its cars touches it; from
    then on the whole flow is reactive. Lite simplification: a car does give way to an ego that is already on
    its path farther ahead than the car's stopping distance (emergency braking at 8 m/s²), and cars never
    drive through the car ahead of them in their own flow. reactive=True: each car keeps a braking distance of
    `margin` + 1.6 s × its speed to the ego and to the car ahead (OppositeActorFlow's BasicAgents); held up by
    the ego in its lane, it edges up to 0.9 m to its right (lite: so that a half-finished overtaking can end)."""

    def __init__(
        self,
        sc: LiteScenario,
        path: Polyline,
        speed: float,
        gap: tuple[float, float],
        prefill: bool = True,
        reactive: bool = False,
        make: Callable[[], ScenarioActor] | None = None,
        margin: float = 6.0,
    ) -> None:
        self.sc = sc
        self.path = path
        self.speed = speed
        self.gap_range = gap
        self.reactive = reactive
        self.margin = margin
        self.make = make or (lambda: sc.ctx.car(blocks_traffic=True))
        self.cars: list[ScenarioActor] = []
        self._yielding: set[str] = set()
        self.active = True
        self._next_gap = self._draw()
        if prefill:
            s = path.length - 1.0
            while s > 0.0:
                self._spawn(s)
                s -= self._draw()

    def _draw(self) -> float:
        lo, hi = self.gap_range
        return float(self.sc.ctx.rng.uniform(lo, hi))

    def _spawn(self, s: float) -> None:
        car = self.sc.add(self.make())
        car.path, car.s, car.speed = self.path, s, self.speed
        car.follow(0.0)
        self.cars.append(car)

    def stop(self) -> None:
        """No more cars (the scenario ended): remove them all."""
        self.active = False
        for c in self.cars:
            c.alive = False
        self.cars = []

    def tick(self, dt: float) -> None:
        if not self.active:
            return
        if not self.cars or min(c.s for c in self.cars) > self._next_gap:
            self._spawn(0.0)
            self._next_gap = self._draw()
        world = self.sc.ctx.world
        pose = world.ego_pose
        ego_box = np.array([pose[0], pose[1], pose[2], LINCOLN_MKZ_2020.length, LINCOLN_MKZ_2020.width])
        boxes = np.array([[c.x, c.y, c.heading, c.length, c.width] for c in self.cars])
        if not self.reactive and boxes_overlap(ego_box, boxes).any():
            self.reactive = True  # the flow's first collision: it stops ignoring others
        order = sorted(self.cars, key=lambda c: -c.s)
        ego_s, ego_lat = self.path.project(pose[:2])
        lead: ScenarioActor | None = None
        for car in order:
            gaps = []
            if lead is not None:  # cars of a flow never drive through each other
                gaps.append(lead.s - car.s - (lead.length + car.length) / 2)
            # reactive cars brake for an ego whose box is in their way; yielding ones for an ego near their path
            # (an ego waiting beside the path does not stop the flow; one moving into it does)
            margin = 0.2 if self.reactive or abs(world.ego.speed) < 1.0 else 2.0
            on_path = ego_lat < (car.width + LINCOLN_MKZ_2020.width) / 2 + margin and ego_s > car.s
            ego_gap = ego_s - car.s - (car.length + LINCOLN_MKZ_2020.length) / 2
            stopping = car.speed**2 / (2 * YIELD_BRAKE)
            if on_path and (self.reactive or car.name in self._yielding or ego_gap - 2.0 >= stopping):
                # an ego already on the car's path far enough ahead for it to stop is given way; one that cuts
                # in closer is hit (the flow ignores it), after which the whole flow is reactive
                self._yielding.add(car.name)
                gaps.append(ego_gap)
            else:
                self._yielding.discard(car.name)
            v_des = self.speed
            if gaps:
                headway = 0.8 * car.speed if self.reactive else 0.0
                v_des = min(v_des, math.sqrt(2 * BRAKE * max(min(gaps) - 2.0 - headway, 0.0)))
            brake = YIELD_BRAKE if car.name in self._yielding else BRAKE
            car.speed = max(float(np.clip(v_des, car.speed - brake * dt, car.speed + ACCEL * dt)), 0.0)
            if self.reactive:  # held up by the ego in its lane, a car edges over to its right (and back later)
                held = car.name in self._yielding and car.speed < 2.0
                car.lateral = float(np.clip(car.lateral + (0.5 if held else -0.5) * dt, 0.0, PULL_OVER))
            if not car.follow(car.speed * dt):
                car.alive = False
            lead = car
        self.cars = [c for c in self.cars if c.alive]

"""Streams of scenario cars along a path: scenario_runner's ActorFlow (constant velocity, ignoring everyone
until the flow's first collision) and OppositeActorFlow (cars that keep their distance to what is ahead of
them on their path, the ego included)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from carla_tools.lite.criteria import boxes_overlap
from carla_tools.lite.scenarios.base import LiteScenario, Polyline, ScenarioActor, right_of
from drive_jepa.frames import LINCOLN_MKZ_2020

ACCEL = 3.0  # m/s², flow cars speeding up
BRAKE = 6.0  # m/s², flow cars braking for what is ahead


class Flow:
    """Cars spawned at the start of `path` every U[gap] m, driven to its end at `speed` m/s and removed there.

    reactive=False: constant velocity, ignoring every vehicle (ActorFlow) until one of its cars touches the
    ego; from then on the whole flow is reactive. reactive=True: each car keeps a braking distance of
    `margin` + 1.6 s × its speed to the ego and to the car ahead (OppositeActorFlow's BasicAgents)."""

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
        lead_s: float | None = None
        for car in order:
            v_des = self.speed
            if self.reactive:
                gaps = []
                if lead_s is not None:
                    gaps.append(lead_s - car.s - car.length)
                if ego_lat < 2.2 and ego_s > car.s:
                    gaps.append(ego_s - car.s - (car.length + LINCOLN_MKZ_2020.length) / 2)
                if gaps:
                    gap = min(gaps) - 2.0
                    v_des = min(v_des, math.sqrt(max(0.0, 2 * BRAKE * max(gap - 1.6 * car.speed * 0.5, 0.0))))
                car.speed = float(np.clip(v_des, car.speed - BRAKE * dt, car.speed + ACCEL * dt))
                car.speed = max(car.speed, 0.0)
            else:
                car.speed = v_des
            if not car.follow(car.speed * dt):
                car.alive = False
            lead_s = car.s
        self.cars = [c for c in self.cars if c.alive]


def lane_shift(path: Polyline, offset: float) -> Polyline:
    """Shift used for placements on the neighbouring lane (positive = right)."""
    return path.shifted(offset)


__all__ = ["Flow", "lane_shift", "right_of"]

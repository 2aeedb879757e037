"""Pedestrians crossing the road (Bench2Drive's emergency-brake ability; `object_crash_vehicle.py`,
`pedestrian_crossing.py`): DynamicObjectCrossing, ParkingCrossingPedestrian, PedestrianCrossing.

Walkers are hidden until the route trigger, start on their own time-to-arrival / distance trigger, walk
straight at a fixed speed without ever reacting, and are removed after their walk.
"""

from __future__ import annotations

import math

import numpy as np

from carla_tools.lite.scenarios.base import SIZES, LiteScenario, ScenarioActor, ScenarioBuildError, right_of, unit
from carla_tools.lite.scenarios.engine import register

END_DRIVE = 40.0  # m driven after the walk that ends the scenario


class _Crossing(LiteScenario):
    walkers: list[ScenarioActor]
    point: np.ndarray
    walk_left: list[float]
    walk_speed: list[float]
    delays: list[float]
    tta = 2.1
    trigger_dist = 6.0

    def _walker(self, xy: object, heading: float) -> ScenarioActor:
        w = self.ctx.walker(visible=False)
        w.place(xy, heading)  # type: ignore[arg-type]
        return self.add(w)

    def start(self) -> None:
        for w in self.walkers:
            w.visible = True
        self.t_walk: float | None = None
        self.s_walk_done: float | None = None

    def tick(self, dt: float) -> bool:
        ctx = self.ctx
        if self.t_walk is None:
            if ctx.tta_or_distance(self.point, self.tta, self.trigger_dist):
                self.t_walk = self.time
            return False
        for k, w in enumerate(self.walkers):
            if not w.alive or self.time - self.t_walk < self.delays[k]:
                continue
            w.speed = self.walk_speed[k]
            step = min(w.speed * dt, self.walk_left[k])
            w.speed = step / dt
            w.walk(dt)
            self.walk_left[k] -= step
            if self.walk_left[k] <= 1e-6:
                w.alive = False  # destroyed after the walk
        if self.s_walk_done is None and not any(w.alive for w in self.walkers):
            self.s_walk_done = ctx.s_ego
        return self.s_walk_done is not None and ctx.s_ego - self.s_walk_done >= END_DRIVE


@register
class DynamicObjectCrossing(_Crossing):
    """A walker steps out from behind a blocker on the sidewalk `distance` m ahead and crosses at 2 m/s."""

    type_names = ("DynamicObjectCrossing",)

    def build(self) -> None:
        ctx = self.ctx
        side = self.side
        angle, extra = self.crossing()
        s_c = min(self.s_trigger + self.value("distance", 12.0), ctx.route.length - 1.0)
        self.point, h = ctx.route_pose(s_c)
        model = self.text("blocker_model", "static.prop.vendingmachine")
        size = next((k for k in ("container", "advertisement", "vendingmachine") if k in model), "vendingmachine")
        off = ctx.sidewalk_offset(s_c, side)
        blocker = ctx.prop(model, size)
        blocker.place(self.point + off * right_of(h), h)  # its long side along the sidewalk
        self.add(blocker)
        ahead = SIZES[size][0] / 2 + 0.5
        pos = self.point + ahead * unit(h) + off * right_of(h)
        heading = h + side * (math.pi / 2 + math.radians(angle))
        self.walkers = [self._walker(pos, heading)]
        self.walk_left = [2.0 * float(math.hypot(*(pos - self.point)))]
        self.walk_speed, self.delays = [2.0], [0.0]
        self.tta = 2.1 + extra


@register
class ParkingCrossingPedestrian(_Crossing):
    """A walker crosses 8 m at 2 m/s from in front of a car parked one lane to the side."""

    type_names = ("ParkingCrossingPedestrian",)

    def build(self) -> None:
        ctx = self.ctx
        side = self.side
        angle, extra = self.crossing()
        s_car = min(self.s_trigger + self.value("distance", 12.0), ctx.route.length - 8.0)
        p, h = ctx.route_pose(s_car)
        w = ctx.lane_width(s_car)
        car = ctx.car(blocks_traffic=True)
        car.place(p + side * w * right_of(h), h)
        self.add(car)
        s_w = s_car + car.length / 2 + 0.5
        self.point, hw = ctx.route_pose(s_w)
        pos = self.point + side * w * right_of(hw)
        self.walkers = [self._walker(pos, hw + side * (math.pi / 2 + math.radians(angle)))]
        self.walk_left, self.walk_speed, self.delays = [8.0], [2.0], [0.0]
        self.tta = 2.15 + extra


@register
class PedestrianCrossing(_Crossing):
    """Three walkers cross from the right sidewalk at the last route point before the next junction, each
    after a random wait of up to 1.5 s, at 1.3–2.0 m/s."""

    type_names = ("PedestrianCrossing",)
    tta = 3.5
    trigger_dist = 12.0

    def build(self) -> None:
        ctx = self.ctx
        j = ctx.junction_start(self.s_trigger)
        if j is None:
            raise ScenarioBuildError("no junction ahead of the trigger")
        s_c = max(j - 1.0, self.s_trigger)
        self.point, h = ctx.route_pose(s_c)
        base = self.point + ctx.sidewalk_offset(s_c, 1) * right_of(h)
        self.walkers, self.walk_left, self.walk_speed, self.delays = [], [], [], []
        for fwd, right in ((0.4, 1.5), (1.0, 2.5), (1.6, 0.5)):
            pos = base + fwd * unit(h) + right * right_of(h)
            self.walkers.append(self._walker(pos, h + math.pi / 2))
            self.walk_left.append(2.3 * float(math.hypot(*(pos - self.point))))
            self.delays.append(float(ctx.rng.uniform(0.0, 1.5)))
            self.walk_speed.append(float(ctx.rng.uniform(1.3, 2.0)))

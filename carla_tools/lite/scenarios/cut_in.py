"""Cars that cut into the ego lane or a parking ego that must merge out (`parking_cut_in.py`,
`cut_in_with_static_vehicle.py`, `parking_exit.py`): ParkingCutIn, StaticCutIn, ParkingExit.

Lite cut-ins: the adversary moves sideways at a fixed 2 m/s until it is on the ego lane's centre while
driving forward (scenario_runner's BasicAgent lane change from standstill is abrupt too), then follows the ego
lane at its target speed.
"""

from __future__ import annotations

import math

from carla_tools.lite.scenarios.base import LiteScenario, ScenarioActor, right_of
from carla_tools.lite.scenarios.engine import register

LATERAL_SPEED = 2.0  # m/s while cutting in
ACCEL = 1.5  # m/s², a cut-in car pulling out from standstill


class _CutIn(LiteScenario):
    """Shared motion: `car` on the route path with a lateral offset that shrinks to 0, speeding up to
    `target` m/s, for `drive` m; then the scenario's actors are removed."""

    car: ScenarioActor
    target = 20 / 3.6
    drive = 30.0
    driven = 0.0

    def move(self, dt: float) -> bool:
        c = self.car
        c.speed = min(self.target, c.speed + ACCEL * dt)
        if c.lateral:
            step = math.copysign(min(abs(c.lateral), LATERAL_SPEED * dt), c.lateral)
            c.lateral -= step
        ok = c.follow(c.speed * dt)
        if c.lateral:  # heading across the lane while moving sideways
            c.heading += math.atan2(math.copysign(LATERAL_SPEED, c.lateral), max(c.speed, 0.5))
        self.driven += c.speed * dt
        return ok and self.driven < self.drive


@register
class ParkingCutIn(_CutIn):
    """A car parked in the side lane 35 m ahead (behind a parked blocker at 28 m) merges into the ego lane at
    20 km/h when the ego is 2.35 s or 10 m away, drives 30 m, and both cars are removed."""

    type_names = ("ParkingCutIn",)

    def build(self) -> None:
        ctx = self.ctx
        side = self.side
        w = ctx.lane_width(self.s_trigger)
        self.off = side * (w + w / 8)
        for d in (28.0, 35.0):
            car = ctx.car(blocks_traffic=True)
            car.path, car.s, car.lateral = ctx.path, self.s_trigger + d, self.off
            car.follow(0.0)
            self.add(car)
        self.car = self.actors[-1]
        self.point = ctx.route_pose(self.car.s)[0]
        self.moving = False
        self.driven = 0.0

    def tick(self, dt: float) -> bool:
        if not self.moving:
            self.moving = self.ctx.tta_or_distance(self.point, 2.35, 10.0)
            return False
        return not self.move(dt)


@register
class StaticCutIn(_CutIn):
    """A row of parked cars in the side lane; the one abreast of C = trigger + distance + 22 m cuts in when the
    ego is 2.7 s or 15 m from C (swerving at once from standstill, as scenario_runner's CutIn does with a
    parked car), then speeds up to 60 km/h along the ego lane for 70 m."""

    type_names = ("StaticCutIn",)
    target = 60 / 3.6
    drive = 70.0

    def build(self) -> None:
        ctx = self.ctx
        side = self.side
        s0 = self.s_trigger + self.value("distance", 100.0)
        nb = ctx.neighbour(s0, side, same_direction=True)
        w = ctx.lane_width(s0)
        off = nb[0] if nb is not None else side * (w + w / 8)
        for d in (0.0, 11.0, 22.0, 33.0, 44.0, 55.0):
            s = s0 + d
            car = ctx.car(blocks_traffic=True, visible=False)
            car.path, car.s, car.lateral = ctx.path, s, off
            car.follow(0.0)
            self.add(car)
        self.car = self.actors[2]
        self.point = ctx.route_pose(self.car.s)[0]
        self.moving = False
        self.driven = 0.0

    def start(self) -> None:
        for a in self.actors:
            a.visible = True

    def tick(self, dt: float) -> bool:
        if not self.moving:
            if self.ctx.tta_or_distance(self.point, 2.7, 15.0):
                self.moving = True  # from standstill: the parked car swerves out and speeds up
                self.t_move = self.time
            return False
        return not self.move(dt) or self.time - self.t_move > 30.0


@register
class ParkingExit(LiteScenario):
    """The ego starts parked in the lane right of the trigger between two parked cars (9 m ahead and behind)
    with a car abreast on the driving lane, which drives off at the trigger; the ego must merge out. Ends
    after the ego drove 24 m (or by ScenarioTimeout)."""

    type_names = ("ParkingExit",)
    timeout = True

    def build(self) -> None:
        ctx = self.ctx
        side = self.side
        p, h = ctx.route_pose(self.s_trigger)
        w = ctx.lane_width(self.s_trigger)
        off = side * (w + w / 8)
        ego_xy = p + off * right_of(h)
        ctx.world.teleport_ego(ego_xy, h)  # at build time, as the scenario does
        front = self.value("front_vehicle_distance", 20.0)
        behind = self.value("behind_vehicle_distance", 10.0)
        for d in (front, -behind):
            car = ctx.car(blocks_traffic=True)
            car.path, car.s, car.lateral = ctx.path, self.s_trigger + d, off
            car.follow(0.0)
            self.add(car)
        mover = ctx.car(blocks_traffic=True)
        mover.path, mover.s = ctx.path, self.s_trigger
        mover.follow(0.0)
        self.mover = self.add(mover)
        self.target = ctx.town.lanes[ctx.lane_at(p)[0]].speed
        self.start_xy = ego_xy

    def tick(self, dt: float) -> bool:
        m = self.mover
        if m.alive:
            m.speed = min(self.target, m.speed + ACCEL * dt)
            m.follow(m.speed * dt)
            if m.s - self.s_trigger > 50.0:
                m.alive = False  # hidden after 50 m
        driven = float(math.hypot(*(self.ctx.world.ego_pose[:2] - self.start_xy)))
        if driven < 12.0 and self.ctx.world.frame % 20 == 0:
            self._keep_exit_free()
        return driven > 24.0

    def _keep_exit_free(self) -> None:
        """SUMO maps the parked ego onto the driving lane, so background cars would queue beside it for good;
        Bench2Drive's background traffic keeps 25 m gaps here instead: cars next to the parking spot go."""
        ctx = self.ctx
        traffic = ctx.world.traffic
        for vid in traffic.background_near(ctx.world.ego_pose[:2], 30.0):
            pos, _ = traffic.world_position(vid)
            s, lat = ctx.route.project(pos)
            if lat < 2.0 and ctx.s_ego - 25.0 < s < ctx.s_ego + 15.0:
                traffic.sumo.vehicle.remove(vid)

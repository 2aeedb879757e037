"""Obstacles on the ego lane (Bench2Drive's overtaking ability; `route_obstacles.py`,
`construction_crash_vehicle.py`): Accident, ParkedObstacle, ConstructionObstacle, HazardAtSideLane and their
TwoWays variants, where the ego must pass through the gaps of oncoming traffic.

Lite placement: "fwd1(d)" is measured along the route (which follows the ego lane) and stops before a
junction; lateral offsets are fractions of the route lane's width, positive to the right. The oncoming lane
of the TwoWays types is the route shifted onto the centre line of the opposite-direction lane to its left (when
the net has none there, the scenario is skipped as in CARLA).
"""

from __future__ import annotations

from carla_tools.lite.actors import DEBRIS
from carla_tools.lite.scenarios.base import LiteScenario, ScenarioActor, ScenarioBuildError, right_of
from carla_tools.lite.scenarios.engine import register
from carla_tools.lite.scenarios.flows import Flow

WARN_R = 50.0  # m, the ego's distance to the first obstacle that starts the "idle 5 s, then" branch


class _Obstacle(LiteScenario):
    """Common pattern: obstacles placed at t = 0, LSF at the trigger, ST, end when the ego passes an end
    point; the TwoWays variants switch the wrong-direction check off R m + 5 s before the obstacle and run an
    oncoming flow next to it."""

    timeout = True
    default_distance = 120.0
    lsf = 20.0  # LeaveSpaceInFront(distance + lsf) at the trigger: metres past the obstacle kept free
    keep_wd_off = False  # HazardAtSideLaneTwoWays' quirk: WD stays off for the rest of the route

    def place(self, s: float, lateral: float, actor: ScenarioActor, heading_offset: float = 0.0) -> ScenarioActor:
        p, h = self.ctx.route_pose(s)
        actor.place(p + lateral * right_of(h), h + heading_offset)
        return self.add(actor)

    @property
    def two_ways(self) -> bool:
        return self.spec.type.endswith("TwoWays")

    def build(self) -> None:
        ctx = self.ctx
        self.s_obs = ctx.fwd1(self.s_trigger, self.value("distance", self.default_distance))
        self.w = ctx.lane_width(self.s_obs)
        self.place_obstacles()
        self.s_first = min(ctx.route.project(a.xy)[0] for a in self.actors if a.kind != DEBRIS)
        self.s_last = max(ctx.route.project(a.xy)[0] for a in self.actors if a.kind != DEBRIS)
        self.s_end = ctx.fwd1(self.s_last, 50.0)
        self.flow: Flow | None = None
        self._close_since: float | None = None
        if self.two_ways:
            left = ctx.neighbour(self.s_last, -1, same_direction=False)
            if left is None:
                raise ScenarioBuildError("no oncoming lane left of the obstacle")
            self.left_offset = left[0]

    def place_obstacles(self) -> None:
        raise NotImplementedError

    def place_warning(self, type_id: str) -> None:
        """The warning board abreast of the trigger: on the first lane beyond the outermost driving lane on
        the `direction` side, +0.3 × the lane width further out (here: 0.8 lane widths past the road edge)."""
        edge = self.ctx.road_edge(self.s_trigger, self.side)
        w = self.ctx.lane_width(self.s_trigger)
        self.place(self.s_trigger, edge + self.side * 0.8 * w, self.ctx.prop(type_id, "warning"))

    def start(self) -> None:
        self.leave_space_in_front(self.s_obs + self.lsf)

    def leave_space_in_front(self, s_to: float) -> None:
        """LeaveSpaceInFront: background cars on the ego lane between the ego and the obstacle are removed."""
        ctx = self.ctx
        traffic = ctx.world.traffic
        for vid in traffic.background_near(ctx.world.ego_pose[:2], s_to - ctx.s_ego + 10.0):
            pos, _ = traffic.world_position(vid)
            s, lat = ctx.route.project(pos)
            if ctx.s_ego - 5.0 < s < s_to and lat < 2.0:
                traffic.sumo.vehicle.remove(vid)

    def oncoming_path_start(self) -> None:
        ctx = self.ctx
        v = ctx.town.lanes[ctx.lane_at(ctx.route_pose(self.s_last)[0])[0]].speed
        length = 1.5 * v * 3.6 + 30.0  # OppositeActorFlow: 1.5 × speed limit (km/h) + 30 m each way
        lane = ctx.route.cut(self.s_last - length, self.s_last + length).shifted(self.left_offset).reversed()
        self.flow = Flow(self, lane, v, self.oncoming_gap(), prefill=True, reactive=True)

    def oncoming_gap(self) -> tuple[float, float]:
        return self.interval("frequency", (20.0, 100.0))

    def tick(self, dt: float) -> bool:
        ctx = self.ctx
        if ctx.world.frame % 20 == 0 and ctx.s_ego < self.s_first:
            # Bench2Drive's BackgroundActivity keeps the ego lane ahead of the obstacle free (LSF / RRL); SUMO
            # cars would otherwise queue behind the obstacle's twin for good
            self.leave_space_in_front(self.s_first - 1.0)
        if self._close_since is None and self.s_first - ctx.s_ego < WARN_R:
            self._close_since = self.time
        if self._close_since is not None and self.time - self._close_since >= 5.0 and self.two_ways:
            if ctx.wrong_direction_checks:
                ctx.wrong_direction_checks = False  # SwitchWrongDirectionTest(False)
                self._wd_switched = True
            if self.flow is None:
                self.oncoming_path_start()
        self.behave(dt)
        if self.flow is not None:
            self.flow.tick(dt)
        return ctx.s_ego > self.s_end

    def behave(self, dt: float) -> None:
        """Per-tick behaviour of moving obstacles (bicycles)."""

    def finish(self) -> None:
        if self.flow is not None:
            self.flow.stop()
        if getattr(self, "_wd_switched", False) and not self.keep_wd_off:
            self.ctx.wrong_direction_checks = True


@register
class Accident(_Obstacle):
    """A warning prop abreast of the trigger, a police car at fwd1(distance) and two crashed cars 10 and 16 m
    further, all shifted 0.3 lane widths to the side."""

    type_names = ("Accident", "AccidentTwoWays")
    lsf = 36.0

    def place_obstacles(self) -> None:
        ctx, off = self.ctx, self.side * 0.3 * self.w
        self.place_warning("static.prop.warningaccident")
        self.place(self.s_obs, off, ctx.emergency("vehicle.dodge.charger_police_2020", "police",
                                                   blocks_traffic=True))  # fmt: skip
        for d in (10.0, 16.0):
            s = ctx.fwd1(self.s_obs, d)
            self.place(s, off, ctx.car(blocks_traffic=True))


@register
class ParkedObstacle(_Obstacle):
    """A parked car with hazard lights at fwd1(distance), 0.35 lane widths to the side, and a warning prop."""

    type_names = ("ParkedObstacle", "ParkedObstacleTwoWays")

    def place_obstacles(self) -> None:
        ctx = self.ctx
        self.place_warning("static.prop.warningaccident")
        self.place(self.s_obs, self.side * 0.35 * self.w, ctx.car(blocks_traffic=True))


@register
class ConstructionObstacle(_Obstacle):
    """At P = fwd(distance): a traffic-warning board 5 m before P on the lane centre, debris, 4 cones along
    the lane's left edge and 3 across it; the lane is closed."""

    type_names = ("ConstructionObstacle", "ConstructionObstacleTwoWays")
    default_distance = 100.0
    lsf = 10.0  # RemoveRoadLane (trigger lane) in CARLA

    def place_obstacles(self) -> None:
        ctx = self.ctx
        # ConstructionObstacle's P is fwd(distance), which may lie beyond a junction
        self.s_obs = min(self.s_trigger + self.value("distance", self.default_distance), ctx.route.length - 10.0)
        self.w = ctx.lane_width(self.s_obs)
        self.place_warning("static.prop.warningconstruction")
        p = self.s_obs
        # the board closes the lane: its SUMO twin makes background traffic change lanes (RemoveRoadLane)
        self.place(p - 5.0, 0.0, ctx.prop("static.prop.trafficwarning", "warning", blocks_traffic=True, visible=False))
        self.place(p + 2.0, 0.0, ctx.new_actor(DEBRIS, "static.prop.dirtdebris02", "debris", visible=False))
        left_edge = -self.side * 0.425 * self.w
        for d in (2.0, 4.0, 6.0, 8.0):
            self.place(p + d, left_edge, ctx.prop("static.prop.constructioncone", "cone", visible=False))
        for k in (1.0, 2.0, 3.0):
            self.place(
                p + 8.0, left_edge + self.side * k, ctx.prop("static.prop.constructioncone", "cone", visible=False)
            )

    def start(self) -> None:
        for a in self.actors:  # the hidden props are placed at the trigger
            a.visible = True
        super().start()


@register
class HazardAtSideLane(_Obstacle):
    """Two slow bicycles on the right edge of the ego lane (fwd1(distance) and 9 m further) that ride
    `bicycle_drive_distance` m at `bicycle_speed` km/h from the route trigger on, then stop."""

    type_names = ("HazardAtSideLane",)
    default_distance = 100.0
    lsf = 29.0

    def place_obstacles(self) -> None:
        ctx = self.ctx
        self.bikes = []
        for d in (0.0, 9.0):
            s = ctx.fwd1(self.s_obs, d)
            b = ctx.bicycle(blocks_traffic=True)
            b.path, b.s, b.lateral = ctx.path, s, 0.275 * self.w
            b.follow(0.0)
            self.bikes.append(self.add(b))
        self.drive_end = [b.s + self.value("bicycle_drive_distance", 50.0) for b in self.bikes]
        self.bike_speed = self.value("bicycle_speed", 10.0) / 3.6

    def behave(self, dt: float) -> None:
        for b, end in zip(self.bikes, self.drive_end, strict=True):
            b.speed = self.bike_speed if b.s < end else 0.0
            b.follow(b.speed * dt)

    def tick(self, dt: float) -> bool:
        self.s_first = self.bikes[0].s
        self.s_last = self.bikes[1].s
        self.s_end = self.s_last + 50.0  # the ego gets ahead of bicycle 2, then drives 50 m
        return super().tick(dt)


@register
class HazardAtSideLaneTwoWays(HazardAtSideLane):
    """The same bicycles; after R + 5 s the wrong-direction check is switched off and — the code's quirk —
    never back on. The oncoming cars are background traffic (no OppositeActorFlow): here a flow spaced by
    `frequency` m."""

    type_names = ("HazardAtSideLaneTwoWays",)
    keep_wd_off = True

    def oncoming_gap(self) -> tuple[float, float]:
        f = self.value("frequency", 100.0)
        return f, f

"""Junction adversaries and flows (`opposite_vehicle_taking_priority.py`, `blocked_intersection.py`,
`signalized_junction_left_turn.py`, `left_turn_enter_flow.py`, `signalized_junction_right_turn.py`,
`actor_flow.py`).

J is the first junction on the route after the trigger. Its entries are the SUMO lanes whose connections run
through J's internal lanes, classed by their heading relative to the ego's entry heading (left 30–135°,
opposite 135–225°, right 225–330° in CARLA's clockwise yaw; here: the entry's traffic comes from the ego's
left, from ahead, or from the right). Traffic lights are frozen with SUMO's `setRedYellowGreenState` and get
their own programs back when the scenario ends.
"""

from __future__ import annotations

import math

import numpy as np

from carla_tools.lite.route import lane_path
from carla_tools.lite.scenarios.base import Context, LiteScenario, Polyline, ScenarioBuildError
from carla_tools.lite.scenarios.engine import register
from carla_tools.lite.scenarios.flows import Flow
from drive_jepa.frames import wrap_angle


def node_of(lane_id: str) -> str:
    """SUMO internal lane ':<node>_<link>_<lane>' → its junction node id."""
    return lane_id[1:].rsplit("_", 2)[0]


class Junction:
    """The first junction on the route at or after arc length s."""

    def __init__(self, ctx: Context, s: float) -> None:
        self.ctx = ctx
        town, route = ctx.town, ctx.world.route
        s0 = ctx.junction_start(s)
        if s0 is None:
            raise ScenarioBuildError("no junction ahead of the trigger")
        self.s_in, self.s_out = s0, ctx.junction_end(s0)
        k = int(np.searchsorted(route.accum, s0))
        self.node = node_of(town.lanes[int(route.lanes[k])].id)
        self.ego_entry = int(route.lanes[max(k - 2, 0)])
        self.ego_exit = int(route.lanes[min(int(np.searchsorted(route.accum, self.s_out)) + 1, len(route.lanes) - 1)])
        self.heading_in = float(route.heading[max(k - 2, 0)])
        self.centre = ctx.route_pose(0.5 * (self.s_in + self.s_out))[0]
        # entries: lane -> its connections (via, to) through this node
        self.entries: dict[int, list[tuple[int, int]]] = {}
        for lane, succ in town.successors.items():
            through = [(v, t) for v, t in succ if v >= 0 and town.lanes[v].id.startswith(":" + self.node + "_")]
            if through and not town.lanes[lane].internal:
                self.entries[lane] = through
        self.tls = sorted({lk.tls_id for lk in town.tl_links if lk.from_lane in self.entries})

    def edge(self, lane: int) -> str:
        return self.ctx.town.lanes[lane].edge_id

    def relative(self, lane: int) -> float:
        """Heading of the entry lane's end relative to the ego's entry heading (rad, CCW)."""
        shp = self.ctx.town.lanes[lane].shape
        d = shp[-1] - shp[-2]
        return float(wrap_angle(math.atan2(d[1], d[0]) - self.heading_in))

    def entries_from(self, side: str) -> list[int]:
        """Entry lanes whose traffic comes from the ego's 'left', 'right' or from ahead ('opposite'),
        rightmost lane first."""
        out = []
        for lane in self.entries:
            if self.edge(lane) == self.edge(self.ego_entry):
                continue
            r = math.degrees(self.relative(lane))
            cls = "opposite" if abs(r) > 135 else "left" if -135 <= r <= -30 else "right" if 30 <= r <= 135 else ""
            if cls == side:
                out.append(lane)
        return sorted(out, key=lambda i: (self.edge(i), self.ctx.town.lanes[i].index))

    def connection(self, lane: int, turn: str = "straight", to_edge: str | None = None) -> tuple[int, int]:
        """The (via, to) connection of an entry lane: the straightest, the rightmost turn, or into an edge."""
        town = self.ctx.town
        opts = self.entries[lane]
        if to_edge is not None:
            into = [c for c in opts if town.lanes[c[1]].edge_id == to_edge]
            if into:
                return min(into, key=lambda c: town.lanes[c[1]].index)
        shp = town.lanes[lane].shape
        h0 = math.atan2(*(shp[-1] - shp[-2])[::-1])

        def change(c: tuple[int, int]) -> float:
            t = town.lanes[c[1]].shape
            return float(wrap_angle(math.atan2(*(t[1] - t[0])[::-1]) - h0))

        if turn == "right":
            return min(opts, key=change)
        return min(opts, key=lambda c: abs(change(c)))

    def back(self, lane: int, d: float) -> np.ndarray:
        """Polyline ending at the entry lane's end, reaching `d` m back (through predecessors, else straight)."""
        town = self.ctx.town
        pts = town.lanes[lane].shape
        while _length(pts) < d:
            preds = [a for a, succ in town.successors.items() if any(t == lane for _, t in succ)]
            if not preds:
                u = pts[0] - pts[1]
                u = u / max(float(np.hypot(*u)), 1e-9)
                pts = np.concatenate([[pts[0] + u * (d - _length(pts) + 1.0)], pts])
                break
            h0 = _heading(pts[0], pts[1])
            prev = min(preds, key=lambda a: abs(float(wrap_angle(_heading(*town.lanes[a].shape[-2:]) - h0))))
            via = [v for v, t in town.successors[prev] if t == lane and v >= 0]
            parts = [town.lanes[prev].shape] + ([town.lanes[via[0]].shape] if via else [])
            pts = np.concatenate([*parts, pts])
            lane = prev
        poly = Polyline(pts)
        return poly.cut(poly.length - d, poly.length).pts

    def forward(self, lane: int, d: float) -> np.ndarray:
        """Polyline from the start of `lane` going `d` m on (straightest successors)."""
        town = self.ctx.town
        pts = town.lanes[lane].shape
        while _length(pts) < d:
            succ = town.successors.get(lane, [])
            if not succ:
                break
            h1 = _heading(pts[-2], pts[-1])
            via, nxt = min(succ, key=lambda c: abs(float(wrap_angle(_heading(*town.lanes[c[1]].shape[:2]) - h1))))
            pts = np.concatenate([pts] + ([town.lanes[via].shape] if via >= 0 else []) + [town.lanes[nxt].shape])
            lane = nxt
        return Polyline(pts).cut(0.0, d).pts

    def path(
        self, entry: int, back: float, ahead: float, turn: str = "straight", to_edge: str | None = None
    ) -> Polyline:
        via, to = self.connection(entry, turn, to_edge)
        town = self.ctx.town
        return Polyline(np.concatenate([self.back(entry, back), town.lanes[via].shape, self.forward(to, ahead)]))

    # lights ------------------------------------------------------------------------------------------------
    def set_lights(self, green_lanes: set[int]) -> None:
        """Freeze every light of J: links from `green_lanes` (and their edges' other lanes) green, others red."""
        town, traffic = self.ctx.town, self.ctx.world.traffic
        green_edges = {self.edge(i) for i in green_lanes}
        for tls in self.tls:
            state = list(traffic.sumo.trafficlight.getRedYellowGreenState(tls))
            for lk in town.tl_links:
                if lk.tls_id == tls and lk.link_index < len(state):
                    state[lk.link_index] = "G" if town.lanes[lk.from_lane].edge_id in green_edges else "r"
            traffic.set_light_state(tls, "".join(state))
        self.ctx.world.refresh_lights()

    def restore_lights(self) -> None:
        for tls in self.tls:
            self.ctx.world.traffic.restore_light(tls)
        self.ctx.world.refresh_lights()

    def clear(self, radius: float = 25.0, paths: tuple[Polyline, ...] = ()) -> None:
        """HandleJunctionScenario(clear_junction, remove_entries): background cars in J and on the given
        paths are removed."""
        traffic = self.ctx.world.traffic
        for vid in traffic.background_near(self.centre, radius + 80.0):
            pos, _ = traffic.world_position(vid)
            inside = float(np.hypot(*(pos - self.centre))) < radius
            on_path = any(p.project(pos)[1] < 2.0 for p in paths)
            ego_s, ego_lat = self.ctx.route.project(pos)
            ahead_on_route = ego_lat < 2.0 and self.ctx.s_ego < ego_s < self.s_out + 10
            if inside or on_path or ahead_on_route:
                traffic.sumo.vehicle.remove(vid)


def _heading(a: np.ndarray, b: np.ndarray) -> float:
    return math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))


def _length(pts: np.ndarray) -> float:
    return float(np.hypot(*np.diff(pts, axis=0).T).sum()) if len(pts) > 1 else 0.0


@register
class OppositeVehicleRunningRedLight(LiteScenario):
    """An emergency car 30 m up the `direction` entry runs its red light straight through J at 60 km/h when
    the ego is 2.2 s or 12 m from the crossing point; J's lights are frozen (ego green, others red)."""

    type_names = ("OppositeVehicleRunningRedLight", "OppositeVehicleTakingPriority")
    freeze = True

    def build(self) -> None:
        ctx = self.ctx
        self.freeze = self.spec.type == "OppositeVehicleRunningRedLight"
        self.j = Junction(ctx, self.s_trigger)
        side = self.text("direction", "right")
        entries = self.j.entries_from(side)
        if not entries:
            raise ScenarioBuildError(f"junction {self.j.node} has no entry from the {side}")
        path = self.j.path(entries[0], 30.0, 10.0)
        self.car = self.add(ctx.emergency("vehicle.dodge.charger_police_2020", "police", visible=False))
        self.car.path, self.car.s = path, 0.0
        self.car.follow(0.0)
        # the crossing point: where the adversary's path passes closest to the route inside J
        r = ctx.route.cut(self.j.s_in - 2, self.j.s_out + 2)
        d = np.hypot(*(path.pts[:, None, :] - r.pts[None]).transpose(2, 0, 1))
        _, k = np.unravel_index(int(d.argmin()), d.shape)
        self.point = r.pts[k]
        self.moving = False

    def start(self) -> None:
        self.j.clear(paths=(self.car.path,) if self.car.path is not None else ())
        self.car.visible = True
        if self.freeze and self.j.tls:
            self.j.set_lights({self.j.ego_entry})

    def tick(self, dt: float) -> bool:
        c = self.car
        if not self.moving and c.alive:
            self.moving = self.ctx.tta_or_distance(self.point, 2.2, 12.0)
        if self.moving and c.alive:
            c.speed = 60 / 3.6  # constant velocity, ignoring vehicles and lights
            if not c.follow(c.speed * dt):
                c.alive = False
        return self.ctx.s_ego > self.j.s_out and not (self.moving and c.alive)

    def finish(self) -> None:
        if self.freeze and self.j.tls:
            self.j.restore_lights()


@register
class BlockedIntersection(LiteScenario):
    """A car stands with its hand brake on 5 m past the junction's exit on the route; when the ego is within
    13 m it waits 10 s more and is removed."""

    type_names = ("BlockedIntersection",)
    timeout = True

    def build(self) -> None:
        ctx = self.ctx
        self.j = Junction(ctx, self.s_trigger)
        s = min(self.j.s_out + 5.0, ctx.route.length)
        self.car = self.add(ctx.car(visible=False, blocks_traffic=True))
        p, h = ctx.route_pose(s)
        self.car.place(p, h)
        self.t_close: float | None = None

    def start(self) -> None:
        self.j.clear()
        self.car.visible = True

    def tick(self, dt: float) -> bool:
        if self.t_close is None and self.ctx.ego_distance(self.car.xy) < 13.0:
            self.t_close = self.time
        return self.t_close is not None and self.time - self.t_close >= 10.0


class _JunctionFlow(LiteScenario):
    """A flow through J (constant velocity, ignoring the ego until its first collision). Signalized types:
    5 s ego red + source green, then ego and source green, others red, until the end. End: the ego has left
    J and driven 10 m."""

    timeout = True
    signalized = False
    source = -1  # the flow's entry lane

    def flow_path(self) -> Polyline:
        raise NotImplementedError

    def build(self) -> None:
        self.fs = self.value("flow_speed", 20.0)
        self.gap = self.interval("source_dist_interval", (25.0, 50.0))
        self.j = Junction(self.ctx, self.s_trigger)
        self.signalized = self.spec.type.startswith("Signalized")
        if self.signalized and not self.j.tls:
            raise ScenarioBuildError(f"junction {self.j.node} has no traffic lights")
        self.path = self.flow_path()
        self.flow: Flow | None = None

    def start(self) -> None:
        self.j.clear(paths=(self.path,))
        self.flow = Flow(self, self.path, self.fs, self.gap, prefill=self.prefill)
        if self.signalized:
            self.j.set_lights({self.source})
            self._phase = 0

    prefill = False

    def tick(self, dt: float) -> bool:
        assert self.flow is not None
        if self.signalized and self._phase == 0 and self.elapsed >= 5.0:
            self.j.set_lights({self.source, self.j.ego_entry})
            self._phase = 1
        self.flow.tick(dt)
        return self.ctx.s_ego > self.j.s_out + 10.0

    def finish(self) -> None:
        if self.flow is not None:
            self.flow.stop()
        if self.signalized:
            self.j.restore_lights()


@register
class JunctionLeftTurn(_JunctionFlow):
    """Ego turns left across a flow coming straight from a random opposite entry (4 × flow_speed m back,
    2.5 × flow_speed m past the exit, no pre-fill)."""

    type_names = ("SignalizedJunctionLeftTurn", "NonSignalizedJunctionLeftTurn")

    def flow_path(self) -> Polyline:
        opp = self.j.entries_from("opposite")
        if not opp:
            raise ScenarioBuildError(f"junction {self.j.node} has no opposite entry")
        self.source = opp[int(self.ctx.rng.integers(len(opp)))]
        return self.j.path(self.source, 4 * self.fs, 2.5 * self.fs)


@register
class JunctionLeftTurnEnterFlow(_JunctionFlow):
    """Ego turns left and merges into a flow that comes from the opposite entry and turns right into the
    ego's exit road."""

    type_names = ("SignalizedJunctionLeftTurnEnterFlow", "NonSignalizedJunctionLeftTurnEnterFlow")

    def flow_path(self) -> Polyline:
        opp = self.j.entries_from("opposite")
        if not opp:
            raise ScenarioBuildError(f"junction {self.j.node} has no opposite entry")
        self.source = opp[0]
        exit_edge = self.j.edge(self.j.ego_exit)
        return self.j.path(self.source, 4 * self.fs, 2.5 * self.fs, turn="right", to_edge=exit_edge)


@register
class JunctionRightTurn(_JunctionFlow):
    """Ego turns right into a flow coming straight from the rightmost lane of the first left entry
    (5 × flow_speed m back, 3 × flow_speed m past the exit, pre-filled)."""

    type_names = ("SignalizedJunctionRightTurn", "NonSignalizedJunctionRightTurn")
    prefill = True

    def flow_path(self) -> Polyline:
        left = self.j.entries_from("left")
        if not left:
            raise ScenarioBuildError(f"junction {self.j.node} has no entry from the left")
        self.source = left[0]
        return self.j.path(self.source, 5 * self.fs, 3 * self.fs)


@register
class EnterActorFlow(LiteScenario):
    """A pre-filled flow from `start_actor_flow` to `end_actor_flow` along the lanes; the ego merges into it.
    Ends when the ego is within 2 m of a sink point: `end_actor_flow` on its lane or abreast of it on the other
    lanes of that road in the same direction (scenario_runner's InTriggerDistanceToLocation on each of
    `get_same_dir_lanes(sink_wp)`). (One flow on the lane nearest the source point; CARLA runs one per
    same-direction lane of the source.)"""

    type_names = ("EnterActorFlow", "MergerIntoSlowTraffic", "MergerIntoSlowTrafficV2", "HighwayExit")
    timeout = True

    def build(self) -> None:
        ctx = self.ctx
        a, b = self.location("start_actor_flow"), self.location("end_actor_flow")
        pts = lane_path(ctx.town, a, b, max_depth=8)
        la = ctx.lane_at(a)[0]
        if pts is None and ctx.town.lanes[la].internal:  # the source lies inside a junction: leave it first
            inner = Polyline(ctx.town.lanes[la].shape)
            s0 = inner.project(a)[0]
            head = inner.cut(s0, inner.length).pts
            p, h = inner.at(inner.length)
            for k in range(1, 40):  # the junction's internal lanes may chain: find the lane after it
                q = p + k * np.array([math.cos(h), math.sin(h)])
                lane, dist, _, width = ctx.lane_at(q)
                if not ctx.town.lanes[lane].internal and dist < width / 2:
                    rest = lane_path(ctx.town, q, b, max_depth=8)
                    pts = None if rest is None else np.concatenate([head, rest])
                    break
        if pts is None:
            raise ScenarioBuildError("the flow's end cannot be reached from its start along the lanes")
        self.path = Polyline(pts)
        self.sink_points = self._sink_points(b)
        self.fs = self.value("flow_speed", 10.0)
        self.gap = self.interval("source_dist_interval", (20.0, 50.0))
        self.flow: Flow | None = None

    def _sink_points(self, b: np.ndarray) -> np.ndarray:
        """`end_actor_flow` (WORLD, the lite frame) projected on every lane of its road (SUMO: the lanes of one
        edge run one way); (K, 2) WORLD metres."""
        town = self.ctx.town
        edge = town.lanes[self.ctx.lane_at(b)[0]].edge_id
        pts = []
        for lane in town.lanes:
            if lane.edge_id == edge and lane.drivable:
                line = Polyline(lane.shape)
                pts.append(line.at(line.project(b)[0])[0])
        return np.array(pts) if pts else b[None]

    def start(self) -> None:
        traffic = self.ctx.world.traffic
        for vid in traffic.background_near(self.path.at(self.path.length / 2)[0], self.path.length / 2 + 20):
            pos, _ = traffic.world_position(vid)
            if self.path.project(pos)[1] < 2.0:
                traffic.sumo.vehicle.remove(vid)
        self.flow = Flow(self, self.path, self.fs, self.gap, prefill=True)

    def tick(self, dt: float) -> bool:
        assert self.flow is not None
        self.flow.tick(dt)
        ego = self.ctx.world.ego_pose[:2]
        return bool((np.hypot(*(self.sink_points - ego).T) < 2.0).any())

    def finish(self) -> None:
        if self.flow is not None:
            self.flow.stop()

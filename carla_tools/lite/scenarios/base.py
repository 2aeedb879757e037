"""Building blocks of the lite scenarios: polylines, placement on the route and on lanes, scenario actors,
and the scenario base class with its life cycle (build at t = 0 → route trigger → behaviour → end).

Frames: everything is WORLD (x east, y north, heading CCW rad). Bench2Drive's trigger points and flow
locations are CARLA_WORLD and are converted once when a scenario is read. "Right" of a heading h is the
vector (sin h, −cos h).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from carla_tools.lite.actors import BICYCLE, EMERGENCY, PEDESTRIAN, PROP, VEHICLE, Actors
from drive_jepa.frames import LINCOLN_MKZ_2020, carla_points_to_world, wrap_angle
from drive_jepa.routes import Scenario

if TYPE_CHECKING:
    from carla_tools.lite.town import TownMap
    from carla_tools.lite.world import LiteWorld


class ScenarioBuildError(RuntimeError):
    """The scenario cannot be placed here (no left lane, no junction ahead...): as in CARLA, it is skipped."""


# sizes (length, width, height) of CARLA blueprints the scenarios use (bounding-box extents × 2)
SIZES: dict[str, tuple[float, float, float]] = {
    "car": (4.6, 1.9, 1.5),
    "police": (5.0, 2.0, 1.6),
    "ambulance": (6.4, 2.4, 2.6),
    "bicycle": (1.8, 0.6, 1.7),
    "walker": (0.5, 0.5, 1.8),
    "cone": (0.4, 0.4, 0.7),
    "warning": (0.5, 2.4, 1.4),  # static.prop.trafficwarning / warningaccident / warningconstruction boards
    "container": (6.0, 2.4, 2.6),
    "advertisement": (0.6, 2.2, 2.4),
    "vendingmachine": (0.9, 1.2, 2.0),
    "debris": (3.0, 3.0, 0.02),
}
CAR_TYPES = (
    "vehicle.audi.a2", "vehicle.toyota.prius", "vehicle.seat.leon", "vehicle.mini.cooper_s",
    "vehicle.nissan.micra", "vehicle.citroen.c3", "vehicle.lincoln.mkz_2017", "vehicle.tesla.model3",
)  # fmt: skip
BIKE_TYPES = ("vehicle.bh.crossbike", "vehicle.diamondback.century", "vehicle.gazelle.omafiets")


def right_of(h: float) -> np.ndarray:
    return np.array([math.sin(h), -math.cos(h)])


def unit(h: float) -> np.ndarray:
    return np.array([math.cos(h), math.sin(h)])


class Polyline:
    """A WORLD polyline with arc length: position and heading at any s; before its start and past its end it
    goes on straight along its first / last segment (actors placed behind a route's start or driving past its
    end follow the lane's direction there)."""

    def __init__(self, pts: np.ndarray) -> None:
        pts = np.asarray(pts, dtype=np.float64)[:, :2]
        d = np.hypot(*np.diff(pts, axis=0).T)
        keep = np.concatenate([[True], d > 1e-6])
        self.pts = pts[keep]
        if len(self.pts) < 2:
            self.pts = np.stack([pts[0], pts[0] + 1e-3])
        seg = np.diff(self.pts, axis=0)
        self.accum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        self.seg_heading = np.arctan2(seg[:, 1], seg[:, 0])

    @property
    def length(self) -> float:
        return float(self.accum[-1])

    def at(self, s: float) -> tuple[np.ndarray, float]:
        s = float(s)
        j = int(np.clip(np.searchsorted(self.accum, s, side="right") - 1, 0, len(self.seg_heading) - 1))
        t = (s - self.accum[j]) / max(self.accum[j + 1] - self.accum[j], 1e-9)  # < 0 or > 1 off the ends
        return self.pts[j] + t * (self.pts[j + 1] - self.pts[j]), float(self.seg_heading[j])

    def project(self, p: np.ndarray) -> tuple[float, float]:
        """(s, lateral distance) of the point of the polyline nearest to p."""
        a, b = self.pts[:-1], self.pts[1:]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab**2).sum(1), 1e-12), 0.0, 1.0)
        q = a + t[:, None] * ab
        d = np.hypot(*(q - p).T)
        j = int(d.argmin())
        return float(self.accum[j] + t[j] * np.hypot(*ab[j])), float(d[j])

    def shifted(self, offset: float) -> Polyline:
        """The polyline moved sideways by `offset` m (positive = right of its direction)."""
        d = np.gradient(self.pts, axis=0)
        n = np.stack([d[:, 1], -d[:, 0]], -1)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
        return Polyline(self.pts + offset * n)

    def cut(self, s0: float, s1: float) -> Polyline:
        s0, s1 = max(0.0, s0), min(self.length, s1)
        inner = self.pts[(self.accum > s0) & (self.accum < s1)]
        return Polyline(np.concatenate([self.at(s0)[0][None], inner, self.at(s1)[0][None]]))

    def reversed(self) -> Polyline:
        return Polyline(self.pts[::-1])


@dataclass
class ScenarioActor:
    """One actor a scenario owns. Pose is the box centre (WORLD). While `visible` is False the actor exists
    but is "hidden" (CARLA keeps such actors under the map): no one sees, draws or hits it. Actors with
    `blocks_traffic` have a SUMO twin so that background cars queue behind or yield to them."""

    name: str
    kind: int
    type_id: str
    length: float
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0
    heading: float = 0.0
    speed: float = 0.0
    visible: bool = True
    blocks_traffic: bool = False
    alive: bool = True
    numeric_id: int = 0
    # motion along a path (flows, cut-ins, emergency vehicles, bicycles)
    path: Polyline | None = None
    s: float = 0.0
    lateral: float = 0.0  # metres right of the path

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])

    def place(self, xy: np.ndarray, heading: float) -> None:
        self.x, self.y, self.heading = float(xy[0]), float(xy[1]), float(heading)

    def follow(self, ds: float) -> bool:
        """Advance `ds` m along the path (keeping the lateral offset); False once past its end."""
        assert self.path is not None
        self.s += ds
        p, h = self.path.at(self.s)
        self.place(p + self.lateral * right_of(h), h)
        return self.s < self.path.length

    def walk(self, dt: float) -> None:
        """Move straight along the heading at the current speed (walkers never react)."""
        self.x += self.speed * dt * math.cos(self.heading)
        self.y += self.speed * dt * math.sin(self.heading)


def actors_of(actors: list[ScenarioActor]) -> Actors:
    live = [a for a in actors if a.alive and a.visible]
    if not live:
        return Actors.empty()
    return Actors(
        ids=np.array([a.numeric_id for a in live], np.int64),
        xy=np.array([[a.x, a.y] for a in live]),
        heading=np.array([a.heading for a in live]),
        speed=np.array([a.speed for a in live]),
        length=np.array([a.length for a in live]),
        width=np.array([a.width for a in live]),
        kind=np.array([a.kind for a in live], np.int8),
        height=np.array([a.height for a in live]),
        type_ids=tuple(a.type_id for a in live),
    )


@dataclass
class ScenarioEvent:
    """An infraction a scenario's own criterion reports: results key and the leaderboard's message."""

    key: str
    message: str


@dataclass
class ScenarioStatus:
    """What the route record says about one scenario of the route."""

    name: str
    type: str
    staged: bool
    reason: str = ""
    triggered_at: float | None = None
    ended_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "staged": self.staged, "reason": self.reason,
                "triggered_at": self.triggered_at, "ended_at": self.ended_at}  # fmt: skip


class Context:
    """What scenarios read and change: the world, the route as a polyline, lane queries, the scenario rng,
    the ego's route progress, and the switches of the route criteria that scenarios flip."""

    def __init__(self, world: LiteWorld, rng: np.random.Generator) -> None:
        self.world = world
        self.town: TownMap = world.town
        self.route = Polyline(world.route.world_xy)
        # the path of actors moving along the ego lane: the route, going on straight past its end so that nobody
        # piles up there (`follow` reports the end of the route itself)
        end, h_end = self.route.at(self.route.length)
        self.path = Polyline(np.concatenate([world.route.world_xy, [end + 200.0 * unit(h_end)]]))
        self.rng = rng
        self.s_ego = 0.0
        self._route_index = 0
        self._ids = 0
        lanes = world.route.lanes
        self.route_internal = np.array([world.town.lanes[int(i)].internal for i in lanes])
        self.wrong_direction_checks = True  # SwitchWrongDirectionTest
        self.blocked_test_off = 0  # number of running ScenarioTimeouts (ActorBlockedTest off while > 0)
        self.control_filter: Callable[[Any], Any] | None = None

    # ------------------------------------------------------------------------------------------------------
    def new_actor(self, kind: int, type_id: str, size: str, **kw: Any) -> ScenarioActor:
        self._ids += 1
        length, width, height = SIZES[size]
        return ScenarioActor(name=f"{self._ids}", kind=kind, type_id=type_id, length=length, width=width,
                             height=height, numeric_id=100000 + self._ids, **kw)  # fmt: skip

    def car(self, **kw: Any) -> ScenarioActor:
        type_id = CAR_TYPES[int(self.rng.integers(len(CAR_TYPES)))]
        return self.new_actor(VEHICLE, type_id, "car", **kw)

    def walker(self, **kw: Any) -> ScenarioActor:
        return self.new_actor(PEDESTRIAN, f"walker.pedestrian.{int(self.rng.integers(1, 49)):04d}", "walker", **kw)

    def bicycle(self, **kw: Any) -> ScenarioActor:
        return self.new_actor(BICYCLE, BIKE_TYPES[int(self.rng.integers(len(BIKE_TYPES)))], "bicycle", **kw)

    def prop(self, type_id: str, size: str, **kw: Any) -> ScenarioActor:
        return self.new_actor(PROP, type_id, size, **kw)

    def emergency(self, type_id: str = "vehicle.ford.ambulance", size: str = "ambulance", **kw: Any) -> ScenarioActor:
        return self.new_actor(EMERGENCY, type_id, size, **kw)

    # ------------------------------------------------------------------------------------------------------
    def update_progress(self) -> None:
        """The ego's route progress: the closest route point among the next ones (as the criteria)."""
        pts = self.world.route.world_xy
        hi = min(self._route_index + 30, len(pts))
        d = np.hypot(*(pts[self._route_index : hi] - self.world.ego_pose[:2]).T)
        self._route_index += int(d.argmin())
        self.s_ego = float(self.world.route.accum[self._route_index])

    def route_s(self, carla_xyz: tuple[float, ...] | np.ndarray, yaw_deg: float | None = None) -> float:
        """Route arc length of a CARLA_WORLD point (e.g. a trigger point). Raises when the point is not on the
        route (RouteParser keeps a scenario only within 2 m and 10° of a route point; 3 m here for SUMO's
        lane geometry)."""
        p = np.asarray(carla_points_to_world(np.asarray(carla_xyz[:2], dtype=np.float64)))
        d = np.hypot(*(self.world.route.world_xy - p).T)
        if yaw_deg is not None:
            dh = np.abs(np.asarray(wrap_angle(self.world.route.heading + math.radians(yaw_deg))))
            d = np.where(dh < math.radians(15), d, np.inf)
        j = int(d.argmin())
        if not d[j] < 3.0:
            raise ScenarioBuildError("the trigger point is not on the route")
        return float(self.world.route.accum[j])

    def route_pose(self, s: float) -> tuple[np.ndarray, float]:
        return self.route.at(s)

    def junction_start(self, s: float, limit: float = 400.0) -> float | None:
        """Route arc length where the first junction at or after s begins (None if none within `limit`)."""
        acc = self.world.route.accum
        idx = np.nonzero(self.route_internal & (acc >= s) & (acc <= s + limit))[0]
        return float(acc[idx[0]]) if len(idx) else None

    def junction_end(self, s: float) -> float:
        """Route arc length of the first point after the junction that starts at s."""
        acc = self.world.route.accum
        k = int(np.searchsorted(acc, s))
        while k < len(acc) and self.route_internal[k]:
            k += 1
        return float(acc[min(k, len(acc) - 1)])

    def fwd1(self, s: float, d: float) -> float:
        """`d` m ahead along the route in 1 m steps, stopping at the last point before a junction."""
        j = self.junction_start(s + 0.5, d)
        end = s + d if j is None else min(s + d, j - 1.0)
        return min(end, self.route.length)

    def lane_at(self, xy: np.ndarray) -> tuple[int, float, float, float]:
        lane, dist, h, w = self.town.nearest_lanes(np.asarray(xy)[None])
        return int(lane[0]), float(dist[0]), float(h[0]), float(w[0])

    def lane_width(self, s: float) -> float:
        return self.lane_at(self.route_pose(s)[0])[3]

    def neighbour(self, s: float, side: int, same_direction: bool | None = None) -> tuple[float, float] | None:
        """The lateral offset (m, + = right) of the centre line and the width of the driving lane next to the
        route's lane at s on `side` (+1 right, −1 left), optionally only one running the same way (or the
        opposite way); None when there is no such lane."""
        p, h = self.route_pose(s)
        _, _, _, w = self.lane_at(p)
        for k in (1.0, 0.8, 1.2):
            q = p + side * k * w * right_of(h)
            lane, dist, lh, lw = self.lane_at(q)
            if dist > lw / 2 + 0.2 or lane == self.lane_at(p)[0]:
                continue
            same = abs(float(wrap_angle(lh - h))) < math.pi / 2
            if same_direction is not None and same != same_direction:
                continue
            centre = Polyline(self.town.lanes[lane].shape)
            c, _ = centre.at(centre.project(q)[0])
            return float((c - p) @ right_of(h)), lw
        return None

    def road_edge(self, s: float, side: int = 1) -> float:
        """Lateral offset (m, + = right) of the outer edge of the outermost driving lane on `side` at s."""
        p, h = self.route_pose(s)
        lane0, _, _, w = self.lane_at(p)
        off = w / 2
        for _ in range(6):
            q = p + side * (off + 1.0) * right_of(h)
            lane, dist, _, lw = self.lane_at(q)
            if dist > lw / 2 + 0.3 or lane == lane0:
                break
            off += lw
            lane0 = lane
        return side * off

    def sidewalk_offset(self, s: float, side: int = 1) -> float:
        """Lateral offset of a sidewalk centre beyond the road edge on `side`, or 1.5 m past the edge when the
        net has no sidewalk there (DynamicObjectCrossing's rule)."""
        edge = self.road_edge(s, side)
        p, h = self.route_pose(s)
        for extra in (1.0, 2.0, 3.0):
            q = p + (edge + side * extra) * right_of(h)
            lane, dist, _, lw = self.town.nearest_lanes(q[None], drivable_only=False)
            li = self.town.lanes[int(lane[0])]
            if not li.drivable and float(dist[0]) < float(lw[0]) / 2 + 0.2:
                return edge + side * extra
        return edge + side * 1.5

    def ego_distance(self, xy: np.ndarray) -> float:
        return float(np.hypot(*(self.world.ego_pose[:2] - xy)))

    def tta_or_distance(self, xy: np.ndarray, tta: float, dist: float) -> bool:
        """scenario_runner's InTimeToArrivalToLocation ∨ InTriggerDistanceToLocation."""
        d = self.ego_distance(xy)
        v = abs(self.world.ego.speed)
        return d < dist or (v > 0.001 and d / v < tta)

    def ego_ahead_of(self, xy: np.ndarray, heading: float) -> float:
        """Signed distance of the ego's centre ahead of a point along a heading."""
        return float((self.world.ego_pose[:2] - xy) @ unit(heading))

    def is_ego_in_junction(self) -> bool:
        k = int(np.clip(np.searchsorted(self.world.route.accum, self.s_ego), 0, len(self.route_internal) - 1))
        return bool(self.route_internal[k])


EGO_HALF_LENGTH = LINCOLN_MKZ_2020.length / 2


@dataclass
class LiteScenario:
    """One staged scenario. Subclasses set `type_names` and `timeout` (ScenarioTimeout: ActorBlockedTest is off
    while it runs) and implement `build` (t = 0), `start` (route trigger) and `tick` (every 0.05 s while
    active; return True when the scenario has ended). `cleanup` removes the scenario's actors."""

    spec: Scenario
    ctx: Context
    actors: list[ScenarioActor] = field(default_factory=list)
    events: list[ScenarioEvent] = field(default_factory=list)
    active: bool = False
    done: bool = False
    t_start: float = 0.0
    s_trigger: float = 0.0

    type_names: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[bool] = False

    # parameters (Bench2Drive's `other_parameters`)
    def value(self, tag: str, default: float) -> float:
        raw = self.spec.params.get(tag, {}).get("value")
        return default if raw is None else self._number(tag, "value", raw)

    def _number(self, tag: str, attr: str, raw: str) -> float:
        try:
            return float(raw)
        except ValueError:
            raise ScenarioBuildError(f"<{tag} {attr}={raw!r}> is not a number") from None

    def text(self, tag: str, default: str) -> str:
        return self.spec.params.get(tag, {}).get("value", default)

    @property
    def side(self) -> int:
        """`direction`: +1 right (the default), −1 left of the ego lane."""
        return -1 if self.text("direction", "right") == "left" else 1

    def crossing(self) -> tuple[float, float]:
        """`crossing_angle` (degrees, limited to ±90 as the classes do) and its extra trigger time
        0.1 s × ⌊angle / 5⌋."""
        angle = max(-90.0, min(90.0, self.value("crossing_angle", 0.0)))
        return angle, 0.1 * math.floor(angle / 5)

    def interval(self, tag: str, default: tuple[float, float]) -> tuple[float, float]:
        e = self.spec.params.get(tag, {})
        if "from" in e and "to" in e:
            lo, hi = self._number(tag, "from", e["from"]), self._number(tag, "to", e["to"])
            if not 0 < lo <= hi:
                raise ScenarioBuildError(f"<{tag} from={e['from']!r} to={e['to']!r}>: expected 0 < from <= to")
            return lo, hi
        return default

    def location(self, tag: str) -> np.ndarray:
        e = self.spec.params.get(tag)
        if e is None or "x" not in e or "y" not in e:
            raise ScenarioBuildError(f"missing <{tag} x=... y=...>")
        xy = np.array([self._number(tag, "x", e["x"]), self._number(tag, "y", e["y"])])
        return np.asarray(carla_points_to_world(xy))

    @property
    def time(self) -> float:
        return self.ctx.world.time

    @property
    def elapsed(self) -> float:
        return self.ctx.world.time - self.t_start

    def add(self, actor: ScenarioActor) -> ScenarioActor:
        self.actors.append(actor)
        return actor

    def build(self) -> None:
        """Place the scenario's actors (visible or hidden) at t = 0."""

    def start(self) -> None:
        """The ego reached the route trigger point."""

    def tick(self, dt: float) -> bool:
        """Behaviour for one tick while active; True when the scenario has ended."""
        return False

    def idle(self, dt: float) -> None:
        """Behaviour for one tick before the trigger (actors that move on their own, like background cars)."""

    def finish(self) -> None:
        """The scenario ended or the route ends: emit end-of-scenario criteria, restore what was changed."""

    def cleanup(self) -> None:
        for a in self.actors:
            a.alive = False

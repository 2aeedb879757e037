"""Route criteria like the leaderboard's (scenario_runner `atomic_criteria` as used by Bench2Drive's
`RouteScenario`), evaluated on the lite world every tick, with the leaderboard's constants and message
formats.

- RouteCompletionTest: waypoint passed when (ego − wp)·forward > 0 within a window of 2 ahead; completed when
  > 99 % and within 10 m of the last waypoint → 100.
- OutsideRouteLanesTest: metres of route travelled while outside driving lanes (farther than lane_width/2 +
  0.5 m from a driving lane centre) or in an opposite-direction lane (> 120° off the ego's heading, junctions
  excluded); message with metres and % of the completed route; penalty factor (1 − P/100).
- CollisionTest: ego / actor box overlap, keyed by the other actor's kind (vehicles, cyclists and emergency
  vehicles → collisions_vehicle, walkers → collisions_pedestrian, static props → collisions_layout; debris
  never); same actor within 5 s or within 5 m of the last collision is not counted again; not counted when
  the ego is standing (< 0.1 m/s).
- Scenario criteria: events the running scenarios report (YieldToEmergencyVehicleTest); scenarios with a
  ScenarioTimeout switch ActorBlockedTest off while they run (its timer restarts when it comes back), and the
  TwoWays scenarios switch the wrong-direction part of OutsideRouteLanesTest off.
- RunningRedLightTest: the ego's tail segment crosses the stop line of a red light of its own lane.
- InRouteTest: > 30 m from the route (window of 5 route points) ends the route; so does > 30 % of the route
  driven farther than 15 m from it.
- ActorBlockedTest: below 0.1 m/s for 60 s ends the route.
- MinimumSpeedRouteTest: 20 checkpoints, ego speed vs mean background speed (not penalised).
- RouteTimeoutBehavior: 300 s + the route advanced / (10 % of the lane speed limit).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carla_tools.lite.actors import BACKGROUND_TYPE, COLLISION_KEY
from carla_tools.lite.world import LiteWorld
from drive_jepa.frames import LINCOLN_MKZ_2020, wrap_angle
from drive_jepa.leaderboard_format import INFRACTION_KEYS, PENALTY_FACTORS

_OTHER_ID = re.compile(r"\bid=(\d+)")
VEHICLE_TYPE = BACKGROUND_TYPE  # type_id reported for SUMO background vehicles


def _loc(xyz: tuple[float, float, float]) -> str:
    return f"(x={round(xyz[0], 3)}, y={round(xyz[1], 3)}, z={round(xyz[2], 3)})"


def boxes_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Separating-axis test of box a = (x, y, heading, length, width) against boxes b (N, 5) → (N,) bool."""
    if len(b) == 0:
        return np.zeros(0, bool)

    def corners(x: np.ndarray) -> np.ndarray:
        c, s = np.cos(x[:, 2]), np.sin(x[:, 2])
        hl, hw = x[:, 3] / 2, x[:, 4] / 2
        loc = np.stack([np.stack([hl, hw], -1), np.stack([hl, -hw], -1), np.stack([-hl, -hw], -1),
                        np.stack([-hl, hw], -1)], 1)  # fmt: skip
        gx = c[:, None] * loc[..., 0] - s[:, None] * loc[..., 1] + x[:, None, 0]
        gy = s[:, None] * loc[..., 0] + c[:, None] * loc[..., 1] + x[:, None, 1]
        return np.stack([gx, gy], -1)

    ca = np.broadcast_to(corners(a[None]), (len(b), 4, 2))
    cb = corners(b)
    ha, hb = np.full(len(b), a[2]), b[:, 2]
    axes = np.stack([np.stack([np.cos(h), np.sin(h)], -1) for h in (ha, ha + np.pi / 2, hb, hb + np.pi / 2)], 1)
    pa = np.einsum("nkd,nad->nak", ca, axes)
    pb = np.einsum("nkd,nad->nak", cb, axes)
    separated = (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    return ~separated.any(1)


def _segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    return d1 * d2 <= 0 and d3 * d4 <= 0


def light_numeric_id(tls_id: str) -> int:
    return int(tls_id) if tls_id.isdigit() else zlib.crc32(tls_id.encode()) % 100000


@dataclass
class RouteCriteria:
    """Stateful evaluation of one route. Call `update(world)` after every tick; read `infractions` etc."""

    world: LiteWorld
    max_ticks: int = 4000  # Bench2Drive's TickRuntime limit (200 s at 20 Hz)
    infractions: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in INFRACTION_KEYS})
    route_completion: float = 0.0
    completed: bool = False
    failure: str = ""
    done: bool = False
    # every infraction message as it first appears, with the simulation time (s) of the tick that raised it and,
    # for collisions, the other party's id: the exact times a replay puts on its timeline (lite only)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.world.route
        self._pts = r.world_xy
        self._fwd = np.stack([np.cos(r.heading), np.sin(r.heading)], -1)
        self._accum = r.accum
        self._perc = r.accum / max(r.accum[-1], 1e-9) * 100
        self._n = len(self._pts)
        self._rc_index = 0
        self._lanes_index = 0
        self._total_dist = 0.0
        self._wrong_dist = 0.0
        self._outside_msg_index: int | None = None
        self._dev_index = 0
        self._out_route_dist = 0.0
        self._last_collision_id: int | None = None
        self._last_collision_time = -1e9
        self._last_collision_loc: np.ndarray | None = None
        self._last_red: str | None = None
        # signalled approaches of the ego's lane whose light was red while the ego's front was within 15 m before
        # its stop line (lite only: the denominator of "red lights obeyed")
        self.red_encounters: set[tuple[str, int]] = set()
        self._blocked_since = 0.0
        self._timeout_index = 0
        self._timeout_value = 300.0
        self._ms_index = 0
        self._ms_current = 0.0
        self._ms_mean = 0.0
        self._ms_actor = 0.0
        self._ms_points = 0
        self._ms_checkpoint = self._accum[-1] / 20

    # ------------------------------------------------------------------------------------------------------
    def _advance(self, index: int, window: int, loc: np.ndarray) -> int:
        hi = min(index + window + 1, self._n)
        rel = loc[None] - self._pts[index:hi]
        passed = np.nonzero((rel * self._fwd[index:hi]).sum(-1) > 0)[0]
        return index + int(passed[-1]) if len(passed) else index

    def _counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.infractions.items()}

    def _note_events(self, before: dict[str, int]) -> None:
        """Timestamp the messages added since `before` (a message rewritten in place, the outside-lanes
        percentage, keeps the time it first appeared)."""
        for key, messages in self.infractions.items():
            for msg in messages[before.get(key, 0) :]:
                ev: dict[str, Any] = {"t": round(float(self.world.time), 3), "kind": key, "message": msg}
                other = _OTHER_ID.search(msg)
                if other and key.startswith("collisions"):
                    ev["other_id"] = int(other.group(1))
                self.events.append(ev)

    def update(self, world: LiteWorld) -> None:
        before = self._counts()
        self._update(world)
        self._note_events(before)

    def _update(self, world: LiteWorld) -> None:
        loc = world.ego_pose[:2]
        carla_loc = world.ego_carla_location()
        self._route_completion(loc)
        self._outside_lanes(world, loc)
        self._collisions(world, carla_loc)
        self._red_lights(world, carla_loc)
        self._min_speed(world, loc)
        self._in_route(loc, carla_loc)
        self._blocked(world, carla_loc)
        self._timeout(world, loc)
        for event in world.scenarios.pop_events():
            self.infractions[event.key].append(event.message)
        if world.frame >= self.max_ticks and not self.done:
            self.failure = self.failure or "TickRuntime"
            self.done = True
        if self.completed:
            self.done = True

    def _route_completion(self, loc: np.ndarray) -> None:
        self._rc_index = self._advance(self._rc_index, 2, loc)
        self.route_completion = round(float(self._perc[self._rc_index]), 2)
        if self.route_completion > 99 and np.hypot(*(loc - self._pts[-1])) < 10.0:
            self.route_completion = 100.0
            self.completed = True

    def _outside_lanes(self, world: LiteWorld, loc: np.ndarray) -> None:
        lane, dist, lane_h, width = world.town.nearest_lanes(loc[None])
        internal = world.town.lanes[int(lane[0])].internal or world.town.in_junction(loc)
        # SUMO's junction-internal lanes are its own curves, not CARLA's: inside a junction area is on-road
        outside = bool(dist[0] > width[0] / 2 + 0.5) and not internal
        wrong = (not internal) and abs(float(wrap_angle(lane_h[0] - world.ego_pose[2]))) > math.radians(120)
        wrong = wrong and world.scenarios.wrong_direction_checks
        new = self._advance(self._lanes_index, 3, loc)
        if new > self._lanes_index:
            step = float(self._accum[new] - self._accum[self._lanes_index])
            self._total_dist += step
            if outside or wrong:
                self._wrong_dist += step
            self._lanes_index = new
            if self._wrong_dist:
                pct = self._wrong_dist / self._total_dist * 100
                msg = (
                    f"Agent went outside its route lanes for about {round(self._wrong_dist, 3)} meters "
                    f"({round(pct, 2)}% of the completed route)"
                )
                key = self.infractions["outside_route_lanes"]
                if key:
                    key[0] = msg
                else:
                    key.append(msg)
                self.outside_percentage = pct

    def _collisions(self, world: LiteWorld, carla_loc: tuple[float, float, float]) -> None:
        a = world.actors.solid()
        if not len(a.ids):
            return
        p = world.ego_pose
        ego_box = np.array([p[0], p[1], p[2], LINCOLN_MKZ_2020.length, LINCOLN_MKZ_2020.width])
        hits = boxes_overlap(ego_box, a.boxes())
        if self._last_collision_loc is not None and np.hypot(*(p[:2] - self._last_collision_loc)) > 5.0:
            self._last_collision_loc = None
        if self._last_collision_id is not None and world.time - self._last_collision_time > 5.0:
            self._last_collision_id = None
        for k in np.nonzero(hits)[0]:
            vid = int(a.ids[k])
            if vid == self._last_collision_id or self._last_collision_loc is not None:
                continue
            if abs(world.ego.speed) < 0.1:
                continue
            self._last_collision_id, self._last_collision_time = vid, world.time
            self._last_collision_loc = p[:2].copy()
            self.infractions[COLLISION_KEY[int(a.kind[k])]].append(
                f"Agent collided against object with type={a.type_ids[k]} and id={vid} at {_loc(carla_loc)}"
            )

    def _red_lights(self, world: LiteWorld, carla_loc: tuple[float, float, float]) -> None:
        p = world.ego_pose
        u = np.array([math.cos(p[2]), math.sin(p[2])])
        ext = LINCOLN_MKZ_2020.length / 2
        tail_close = p[:2] - 0.8 * ext * u
        tail_far = p[:2] - (ext + 1.0) * u
        lights = [lv for lv in world.lights(radius=15.0) if np.hypot(*(lv.stop_xy - p[:2])) <= 15.0]
        if not lights:
            return
        tail_lane = int(world.town.nearest_lanes(tail_far[None])[0][0])
        self._red_ahead(world, lights, p[:2] + ext * u, u)
        for lv in lights:
            if lv.from_lane != tail_lane or lv.tls_id == self._last_red:
                continue
            lane_dir = np.array([math.cos(lv.heading), math.sin(lv.heading)])
            if u @ lane_dir <= 0:
                continue
            # the state of the connection the ego takes: the signalled junction lane nearest to it
            if self._connection_state(world, lights, lv, p[:2]) != "r":
                continue
            n = np.array([-lane_dir[1], lane_dir[0]]) * 0.6 * lv.width
            if _segments_cross(tail_close, tail_far, lv.stop_xy + n, lv.stop_xy - n):
                right = np.array([lane_dir[1], -lane_dir[0]]) * (lv.width / 2 + 0.6)
                lx, ly = lv.stop_xy + right
                self.infractions["red_light"].append(
                    f"Agent ran a red light {light_numeric_id(lv.tls_id)} at {_loc((lx, -ly, world.ego_z))}"
                )
                self._last_red = lv.tls_id
                break

    @staticmethod
    def _connection_state(world: LiteWorld, lights: list[Any], lv: Any, p: np.ndarray) -> str:
        """The state of the connection the ego takes from `lv`'s lane: the signalled junction lane nearest to it."""
        same = [x for x in lights if x.from_lane == lv.from_lane]
        via_d = [float(np.hypot(*(world.town.lanes[x.via_lane].shape - p).T).min()) for x in same]
        return str(same[int(np.argmin(via_d))].state)

    def _red_ahead(self, world: LiteWorld, lights: list[Any], front: np.ndarray, u: np.ndarray) -> None:
        """Count a red-light encounter: a red stop line of the ego's own lane 0–15 m ahead of its front."""
        front_lane = int(world.town.nearest_lanes(front[None])[0][0])
        for lv in lights:
            key = (str(lv.tls_id), int(lv.from_lane))
            if lv.from_lane != front_lane or key in self.red_encounters:
                continue
            ahead = float((lv.stop_xy - front) @ u)
            if not 0.0 <= ahead <= 15.0 or u @ np.array([math.cos(lv.heading), math.sin(lv.heading)]) <= 0:
                continue
            if self._connection_state(world, lights, lv, front) == "r":
                self.red_encounters.add(key)

    def _in_route(self, loc: np.ndarray, carla_loc: tuple[float, float, float]) -> None:
        hi = min(self._dev_index + 6, self._n)
        d = np.hypot(*(self._pts[self._dev_index : hi] - loc).T)
        j = int(np.nonzero(d <= d.min())[0][-1])
        closest = self._dev_index + j
        off_route = not d[j] < 30.0
        safe = bool(d[j] < 15.0)
        if closest != self._dev_index:
            if not safe:
                self._out_route_dist += float(self._accum[closest] - self._accum[self._dev_index])
                if 100 * self._out_route_dist / self._accum[-1] > 30:
                    off_route = True
            self._dev_index = closest
        if off_route and not self.done:
            self.infractions["route_dev"].append(f"Agent deviated from the route at {_loc(carla_loc)}")
            self.failure = "Agent deviated from the route"
            self.done = True

    def _blocked(self, world: LiteWorld, carla_loc: tuple[float, float, float]) -> None:
        if not world.scenarios.blocked_test_enabled:  # a ScenarioTimeout is running (AC_SwitchActorBlockedTest)
            self._blocked_since = world.time
            return
        if abs(world.ego.speed) < 0.1:
            if world.time - self._blocked_since > 60.0 and not self.done:
                self.infractions["vehicle_blocked"].append(f"Agent got blocked at {_loc(carla_loc)}")
                self.failure = "Agent got blocked"
                self.done = True
        else:
            self._blocked_since = world.time

    def _timeout(self, world: LiteWorld, loc: np.ndarray) -> None:
        new = self._advance(self._timeout_index, 3, loc)
        if new > self._timeout_index:
            lane = int(world.town.nearest_lanes(loc[None])[0][0])
            speed_limit = world.town.lanes[lane].speed
            self._timeout_value += float(self._accum[new] - self._accum[self._timeout_index]) / (0.1 * speed_limit)
            self._timeout_index = new
        if world.time > self._timeout_value and not self.done:
            self.infractions["route_timeout"].append("Route timeout.")
            self.failure = "Agent timed out"
            self.done = True

    def _min_speed(self, world: LiteWorld, loc: np.ndarray) -> None:
        self._ms_index = self._advance(self._ms_index, 2, loc)
        if self._accum[self._ms_index] - self._ms_current > self._ms_checkpoint:
            self._min_speed_event()
            self._ms_current = float(self._accum[self._ms_index])
            self._ms_mean = self._ms_actor = 0.0
            self._ms_points = 0
        a = world.actors
        a = a.select(np.array([t == BACKGROUND_TYPE for t in a.type_ids], bool)) if len(a) else a
        if len(a.ids):
            self._ms_mean += float(np.mean(a.speed))
            self._ms_actor += abs(world.ego.speed)
            self._ms_points += 1

    def _min_speed_event(self) -> None:
        if self._ms_points > 0 and self._ms_mean:
            value = round(self._ms_actor / self._ms_points / (self._ms_mean / self._ms_points) * 100, 2)
        else:
            value = 100
        self.infractions["min_speed_infractions"].append(f"Average speed is {value}% of the surrounding traffic's one")

    def finish(self) -> None:
        """Close the route like the criteria's `terminate`: running scenarios report their end-of-scenario
        criteria; last min-speed checkpoint if > 95 % was driven."""
        before = self._counts()
        self._finish()
        self._note_events(before)

    def _finish(self) -> None:
        self.world.scenarios.finish()
        for event in self.world.scenarios.pop_events():
            self.infractions[event.key].append(event.message)
        if self._accum[self._ms_index] / self._accum[-1] > 0.95:
            self._min_speed_event()

    # ------------------------------------------------------------------------------------------------------
    def penalty(self) -> float:
        return penalty_of(self.infractions, getattr(self, "outside_percentage", None))


def penalty_of(infractions: dict[str, list[str]], outside_percentage: float | None = None) -> float:
    """The leaderboard's infraction penalty: a factor per message (PENALTY_FACTORS) times (1 − P/100) for the
    outside-route-lanes percentage P (taken from the message when not given); min-speed messages are
    unused."""
    p = 1.0
    for key, factor in PENALTY_FACTORS.items():
        p *= factor ** len(infractions.get(key, []))
    msgs = infractions.get("outside_route_lanes", [])
    if msgs:
        if outside_percentage is None:
            outside_percentage = float(msgs[0].split("(")[1].split("%")[0])
        p *= 1 - outside_percentage / 100
    return p

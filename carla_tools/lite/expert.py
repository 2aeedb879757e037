"""A privileged rule-based expert for the lite world (baseline and data collection).

Leaderboard agent interface (`get_entry_point`, setup / sensors / set_global_plan / run_step / destroy); it
reads the world directly through `set_lite_world` (ego state, route, vehicles, traffic lights), so its only
sensor is the speedometer. Lateral: pure pursuit on the dense route. Longitudinal: the lowest of the lane
speed limit, a curvature limit, a stop before red / yellow lights on the route and a braking-distance limit
behind vehicles in (or predicted to enter within 3 s) the route corridor; a P controller turns it into
throttle / brake.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from carla_tools.lite.actors import BACKGROUND_TYPE, DEBRIS, EMERGENCY, PEDESTRIAN, Actors
from carla_tools.lite.agent_api import AutonomousAgent, make_control
from carla_tools.lite.criteria import boxes_overlap
from carla_tools.lite.route import route_light_links
from carla_tools.lite.world import LiteWorld
from drive_jepa.frames import LINCOLN_MKZ_2020, points_to_local


def get_entry_point() -> str:
    return "LiteExpert"


class LiteExpert(AutonomousAgent):
    cruise_speed = 8.0  # m/s (CARLA towns are mostly 30 km/h)
    junction_speed = 5.0  # m/s on turns
    max_lat_accel = 2.5  # m/s²
    comfort_decel = 3.5  # m/s²
    corridor = 1.9  # m, half width of the route corridor for obstacles
    stop_margin = 4.0  # m, stand-still gap to the obstacle / stop line from the ego's front

    patience = 6.0  # s standing behind a stopped crossing vehicle before creeping past it (deadlock breaker)

    pass_clearance = 0.7  # m between the ego's side and an obstacle it passes
    pass_ramp = 12.0  # m to move sideways into / out of a passing offset

    def setup(self, path_to_conf_file: str) -> None:
        self.world: LiteWorld | None = None
        self._index = 0
        self._stopped_since: float | None = None
        self._impatient_until = -1.0
        # lateral manoeuvre: (offset m, + = right; s where the ramp in starts; s where the ramp out starts)
        self._shift: tuple[float, float, float] | None = None
        self._ramp = self.pass_ramp
        self._pass_start: float | None = None  # route s where a planned pass starts moving sideways
        self._wait_at = math.inf  # route s of the ego's front where it waits for a gap to pass an obstacle
        self._shift_kind = ""

    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sensor.speedometer", "reading_frequency": 20, "id": "speed"}]

    def set_lite_world(self, world: LiteWorld) -> None:
        self.world = world
        self._index = 0
        town, route = world.town, world.route
        # stop lines on the route: (route s of the stop line, tls id, link index); every signalled approach the
        # route passes counts, with the link that follows the route best (however loosely: the red-light
        # criterion counts any red of the approach the ego's tail crosses)
        self._stops = [
            (s_stop, town.tl_links[k].tls_id, town.tl_links[k].link_index)
            for s_stop, k in route_light_links(route, town, tol=3.0, max_score=math.inf)
        ]
        # curvature-limited speed along the route
        h = np.unwrap(route.heading)
        ds = np.maximum(np.gradient(route.accum), 1e-3)
        kappa = np.abs(np.gradient(h) / ds)
        kappa = np.convolve(kappa, np.ones(5) / 5, mode="same")
        self._v_curve = np.sqrt(self.max_lat_accel / np.maximum(kappa, 1e-4))

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        w = self.world
        if w is None:
            raise RuntimeError("LiteExpert needs the lite world (privileged): run it with carla_tools.lite")
        route = w.route
        ego = w.ego
        pose = w.ego_pose
        v = ego.speed
        # progress along the route
        hi = min(self._index + 30, len(route.world_xy))
        d = np.hypot(*(route.world_xy[self._index : hi] - pose[:2]).T)
        self._index += int(d.argmin())
        s_ego = float(route.accum[self._index])
        # lateral: pure pursuit from the rear axle
        look = float(np.clip(3.0 + 0.7 * abs(v), 4.5, 14.0))
        if self._shift is None and d.min() > 1.5 and abs(v) < 3.0:
            look = 2.5  # far beside the route (leaving a parking spot): steer out tightly
        self._plan_shift(w, s_ego)
        target_k = min(int(np.searchsorted(route.accum, s_ego + look)), len(route.world_xy) - 1)
        target = route.world_xy[target_k] + self._offset(float(route.accum[target_k])) * _right(route.heading[target_k])
        aim = math.atan2(target[1] - pose[1], target[0] - pose[0])
        # the side-conflict check sweeps the ego's box towards where it steers (e.g. out of a parking spot)
        self._aim = aim if abs(math.remainder(aim - pose[2], 2 * math.pi)) < math.radians(60) else float(pose[2])
        rear = np.array([ego.x, ego.y, ego.heading])
        local = np.asarray(points_to_local(target, rear))
        ld = max(float(np.hypot(*local)), 1e-3)
        delta = math.atan2(2.0 * LINCOLN_MKZ_2020.wheel_base * local[1] / ld, ld)
        max_wheel = math.radians(w.model.limits.max_steer_deg)
        steer = float(np.clip(-delta / max_wheel, -1.0, 1.0))
        # longitudinal: desired speed
        lane = int(route.lanes[self._index])
        v_des = min(self.cruise_speed, w.town.lanes[lane].speed)
        ahead = (route.accum >= s_ego) & (route.accum <= s_ego + max(20.0, v * v / 2 / 2.0 + 10))
        if ahead.any():
            v_des = min(v_des, float(self._v_curve[ahead].min()))
        front = LINCOLN_MKZ_2020.length / 2
        if self._shift is not None:
            v_des = min(v_des, 6.0)
        if abs(v) > 0.2 or self._stopped_since is None:
            self._stopped_since = timestamp if abs(v) <= 0.2 else None
        if self._stopped_since is not None and timestamp - self._stopped_since > self.patience:
            self._impatient_until = s_ego + 8.0  # stay impatient until 8 m further (or it stops again)
        impatient = s_ego < self._impatient_until
        gaps = [
            self._light_gap(w, s_ego, front),
            self._vehicle_gap(w, s_ego, front, ignore_crossing=impatient),
            self._wait_at - s_ego - front + self.stop_margin,  # waiting for a gap to pass: room to swerve
        ]
        gap = min(gaps)
        if math.isfinite(gap):
            v_des = min(v_des, math.sqrt(max(0.0, 2 * self.comfort_decel * max(gap - self.stop_margin, 0.0))))
        # end of route: stop there
        remaining = float(route.accum[-1]) - s_ego
        v_des = min(v_des, math.sqrt(max(0.0, 2 * 2.0 * max(remaining + 5.0, 0.0))))
        a_cmd = 1.2 * (v_des - v)
        if self._side_conflict(w, impatient=impatient):
            return make_control(0.0, steer, 1.0)
        if v_des < 0.05 and v < 0.3:
            return make_control(0.0, steer, 1.0)
        throttle = float(np.clip(a_cmd / 3.0, 0.0, 0.8))
        brake = float(np.clip(-a_cmd / 6.0, 0.0, 1.0)) if a_cmd < -0.3 else 0.0
        return make_control(throttle, steer, brake)

    def _side_conflict(self, w: LiteWorld, horizon: float = 1.5, impatient: bool = False) -> bool:
        """A vehicle (crossing, cutting in or passing close) would touch the ego's inflated box within
        `horizon` s if the ego moved on at (at least) a creeping speed: hold still and let it pass. Once
        impatient, standing vehicles only count when the bare box 0.5 m ahead would touch them."""
        a = w.actors.solid()
        if not len(a.ids):
            return False
        p = w.ego_pose
        aim = getattr(self, "_aim", float(p[2]))
        u = np.array([math.cos(aim), math.sin(aim)])
        rel = a.xy - p[:2]
        # a vehicle following in our lane is its own business; one coming up beside us (merging) is not
        n = np.array([-u[1], u[0]])
        behind = (rel @ u < -LINCOLN_MKZ_2020.length / 2 - 1.0) & (np.abs(rel @ n) < 1.0)
        if behind.all():
            return False
        vel = np.stack([np.cos(a.heading), np.sin(a.heading)], -1) * a.speed[:, None]
        v = max(w.ego.speed, 1.0)
        size = (LINCOLN_MKZ_2020.length + 0.6, LINCOLN_MKZ_2020.width + 0.6)
        s_ego = float(w.route.accum[self._index])
        consider = ~behind & ((a.speed > 0.1) | (not impatient)) & ~self._will_yield(w, a, s_ego, 2.45)
        for t in np.linspace(0.0, horizon, 7):
            c = p[:2] + u * (v * t + 0.3)
            ego = np.array([c[0], c[1], aim, *size])
            fut = a.xy + vel * t
            others = np.stack([fut[:, 0], fut[:, 1], a.heading, a.length, a.width], -1)
            if (boxes_overlap(ego, others) & consider).any():
                return True
        if impatient:
            c = p[:2] + u * 0.5
            ego = np.array([c[0], c[1], p[2], LINCOLN_MKZ_2020.length, LINCOLN_MKZ_2020.width])
            standing = np.stack([a.xy[:, 0], a.xy[:, 1], a.heading, a.length, a.width], -1)
            return bool((boxes_overlap(ego, standing) & ~behind & (a.speed <= 0.1)).any())
        return False

    def _light_gap(self, w: LiteWorld, s_ego: float, front: float) -> float:
        """Distance from the ego's front to the next red / yellow stop line on the route (inf if none)."""
        best = math.inf
        for s_stop, tls, idx in self._stops:
            dist = s_stop - s_ego - front
            if dist < -1.0 or dist > 60.0:
                continue
            ch = w.light_state(tls, idx)
            if ch == "r" or (ch == "y" and dist > w.ego.speed**2 / (2 * 6.0)):
                best = min(best, dist + self.stop_margin - 1.5)
        return best

    def _vehicle_gap(self, w: LiteWorld, s_ego: float, front: float, ignore_crossing: bool = False) -> float:
        """Gap from the ego's front to the nearest vehicle in the route corridor ahead, now or within 3 s.
        With `ignore_crossing`, standing vehicles across the route (> 45° off the ego's heading) are ignored
        (the side-conflict check still stops the ego before touching them)."""
        a = w.actors.solid()
        if len(a.ids):
            a = a.select(~self._will_yield(w, a, s_ego, front))
        if not len(a.ids):
            return math.inf
        if ignore_crossing:
            dh = np.abs((a.heading - w.ego_pose[2] + np.pi) % (2 * np.pi) - np.pi)
            keep = ~((a.speed < 0.1) & (dh > np.radians(45)) & (dh < np.radians(135)))  # not oncoming ones
            a = a.select(keep)
            if not len(a.ids):
                return math.inf
        route = w.route
        sel = (route.accum >= s_ego - 2) & (route.accum <= s_ego + 50)
        pts, acc = route.world_xy[sel], route.accum[sel]
        if self._shift is not None:
            off = np.array([self._offset(float(x)) for x in acc])
            pts = pts + off[:, None] * np.stack([np.sin(route.heading[sel]), -np.cos(route.heading[sel])], -1)
        if not len(pts):
            return math.inf
        best = math.inf
        vel = np.stack([np.cos(a.heading), np.sin(a.heading)], -1) * a.speed[:, None]
        for t in (0.0, 1.0, 2.0, 3.0):
            pos = a.xy + vel * t
            dd = np.hypot(*(pos[:, None, :] - pts[None]).transpose(2, 0, 1))
            j = dd.argmin(1)
            lat = dd[np.arange(len(pos)), j]
            rel = np.abs(np.sin(a.heading - route.heading[sel][j]))
            extent = rel * a.length / 2 + np.sqrt(1 - rel**2) * a.width / 2  # the box's half extent across the path
            inside = lat - extent < LINCOLN_MKZ_2020.width / 2 + 0.45
            along = np.sqrt(1 - rel**2) * a.length / 2 + rel * a.width / 2  # the box's half extent along the path
            s_obj = acc[j] - along
            gap = s_obj - s_ego - front
            # a vehicle entering the corridor later only matters if the ego would be there by then
            ok = inside & (gap > -2.0) & ((t == 0.0) | (gap < w.ego.speed * t + 6.0))
            if ok.any():
                best = min(best, float(gap[ok].min()))
        return best

    def _will_yield(self, w: LiteWorld, a: Actors, s_ego: float, front: float) -> np.ndarray:
        """Scenario flow cars the ego may ignore (privileged: they give way to an ego already on their path
        farther ahead than their emergency stopping distance): cars that will still be that far away when the
        ego, speeding up at 3 m/s², reaches where their straight-line motion enters the route corridor within
        6 s, and cars in the corridor now that will have left every part of it the ego can reach by then."""
        out = np.zeros(len(a), bool)
        cand = np.nonzero((a.speed > 1.0) & (a.kind != PEDESTRIAN) & (a.kind != EMERGENCY)
                          & np.array([t != BACKGROUND_TYPE for t in a.type_ids], bool))[0]  # fmt: skip
        if not len(cand):
            return out
        route = w.route
        sel = (route.accum >= s_ego - 2) & (route.accum <= s_ego + 50)
        pts, acc = route.world_xy[sel], route.accum[sel]
        if not len(pts):
            return out
        v = max(w.ego.speed, 0.0)
        h_ego = float(w.ego_pose[2])
        for i in cand:
            # coming up from behind or beside (a merge): the ego reaches its path late, so 10 m more
            extra = 10.0 if math.cos(a.heading[i] - h_ego) > 0.3 else 0.0
            u = np.array([math.cos(a.heading[i]), math.sin(a.heading[i])])
            t = np.arange(0.0, 6.01, 0.25)
            pos = a.xy[i] + t[:, None] * a.speed[i] * u
            dd = np.hypot(*(pos[:, None, :] - pts[None]).transpose(2, 0, 1))
            hit = dd.min(1) < LINCOLN_MKZ_2020.width / 2 + a.width[i] / 2 + 0.8
            if not hit.any():
                continue  # never enters the corridor: the other checks decide
            if hit[0]:  # in the corridor now: ignored if it is out of every part of it the ego can reach by then
                s_hit = acc[dd.argmin(1)]
                tt = t + 0.3
                s_front = s_ego + front + np.minimum(v * tt + 1.5 * tt**2, self.cruise_speed * tt)
                out[i] = not (hit & (s_front >= s_hit - 1.5)).any()
                continue
            k = int(np.argmax(hit))
            d = max(float(acc[int(dd[k].argmin())]) - s_ego - front, 0.0)
            t_ego = (-v + math.sqrt(v * v + 2 * 3.0 * d)) / 3.0
            margin = a.speed[i] ** 2 / 16.0 + 2.0 + extra  # the car's emergency stopping distance (8 m/s²) + 2 m
            out[i] = a.speed[i] * (t[k] - t_ego) > margin
        return out

    # lateral manoeuvres ---------------------------------------------------------------------------------------
    def _offset(self, s: float) -> float:
        """Lateral offset (m, + = right of the route) of the planned path at route arc length s."""
        if self._shift is None:
            return 0.0
        off, s_in, s_out = self._shift
        ramp = self._ramp
        k = min(max((s - s_in) / ramp, 0.0), 1.0) * min(max((s_out + ramp - s) / ramp, 0.0), 1.0)
        return off * k

    def _route_frame(self, w: LiteWorld, a: Actors) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Route arc length, signed lateral offset (+ right), heading relative to the route, and the half
        extent across the route of each actor."""
        route = w.route
        d = np.hypot(*(a.xy[:, None, :] - route.world_xy[None]).transpose(2, 0, 1))
        j = d.argmin(1)
        h = route.heading[j]
        rel = a.xy - route.world_xy[j]
        lat = rel[:, 0] * np.sin(h) - rel[:, 1] * np.cos(h)
        s = route.accum[j] + rel[:, 0] * np.cos(h) + rel[:, 1] * np.sin(h)
        dh = (a.heading - h + np.pi) % (2 * np.pi) - np.pi
        r = np.abs(np.sin(dh))
        ext = r * a.length / 2 + np.sqrt(1 - r**2) * a.width / 2
        return s, lat, dh, ext

    def _lane_ok(self, w: LiteWorld, s: float, off: float) -> tuple[bool, bool]:
        """(a driving lane is there, it runs against the route) at route arc length s shifted by `off`."""
        route = w.route
        k = min(int(np.searchsorted(route.accum, s)), len(route.accum) - 1)
        q = route.world_xy[k] + off * _right(route.heading[k])
        _, dist, lh, lw = w.town.nearest_lanes(q[None])
        opposite = abs((float(lh[0]) - route.heading[k] + math.pi) % (2 * math.pi) - math.pi) > math.pi / 2
        return bool(dist[0] < lw[0] / 2 + 0.6), opposite

    def _clear(self, w: LiteWorld, a: Actors, s: np.ndarray, lat: np.ndarray, dh: np.ndarray, s_ego: float,
               off: float, s_end: float, movers: np.ndarray, committed: bool = False) -> bool:  # fmt: skip
        """No moving vehicle in the shifted corridor for as long as the manoeuvre takes. Once `committed`, a
        reactive oncoming car only has to be able to stop hard (6 m/s²) short of the ego."""
        v = max(w.ego.speed, 4.0)
        t_pass = (s_end - s_ego) / v + 2.0
        r = np.abs(np.sin(dh))
        ext = r * a.length / 2 + np.sqrt(1 - r**2) * a.width / 2
        near = movers & (np.abs(lat - off) < ext + LINCOLN_MKZ_2020.width / 2 + 0.6)
        oncoming = near & (np.cos(dh) < -0.5) & (s > s_ego - 6.0)
        # scenario oncoming flows brake for an ego in their lane (privileged): far enough for a gentle stop
        # (3 m/s²) before the ego's overtaking start is enough; background cars must be past by then
        reactive = np.array([t != BACKGROUND_TYPE for t in a.type_ids], bool) & (a.kind != EMERGENCY)
        s_start = self._pass_start if self._pass_start is not None else s_ego
        if committed:
            can_stop = s - s_ego > a.speed**2 / 12.0 + 0.8 * a.speed + 10.0  # the flow keeps 0.8 s headway
        else:
            can_stop = s - s_start > a.speed**2 / 6.0 + 1.6 * a.speed + 12.0
        if (oncoming & ~reactive & (s - a.speed * t_pass < s_end + 10.0)).any():
            return False
        if (oncoming & reactive & ~can_stop).any():
            return False
        follower = (np.abs(lat) < 1.0) & (s < s_ego)  # behind us in our lane: it follows us
        same = near & (np.cos(dh) >= -0.5) & ~follower
        v_ego = w.ego.speed
        ahead = same & (s >= s_ego) & (s - s_ego < 10.0 + np.maximum(v_ego - a.speed, 0.0) * t_pass)
        # after waiting a while, a gap the car behind can close by braking gently is enough (SUMO cars brake for it)
        waited = self._stopped_since is not None and w.time - self._stopped_since > 3.0
        lead_time = 1.5 if waited else 2.0
        behind = same & (s < s_ego) & (s_ego - s < 8.0 + np.maximum(a.speed - v_ego, 0.0) * lead_time)
        return not (ahead | behind).any()

    def _plan_shift(self, w: LiteWorld, s_ego: float) -> None:
        """Pass obstacles standing or creeping on the route lane (scenario actors, privileged), and move over
        for an emergency vehicle coming from behind; keep a committed manoeuvre until it is done."""
        if self._shift is not None and s_ego > self._shift[2] + self.pass_ramp:
            self._shift, self._shift_kind = None, ""
        self._wait_at = math.inf
        a = w.actors.solid()
        if not len(a):
            if self._shift_kind == "pass" and s_ego < self._shift[1] + self.pass_ramp / 2:  # type: ignore[index]
                self._shift = None
            return
        s, lat, dh, ext = self._route_frame(w, a)
        scenario = np.array([t != BACKGROUND_TYPE for t in a.type_ids], bool)
        passable = scenario & (a.kind != PEDESTRIAN) & (a.speed < 4.0) & (a.kind != EMERGENCY)
        passable |= scenario & (a.kind == EMERGENCY) & (a.speed < 0.5)
        movers = ~passable & (a.kind != PEDESTRIAN) & (a.kind != DEBRIS)
        if self._yield_emergency(w, a, s, lat, dh, s_ego, movers):
            return
        if self._shift_kind == "pass":
            off, s_in, s_out = self._shift  # type: ignore[misc]
            # follow obstacles that move (cyclists): the pass lasts until the ego is past the last one
            near = passable & (s > s_ego - 15.0) & (s < s_ego + 45.0) & (np.abs(lat) - ext < 2.5)
            s_first = float(s[near].min()) if near.any() else math.inf
            if near.any():
                s_out = max(s_out, float((s[near] + ext[near]).max()) + LINCOLN_MKZ_2020.length / 2 + 2.0)
                self._shift = (off, s_in, s_out)
            clear = self._clear(w, a, s, lat, dh, s_ego, off, s_out, movers, committed=True)
            beside = s_ego + LINCOLN_MKZ_2020.length / 2 > s_first - 1.0
            if not clear and not beside:
                self._shift, self._shift_kind = None, ""  # not yet beside it and the way is no longer clear
            return
        block = passable & (s > s_ego) & (s < s_ego + 35.0) & (np.abs(lat) - ext < LINCOLN_MKZ_2020.width / 2 + 0.4)
        if not block.any():
            return
        s_first = float(s[block].min())
        group = passable & (s > s_first - 1.0) & (s < s_first + 40.0) & (np.abs(lat) - ext < 2.5)
        left_edge = float((lat[group] - ext[group]).min())
        off = min(0.0, left_edge - self.pass_clearance - LINCOLN_MKZ_2020.width / 2)
        s_last = float((s[group] + ext[group]).max()) + LINCOLN_MKZ_2020.length / 2 + 2.0
        lane_w = float(w.town.nearest_lanes(w.route.world_xy[min(self._index, len(w.route.accum) - 1)][None])[3][0])
        if off < -0.5:  # a same-direction lane on the left: change lanes fully instead of squeezing past
            ok_full, opp_full = self._lane_ok(w, s_first, -lane_w)
            if ok_full and not opp_full:
                off = -lane_w
        ok, opposite = self._lane_ok(w, s_first, off)
        if not ok or (opposite and w.scenarios.wrong_direction_checks and off < -2.0):
            return
        s_in = max(s_ego + 1.0, s_first - LINCOLN_MKZ_2020.length / 2 - self.pass_ramp - 2.0)
        self._pass_start = s_in
        # wait (if need be) far enough behind the obstacle to swerve round it in one ramp
        self._wait_at = s_first - LINCOLN_MKZ_2020.length / 2 - self.pass_ramp + 2.0
        if self._clear(w, a, s, lat, dh, s_ego, off, s_last + self.pass_ramp, movers):
            self._wait_at = math.inf
            # close behind it (waiting for a gap): a shorter, steeper ramp
            self._ramp = float(np.clip(s_first - s_ego - LINCOLN_MKZ_2020.length / 2 - 1.0, 5.0, self.pass_ramp))
            s_in = max(s_ego + 0.5, s_first - LINCOLN_MKZ_2020.length / 2 - self._ramp - 1.0)
            self._shift, self._shift_kind = (off, s_in, s_last), "pass"

    def _yield_emergency(self, w: LiteWorld, a: Actors, s: np.ndarray, lat: np.ndarray, dh: np.ndarray,
                         s_ego: float, movers: np.ndarray) -> bool:  # fmt: skip
        """An emergency vehicle coming up behind in the ego's lane: move to a free neighbour lane (right
        first) and stay there until it has passed."""
        ev = (a.kind == EMERGENCY) & (s < s_ego) & (s > s_ego - 80.0) & (np.abs(lat) < 2.0) & (np.cos(dh) > 0.5)
        ev &= a.speed > 1.0
        if self._shift_kind == "yield":
            passed = not ((a.kind == EMERGENCY) & (s < s_ego + 8.0) & (np.cos(dh) > 0.5)).any()
            if passed and self._shift is not None and self._shift[2] > s_ego + 2.0:
                off, s_in, _ = self._shift
                self._shift = (off, s_in, s_ego)  # the ambulance is ahead: back to the route lane
            return True
        if not ev.any():
            return False
        self._pass_start = None
        for off in (3.5, -3.5):
            ok, opposite = self._lane_ok(w, s_ego + 10.0, off)
            if ok and not opposite and self._clear(w, a, s, lat, dh, s_ego, off, s_ego + 40.0, movers & ~ev):
                self._shift, self._shift_kind = (off, s_ego, s_ego + 200.0), "yield"
                self._ramp = self.pass_ramp
                return True
        return False


def _right(h: float) -> np.ndarray:
    return np.array([math.sin(h), -math.cos(h)])

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

    def setup(self, path_to_conf_file: str) -> None:
        self.world: LiteWorld | None = None
        self._index = 0
        self._stopped_since: float | None = None
        self._impatient_until = -1.0

    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sensor.speedometer", "reading_frequency": 20, "id": "speed"}]

    def set_lite_world(self, world: LiteWorld) -> None:
        self.world = world
        self._index = 0
        town, route = world.town, world.route
        # stop lines on the route: (route s of the stop line, tls id, link index)
        self._stops = [
            (s_stop, town.tl_links[k].tls_id, town.tl_links[k].link_index)
            for s_stop, k in route_light_links(route, town)
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
        target_k = int(np.searchsorted(route.accum, s_ego + look))
        target = route.world_xy[min(target_k, len(route.world_xy) - 1)]
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
        if abs(v) > 0.2 or self._stopped_since is None:
            self._stopped_since = timestamp if abs(v) <= 0.2 else None
        if self._stopped_since is not None and timestamp - self._stopped_since > self.patience:
            self._impatient_until = s_ego + 8.0  # stay impatient until 8 m further (or it stops again)
        impatient = s_ego < self._impatient_until
        gaps = [
            self._light_gap(w, s_ego, front),
            self._vehicle_gap(w, s_ego, front, ignore_crossing=impatient),
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
        a = w.actors
        if not len(a.ids):
            return False
        p = w.ego_pose
        u = np.array([math.cos(p[2]), math.sin(p[2])])
        rel = a.xy - p[:2]
        # a vehicle following in our lane is its own business; one coming up beside us (merging) is not
        n = np.array([-u[1], u[0]])
        behind = (rel @ u < -LINCOLN_MKZ_2020.length / 2 - 1.0) & (np.abs(rel @ n) < 1.0)
        if behind.all():
            return False
        vel = np.stack([np.cos(a.heading), np.sin(a.heading)], -1) * a.speed[:, None]
        v = max(w.ego.speed, 1.0)
        size = (LINCOLN_MKZ_2020.length + 0.6, LINCOLN_MKZ_2020.width + 0.6)
        consider = ~behind & ((a.speed > 0.1) | (not impatient))
        for t in np.linspace(0.0, horizon, 7):
            c = p[:2] + u * (v * t + 0.3)
            ego = np.array([c[0], c[1], p[2], *size])
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
        a = w.actors
        if not len(a.ids):
            return math.inf
        if ignore_crossing:
            dh = np.abs((a.heading - w.ego_pose[2] + np.pi) % (2 * np.pi) - np.pi)
            keep = ~((a.speed < 0.1) & (dh > np.radians(45)))
            a = type(a)(a.ids[keep], a.xy[keep], a.heading[keep], a.speed[keep], a.length[keep], a.width[keep])
            if not len(a.ids):
                return math.inf
        route = w.route
        sel = (route.accum >= s_ego - 2) & (route.accum <= s_ego + 50)
        pts, acc = route.world_xy[sel], route.accum[sel]
        if not len(pts):
            return math.inf
        best = math.inf
        vel = np.stack([np.cos(a.heading), np.sin(a.heading)], -1) * a.speed[:, None]
        for t in (0.0, 1.0, 2.0, 3.0):
            pos = a.xy + vel * t
            dd = np.hypot(*(pos[:, None, :] - pts[None]).transpose(2, 0, 1))
            j = dd.argmin(1)
            lat = dd[np.arange(len(pos)), j]
            inside = lat < self.corridor + a.width / 2 * 0.5
            s_obj = acc[j] - a.length / 2
            gap = s_obj - s_ego - front
            # a vehicle entering the corridor later only matters if the ego would be there by then
            ok = inside & (gap > -2.0) & ((t == 0.0) | (gap < w.ego.speed * t + 6.0))
            if ok.any():
                best = min(best, float(gap[ok].min()))
        return best

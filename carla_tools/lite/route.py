"""A Bench2Drive route on a lite town: the dense 1 m route, its road options and the leaderboard's global
plan.

The leaderboard interpolates the XML keypoints to 1 m with CARLA's GlobalRoutePlanner and hands that dense
route (`(carla.Transform, RoadOption)` items) plus its GPS twin (`({'lat', 'lon', 'z'}, RoadOption)`) to the
agent's `set_global_plan`; the agent base class then downsamples it (`downsample_route(route, 50)`: every ~50
m plus every road-option change). Bench2Drive's keypoints already follow the lanes every ~2 m, so here they
are interpolated linearly to 1 m and the road options are labelled from the SUMO lanes: points on junction
(internal) lanes get LEFT / RIGHT / STRAIGHT from the heading change across the junction, a move to the
neighbouring lane of the same road gets CHANGELANELEFT / CHANGELANERIGHT, everything else LANEFOLLOW.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from carla_tools.lite.compat import RoadOption, make_transform
from carla_tools.lite.town import TownMap
from drive_jepa.frames import carla_points_to_world, wrap_angle
from drive_jepa.routes import Route

TURN_THRESHOLD = np.radians(30.0)  # heading change across a junction that makes it a turn


@dataclass(frozen=True)
class DenseRoute:
    """The 1 m route. xyz (N, 3) CARLA_WORLD; world_xy (N, 2) and heading (N,) in WORLD; options (N,) ints."""

    xyz: np.ndarray
    world_xy: np.ndarray
    heading: np.ndarray
    options: np.ndarray
    lanes: np.ndarray  # (N,) nearest drivable lane index of each point (TownMap.lanes)
    accum: np.ndarray  # (N,) metres along the route

    @property
    def length(self) -> float:
        return float(self.accum[-1])

    @property
    def yaw_deg(self) -> np.ndarray:
        """CARLA yaw (degrees) of each point: −heading."""
        return np.degrees(-self.heading)


def interpolate(waypoints: np.ndarray, step: float = 1.0) -> np.ndarray:
    """Polyline (K, 3) → points every `step` metres (2D arc length), keeping the last point."""
    d = np.hypot(*np.diff(waypoints[:, :2], axis=0).T)
    keep = np.concatenate([[True], d > 1e-6])
    wp = waypoints[keep]
    s = np.concatenate([[0.0], np.cumsum(d[d > 1e-6])])
    if s[-1] <= 0:
        raise ValueError("route has no length")
    t = np.arange(0.0, s[-1], step)
    if s[-1] - t[-1] > 1e-6:
        t = np.concatenate([t, [s[-1]]])
    return np.stack([np.interp(t, s, wp[:, k]) for k in range(3)], -1)


def _arc(shape: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(shape, axis=0).T))])


def _project(shape: np.ndarray, p: np.ndarray) -> float:
    """Arc length along a polyline of the point nearest to p."""
    a, b = shape[:-1], shape[1:]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab**2).sum(1), 1e-12), 0.0, 1.0)
    d = np.hypot(*(a + t[:, None] * ab - p).T)
    j = int(d.argmin())
    return float(_arc(shape)[j] + t[j] * np.hypot(*ab[j]))


def _cut(shape: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """The part of a polyline between arc lengths s0 < s1."""
    acc = _arc(shape)
    inner = shape[(acc > s0) & (acc < s1)]
    start = np.array([np.interp(s0, acc, shape[:, 0]), np.interp(s0, acc, shape[:, 1])])
    end = np.array([np.interp(s1, acc, shape[:, 0]), np.interp(s1, acc, shape[:, 1])])
    return np.concatenate([start[None], inner, end[None]])


def lane_path(town: TownMap, a: np.ndarray, b: np.ndarray, max_depth: int = 4) -> np.ndarray | None:
    """WORLD polyline from point a to point b along SUMO lanes (breadth-first over at most `max_depth`
    junctions), like the leaderboard's GlobalRoutePlanner fills the gaps between route keypoints; None if b
    cannot be reached from a's lane."""
    (la, lb), _, _, _ = town.nearest_lanes(np.stack([a, b]))
    la, lb = int(la), int(lb)
    sa = _project(town.lanes[la].shape, a)
    sb = _project(town.lanes[lb].shape, b)
    if la == lb and sb >= sa:
        return _cut(town.lanes[la].shape, sa, sb)
    frontier: list[list[int]] = [[la]]
    for _ in range(max_depth):
        nxt: list[list[int]] = []
        for path in frontier:
            for via, to in town.successors.get(path[-1], []):
                new = [*path, via, to] if via >= 0 else [*path, to]
                if to == lb:
                    first = town.lanes[la].shape
                    parts = [_cut(first, sa, float(_arc(first)[-1]))]
                    parts += [town.lanes[i].shape for i in new[1:-1]]
                    parts.append(_cut(town.lanes[lb].shape, 0.0, sb))
                    return np.concatenate(parts)
                nxt.append(new)
        frontier = nxt
    return None


def densify(route: Route, town: TownMap, gap: float = 3.0) -> np.ndarray:
    """Route keypoints (K, 3) CARLA_WORLD with every gap wider than `gap` m filled along the lanes."""
    wp = route.waypoints
    out = [wp[:1]]
    for p, q in itertools.pairwise(wp):
        if np.hypot(*(q[:2] - p[:2])) > gap:
            path = lane_path(town, carla_points_to_world(p[:2]), carla_points_to_world(q[:2]))
            if path is not None and len(path) > 2:
                inner = carla_points_to_world(path[1:-1])
                t = np.linspace(0.0, 1.0, len(path))[1:-1, None]
                out.append(np.concatenate([inner, p[2] + t * (q[2] - p[2])], -1))
        out.append(q[None])
    return np.concatenate(out)


def build_dense_route(route: Route, town: TownMap, step: float = 1.0) -> DenseRoute:
    xyz = interpolate(densify(route, town), step)
    world = carla_points_to_world(xyz[:, :2])
    d = np.diff(world, axis=0)
    heading = np.arctan2(d[:, 1], d[:, 0])
    heading = np.concatenate([heading, heading[-1:]])
    lanes, _, _, _ = town.nearest_lanes(world)
    internal = np.array([town.lanes[i].internal for i in lanes])
    options = np.full(len(xyz), int(RoadOption.LANEFOLLOW))
    # junction runs -> turn direction from the heading change between entry and exit
    n = len(xyz)
    i = 0
    while i < n:
        if not internal[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and internal[j + 1]:
            j += 1
        h_in = heading[max(i - 1, 0)]
        h_out = heading[min(j + 1, n - 1)]
        dh = float(wrap_angle(h_out - h_in))
        opt = (
            RoadOption.LEFT
            if dh > TURN_THRESHOLD
            else RoadOption.RIGHT
            if dh < -TURN_THRESHOLD
            else RoadOption.STRAIGHT
        )
        options[i : j + 1] = int(opt)
        i = j + 1
    # lane changes on the same road (SUMO lane index grows to the left)
    for k in range(1, n):
        la, lb = town.lanes[lanes[k - 1]], town.lanes[lanes[k]]
        if not la.internal and not lb.internal and la.edge_id == lb.edge_id and la.index != lb.index:
            options[k] = int(RoadOption.CHANGELANELEFT if lb.index > la.index else RoadOption.CHANGELANERIGHT)
    accum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xyz[:, :2], axis=0).T))])
    return DenseRoute(xyz, world, heading, options, lanes, accum)


def downsample_route(positions: np.ndarray, options: np.ndarray, sample_factor: float = 50.0) -> list[int]:
    """Indices kept by the leaderboard's `downsample_route`: lane changes, road-option changes, every
    `sample_factor` metres of travel, and the last point. `positions` (N, 2+) metres."""
    lane_changes = {int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT)}
    ids: list[int] = []
    prev: int | None = None
    dist = 0.0
    for i, opt in enumerate(options.tolist()):
        if (
            opt in lane_changes
            or (prev != opt and prev not in lane_changes)
            or dist > sample_factor
            or i == len(options) - 1
        ):
            ids.append(i)
            dist = 0.0
        else:
            dist += float(np.linalg.norm(positions[i, :2] - positions[i - 1, :2]))
        prev = opt
    return ids


def global_plan(dense: DenseRoute, town: TownMap) -> tuple[list[tuple[dict[str, float], Any]], list[tuple[Any, Any]]]:
    """The (gps_route, world_route) pair the leaderboard passes to `agent.set_global_plan` (dense, 1 m).

    world items: (carla.Transform, RoadOption); gps items: ({'lat', 'lon', 'z'}, RoadOption) with the
    leaderboard's GNSS conversion around the town's geo-reference.
    """
    latlon = town.geo.carla_to_gnss(dense.xyz[:, :2])
    yaw = dense.yaw_deg
    world_route = []
    gps_route = []
    for k in range(len(dense.xyz)):
        opt = RoadOption(int(dense.options[k]))
        x, y, z = (float(v) for v in dense.xyz[k])
        world_route.append((make_transform(x, y, z, float(yaw[k])), opt))
        gps_route.append(({"lat": float(latlon[k, 0]), "lon": float(latlon[k, 1]), "z": z}, opt))
    return gps_route, world_route


def route_light_links(
    dense: DenseRoute, town: TownMap, tol: float = 2.5, max_score: float = 2.0
) -> list[tuple[float, int]]:
    """Signalled connections the route drives through: (route arc length of the stop line, index into
    `town.tl_links`), one per approach. A from-lane counts when its stop line is within `tol` m of the route;
    of
    its links the one whose junction lane best follows the route over its first 8 m is taken (SUMO's junction
    curves differ from CARLA's, and routes may end inside the junction); a link whose lane stays `max_score` m
    (mean) or more from the route does not count."""
    best: dict[int, tuple[float, float, int]] = {}  # from_lane -> (score, s, link index)
    for k, link in enumerate(town.tl_links):
        stop = np.hypot(*(dense.world_xy - link.stop_xy).T)
        j = int(stop.argmin())
        if stop[j] > tol or np.cos(dense.heading[j] - link.stop_heading) < 0.7:
            continue
        via = town.lanes[link.via_lane].shape
        seg = np.hypot(*np.diff(via, axis=0).T)
        acc = np.concatenate([[0.0], np.cumsum(seg)])
        t = np.linspace(0.0, min(8.0, float(acc[-1])), 9)
        pts = np.stack([np.interp(t, acc, via[:, 0]), np.interp(t, acc, via[:, 1])], -1)
        after = dense.world_xy[j:]
        if len(after) < 2:
            continue
        score = float(np.hypot(*(pts[:, None, :] - after[None]).transpose(2, 0, 1)).min(1).mean())
        if score < max_score and (link.from_lane not in best or score < best[link.from_lane][0]):
            best[link.from_lane] = (score, float(dense.accum[j]), k)
    return sorted((s_, k) for _, s_, k in best.values())

"""The SUMO nets of the CARLA towns: Bench2Drive's route waypoints land on their driving lanes, SUMO runs
them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from carla_tools.lite.route import build_dense_route, downsample_route, global_plan
from carla_tools.lite.town import TOWNS, load_town
from carla_tools.lite.traffic import SumoTraffic
from drive_jepa.frames import carla_points_to_world
from drive_jepa.routes import load_routes
from tests.conftest import fixtures_dir

ROUTE_FILES = ("bench2drive220.xml", "bench2drive_0.0.4_val.xml", "drivetransformer_bench2drive_dev10.xml")


def _lite_routes() -> list:
    folder = fixtures_dir("bench2drive", "routes")
    return [r for f in ROUTE_FILES for r in load_routes(folder / f) if r.town in TOWNS]


def test_all_route_waypoints_lie_on_sumo_driving_lanes() -> None:
    routes = _lite_routes()
    assert len(routes) == 55 + 29 + 3  # the Town01–07/10HD routes of the three files
    for town in sorted({r.town for r in routes}):
        tmap = load_town(town)
        for r in (r for r in routes if r.town == town):
            world = carla_points_to_world(r.waypoints[:, :2])
            lanes, dist, heading, width = tmap.nearest_lanes(world)
            # every waypoint inside a drivable lane (centre-line distance below half the lane width)
            assert np.all(dist < width / 2), (
                f"route {r.id} ({town}): waypoint {dist.argmax()} is {dist.max():.2f} m off"
            )
            # and the route runs along its lanes, not across them (direction within 60° away from junctions)
            d = np.diff(world, axis=0)
            route_h = np.arctan2(d[:, 1], d[:, 0])
            internal = np.array([tmap.lanes[i].internal for i in lanes[:-1]])
            dh = np.abs((route_h - heading[:-1] + np.pi) % (2 * np.pi) - np.pi)
            ok = dh[~internal & (np.hypot(d[:, 0], d[:, 1]) > 0.5)] < np.radians(60)
            assert ok.mean() > 0.9, f"route {r.id} ({town}) runs against its lanes"


def test_dense_routes_follow_driving_lanes_through_junctions() -> None:
    """Keypoint gaps (up to ~67 m across junctions) are filled along the SUMO lanes, as CARLA's route planner
    does: no point of any dense route is off the driving lanes or against their direction."""
    for r in _lite_routes():
        tmap = load_town(r.town)
        dense = build_dense_route(r, tmap)
        lanes, dist, heading, width = tmap.nearest_lanes(dense.world_xy)
        junction = np.array(
            [tmap.lanes[i].internal or tmap.in_junction(p) for i, p in zip(lanes, dense.world_xy, strict=True)]
        )
        off = (dist > width / 2 + 0.5) & ~junction
        dh = np.abs((heading - dense.heading + np.pi) % (2 * np.pi) - np.pi)
        wrong = (dh > np.radians(120)) & ~junction
        assert not off.any() and not wrong.any(), f"route {r.id} ({r.town}) leaves its lanes"
        assert dense.length >= 0.98 * r.length_m


def test_dense_route_global_plan_like_the_leaderboard() -> None:
    routes = [r for r in _lite_routes() if r.town == "Town01"]
    tmap = load_town("Town01")
    dense = build_dense_route(routes[0], tmap)
    steps = np.hypot(*np.diff(dense.xyz[:, :2], axis=0).T)
    assert np.all(steps <= 1.0 + 1e-9) and dense.length >= 0.98 * routes[0].length_m
    gps, world = global_plan(dense, tmap)
    assert len(gps) == len(world) == len(dense.xyz)
    assert set(gps[0][0]) == {"lat", "lon", "z"}
    back = tmap.geo.gnss_to_carla(np.array([[g["lat"], g["lon"]] for g, _ in gps]))
    np.testing.assert_allclose(back, dense.xyz[:, :2], atol=1e-6)
    assert abs(world[5][0].location.x - dense.xyz[5, 0]) < 1e-3
    ids = downsample_route(dense.xyz, dense.options, 50.0)
    assert ids[0] == 0 and ids[-1] == len(dense.xyz) - 1
    assert all(b > a for a, b in itertools.pairwise(ids))
    gaps = np.diff(dense.accum[ids])
    assert gaps.max() <= 52.0  # ~50 m apart at most (+ one 1 m step)
    # a route through a junction gets a turn/straight option there
    opts = {int(o) for r in routes for o in build_dense_route(r, tmap).options}
    assert opts & {1, 2, 3}


@pytest.mark.parametrize("town", TOWNS)
def test_sumo_runs_each_town_with_traffic_lights(town: str) -> None:
    tmap = load_town(town)
    centre = tmap.lanes[len(tmap.lanes) // 2].shape[0]
    with SumoTraffic(tmap, seed=1, num_vehicles=20, spawn_center=centre, spawn_radius=400) as traffic:
        for _ in range(40):
            traffic.step()
        lights = traffic.light_states()
        actors = traffic.actors(centre, radius=5000)
    assert lights and all(set(s) <= set("rRyYgGsuoO") for s in lights.values())
    assert len(actors.ids) >= 10 and np.all(actors.length > 3)
    assert tmap.tl_links, "signalled connections parsed from the net"

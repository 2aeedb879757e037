"""The SUMO -> scene-map converter on the real CARLA towns: Bench2Drive routes lie in the drivable area."""

from __future__ import annotations

import numpy as np
import pytest

from drive_jepa.frames import carla_points_to_world
from drive_jepa.routes import load_routes
from tests.conftest import fixtures_dir

shapely = pytest.importorskip("shapely")

TOWNS = ["Town01", "Town02", "Town03", "Town04", "Town05", "Town06", "Town07", "Town10HD"]


@pytest.mark.parametrize("town", TOWNS)
def test_routes_inside_drivable_area(town: str) -> None:
    from carla_tools.sumo_map import drivable_area, load_sumo_net

    m = load_sumo_net(fixtures_dir("carla_maps", f"{town}.net.xml.gz"))
    assert m["lanes"] and m["drivable_map"]
    ids = {r["id"] for r in m["roadblocks"]} | {i["id"] for i in m["intersections"]}
    ids |= {x["id"] for x in m["lanes"]}
    assert all(e["token"] in ids for e in m["drivable_map"])
    lanes = {x["id"]: x for x in m["lanes"]}
    assert all(s in lanes for x in m["lanes"] for s in x["successors"])
    da = drivable_area(m)
    all_routes = load_routes(fixtures_dir("bench2drive", "routes", "bench2drive220.xml"))
    routes = [r for r in all_routes if r.town == town]
    assert routes
    pts = np.concatenate([carla_points_to_world(r.waypoints)[:, :2] for r in routes])
    inside = shapely.contains_xy(da, pts[:, 0], pts[:, 1])
    assert inside.mean() >= 0.99, f"{town}: {inside.sum()}/{len(inside)} route waypoints in the drivable area"

"""Exactness of the grid geometry against shapely on a real fixture map (strict containment, distances)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import fixtures_dir
from training.scoring.geometry import (
    PolygonBits,
    PolygonGrid,
    SegmentGrid,
    box_corners,
    convex_quads_intersect,
    obb_intersect,
    polyline_project,
)
from training.scoring.scene import load_scene_json

shapely = pytest.importorskip("shapely")


def _scene():
    sc = load_scene_json(fixtures_dir("navsim_scorer", "scene_19.json.gz"))
    return sc, sc.origin[:2].numpy()


def test_point_in_polygon_matches_shapely() -> None:
    sc, o = _scene()
    rings = [sc.map.drivable.ring(i) - o for i in range(len(sc.map.drivable))]
    grid = PolygonBits.from_grid(PolygonGrid.build(rings, 0.25))
    pts = np.random.default_rng(0).uniform(-120, 120, size=(100_000, 2))
    bits = grid.query(torch.from_numpy(pts)).numpy()
    mine = np.stack([(bits[:, p // 62] >> (p % 62)) & 1 for p in range(len(rings))], 1).astype(bool)
    ref = np.stack([shapely.contains_xy(shapely.Polygon(r), pts[:, 0], pts[:, 1]) for r in rings], 1)
    assert (mine == ref).all()
    # union geometry with several rings
    union = shapely.unary_union([shapely.Polygon(r).buffer(0) for r in rings])
    ub = PolygonBits.from_grid(PolygonGrid.build([union], 0.25)).query(torch.from_numpy(pts)).numpy()[:, 0]
    assert ((ub & 1).astype(bool) == shapely.contains_xy(union, pts[:, 0], pts[:, 1])).all()


def test_polyline_distance_and_projection() -> None:
    sc, o = _scene()
    line = sc.route.centerline[:, :2].numpy() - o
    pts = np.random.default_rng(1).uniform(-80, 80, size=(20_000, 2))
    ls = shapely.LineString(line)
    far = SegmentGrid.build(line, 0.5).farther_than(torch.from_numpy(pts)).numpy()
    assert (far == (shapely.distance(shapely.points(pts), ls) > 0.5)).all()
    s, d = polyline_project(torch.from_numpy(pts), torch.from_numpy(line))
    np.testing.assert_allclose(s.numpy(), shapely.line_locate_point(ls, shapely.points(pts)), atol=1e-9)
    np.testing.assert_allclose(d.numpy(), shapely.distance(shapely.points(pts), ls), atol=1e-9)


def test_box_overlap_matches_shapely() -> None:
    g = np.random.default_rng(2)
    a = torch.from_numpy(g.uniform(-3, 3, size=(5000, 5)))
    b = torch.from_numpy(g.uniform(-3, 3, size=(5000, 5)))
    ca = box_corners(a[:, 0], a[:, 1], a[:, 2], a[:, 3].abs() + 0.5, a[:, 4].abs() + 0.3)
    cb = box_corners(b[:, 0], b[:, 1], b[:, 2], b[:, 3].abs() + 0.5, b[:, 4].abs() + 0.3)
    mine = convex_quads_intersect(ca, cb).numpy()
    ref = shapely.intersects(shapely.polygons(ca.numpy()), shapely.polygons(cb.numpy()))
    assert (mine == ref).all()
    # centre / half-extent form used by the scorer's narrow phase
    obb = obb_intersect(
        a[:, 0], a[:, 1], torch.cos(a[:, 2]), torch.sin(a[:, 2]), a[:, 3].abs() + 0.5, a[:, 4].abs() + 0.3,
        b[:, 0], b[:, 1], torch.cos(b[:, 2]), torch.sin(b[:, 2]), b[:, 3].abs() + 0.5, b[:, 4].abs() + 0.3,
    ).numpy()  # fmt: skip
    assert (obb == ref).all() and 0.05 < ref.mean() < 0.95

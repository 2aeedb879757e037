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
    bit_index,
    box_corners,
    convex_quads_intersect,
    obb_intersect,
    polyline_project,
    popcount64,
    segment_quad_intersect,
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
    # points beyond the grid are clamped onto its border cells, which hold no segment: far
    out = torch.tensor([[1e4, 0.0], [-1e4, 3.0], [0.0, 1e5], [5.0, -1e5]], dtype=torch.float64) + torch.from_numpy(
        line[0]
    )
    assert SegmentGrid.build(line, 0.5).farther_than(out).all()
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


def test_bit_index_matches_popcount() -> None:
    k = torch.arange(62)
    low = torch.ones_like(k) << k
    assert torch.equal(bit_index(low), k)
    assert torch.equal(bit_index(low), popcount64(low - 1))


def test_reach_table_decides_every_point_in_reach() -> None:
    """Where the table says 1 (2), every point within the reach of a point of the cell is inside (outside)."""
    sc, o = _scene()
    rings = [sc.map.drivable.ring(i) - o for i in range(len(sc.map.drivable))]
    union = shapely.unary_union([shapely.Polygon(r).buffer(0) for r in rings])
    bits = PolygonBits.from_grid(PolygonGrid.build([union], 0.25))
    reach = 2.83
    table = bits.reach_table(0, reach)
    g = np.random.default_rng(3)
    centre = torch.from_numpy(g.uniform(-100, 100, size=(20_000, 2)))
    code = table.index_select(0, bits.cell_ids(centre[:, 0].contiguous(), centre[:, 1].contiguous())).numpy()
    assert (code == 1).mean() > 0.05 and (code == 2).mean() > 0.05 and (code == 0).mean() > 0.05
    ang = torch.from_numpy(g.uniform(0, 2 * np.pi, size=(20_000, 8)))
    rad = reach * torch.from_numpy(np.sqrt(g.uniform(0, 1, size=(20_000, 8))))
    rad[:, 0] = reach  # on the circle itself (the ego corners)
    q = (centre[:, None] + torch.stack([rad * torch.cos(ang), rad * torch.sin(ang)], -1)).reshape(-1, 2).numpy()
    inside = shapely.contains_xy(union, q[:, 0], q[:, 1]).reshape(-1, 8)
    assert inside[code == 1].all() and not inside[code == 2].any()


def test_segment_quad_matches_shapely() -> None:
    g = np.random.default_rng(4)
    b = torch.from_numpy(g.uniform(-3, 3, size=(5000, 5)))
    quad = box_corners(b[:, 0], b[:, 1], b[:, 2], b[:, 3].abs() + 0.5, b[:, 4].abs() + 0.3)
    p0 = torch.from_numpy(g.uniform(-4, 4, size=(5000, 2)))
    p1 = p0 + torch.from_numpy(g.uniform(-2, 2, size=(5000, 2)))
    mine = segment_quad_intersect(p0, p1, quad).numpy()
    ref = shapely.intersects(shapely.linestrings(torch.stack([p0, p1], 1).numpy()), shapely.polygons(quad.numpy()))
    assert (mine == ref).all() and 0.05 < ref.mean() < 0.95


def test_corner_codes_match_corner_queries() -> None:
    """The scorer's drivable-area corner test (cell-unit corner offsets, 1-byte codes, exact test only for
    boundary corners) agrees with querying the four `box_corners` points, on boxes around the map edges."""
    from training.scoring.geometry import cell_coord
    from training.scoring.scorer import PDMScorer

    sc, _ = _scene()
    scorer = PDMScorer(sc)
    grid = scorer.grid.grid
    g = np.random.default_rng(5)
    m = 200_000
    # centres over the whole grid and beyond it (clamped into its inner part by the scorer)
    lo = grid.origin.numpy() - 5.0
    hi = grid.origin.numpy() + np.array([grid.nx, grid.ny]) * grid.cell + 5.0
    cx = torch.from_numpy(g.uniform(lo[0], hi[0], m))
    cy = torch.from_numpy(g.uniform(lo[1], hi[1], m))
    h = torch.from_numpy(g.uniform(-np.pi, np.pi, m))
    c, s = torch.cos(h), torch.sin(h)
    band = scorer.corner_band
    gcx = cell_coord(cx, grid.origin[0], grid.cell).clamp_(band, grid.nx - 1 - band)
    gcy = cell_coord(cy, grid.origin[1], grid.cell).clamp_(band, grid.ny - 1 - band)
    off = scorer._corners_off_drivable(cx, cy, c, s, gcx, gcy)
    corners = box_corners(cx, cy, h, scorer.half_l, scorer.half_w).reshape(-1, 2)
    inside = (scorer.grid.query(corners)[:, 0] & 1).bool().view(m, 4)
    ref = ~inside.all(1)
    assert torch.equal(off, ref) and 0.05 < ref.double().mean() < 0.95


def test_scene_without_drivable_area_is_a_clear_error() -> None:
    import gzip
    import json

    from training.scoring.scene import SceneFormatError, scene_from_dict
    from training.scoring.scorer import PDMScorer

    with gzip.open(fixtures_dir("navsim_scorer", "scene_19.json.gz"), "rt") as f:
        d = json.load(f)
    d["map"]["drivable_map"] = []
    with pytest.raises(SceneFormatError, match="no drivable-area polygon"):
        PDMScorer(scene_from_dict(d))

"""Vectorized 2D geometry for the scorer (torch, CPU or CUDA): oriented boxes, separating-axis overlap,
exact point-in-polygon through a uniform grid index, and polyline projection/distance.

All coordinates are in the scorer's local frame (metres; global minus the scene origin). Predicates follow
shapely's, as NAVSIM uses them: `intersects` is closed (touching counts), `contains` is strict (points on the
boundary are outside).

PolygonGrid: each grid cell stores, per polygon, whether the cell is entirely inside (no polygon edge crosses
it) or on the boundary; for boundary cells it stores the cell centre's inside flag and the polygon edges that
cross the cell. A point in a boundary cell is inside iff (centre inside) XOR (the segment centre->point crosses
an odd number of those edges) — exact, because that segment stays inside the cell. The index is built once per
scene (numpy + shapely for cell centres); queries (`PolygonBits`) are pure torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

_D = TypeVar("_D")


def _to_device(obj: _D, device: torch.device | str) -> _D:
    """A copy of dataclass `obj` with every tensor field moved to `device` (other fields shared)."""
    moved = {
        f.name: v.to(device) if isinstance(v := getattr(obj, f.name), torch.Tensor) else v
        for f in dataclasses.fields(obj)  # type: ignore[arg-type]
    }
    return type(obj)(**moved)


def vector_hypot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`torch.hypot` of same-shape a, b through its vectorised path only (flattened and zero-padded to a whole
    number of 16-element steps; a shorter tail runs the scalar libm loop, whose results can differ by an
    ulp), so a value does not depend on where it sits in the tensor."""
    n = a.numel()
    pad = -n % 16
    fa, fb = torch.nn.functional.pad(a.reshape(-1), (0, pad)), torch.nn.functional.pad(b.reshape(-1), (0, pad))
    return torch.hypot(fa, fb)[:n].view(a.shape)


def box_corners(
    cx: torch.Tensor,
    cy: torch.Tensor,
    h: torch.Tensor,
    half_l: torch.Tensor | float,
    half_w: torch.Tensor | float,
) -> torch.Tensor:
    """Oriented boxes -> corners (..., 4, 2) in ring order front-left, rear-left, rear-right, front-right."""
    c, s = torch.cos(h), torch.sin(h)
    fx, fy = c * half_l, s * half_l
    lx, ly = -s * half_w, c * half_w
    # centre +- (front +- left) offsets; the scorer's per-corner grid lookups use the same arithmetic
    ax, bx, ay, by = fx + lx, fx - lx, fy + ly, fy - ly
    xs = torch.stack([cx + ax, cx - bx, cx - ax, cx + bx], -1)
    ys = torch.stack([cy + ay, cy - by, cy - ay, cy + by], -1)
    return torch.stack([xs, ys], -1)


def _axes(corners: torch.Tensor) -> torch.Tensor:
    """Edge directions of a rectangle (..., 4, 2) -> its two separating axes (..., 2, 2) (unnormalised)."""
    e0 = corners[..., 0, :] - corners[..., 1, :]
    e1 = corners[..., 1, :] - corners[..., 2, :]
    return torch.stack([e0, e1], -2)


def convex_quads_intersect(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Closed intersection test of rectangles a, b (..., 4, 2) by separating axes."""
    axes = torch.cat([_axes(a), _axes(b)], -2)  # (..., 4, 2)
    pa = torch.einsum("...kd,...ad->...ak", a, axes)  # (..., 4 axes, 4 corners)
    pb = torch.einsum("...kd,...ad->...ak", b, axes)
    sep = (pa.amax(-1) < pb.amin(-1)) | (pb.amax(-1) < pa.amin(-1))
    return ~sep.any(-1)


def obb_intersect(
    ax: torch.Tensor,
    ay: torch.Tensor,
    ac: torch.Tensor,
    as_: torch.Tensor,
    a_hl: torch.Tensor | float,
    a_hw: torch.Tensor | float,
    bx: torch.Tensor,
    by: torch.Tensor,
    bc: torch.Tensor,
    bs: torch.Tensor,
    b_hl: torch.Tensor | float,
    b_hw: torch.Tensor | float,
) -> torch.Tensor:
    """Closed intersection of oriented boxes given as centre, (cos, sin) of the heading and half sizes.

    The separating-axis test of `convex_quads_intersect` written with centres and half extents: along each of
    the four box axes the boxes are separated iff |centre offset . axis| > the sum of the projected half
    extents. No corners are built, so it needs ~1/3 of the memory traffic of the corner form."""
    dx, dy = bx - ax, by - ay
    cab = (ac * bc + as_ * bs).abs()  # |cos(b - a)|
    sab = (ac * bs - as_ * bc).abs()  # |sin(b - a)|
    sep = (dx * ac + dy * as_).abs() > a_hl + b_hl * cab + b_hw * sab
    sep |= (dy * ac - dx * as_).abs() > a_hw + b_hl * sab + b_hw * cab
    sep |= (dx * bc + dy * bs).abs() > b_hl + a_hl * cab + a_hw * sab
    sep |= (dy * bc - dx * bs).abs() > b_hw + a_hl * sab + a_hw * cab
    return ~sep


def segment_quad_intersect(p0: torch.Tensor, p1: torch.Tensor, quad: torch.Tensor) -> torch.Tensor:
    """Closed intersection of segments p0->p1 (..., 2) with rectangles (..., 4, 2) by separating axes (the
    rectangle's two edge directions and the segment's normal). Computed on contiguous per-corner component
    rows: reductions over trailing dims of 2 or 4 are slow on CPU."""
    q = quad.movedim(-1, 0).movedim(-1, 0).contiguous()  # (4, 2, ...): q[j, 0] = x of corner j
    s0, s1 = p0.movedim(-1, 0).contiguous(), p1.movedim(-1, 0).contiguous()  # (2, ...)
    axes = (
        (q[0, 0] - q[1, 0], q[0, 1] - q[1, 1]),
        (q[1, 0] - q[2, 0], q[1, 1] - q[2, 1]),
        (-(s1[1] - s0[1]), s1[0] - s0[0]),  # the segment's normal
    )
    sep = torch.zeros(q.shape[2:], dtype=torch.bool, device=quad.device)
    for ux, uy in axes:
        a, b = s0[0] * ux + s0[1] * uy, s1[0] * ux + s1[1] * uy
        pq = [q[j, 0] * ux + q[j, 1] * uy for j in range(4)]
        pq_lo = torch.minimum(torch.minimum(pq[0], pq[1]), torch.minimum(pq[2], pq[3]))
        pq_hi = torch.maximum(torch.maximum(pq[0], pq[1]), torch.maximum(pq[2], pq[3]))
        sep |= (torch.maximum(a, b) < pq_lo) | (pq_hi < torch.minimum(a, b))
    return ~sep


def _orient(
    ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor, px: torch.Tensor, py: torch.Tensor
) -> torch.Tensor:
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


@dataclass
class PolygonGrid:
    """Grid index over P simple polygons for exact strict point-in-polygon queries (see module docstring)."""

    origin: torch.Tensor  # (2,)
    cell: float
    nx: int
    ny: int
    cell_start: torch.Tensor  # (nx*ny + 1,) int64 CSR offsets into entries
    entry_poly: torch.Tensor  # (E,) int64
    entry_boundary: torch.Tensor  # (E,) bool
    entry_centre_inside: torch.Tensor  # (E,) bool
    entry_edges: torch.Tensor  # (E, Emax, 4) float64 (x0, y0, x1, y1); degenerate padding
    num_polygons: int

    def to(self, device: torch.device | str) -> PolygonGrid:
        return _to_device(self, device)

    @staticmethod
    def build(rings: list[Any], cell: float = 0.5, pad: float = 1.0) -> PolygonGrid:
        """Index polygons: each a ring (V, 2) (local frame, not closed) or a shapely (Multi)Polygon, whose
        exterior and interior rings all count for the crossing parity (holes allowed)."""
        import shapely

        geoms = [r if hasattr(r, "geom_type") else shapely.Polygon(np.asarray(r, dtype=np.float64)) for r in rings]
        for g in geoms:
            shapely.prepare(g)  # indexed point-in-polygon for the many cell-centre queries below
        rings = [
            np.concatenate([np.asarray(c.coords)[:-1] for c in _rings_of(g)], 0) if not g.is_empty else np.zeros((0, 2))
            for g in geoms
        ]
        edge_lists = [_edges_of(g) for g in geoms]

        if not rings:
            z = torch.zeros(0, dtype=torch.int64)
            return PolygonGrid(
                torch.zeros(2, dtype=torch.float64),
                cell,
                1,
                1,
                torch.zeros(2, dtype=torch.int64),
                z,
                z.bool(),
                z.bool(),
                torch.zeros(0, 1, 4, dtype=torch.float64),
                0,
            )
        allv = np.concatenate(rings, 0)
        lo = allv.min(0) - pad
        hi = allv.max(0) + pad
        nx = int(np.ceil((hi[0] - lo[0]) / cell)) + 1
        ny = int(np.ceil((hi[1] - lo[1]) / cell)) + 1
        ent_poly: list[np.ndarray] = []
        ent_cell: list[np.ndarray] = []
        ent_bnd: list[np.ndarray] = []
        ent_cin: list[np.ndarray] = []
        ent_edges: list[tuple[np.ndarray | None, int]] = []
        step = cell / 4.0
        for p, ring in enumerate(rings):
            if len(ring) == 0:
                continue
            a, b = edge_lists[p]
            seg_len = np.hypot(*(b - a).T)
            ns = np.maximum(np.ceil(seg_len / step).astype(np.int64), 1) + 1
            eid = np.repeat(np.arange(len(a)), ns)
            first = np.repeat(np.cumsum(ns) - ns, ns)
            t = (np.arange(ns.sum()) - first) / np.repeat(ns - 1, ns)
            pts = a[eid] + (b[eid] - a[eid]) * t[:, None]
            ij = np.floor((pts - lo) / cell).astype(np.int64)
            # consecutive samples in diagonal cells: add both 4-neighbours (conservative supercover)
            same_edge = eid[1:] == eid[:-1]
            di = ij[1:] - ij[:-1]
            diag = same_edge & (di[:, 0] != 0) & (di[:, 1] != 0)
            extra1 = np.stack([ij[1:, 0][diag], ij[:-1, 1][diag]], 1)
            extra2 = np.stack([ij[:-1, 0][diag], ij[1:, 1][diag]], 1)
            cells_ij = np.concatenate([ij, extra1, extra2], 0)
            cells_e = np.concatenate([eid, eid[1:][diag], eid[1:][diag]], 0)
            cid = cells_ij[:, 0] * ny + cells_ij[:, 1]
            pairs = np.unique(np.stack([cid, cells_e], 1), axis=0)
            bcells, bstart, bcount = np.unique(pairs[:, 0], return_index=True, return_counts=True)
            emax = int(bcount.max())
            edges = np.full((len(bcells), emax, 4), np.nan)
            slot = np.arange(len(pairs)) - np.repeat(bstart, bcount)
            row = np.repeat(np.arange(len(bcells)), bcount)
            edges[row, slot] = np.concatenate([a, b], 1)[pairs[:, 1]]
            poly = geoms[p]
            centres = lo + (np.stack([bcells // ny, bcells % ny], 1) + 0.5) * cell
            cin = shapely.contains_xy(poly, centres[:, 0], centres[:, 1])
            ent_poly.append(np.full(len(bcells), p))
            ent_cell.append(bcells)
            ent_bnd.append(np.ones(len(bcells), bool))
            ent_cin.append(cin)
            ent_edges.append((edges, 0))
            # interior cells: bbox cells not on the boundary whose centre is inside
            i0, j0 = np.floor((ring.min(0) - lo) / cell).astype(np.int64)
            i1, j1 = np.floor((ring.max(0) - lo) / cell).astype(np.int64)
            ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
            cc = ii * ny + jj
            on_boundary = np.zeros(nx * ny, bool)
            on_boundary[bcells] = True
            inside = _scanline_inside(a, b, lo, cell, (i0, i1), (j0, j1)) & ~on_boundary[cc]
            cc = cc[inside]
            ent_poly.append(np.full(len(cc), p))
            ent_cell.append(cc)
            ent_bnd.append(np.zeros(len(cc), bool))
            ent_cin.append(np.ones(len(cc), bool))
            ent_edges.append((None, len(cc)))
        emax = max(e[0].shape[1] for e in ent_edges if e[0] is not None)
        blocks = []
        for e in ent_edges:
            rows = e[1] if e[0] is None else e[0].shape[0]
            blk = np.full((rows, emax, 4), np.nan)
            if e[0] is not None:
                blk[:, : e[0].shape[1]] = e[0]
            blocks.append(blk)
        edges_all = np.concatenate(blocks, 0)
        poly_all = np.concatenate(ent_poly)
        cell_all = np.concatenate(ent_cell)
        order = np.argsort(cell_all, kind="stable")
        counts = np.bincount(cell_all, minlength=nx * ny)
        start = np.concatenate([[0], np.cumsum(counts)])
        return PolygonGrid(
            origin=torch.from_numpy(lo.astype(np.float64)),
            cell=cell,
            nx=nx,
            ny=ny,
            cell_start=torch.from_numpy(start.astype(np.int64)),
            entry_poly=torch.from_numpy(poly_all[order].astype(np.int64)),
            entry_boundary=torch.from_numpy(np.concatenate(ent_bnd)[order]),
            entry_centre_inside=torch.from_numpy(np.concatenate(ent_cin)[order]),
            entry_edges=torch.from_numpy(edges_all[order]),
            num_polygons=len(rings),
        )


def _scanline_inside(
    a: np.ndarray, b: np.ndarray, lo: np.ndarray, cell: float, irange: tuple[int, int], jrange: tuple[int, int]
) -> np.ndarray:
    """Inside flags (ni, nj) of the cell centres i0..i1 x j0..j1 by the crossing parity of a +x ray against
    the edges a -> b of every ring (half-open in y, holes included).

    Exact for every cell that no edge crosses (its centre is far from all edges); cells that an edge crosses
    are boundary cells, whose flags the caller does not use. Replaces ~1e6 shapely point queries per map."""
    (i0, i1), (j0, j1) = irange, jrange
    ni, nj = i1 - i0 + 1, j1 - j0 + 1
    ya, yb = a[:, 1], b[:, 1]
    # candidate rows of every edge (one row of slack each side), then the exact half-open test
    r0 = np.floor((np.minimum(ya, yb) - lo[1]) / cell - 0.5).astype(np.int64) - 1
    r1 = np.ceil((np.maximum(ya, yb) - lo[1]) / cell - 0.5).astype(np.int64) + 1
    r0, r1 = np.maximum(r0, j0), np.minimum(r1, j1)
    cnt = np.maximum(r1 - r0 + 1, 0)
    eid = np.repeat(np.arange(len(a)), cnt)
    row = np.repeat(r0, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    yc = lo[1] + (row + 0.5) * cell
    crosses = (ya[eid] <= yc) != (yb[eid] <= yc)
    eid, row, yc = eid[crosses], row[crosses], yc[crosses]
    xa, xb, yae, ybe = a[eid, 0], b[eid, 0], ya[eid], yb[eid]
    xc = xa + (yc - yae) * (xb - xa) / (ybe - yae)
    # number of cell centres of the row left of the crossing: those cells see it on their +x ray
    ic = np.clip(np.ceil((xc - lo[0]) / cell - 0.5).astype(np.int64) - i0, 0, ni)
    hist = np.bincount((row - j0) * (ni + 1) + ic, minlength=nj * (ni + 1)).reshape(nj, ni + 1)
    right = hist.sum(1, keepdims=True) - np.cumsum(hist, 1)[:, :ni]  # crossings with ic > i
    return (right % 2 == 1).T


def _rings_of(g: Any) -> list[Any]:
    polys = list(getattr(g, "geoms", [g]))
    return [r for q in polys for r in [q.exterior, *q.interiors]]


def _edges_of(g: Any) -> tuple[np.ndarray, np.ndarray]:
    """All edges (start points, end points) of every ring of a shapely (Multi)Polygon."""
    a_list, b_list = [], []
    for r in _rings_of(g):
        c = np.asarray(r.coords, dtype=np.float64)
        a_list.append(c[:-1])
        b_list.append(c[1:])
    if not a_list:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.concatenate(a_list, 0), np.concatenate(b_list, 0)


def cell_coord(p: torch.Tensor, origin: float | torch.Tensor, cell: float) -> torch.Tensor:
    """(p - origin) / cell as a new float tensor, in place after the subtraction; a power-of-two cell is
    applied as a multiplication by its reciprocal, which is then exact (the same values as the division)."""
    t = torch.sub(p, origin)
    m, _ = math.frexp(cell)
    if m == 0.5:
        return t.mul_(1.0 / cell)
    return t.div_(cell)


def popcount64(x: torch.Tensor) -> torch.Tensor:
    """Number of set bits of non-negative int64 values (SWAR)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56 & 0x7F


def bit_index(power_of_two: torch.Tensor) -> torch.Tensor:
    """Index of the single set bit of positive int64 powers of two (< 2**62) -> int64: the binary exponent
    of the exactly representable float64 value (frexp: 2**k = 0.5 * 2**(k + 1)); 2 ops instead of the ~12 of
    `popcount64(x - 1)`."""
    return (torch.frexp(power_of_two.to(torch.float64)).exponent - 1).to(torch.int64)


BITS_PER_WORD = 62
BOUNDARY_FLAG = 1 << 62  # free bit above the 62 polygon bits of word 0: "this cell has boundary entries"


def _flag_boundary(interior: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    flagged = interior.clone()
    flagged[:, 0] |= (counts > 0).to(torch.int64) << 62
    return flagged


@dataclass
class PolygonBits:
    """Bitmask form of a PolygonGrid: polygon p is bit p % 62 of word p // 62.

    `interior` (cells, W): polygons that contain the whole cell; boundary entries in CSR form as in
    PolygonGrid.
    """

    grid: PolygonGrid
    interior: torch.Tensor
    b_start: torch.Tensor
    b_poly: torch.Tensor
    b_centre_inside: torch.Tensor
    b_edges: torch.Tensor
    words: int
    b_count: torch.Tensor  # (cells,) int32 number of boundary entries
    flagged: torch.Tensor | None = None  # (cells, W) interior bits, word 0 with BOUNDARY_FLAG if b_count > 0

    @staticmethod
    def from_grid(g: PolygonGrid) -> PolygonBits:
        w = max(1, -(-g.num_polygons // BITS_PER_WORD))
        ncell = g.nx * g.ny
        cell_of_entry = torch.repeat_interleave(
            torch.arange(ncell, device=g.cell_start.device), g.cell_start[1:] - g.cell_start[:-1]
        )
        inner = ~g.entry_boundary
        interior = torch.zeros(ncell * w, dtype=torch.int64, device=g.cell_start.device)
        p = g.entry_poly[inner]
        interior.index_add_(0, cell_of_entry[inner] * w + p // BITS_PER_WORD, torch.ones_like(p) << (p % BITS_PER_WORD))
        b = g.entry_boundary
        counts = torch.bincount(cell_of_entry[b], minlength=ncell)
        b_start = torch.cat([torch.zeros(1, dtype=torch.int64, device=counts.device), torch.cumsum(counts, 0)])
        return PolygonBits(
            g,
            interior.view(ncell, w),
            b_start,
            g.entry_poly[b],
            g.entry_centre_inside[b],
            g.entry_edges[b],
            w,
            counts.to(torch.int32),
            _flag_boundary(interior.view(ncell, w), counts),
        )

    def mask(self, polys: torch.Tensor) -> torch.Tensor:
        """Bool polygon selector (P,) -> word masks (W,) int64."""
        out = torch.zeros(self.words, dtype=torch.int64, device=polys.device)
        idx = torch.nonzero(polys).squeeze(1)
        out.index_add_(0, idx // BITS_PER_WORD, torch.ones_like(idx) << (idx % BITS_PER_WORD))
        return out

    def cell_ids(self, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        """Flat coordinates px, py (M,) -> grid cell ids (M,) (int32 where it fits), points outside the grid
        clamped onto its border cells (empty: the grid is padded beyond every polygon)."""
        g = self.grid
        return self.cells_of_units(cell_coord(px, g.origin[0], g.cell), cell_coord(py, g.origin[1], g.cell))

    def cells_of_units(self, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
        """Coordinates in cell units, (p - origin) / cell (M,) -> cell ids (M,) as `cell_ids`."""
        g = self.grid
        idx_t = torch.int32 if g.nx * g.ny < 2**31 else torch.int64  # int32: half the index traffic
        ix = gx.clamp(0, g.nx - 1).to(idx_t)
        iy = gy.clamp(0, g.ny - 1).to(idx_t)
        return torch.add(iy, ix, alpha=g.ny)

    def polygon_code(self, poly: int) -> torch.Tensor:
        """(cells,) uint8 per grid cell for polygon `poly`: 2 wholly inside, 1 crossed by its boundary (an exact
        test is needed), 0 outside (no entry)."""
        g = self.grid
        w, b = divmod(poly, BITS_PER_WORD)
        code = (((self.interior[:, w] >> b) & 1) * 2).to(torch.uint8)
        cells = torch.repeat_interleave(torch.arange(g.nx * g.ny, device=code.device), self.b_count.long())
        code[cells[self.b_poly == poly]] = 1
        return code

    def query_xy(self, px: torch.Tensor, py: torch.Tensor, cid: torch.Tensor | None = None) -> torch.Tensor:
        """Same as `query` for flat coordinate tensors px, py (M,) -> (M, W) bitmasks; `cid`: their
        `cell_ids` if already known.

        Cheaper form: one table gather per point answers both "which polygons contain the whole cell" and
        "does the cell hold boundary entries" (BOUNDARY_FLAG); only the few points in boundary cells run the
        exact crossing-parity test."""
        if self.flagged is None:
            self.flagged = _flag_boundary(self.interior, self.b_count)
        if cid is None:
            cid = self.cell_ids(px, py)
        if self.words == 1:  # 1-D gather (a gather of (M, 1) rows is ~2x slower)
            bits = self.flagged.view(-1).index_select(0, cid)[:, None]
        else:
            bits = self.flagged.index_select(0, cid)  # (M, W)
        has = torch.nonzero(bits[:, 0] >= BOUNDARY_FLAG).squeeze(1)
        bits[:, 0] &= BOUNDARY_FLAG - 1
        if len(has):
            sub = self.query(
                torch.stack([px.index_select(0, has), py.index_select(0, has)], -1), cid.index_select(0, has)
            )
            bits.index_copy_(0, has, sub)
        return bits

    def reach_table(self, poly: int, reach: float) -> torch.Tensor:
        """(cells,) int8 per grid cell: 1 if every cell within `reach` of it (in cell-index space:
        floor(reach / cell) + 1 cells each way) lies wholly inside polygon `poly`, 2 if none of those cells
        meets the polygon (no interior or boundary entry), 0 otherwise. A point within distance `reach` of a
        point of the cell falls in one of those cells, so where the table is not 0 it answers "is that point
        inside `poly`" without a lookup (used for the ego corners around the box centre)."""
        g = self.grid
        w, b = divmod(poly, BITS_PER_WORD)
        inside = ((self.interior[:, w] >> b) & 1).bool()
        touched = inside.clone()
        cells = torch.repeat_interleave(torch.arange(g.nx * g.ny, device=inside.device), self.b_count.long())
        touched[cells[self.b_poly == poly]] = True
        k = math.floor(reach / g.cell) + 1

        def any_within(flag: torch.Tensor) -> torch.Tensor:
            f = flag.view(1, 1, g.nx, g.ny).to(torch.float32)
            f = torch.nn.functional.max_pool2d(f, (2 * k + 1, 1), stride=1, padding=(k, 0))
            f = torch.nn.functional.max_pool2d(f, (1, 2 * k + 1), stride=1, padding=(0, k))
            return f.view(-1) > 0

        out = torch.zeros(g.nx * g.ny, dtype=torch.int8, device=inside.device)
        out[~any_within(~inside)] = 1
        out[~any_within(touched)] = 2
        return out

    def query(self, pts: torch.Tensor, cid: torch.Tensor | None = None) -> torch.Tensor:
        """Points (M, 2) -> (M, W) int64 bitmasks of the polygons strictly containing each point; `cid`:
        their `cell_ids` if already known."""
        g = self.grid
        dev = pts.device
        # the grid is padded by >= 1 m beyond every polygon, so its border cells are empty: points outside
        # the grid are clamped onto them (outside everything)
        if cid is None:
            cid = self.cell_ids(pts[:, 0].contiguous(), pts[:, 1].contiguous())
        cid = cid.to(torch.int64)
        bits = self.interior.index_select(0, cid)
        count = self.b_count.index_select(0, cid)
        has = torch.nonzero(count).squeeze(1)
        if len(has) == 0:
            return bits
        cnt = count.index_select(0, has).to(torch.int64)
        total = int(cnt.sum())
        pt = torch.repeat_interleave(has, cnt, output_size=total)
        start = self.b_start.index_select(0, cid.index_select(0, has))
        base = torch.repeat_interleave(start - (torch.cumsum(cnt, 0) - cnt), cnt, output_size=total)
        ent = base + torch.arange(total, device=dev)
        p = pts.index_select(0, pt)
        cid_pt = cid.index_select(0, pt)
        cell_i = torch.stack([cid_pt // g.ny, cid_pt % g.ny], 1)
        c = g.origin + (cell_i.to(pts.dtype) + 0.5) * g.cell
        ed = self.b_edges.index_select(0, ent)
        ax, ay, bx, by = ed[..., 0], ed[..., 1], ed[..., 2], ed[..., 3]
        px, py = p[:, None, 0], p[:, None, 1]
        cx, cy = c[:, None, 0], c[:, None, 1]
        sa = _orient(cx, cy, px, py, ax, ay) > 0
        sb = _orient(cx, cy, px, py, bx, by) > 0
        o1 = _orient(ax, ay, bx, by, cx, cy)
        o2 = _orient(ax, ay, bx, by, px, py)
        cross = (sa != sb) & (o1 * o2 < 0)
        parity = (cross.sum(-1) % 2) == 1
        inside = self.b_centre_inside.index_select(0, ent) ^ parity
        keep = torch.nonzero(inside).squeeze(1)
        poly = self.b_poly.index_select(0, ent.index_select(0, keep))
        flat = bits.view(-1)
        flat.index_add_(
            0,
            pt.index_select(0, keep) * self.words + poly // BITS_PER_WORD,
            torch.ones_like(poly) << (poly % BITS_PER_WORD),
        )
        return flat.view(-1, self.words)


def polyline_project(points: torch.Tensor, line: torch.Tensor, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Arc length of the closest point on polyline `line` (S+1, 2) for points (M, 2), and the distance.

    Like shapely `project` / `distance` (the first closest segment wins ties). Segments are grouped in chunks
    of `chunk`; a (point, chunk) pair is evaluated exactly only if the chunk's bounding-circle lower bound can
    beat the point's best upper bound. Pairs are kept sparse (no padding to the worst point), so the cost is
    ~O(M (S / chunk) + pairs * chunk).
    """
    dev = line.device
    a = line[:-1]
    d = line[1:] - a
    seg_len = torch.linalg.vector_norm(d, dim=-1)
    cum = torch.cat([torch.zeros(1, dtype=line.dtype, device=dev), torch.cumsum(seg_len, 0)])
    ns = a.shape[0]
    nc = -(-ns // chunk)
    pad = nc * chunk - ns
    a_p = torch.cat([a, a[-1:].expand(pad, 2)], 0).view(nc, chunk, 2)
    d_p = torch.cat([d, torch.zeros(pad, 2, dtype=d.dtype, device=dev)], 0).view(nc, chunk, 2)
    valid = (torch.arange(nc * chunk, device=dev) < ns).view(nc, chunk)
    ends = torch.cat([a_p, a_p + d_p], 1)  # (nc, 2 chunk, 2)
    ctr = (ends.amax(1) + ends.amin(1)) / 2
    rad = torch.linalg.vector_norm(ends - ctr[:, None], dim=-1).amax(1)
    dc = torch.cdist(points, ctr, compute_mode="donot_use_mm_for_euclid_dist")  # (M, nc)
    lower = (dc - rad).clamp_min(0)
    # upper bound of the distance to the polyline: the distance to the nearest chunk start vertex (a point of
    # the line; tighter than the bounding circles' dc + rad, so fewer chunks survive)
    upper = torch.cdist(points, a_p[:, 0], compute_mode="donot_use_mm_for_euclid_dist").amin(1, keepdim=True)
    pi, ci = torch.nonzero(lower <= upper + 1e-6).unbind(1)
    # component-wise (a reduction over a trailing dim of size 2 is slow on CPU); per-segment constants (the
    # clamped squared length, +inf on the padding) computed once per chunk and gathered with the rows
    len2_p = (d_p[..., 0] * d_p[..., 0] + d_p[..., 1] * d_p[..., 1]).clamp_min(1e-300)
    pad_inf = torch.zeros(nc, chunk, dtype=line.dtype, device=dev).masked_fill_(~valid, float("inf"))
    ax, ay, ddx, ddy, len2, inf = (
        v.contiguous().index_select(0, ci)
        for v in (a_p[..., 0], a_p[..., 1], d_p[..., 0], d_p[..., 1], len2_p, pad_inf)
    )
    px_, py_ = points[:, 0].contiguous(), points[:, 1].contiguous()
    rx, ry = px_.index_select(0, pi)[:, None] - ax, py_.index_select(0, pi)[:, None] - ay
    t = ((rx * ddx + ry * ddy) / len2).clamp_(0, 1)
    ex, ey = rx - t * ddx, ry - t * ddy
    dist2 = (ex * ex + ey * ey).add_(inf)  # + 0 keeps the value, + inf marks padding
    m = points.shape[0]
    # row minimum and its first index (torch.min returns the first of equal minima): the first closest
    # segment of each (point, chunk) pair; across a point's pairs the lowest chunk among the tied ones wins
    row_min, row_arg = dist2.min(1)
    mn = torch.full((m,), float("inf"), dtype=points.dtype, device=dev)
    mn.scatter_reduce_(0, pi, row_min, reduce="amin")
    seg_c = torch.where(row_min == mn.index_select(0, pi), ci * chunk + row_arg, ns)
    seg_best = torch.full((m,), ns, dtype=torch.int64, device=dev)
    seg_best.scatter_reduce_(0, pi, seg_c, reduce="amin")
    ab, db = a[seg_best], d[seg_best]
    rbx, rby = points[:, 0] - ab[:, 0], points[:, 1] - ab[:, 1]
    dbx, dby = db[:, 0], db[:, 1]
    tb = ((rbx * dbx + rby * dby) / (dbx * dbx + dby * dby).clamp_min(1e-300)).clamp(0, 1)
    s = cum[seg_best] + tb * seg_len[seg_best]
    return s, mn.sqrt()


@dataclass
class SegmentGrid:
    """Grid index answering "distance from point to polyline > r" exactly for a fixed radius r.

    The grid extends beyond the line's reach by more than one cell, so its border cells hold no segment:
    points outside it are clamped onto them (far)."""

    origin: torch.Tensor
    cell: float
    nx: int
    ny: int
    cell_segs: torch.Tensor  # (R, Smax, 4) candidate segments (x0, y0, x1, y1) of the R cells that have any (NaN pad)
    radius: float
    cell_row: torch.Tensor  # (nx*ny,) row of cell_segs, -1 if none
    code: torch.Tensor  # (nx*ny,) int8: 0 no segment in reach (far), 1 all near, 2 exact test needed

    @staticmethod
    def build(line: np.ndarray, radius: float, cell: float = 0.25) -> SegmentGrid:
        a, b = line[:-1], line[1:]
        reach = radius + cell * np.sqrt(0.5) + 1e-6
        lo = line.min(0) - reach - cell
        hi = line.max(0) + reach + cell
        nx = int(np.ceil((hi[0] - lo[0]) / cell)) + 1
        ny = int(np.ceil((hi[1] - lo[1]) / cell)) + 1
        ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
        centres = lo + (np.stack([ii.ravel(), jj.ravel()], 1) + 0.5) * cell
        # candidate (cell, segment) pairs by the bounding boxes of <= 2 m pieces of each segment (vectorized,
        # bounded span), then the exact distance from the cell centre to the whole segment
        seg = b - a
        npc = np.maximum(np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / 2.0).astype(np.int64), 1)
        sid = np.repeat(np.arange(len(a)), npc)
        k = np.arange(len(sid)) - np.repeat(np.cumsum(npc) - npc, npc)
        pa = a[sid] + seg[sid] * (k / npc[sid])[:, None]
        pb = a[sid] + seg[sid] * ((k + 1) / npc[sid])[:, None]
        i0 = np.floor((np.minimum(pa, pb) - reach - lo) / cell).astype(np.int64)
        i1 = np.floor((np.maximum(pa, pb) + reach - lo) / cell).astype(np.int64)
        span = int((i1 - i0).max()) + 1
        rng = np.arange(span)
        ci = i0[:, 0, None, None] + rng[:, None]
        cj = i0[:, 1, None, None] + rng[None, :]
        inside = (ci <= i1[:, 0, None, None]) & (cj <= i1[:, 1, None, None])
        cid = (ci * ny + cj)[inside]
        sidx = np.broadcast_to(sid[:, None, None], inside.shape)[inside]
        key = np.unique(cid * len(a) + sidx)  # sorted by cell, then segment
        cid, sidx = key // len(a), key % len(a)
        pc = centres[cid]
        d = seg[sidx]
        t = np.clip(np.einsum("ij,ij->i", pc - a[sidx], d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-300), 0, 1)
        dist = np.hypot(*(pc - a[sidx] - t[:, None] * d).T)
        ok = dist <= reach
        pc_all, ps_all, pd_all = cid[ok], sidx[ok], dist[ok]
        counts = np.bincount(pc_all, minlength=nx * ny)
        smax = max(int(counts.max()), 1)
        used = np.nonzero(counts)[0]
        cell_row = np.full(nx * ny, -1, dtype=np.int64)
        cell_row[used] = np.arange(len(used))
        segs = np.full((len(used), smax, 4), np.nan)
        start = np.cumsum(counts) - counts
        slot = np.arange(len(pc_all)) - start[pc_all]
        segs[cell_row[pc_all], slot] = np.concatenate([a[ps_all], b[ps_all]], 1)
        centre_dist = np.full(nx * ny, np.inf)
        np.minimum.at(centre_dist, pc_all, pd_all)
        all_near = centre_dist + cell * np.sqrt(0.5) + 1e-9 < radius
        code = np.where(counts > 0, np.where(all_near, 1, 2), 0).astype(np.int8)
        return SegmentGrid(
            origin=torch.from_numpy(lo.astype(np.float64)),
            cell=cell,
            nx=nx,
            ny=ny,
            cell_segs=torch.from_numpy(segs),
            radius=radius,
            cell_row=torch.from_numpy(cell_row),
            code=torch.from_numpy(code),
        )

    def to(self, device: torch.device | str) -> SegmentGrid:
        return _to_device(self, device)

    def _cells(self, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        idx_t = torch.int32 if self.nx * self.ny < 2**31 else torch.int64
        ix = cell_coord(px, self.origin[0], self.cell).clamp_(0, self.nx - 1).to(idx_t)
        iy = cell_coord(py, self.origin[1], self.cell).clamp_(0, self.ny - 1).to(idx_t)
        return torch.add(iy, ix, alpha=self.ny)

    def farther_than_xy(self, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        """`farther_than` for flat coordinate tensors px, py (M,): one table gather per point, the exact
        segment distances only for points in cells that are neither surely near nor surely far."""
        cid = self._cells(px, py)
        code = self.code.index_select(0, cid)
        out = code == 0
        idx = torch.nonzero(code == 2).squeeze(1)
        if len(idx):
            out.index_copy_(
                0, idx, self._exact(px.index_select(0, idx), py.index_select(0, idx), cid.index_select(0, idx))
            )
        return out

    def farther_than(self, pts: torch.Tensor) -> torch.Tensor:
        """(M, 2) -> bool (M,): distance to the polyline > radius."""
        return self.farther_than_xy(pts[:, 0].contiguous(), pts[:, 1].contiguous())

    def _exact(self, px: torch.Tensor, py: torch.Tensor, cid: torch.Tensor) -> torch.Tensor:
        """Distance > radius for points (K,) of cells `cid` with candidate segments, component-wise over the
        cells' (K, Smax) segments (a reduction over a trailing dim of 2 is slow on CPU)."""
        sg = self.cell_segs.index_select(0, self.cell_row.index_select(0, cid))  # (K, Smax, 4)
        ax, ay, bx, by = sg.unbind(-1)
        dx, dy = bx - ax, by - ay
        rx, ry = px[:, None] - ax, py[:, None] - ay
        len2 = dx * dx + dy * dy
        t = ((rx * dx + ry * dy) / len2.clamp_min(1e-300)).clamp(0, 1)
        ex, ey = rx - t * dx, ry - t * dy
        dist = (ex * ex + ey * ey).sqrt()
        return dist.nan_to_num_(nan=math.inf, posinf=math.inf).amin(-1) > self.radius

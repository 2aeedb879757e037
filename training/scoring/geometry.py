"""Vectorized 2D geometry for the scorer (torch, CPU or CUDA): oriented boxes, separating-axis overlap,
exact point-in-polygon through a uniform grid index, and polyline projection/distance.

All coordinates are in the scorer's local frame (metres; global minus the scene origin). Predicates follow
shapely's, as NAVSIM uses them: `intersects` is closed (touching counts), `contains` is strict (points on the
boundary are outside).

PolygonGrid: each grid cell stores, per polygon, whether the cell is entirely inside (no polygon edge crosses it)
or on the boundary; for boundary cells it stores the cell centre's inside flag and the polygon edges that cross the
cell. A point in a boundary cell is inside iff (centre inside) XOR (the segment centre->point crosses an odd number
of those edges) — exact, because that segment stays inside the cell. The index is built once per scene (numpy +
shapely for cell centres); queries are pure torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def box_corners(cx: torch.Tensor, cy: torch.Tensor, h: torch.Tensor, half_l: torch.Tensor | float,
                half_w: torch.Tensor | float) -> torch.Tensor:
    """Oriented boxes -> corners (..., 4, 2) in ring order front-left, rear-left, rear-right, front-right."""
    c, s = torch.cos(h), torch.sin(h)
    fx, fy = c * half_l, s * half_l
    lx, ly = -s * half_w, c * half_w
    xs = torch.stack([cx + fx + lx, cx - fx + lx, cx - fx - lx, cx + fx - lx], -1)
    ys = torch.stack([cy + fy + ly, cy - fy + ly, cy - fy - ly, cy + fy - ly], -1)
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


def segment_quad_intersect(p0: torch.Tensor, p1: torch.Tensor, quad: torch.Tensor) -> torch.Tensor:
    """Closed intersection of segments p0->p1 (..., 2) with rectangles (..., 4, 2) by separating axes."""
    d = p1 - p0
    normal = torch.stack([-d[..., 1], d[..., 0]], -1)
    axes = torch.cat([_axes(quad), normal[..., None, :]], -2)  # (..., 3, 2)
    seg = torch.stack([p0, p1], -2)
    ps = torch.einsum("...kd,...ad->...ak", seg, axes)
    pq = torch.einsum("...kd,...ad->...ak", quad, axes)
    sep = (ps.amax(-1) < pq.amin(-1)) | (pq.amax(-1) < ps.amin(-1))
    return ~sep.any(-1)


def _orient(ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor, px: torch.Tensor,
            py: torch.Tensor) -> torch.Tensor:
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def segments_cross_closed(a0: torch.Tensor, a1: torch.Tensor, b0: torch.Tensor, b1: torch.Tensor) -> torch.Tensor:
    """Closed segment intersection (touching counts) for broadcastable (..., 2) endpoints."""
    o1 = _orient(a0[..., 0], a0[..., 1], a1[..., 0], a1[..., 1], b0[..., 0], b0[..., 1])
    o2 = _orient(a0[..., 0], a0[..., 1], a1[..., 0], a1[..., 1], b1[..., 0], b1[..., 1])
    o3 = _orient(b0[..., 0], b0[..., 1], b1[..., 0], b1[..., 1], a0[..., 0], a0[..., 1])
    o4 = _orient(b0[..., 0], b0[..., 1], b1[..., 0], b1[..., 1], a1[..., 0], a1[..., 1])
    proper = (o1 * o2 <= 0) & (o3 * o4 <= 0)
    # collinear overlapping segments: bounding boxes must overlap too
    bx = (torch.minimum(a0[..., 0], a1[..., 0]) <= torch.maximum(b0[..., 0], b1[..., 0])) & (
        torch.minimum(b0[..., 0], b1[..., 0]) <= torch.maximum(a0[..., 0], a1[..., 0])
    )
    by = (torch.minimum(a0[..., 1], a1[..., 1]) <= torch.maximum(b0[..., 1], b1[..., 1])) & (
        torch.minimum(b0[..., 1], b1[..., 1]) <= torch.maximum(a0[..., 1], a1[..., 1])
    )
    return proper & bx & by


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
        return PolygonGrid(
            self.origin.to(device), self.cell, self.nx, self.ny, self.cell_start.to(device),
            self.entry_poly.to(device), self.entry_boundary.to(device), self.entry_centre_inside.to(device),
            self.entry_edges.to(device), self.num_polygons,
        )

    @staticmethod
    def build(rings: list[np.ndarray], cell: float = 0.5, pad: float = 1.0) -> PolygonGrid:
        """Index polygon rings (each (V, 2), local frame, not closed)."""
        import shapely

        if not rings:
            z = torch.zeros(0, dtype=torch.int64)
            return PolygonGrid(torch.zeros(2, dtype=torch.float64), cell, 1, 1, torch.zeros(2, dtype=torch.int64), z,
                               z.bool(), z.bool(), torch.zeros(0, 1, 4, dtype=torch.float64), 0)
        allv = np.concatenate(rings, 0)
        lo = allv.min(0) - pad
        hi = allv.max(0) + pad
        nx = int(np.ceil((hi[0] - lo[0]) / cell)) + 1
        ny = int(np.ceil((hi[1] - lo[1]) / cell)) + 1
        ent_poly, ent_cell, ent_bnd, ent_cin, ent_edges = [], [], [], [], []
        step = cell / 4.0
        for p, ring in enumerate(rings):
            ring = np.asarray(ring, dtype=np.float64)
            a, b = ring, np.roll(ring, -1, axis=0)
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
            poly = shapely.Polygon(ring)
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
            cc = (ii * ny + jj).ravel()
            cc = cc[~np.isin(cc, bcells)]
            cxy = lo + (np.stack([cc // ny, cc % ny], 1) + 0.5) * cell
            inside = shapely.contains_xy(poly, cxy[:, 0], cxy[:, 1])
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

    def query(self, pts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (M, 2) -> (point index, polygon index) pairs for every polygon strictly containing the point."""
        dev = pts.device
        ij = torch.floor((pts - self.origin) / self.cell).to(torch.int64)
        valid = (ij[:, 0] >= 0) & (ij[:, 0] < self.nx) & (ij[:, 1] >= 0) & (ij[:, 1] < self.ny)
        cid = torch.where(valid, ij[:, 0] * self.ny + ij[:, 1], torch.zeros_like(ij[:, 0]))
        start = self.cell_start[cid]
        count = torch.where(valid, self.cell_start[cid + 1] - start, torch.zeros_like(start))
        total = int(count.sum())
        if total == 0:
            e = torch.zeros(0, dtype=torch.int64, device=dev)
            return e, e
        pt = torch.repeat_interleave(torch.arange(len(pts), device=dev), count, output_size=total)
        base = torch.repeat_interleave(start - (torch.cumsum(count, 0) - count), count, output_size=total)
        ent = base + torch.arange(total, device=dev)
        inside = self.entry_centre_inside[ent].clone()
        bnd = self.entry_boundary[ent]
        bidx = torch.nonzero(bnd).squeeze(1)
        if len(bidx):
            e = ent[bidx]
            p = pts[pt[bidx]]  # (B, 2)
            cell_ij = ij[pt[bidx]].to(pts.dtype)
            c = self.origin + (cell_ij + 0.5) * self.cell  # (B, 2)
            ed = self.entry_edges[e]  # (B, Emax, 4)
            ax, ay, bx, by = ed[..., 0], ed[..., 1], ed[..., 2], ed[..., 3]
            px, py = p[:, None, 0], p[:, None, 1]
            cx, cy = c[:, None, 0], c[:, None, 1]
            # half-open rule on the polygon vertices w.r.t. the query segment's line
            sa = _orient(cx, cy, px, py, ax, ay) > 0
            sb = _orient(cx, cy, px, py, bx, by) > 0
            o1 = _orient(ax, ay, bx, by, cx, cy)
            o2 = _orient(ax, ay, bx, by, px, py)
            cross = (sa != sb) & (((o1 > 0) & (o2 < 0)) | ((o1 < 0) & (o2 > 0)))
            cross = cross & ~torch.isnan(ax)
            parity = cross.sum(-1) % 2 == 1
            inside[bidx] = inside[bidx] ^ parity
        keep = torch.nonzero(inside).squeeze(1)
        return pt[keep], self.entry_poly[ent[keep]]


def polyline_project(points: torch.Tensor, line: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Arc length of the closest point on polyline `line` (M, 2) for points (..., 2), and the distance.

    Like shapely `project` / `distance`: the first closest segment wins ties.
    """
    a = line[:-1]
    d = line[1:] - a
    seg_len2 = (d * d).sum(-1)
    cum = torch.cat([torch.zeros(1, dtype=line.dtype, device=line.device), torch.cumsum(seg_len2.sqrt(), 0)])
    rel = points[..., None, :] - a  # (..., S, 2)
    t = ((rel * d).sum(-1) / seg_len2.clamp_min(1e-300)).clamp(0, 1)
    diff = rel - t[..., None] * d
    dist2 = (diff * diff).sum(-1)
    best = dist2.argmin(-1)
    tb = t.gather(-1, best[..., None]).squeeze(-1)
    s = cum[best] + tb * seg_len2.sqrt()[best]
    return s, dist2.gather(-1, best[..., None]).squeeze(-1).sqrt()


@dataclass
class SegmentGrid:
    """Grid index answering "distance from point to polyline > r" exactly for a fixed radius r."""

    origin: torch.Tensor
    cell: float
    nx: int
    ny: int
    cell_segs: torch.Tensor  # (nx*ny, Smax, 4) candidate segments (NaN padding)
    has_any: torch.Tensor  # (nx*ny,) bool
    radius: float

    @staticmethod
    def build(line: np.ndarray, radius: float, cell: float = 1.0) -> SegmentGrid:
        a, b = line[:-1], line[1:]
        reach = radius + cell * np.sqrt(0.5) + 1e-6
        lo = line.min(0) - reach - cell
        hi = line.max(0) + reach + cell
        nx = int(np.ceil((hi[0] - lo[0]) / cell)) + 1
        ny = int(np.ceil((hi[1] - lo[1]) / cell)) + 1
        ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
        centres = lo + (np.stack([ii.ravel(), jj.ravel()], 1) + 0.5) * cell
        # candidate (cell, segment) pairs by segment bounding boxes, then exact distance to the cell centre
        pairs_c, pairs_s = [], []
        for s_idx in range(len(a)):
            bmin = np.minimum(a[s_idx], b[s_idx]) - reach
            bmax = np.maximum(a[s_idx], b[s_idx]) + reach
            i0, j0 = np.floor((bmin - lo) / cell).astype(int)
            i1, j1 = np.floor((bmax - lo) / cell).astype(int)
            ci, cj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
            cid = (ci * ny + cj).ravel()
            pc = centres[cid]
            d = b[s_idx] - a[s_idx]
            t = np.clip(((pc - a[s_idx]) @ d) / max(d @ d, 1e-300), 0, 1)
            dist = np.hypot(*(pc - a[s_idx] - t[:, None] * d).T)
            ok = dist <= reach
            pairs_c.append(cid[ok])
            pairs_s.append(np.full(ok.sum(), s_idx))
        pc_all = np.concatenate(pairs_c)
        ps_all = np.concatenate(pairs_s)
        order = np.argsort(pc_all, kind="stable")
        pc_all, ps_all = pc_all[order], ps_all[order]
        counts = np.bincount(pc_all, minlength=nx * ny)
        smax = max(int(counts.max()), 1)
        segs = np.full((nx * ny, smax, 4), np.nan)
        start = np.cumsum(counts) - counts
        slot = np.arange(len(pc_all)) - start[pc_all]
        segs[pc_all, slot] = np.concatenate([a[ps_all], b[ps_all]], 1)
        return SegmentGrid(
            origin=torch.from_numpy(lo.astype(np.float64)), cell=cell, nx=nx, ny=ny,
            cell_segs=torch.from_numpy(segs), has_any=torch.from_numpy(counts > 0), radius=radius,
        )

    def to(self, device: torch.device | str) -> SegmentGrid:
        return SegmentGrid(self.origin.to(device), self.cell, self.nx, self.ny, self.cell_segs.to(device),
                           self.has_any.to(device), self.radius)

    def farther_than(self, pts: torch.Tensor) -> torch.Tensor:
        """(M, 2) -> bool (M,): distance to the polyline > radius."""
        ij = torch.floor((pts - self.origin) / self.cell).to(torch.int64)
        valid = (ij[:, 0] >= 0) & (ij[:, 0] < self.nx) & (ij[:, 1] >= 0) & (ij[:, 1] < self.ny)
        cid = torch.where(valid, ij[:, 0] * self.ny + ij[:, 1], torch.zeros_like(ij[:, 0]))
        near = valid & self.has_any[cid]
        out = torch.ones(len(pts), dtype=torch.bool, device=pts.device)
        idx = torch.nonzero(near).squeeze(1)
        if len(idx):
            sg = self.cell_segs[cid[idx]]  # (K, Smax, 4)
            p = pts[idx][:, None, :]
            a, b = sg[..., :2], sg[..., 2:]
            d = b - a
            len2 = (d * d).sum(-1)
            t = (((p - a) * d).sum(-1) / len2.clamp_min(1e-300)).clamp(0, 1)
            diff = p - a - t[..., None] * d
            dist = (diff * diff).sum(-1).sqrt()
            dist = torch.where(torch.isnan(dist), torch.full_like(dist, float("inf")), dist)
            out[idx] = dist.amin(-1) > self.radius
        return out

"""Batched EPDMS (NAVSIM v2.2) and PDMS (NAVSIM v1.1) scorer in torch.

`PDMScorer(scene, config, device)` prepares a scene once (local frame, grid indexes, agent boxes), then
`score(plans, plan_dt)` scores N candidate plans (ego rear-axle frame at t = 0; x forward, y left, heading
CCW;
poses at plan_dt, 2 plan_dt, ...) in one batch: interpolation to 41 states, LQR + bicycle simulation,
sub-scores,
EP normalisation against the PDM-Closed reference (pairwise, as NAVSIM's official per-candidate `pdm_score`),
the human filter and the final EPDMS / PDMS. No Python loop runs over proposals; loops run over time steps or
fixed small sets only. Behaviour and quirks: docs/scorer.md and ../shared/fixtures/navsim_scorer/README.md §6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from training.scoring.comfort import comfortable, extended_comfort
from training.scoring.config import ScorerConfig
from training.scoring.geometry import (
    BITS_PER_WORD,
    PolygonBits,
    PolygonGrid,
    SegmentGrid,
    box_corners,
    convex_quads_intersect,
    polyline_project,
    popcount64,
    segment_quad_intersect,
    segments_cross_closed,
)
from training.scoring.scene import AREA_LAYERS, LANE_LAYERS, LAYER_CODE, Scene
from training.scoring.simulation import interpolate_plan, simulate

SUB_SCORES_V2 = (
    "no_at_fault_collisions",
    "drivable_area_compliance",
    "driving_direction_compliance",
    "traffic_light_compliance",
    "ego_progress",
    "time_to_collision_within_bound",
    "lane_keeping",
    "history_comfort",
)
FILTERED_V2 = (
    "no_at_fault_collisions",
    "drivable_area_compliance",
    "driving_direction_compliance",
    "traffic_light_compliance",
    "time_to_collision_within_bound",
    "lane_keeping",
)


@dataclass
class _AgentsView:
    corners: torch.Tensor  # (A, T, 4, 2)
    centre: torch.Tensor  # (A, T, 2)
    radius: torch.Tensor  # (A,)
    present: torch.Tensor  # (A, T) bool
    is_agent: torch.Tensor  # (A,) bool
    stopped: torch.Tensor  # (A,) bool: static object or speed at first appearance <= 0.05 m/s


class PDMScorer:
    """Scores candidate plans of one scene; see module docstring. Device-agnostic (CPU or CUDA)."""

    def __init__(self, scene: Scene, config: ScorerConfig | None = None, device: str | torch.device = "cpu"):
        self.scene = scene
        self.cfg = config or ScorerConfig()
        self.device = torch.device(device)
        dev = self.device
        o = scene.origin.clone()
        self.origin_xy = o[:2]
        self.init = scene.history.initial_state.clone()
        self.init[:2] -= self.origin_xy
        self.init = self.init.to(dev)
        self.hist = self._local_states(scene.history.comfort_states).to(dev)
        prev = scene.previous
        self.prev_sim = (
            None if prev is None or prev.simulated_states is None else self._local_states(prev.simulated_states).to(dev)
        )
        eg = scene.ego
        self.half_l, self.half_w, self.r2c = eg.half_length, eg.half_width, eg.rear_axle_to_center
        self.wheel_base = eg.wheel_base
        self.ego_radius = math.hypot(self.half_l, self.half_w)
        # map
        dm = scene.map.drivable
        rings = [dm.ring(i) - self.origin_xy.numpy() for i in range(len(dm))]
        layer = dm.layer
        route = set(scene.route.lane_ids)
        is_lane = (layer == LANE_LAYERS[0]) | (layer == LANE_LAYERS[1])
        self.poly_is_lane = is_lane.to(dev)
        self.poly_is_area = torch.isin(layer, torch.tensor(AREA_LAYERS)).to(dev)
        self.poly_is_route_lane = (is_lane & torch.tensor([i in route for i in dm.ids], dtype=torch.bool)).to(dev)
        self.poly_is_intersection = (layer == LAYER_CODE["INTERSECTION"]).to(dev)
        self.has_intersections = bool(self.poly_is_intersection.any())
        # Grid 1: unions of the area layers, of the route lanes and of the intersections (3 bits). A union has
        # no internal seams, so far fewer points need exact edge tests. Grid 2: the individual lanes, queried
        # only where needed (multiple-lanes test at collision/TTC candidates, red-light corners).
        import shapely

        def union(mask: torch.Tensor) -> Any:
            idx = torch.nonzero(mask).squeeze(1).tolist()
            return shapely.unary_union([shapely.Polygon(rings[i]).buffer(0) for i in idx])

        geoms = [
            union(self.poly_is_area.cpu()),
            union(self.poly_is_route_lane.cpu()),
            union(self.poly_is_intersection.cpu()),
        ]
        self.grid = PolygonBits.from_grid(PolygonGrid.build(geoms, self.cfg.grid_cell_m).to(dev))
        lane_idx = torch.nonzero(is_lane).squeeze(1).tolist()
        self.lane_grid = PolygonBits.from_grid(
            PolygonGrid.build([rings[i] for i in lane_idx], self.cfg.grid_cell_m).to(dev)
        )
        self.lane_slot = {d: k for k, d in enumerate(lane_idx)}
        line = scene.route.centerline[:, :2] - self.origin_xy
        self.centerline = line.to(dev)
        self.lk_grid = SegmentGrid.build(line.numpy(), self.cfg.lane_keeping_deviation_limit).to(dev)
        # red lights on the route: polygons + per-step red flags
        tl = scene.traffic_lights
        keep = [i for i, lid in enumerate(tl.lane_ids) if lid in route]
        self.tl_polys = [torch.from_numpy(tl.polygons.ring(i) - self.origin_xy.numpy()).to(dev) for i in keep]
        self.tl_red = tl.is_red[keep].to(dev) if keep else torch.zeros(0, 41, dtype=torch.bool, device=dev)
        self.tl_lane_slot = [
            self.lane_slot.get(dm.ids.index(tl.lane_ids[i]), -1) if tl.lane_ids[i] in dm.ids else -1 for i in keep
        ]
        self.agents_v2 = self._agents(version=2)
        self.agents_v1 = self._agents(version=1)

    # --------------------------------------------------------------------------------------------------------
    def _local_states(self, s: torch.Tensor) -> torch.Tensor:
        s = s.clone()
        s[..., :2] -= self.origin_xy
        return s

    def _agents(self, version: int) -> _AgentsView:
        ag = self.scene.agents
        dev = self.device
        n_steps = 41 if version == 2 else 51
        st = ag.states[:, :n_steps].clone()
        st[..., :2] -= self.origin_xy
        present = (ag.present_v2 if version == 2 else ag.present_v1)[:, :n_steps].clone()
        if version == 2:
            present &= ~ag.dropped_v2[:, None]
        st = torch.nan_to_num(st, nan=0.0)
        corners = box_corners(st[..., 0], st[..., 1], st[..., 2], ag.length[:, None] / 2, ag.width[:, None] / 2)
        # NAVSIM uses each object as it first appears in the observation for type and stopped-track tests
        first = torch.argmax(present.long(), 1)
        v = st[torch.arange(len(ag)), first, 3:5]
        speed = torch.hypot(v[:, 0], v[:, 1])
        is_agent = ag.is_agent
        stopped = (~is_agent) | (speed <= self.cfg.collision_stopped_speed_threshold)
        radius = torch.hypot(ag.length, ag.width) / 2
        return _AgentsView(
            corners=corners.to(dev),
            centre=st[..., :2].to(dev),
            radius=radius.to(dev),
            present=present.to(dev),
            is_agent=is_agent.to(dev),
            stopped=stopped.to(dev),
        )

    # --------------------------------------------------------------------------------------------------------
    def simulate_plans(self, plans: torch.Tensor, plan_dt: float) -> torch.Tensor:
        """Plans (N, K, 3) in the ego frame -> simulated local states (N, 41, 11)."""
        ref = interpolate_plan(
            plans.to(self.device, torch.float64), plan_dt, self.init[:3], self.cfg.num_steps, self.cfg.dt
        )
        return simulate(ref, self.init, self.wheel_base, self.cfg.dt)

    def simulate_reference(self, reference_states: torch.Tensor) -> torch.Tensor:
        ref = self._local_states(reference_states)[None, :, :3].to(self.device)
        return simulate(ref, self.init, self.wheel_base, self.cfg.dt)

    # --------------------------------------------------------------------------------------------------------
    def _ego_areas(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, T, 11) -> per-step flags: multiple lanes, non-drivable, oncoming, in intersection."""
        n, t, _ = states.shape
        x, y, h = states[..., 0], states[..., 1], states[..., 2]
        cx, cy = x + self.r2c * torch.cos(h), y + self.r2c * torch.sin(h)
        corners = box_corners(cx, cy, h, self.half_l, self.half_w)  # (N, T, 4, 2)
        pts = torch.cat([corners, torch.stack([cx, cy], -1)[..., None, :], states[..., None, :2]], -2)  # 6 points
        npt = 6 if self.has_intersections else 5
        bits = self.grid.query(pts[..., :npt, :].reshape(-1, 2)).view(n, t, npt)  # 1 word: 3 bits used
        nondrivable = ~((bits[:, :, :4] & 1) != 0).all(-1)
        on_route = (bits[:, :, 4] & 2) != 0
        inter = (bits & 4) != 0  # (N, T, P)
        return {
            "corners": corners,
            "centre": torch.stack([cx, cy], -1),
            "non_drivable": nondrivable,
            "oncoming": ~on_route,
            "centre_in_intersection": inter[:, :, 4],
            "rear_in_intersection": inter[:, :, 5] if npt == 6 else inter[:, :, 4],
        }

    def _lane_bits(self, corners: torch.Tensor) -> torch.Tensor:
        """Corners (K, 4, 2) -> lane bitmasks (K, 4, W)."""
        k = corners.shape[0]
        return self.lane_grid.query(corners.reshape(-1, 2)).view(k, 4, self.lane_grid.words)

    def _multiple_lanes(self, corners: torch.Tensor) -> torch.Tensor:
        """NAVSIM's 'in multiple lanes' for ego boxes (K, 4, 2): more than one lane polygon contains a corner
        and no lane polygon contains all four."""
        cb = self._lane_bits(corners)
        lane_any = cb[:, 0] | cb[:, 1] | cb[:, 2] | cb[:, 3]
        lane_all = cb[:, 0] & cb[:, 1] & cb[:, 2] & cb[:, 3]
        return (popcount64(lane_any).sum(-1) > 1) & ~(lane_all != 0).any(-1)

    def _pairs(self, centre: torch.Tensor, ag: _AgentsView, obj_steps: torch.Tensor) -> torch.Tensor:
        """Broad phase: ego centres (N, S, 2) vs agents at steps obj_steps (S,) -> (n, s, a) triples whose
        bounding circles overlap. Agents are hashed into a uniform grid (cell >= reach) over their own and
        neighbouring cells; each ego centre looks up its cell only."""
        s_len = centre.shape[1]
        dev = centre.device
        a_cnt = ag.centre.shape[0]
        oc = ag.centre[:, obj_steps]  # (A, S, 2)
        pres = ag.present[:, obj_steps]
        reach = ag.radius + self.ego_radius + 1e-6  # (A,)
        cell = float(reach.max()) / 2
        lo = torch.minimum(centre.reshape(-1, 2).amin(0), oc.reshape(-1, 2).amin(0)) - 4 * cell
        hi = torch.maximum(centre.reshape(-1, 2).amax(0), oc.reshape(-1, 2).amax(0)) + 4 * cell
        ny = int(((hi[1] - lo[1]) / cell).floor()) + 2
        nxy = (int(((hi[0] - lo[0]) / cell).floor()) + 2) * ny
        # every cell overlapping the agent's reach box [c - r, c + r] (at most 5 x 5 cells)
        cmin = torch.floor((oc - reach[:, None, None] - lo) / cell).to(torch.int64)  # (A, S, 2)
        cmax = torch.floor((oc + reach[:, None, None] - lo) / cell).to(torch.int64)
        rng = torch.arange(5, device=dev)
        gi = cmin[..., 0, None, None] + rng[:, None]  # (A, S, 5, 1)
        gj = cmin[..., 1, None, None] + rng[None, :]  # (A, S, 1, 5)
        inside = (gi <= cmax[..., 0, None, None]) & (gj <= cmax[..., 1, None, None])  # (A, S, 5, 5)
        steps = torch.arange(s_len, device=dev)[None, :, None, None]
        keys = steps * nxy + gi * ny + gj
        agent_id = torch.arange(a_cnt, device=dev)[:, None, None, None].expand_as(keys)
        keep = pres[:, :, None, None] & inside
        keys, agent_id = keys[keep], agent_id[keep]
        nkeys = s_len * nxy
        counts_tab = torch.bincount(keys, minlength=nkeys)
        start_tab = torch.cumsum(counts_tab, 0) - counts_tab
        order = torch.argsort(keys)
        agent_id = agent_id[order]
        eij = torch.floor((centre - lo) / cell).to(torch.int64)
        ekey = (torch.arange(s_len, device=dev)[None] * nxy + eij[..., 0] * ny + eij[..., 1]).reshape(-1)
        cnt = counts_tab[ekey]
        has = torch.nonzero(cnt).squeeze(1)
        if len(has) == 0:
            return torch.zeros(0, 3, dtype=torch.int64, device=dev)
        c = cnt[has]
        total = int(c.sum())
        e = torch.repeat_interleave(has, c, output_size=total)
        base = torch.repeat_interleave(start_tab[ekey[has]] - (torch.cumsum(c, 0) - c), c, output_size=total)
        a = agent_id[base + torch.arange(total, device=dev)]
        ni, si = e // s_len, e % s_len
        d = centre[ni, si] - oc[a, si]
        close = (d * d).sum(-1) <= reach[a] ** 2
        return torch.stack([ni[close], si[close], a[close]], 1)

    @staticmethod
    def _rel_cos(rear: torch.Tensor, heading: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """cos of the angle between the ego heading and the vector rear axle -> target."""
        v = target - rear
        nv = torch.linalg.vector_norm(v, dim=-1)
        return (torch.cos(heading) * v[..., 0] + torch.sin(heading) * v[..., 1]) / nv

    def _first_fault(
        self,
        n: int,
        a_count: int,
        nidx: torch.Tensor,
        aidx: torch.Tensor,
        key: torch.Tensor,
        fault: torch.Tensor,
    ) -> torch.Tensor:
        """At-fault events counted: before the first non-at-fault event of the same (proposal, token)."""
        big = torch.iinfo(torch.int64).max
        pair = nidx * a_count + aidx
        first_ok = torch.full((n * a_count,), big, dtype=torch.int64, device=key.device)
        first_ok.scatter_reduce_(0, pair[~fault], key[~fault], reduce="amin")
        return fault & (key < first_ok[pair])

    def _collisions(
        self, states: torch.Tensor, areas: dict[str, torch.Tensor], ag: _AgentsView
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, _ = states.shape
        dev = states.device
        score = torch.ones(n, dtype=states.dtype, device=dev)
        first_t = torch.full((n,), float("inf"), dtype=states.dtype, device=dev)
        if ag.centre.shape[0] == 0:
            return score, first_t
        steps = torch.arange(t, device=dev)
        tri = self._pairs(areas["centre"], ag, steps)
        ni, ti, ai = tri[:, 0], tri[:, 1], tri[:, 2]
        ego_c = areas["corners"][ni, ti]
        obj_c = ag.corners[ai, ti]
        hit = convex_quads_intersect(ego_c, obj_c)
        ni, ti, ai, ego_c, obj_c = ni[hit], ti[hit], ai[hit], ego_c[hit], obj_c[hit]
        st = states[ni, ti]
        speed = torch.hypot(st[:, 3], st[:, 4])
        ego_stopped = speed <= self.cfg.collision_stopped_speed_threshold
        track_stopped = ag.stopped[ai]
        centroid = obj_c.mean(-2)
        behind = self._rel_cos(st[:, :2], st[:, 2], centroid) < math.cos(math.radians(self.cfg.agent_behind_angle_deg))
        front = segment_quad_intersect(ego_c[:, 0], ego_c[:, 3], obj_c)
        lateral_fault = self._multiple_lanes(ego_c) | areas["non_drivable"][ni, ti]
        active = ~ego_stopped & ~track_stopped
        fault = (~ego_stopped & track_stopped) | (active & ~behind & (front | lateral_fault))
        counted = self._first_fault(n, ag.centre.shape[0], ni, ai, ti, fault)
        val = torch.where(ag.is_agent[ai], 0.0, 0.5).to(states.dtype)
        score.scatter_reduce_(0, ni[counted], val[counted], reduce="amin")
        first_t.scatter_reduce_(0, ni[counted], ti[counted].to(states.dtype), reduce="amin")
        return score, first_t

    def _ttc(
        self, states: torch.Tensor, areas: dict[str, torch.Tensor], ag: _AgentsView, t_eval: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = states.shape[0]
        dev = states.device
        score = torch.ones(n, dtype=states.dtype, device=dev)
        first_t = torch.full((n,), float("inf"), dtype=states.dtype, device=dev)
        if ag.centre.shape[0] == 0:
            return score, first_t
        horizon = round(self.cfg.future_collision_horizon_window_s / self.cfg.dt)
        offsets = list(range(0, horizon, self.cfg.ttc_projection_step))  # 0, 3, 6, 9
        speed = torch.hypot(states[..., 3], states[..., 4])
        cos_h, sin_h = torch.cos(states[..., 2]), torch.sin(states[..., 2])
        # one broad phase for all projections: the step axis holds (projection k, step t) as k * t_eval + t
        ts = torch.arange(t_eval, device=dev)
        off_t = torch.tensor(offsets, device=dev, dtype=states.dtype)
        unit = torch.stack([cos_h[:, :t_eval], sin_h[:, :t_eval]], -1) * speed[:, :t_eval, None]  # (N, T, 2)
        shift = unit[:, None] * (off_t * self.cfg.dt)[None, :, None, None]  # (N, K, T, 2)
        centre = (areas["centre"][:, None, :t_eval] + shift).reshape(n, -1, 2)
        obj_steps = (ts[None] + torch.tensor(offsets, device=dev)[:, None]).reshape(-1)
        tri = self._pairs(centre, ag, obj_steps)
        if len(tri) == 0:
            return score, first_t
        ni, si, ai = tri[:, 0], tri[:, 1], tri[:, 2]
        ki, ti = si // t_eval, si % t_eval
        ego_c = areas["corners"][ni, ti] + shift[ni, ki, ti][:, None, :]
        obj_c = ag.corners[ai, obj_steps[si]]
        hit = convex_quads_intersect(ego_c, obj_c) & (speed[ni, ti] >= self.cfg.stopped_speed_threshold)
        allt = torch.stack([ni[hit], ti[hit], ai[hit], ki[hit]], 1)
        ni, ti, ai, ki = allt[:, 0], allt[:, 1], allt[:, 2], allt[:, 3]
        off_t = torch.tensor(offsets, device=dev)[ki]
        centroid = ag.centre[ai, ti + off_t]
        st = states[ni, ti]
        c = self._rel_cos(st[:, :2], st[:, 2], centroid)
        ahead = c > math.cos(math.radians(self.cfg.agent_ahead_angle_deg))
        behind = c < math.cos(math.radians(self.cfg.agent_behind_angle_deg))
        risky = (
            self._multiple_lanes(areas["corners"][ni, ti])
            | areas["non_drivable"][ni, ti]
            | areas["rear_in_intersection"][ni, ti]
        )
        viol = ahead | (risky & ~behind)
        key = ti * len(offsets) + ki
        counted = self._first_fault(n, ag.centre.shape[0], ni, ai, key, viol)
        score.scatter_reduce_(0, ni[counted], torch.zeros_like(ni[counted], dtype=states.dtype), reduce="amin")
        first_t.scatter_reduce_(0, ni[counted], ti[counted].to(states.dtype), reduce="amin")
        return score, first_t

    def _tlc(self, areas: dict[str, torch.Tensor]) -> torch.Tensor:
        """TLC: the ego box intersects a red on-route lane connector at a step where it is red."""
        corners, c = areas["corners"], areas["centre"]
        n, t = corners.shape[:2]
        ok = torch.ones(n, dtype=torch.bool, device=corners.device)
        for li, poly in enumerate(self.tl_polys):
            red = self.tl_red[li, :t]
            if not bool(red.any()):
                continue
            lo, hi = poly.min(0).values, poly.max(0).values
            r = self.ego_radius
            near = (
                (c[..., 0] >= lo[0] - r)
                & (c[..., 0] <= hi[0] + r)
                & (c[..., 1] >= lo[1] - r)
                & (c[..., 1] <= hi[1] + r)
                & red[None]
            )
            idx = torch.nonzero(near)
            if len(idx) == 0:
                continue
            hit = torch.zeros(len(idx), dtype=torch.bool, device=corners.device)
            slot = self.tl_lane_slot[li]
            if slot >= 0:
                w, b = divmod(slot, BITS_PER_WORD)
                cb = self._lane_bits(corners[idx[:, 0], idx[:, 1]])
                hit |= ((cb[..., w] >> b) & 1).bool().any(-1)
            a0, a1 = poly, torch.roll(poly, -1, 0)  # (V, 2)
            for st in range(0, len(idx), 4096):
                sl = idx[st : st + 4096]
                q = corners[sl[:, 0], sl[:, 1]]  # (B, 4, 2)
                b0, b1 = q, torch.roll(q, -1, 1)
                cr = segments_cross_closed(a0[None, :, None], a1[None, :, None], b0[:, None], b1[:, None])
                hit[st : st + 4096] |= cr.flatten(1).any(1)
            bad = torch.zeros(n, dtype=torch.bool, device=corners.device)
            bad[idx[hit, 0]] = True
            ok &= ~bad
        return ok

    # --------------------------------------------------------------------------------------------------------
    def sub_scores(self, states: torch.Tensor, version: int = 2, diagnostics: bool = False) -> dict[str, torch.Tensor]:
        """Raw (un-normalised, unfiltered) sub-scores of simulated local states (N, 41, 11)."""
        cfg = self.cfg
        dtype = states.dtype
        areas = self._ego_areas(states)
        ag = self.agents_v2 if version == 2 else self.agents_v1
        out: dict[str, torch.Tensor] = {}
        nc, nc_t = self._collisions(states, areas, ag)
        out["no_at_fault_collisions"], out["collision_time_idx"] = nc, nc_t
        out["drivable_area_compliance"] = (~areas["non_drivable"].any(1)).to(dtype)
        # driving direction
        c = areas["centre"]
        step = torch.linalg.vector_norm(c[:, 1:] - c[:, :-1], dim=-1)
        mask = areas["oncoming"][:, 1:]
        if version == 2:
            mask = mask & ~areas["centre_in_intersection"][:, 1:]
        prog = torch.cat([torch.zeros_like(step[:, :1]), torch.where(mask, step, torch.zeros_like(step))], 1)
        hz = int(cfg.driving_direction_horizon_s / cfg.dt)
        cs = torch.cat([torch.zeros_like(prog[:, :1]), torch.cumsum(prog, 1)], 1)
        idx = torch.arange(prog.shape[1], device=states.device)
        win = cs[:, idx + 1] - cs[:, (idx - hz).clamp_min(0)]
        mx = win.amax(1)
        ddc = torch.where(
            mx < cfg.driving_direction_compliance_threshold,
            1.0,
            torch.where(mx < cfg.driving_direction_violation_threshold, 0.5, 0.0),
        )
        out["driving_direction_compliance"] = ddc.to(dtype)
        # progress along the route centreline (centre point), clipped at 0
        # every proposal starts from the same simulated state 0: project that centre once
        s0, _ = polyline_project(c[:1, 0], self.centerline)
        s1, _ = polyline_project(c[:, -1], self.centerline)
        out["progress_raw"] = (s1 - s0).clamp_min(0)
        horizon_eval = (states.shape[1] - 1) - 9 if version == 2 else states.shape[1] - 1
        ttc, ttc_t = self._ttc(states, areas, ag, horizon_eval + 1)
        out["time_to_collision_within_bound"], out["ttc_time_idx"] = ttc, ttc_t
        if version == 2:
            out["traffic_light_compliance"] = self._tlc(areas).to(dtype)
            # lane keeping
            n, t = c.shape[:2]
            exceed = self.lk_grid.farther_than(c.reshape(-1, 2)).view(n, t)
            skip = areas["centre_in_intersection"]
            need = math.ceil(cfg.lane_keeping_horizon_window_s / cfg.dt)
            run = torch.zeros(n, dtype=torch.int64, device=states.device)
            fail = torch.zeros(n, dtype=torch.bool, device=states.device)
            for k in range(t):
                run = torch.where(skip[:, k], run, torch.where(exceed[:, k], run + 1, torch.zeros_like(run)))
                fail |= run >= need
            out["lane_keeping"] = (~fail).to(dtype)
            hist = self.hist[None].expand(states.shape[0], -1, -1)
            out["history_comfort"] = comfortable(
                torch.cat([hist, states], 1), cfg.dt, self.r2c, cfg.comfort, center_shift=True
            ).to(dtype)
            if self.prev_sim is not None:
                k = round(0.5 / cfg.dt)
                out["extended_comfort"] = extended_comfort(
                    states[:, : states.shape[1] - k], self.prev_sim[k:], cfg.dt, cfg.comfort
                ).to(dtype)
            if diagnostics:
                n_, t_ = c.shape[:2]
                multi = self._multiple_lanes(areas["corners"].reshape(-1, 4, 2)).view(n_, t_)
                out["ego_areas"] = torch.stack([multi, areas["non_drivable"], areas["oncoming"]], -1)
        else:
            out["comfort"] = comfortable(states, cfg.dt, self.r2c, cfg.comfort, center_shift=False).to(dtype)
        return out

    # --------------------------------------------------------------------------------------------------------
    def score(
        self, plans: torch.Tensor, plan_dt: float, version: int = 2, diagnostics: bool = False
    ) -> dict[str, torch.Tensor]:
        """Score candidate plans (N, K, 3). Returns per-candidate tensors (N,) (see docs/scorer.md).

        `diagnostics=True` also returns `ego_areas` (N, 41, 3) [multiple lanes, non-drivable, oncoming]."""
        cfg = self.cfg
        plans = plans.to(self.device, torch.float64)
        n = plans.shape[0]
        sims = [self.simulate_plans(plans, plan_dt)]
        ref = self.scene.reference
        ref_states = None
        if ref is not None:
            rs = ref.reference_states if version == 2 or ref.reference_states_v1 is None else ref.reference_states_v1
            ref_states = rs
            sims.insert(0, self.simulate_reference(rs))
        use_filter = version == 2 and cfg.human_penalty_filter
        if use_filter:
            sims.append(self.simulate_plans(self.scene.human_poses_8[None], 0.5))
        states = torch.cat(sims, 0)
        raw = self.sub_scores(states, version, diagnostics)
        off = 1 if ref_states is not None else 0
        cand = {k: v[off : off + n] for k, v in raw.items()}
        cand["simulated_states"] = states[off : off + n]
        prog = cand["progress_raw"]
        if version == 2:
            mult = (
                cand["no_at_fault_collisions"]
                * cand["drivable_area_compliance"]
                * cand["driving_direction_compliance"]
                * cand["traffic_light_compliance"]
            )
            if off:
                ref_mult = (
                    raw["no_at_fault_collisions"][0]
                    * raw["drivable_area_compliance"][0]
                    * raw["driving_direction_compliance"][0]
                    * raw["traffic_light_compliance"][0]
                )
                ref_val = raw["progress_raw"][0] * ref_mult
            else:
                ref_val = torch.zeros((), dtype=prog.dtype, device=prog.device)
            norm = torch.maximum(prog * mult, ref_val)
            ep = torch.where(norm > cfg.progress_distance_threshold, (prog / norm).clamp(0, 1), torch.ones_like(prog))
            cand["ego_progress"] = torch.nan_to_num(ep, nan=1.0)
            out: dict[str, torch.Tensor] = {}
            for key in SUB_SCORES_V2:
                out["raw_" + key] = cand[key]
            filtered = dict(cand)
            if use_filter:
                for key in FILTERED_V2:
                    human_zero = raw[key][-1] == 0
                    filtered[key] = torch.where(human_zero, torch.ones_like(cand[key]), cand[key])
            for key in SUB_SCORES_V2:
                out[key] = filtered[key]
            for prefix, src in (("", filtered), ("raw_", cand)):
                m = (
                    src["no_at_fault_collisions"]
                    * src["drivable_area_compliance"]
                    * src["driving_direction_compliance"]
                    * src["traffic_light_compliance"]
                )
                base = (
                    cfg.ep_weight * src["ego_progress"]
                    + cfg.ttc_weight * src["time_to_collision_within_bound"]
                    + cfg.lk_weight * src["lane_keeping"]
                    + cfg.hc_weight * src["history_comfort"]
                )
                wsum = cfg.ep_weight + cfg.ttc_weight + cfg.lk_weight + cfg.hc_weight
                out[prefix + "multiplicative_metrics_prod"] = m
                out[prefix + "epdms_no_ec"] = m * base / wsum
                if "extended_comfort" in cand:
                    out[prefix + "epdms"] = (
                        m * (base + cfg.ec_weight * cand["extended_comfort"]) / (wsum + cfg.ec_weight)
                    )
                else:
                    out[prefix + "epdms"] = out[prefix + "epdms_no_ec"]
            if "extended_comfort" in cand:
                out["extended_comfort"] = cand["extended_comfort"]
            for key in (
                "progress_raw",
                "simulated_states",
                "ego_areas",
                "collision_time_idx",
                "ttc_time_idx",
            ):
                if key in cand:
                    out[key] = cand[key]
            return out
        # v1.1 PDMS
        nd = cand["no_at_fault_collisions"] * cand["drivable_area_compliance"]
        masked = prog * nd
        if off:
            ref_masked = raw["progress_raw"][0] * raw["no_at_fault_collisions"][0] * raw["drivable_area_compliance"][0]
        else:
            ref_masked = torch.zeros((), dtype=prog.dtype, device=prog.device)
        mx = torch.maximum(masked, ref_masked)
        ep = torch.where(mx > cfg.progress_distance_threshold, masked / mx, torch.ones_like(prog))
        ep = torch.where(nd == 0, torch.zeros_like(ep), torch.nan_to_num(ep, nan=1.0))  # v1.1 masks failed rows
        pdms = (
            nd
            * (
                cfg.ep_weight * ep
                + cfg.ttc_weight * cand["time_to_collision_within_bound"]
                + cfg.v1_comfort_weight * cand["comfort"]
            )
            / (cfg.ep_weight + cfg.ttc_weight + cfg.v1_comfort_weight)
        )
        return {
            "no_at_fault_collisions": cand["no_at_fault_collisions"],
            "drivable_area_compliance": cand["drivable_area_compliance"],
            "driving_direction_compliance": cand["driving_direction_compliance"],
            "ego_progress": ep,
            "time_to_collision_within_bound": cand["time_to_collision_within_bound"],
            "comfort": cand["comfort"],
            "pdms": pdms,
            "progress_raw": prog,
        }

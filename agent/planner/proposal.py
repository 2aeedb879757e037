"""Proposal-centric planner: N proposals × T waypoint queries refined K times by one weight-tied refiner.

Per refinement iteration (weights shared across iterations):
1. self-attention among all N·T waypoint queries of a sample (proposals see each other and their own waypoints);
2. waypoint-anchored cross-attention: the ego box (4 corners + centre, at several heights) placed at each query's
   current waypoint is projected through the camera into the model input and the token grid is sampled there;
3. global cross-attention to the (pooled) token grid and the status token, then an FFN;
4. a head predicts a pose increment: waypoints ← waypoints + Δ.
A scorer head reads the final proposals (or any candidate trajectories) the same anchored way and predicts the
sub-scores and a final score per trajectory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agent.planner.config import PlannerModelConfig, status_dim
from agent.planner.layers import (
    AnchoredCrossAttention,
    PoseEmbedding,
    box_anchor_offsets,
    ego_box_points,
    mlp,
    project_anchors,
)
from agent.planner.output import PlannerOutput
from drive_jepa.frames import arc_poses


class _Anchors(nn.Module):
    """Ego-box anchor points of trajectories → grid_sample coords."""

    offsets: Tensor
    heights: Tensor

    def __init__(self, cfg: PlannerModelConfig) -> None:
        super().__init__()
        offsets = box_anchor_offsets(cfg.ego_front_length, cfg.ego_rear_length, cfg.ego_width)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("heights", torch.tensor(cfg.proposal.corner_heights), persistent=False)
        self.num_points = offsets.shape[0] * len(cfg.proposal.corner_heights)
        self.height, self.width = cfg.image_height, cfg.image_width

    def forward(self, traj: Tensor, projection: Tensor) -> tuple[Tensor, Tensor]:
        """traj (B, M, T, 3) → grid (B, M·T, P, 2), valid (B, M·T, P)."""
        pts = ego_box_points(traj, self.offsets, self.heights).flatten(1, 2)  # (B, M·T, P, 3)
        return project_anchors(pts, projection, self.height, self.width)


class ScorerHead(nn.Module):
    """Trajectories (B, M, T, 3) → sub-score logits (B, M, K) and final-score logits (B, M)."""

    def __init__(self, cfg: PlannerModelConfig, anchors: _Anchors) -> None:
        super().__init__()
        p = cfg.proposal
        self.anchors = anchors
        self.pose = PoseEmbedding(p.d_model, cfg.pose_scale)
        self.time = nn.Parameter(torch.randn(cfg.num_poses, p.d_model) * 0.02)
        self.cross = AnchoredCrossAttention(p.d_model, anchors.num_points, p.heads)
        self.norm = nn.LayerNorm(p.d_model)
        self.k = len(p.score_names)
        scorer_im = p.imitation_score and p.imitation_kind in ("independent", "softmax")
        self.out = mlp(2 * p.d_model, p.ffn, self.k + 1 + int(scorer_im))

    def forward(
        self, traj: Tensor, values: Tensor, status: Tensor, projection: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """→ sub-score logits (B, M, K), final-score logits (B, M), imitation logits (B, M) or None."""
        b, m, t, _ = traj.shape
        q = self.pose(traj) + self.time + status[:, None, None]
        grid, valid = self.anchors(traj, projection)
        q = q + self.cross(q.flatten(1, 2), values, grid, valid).view(b, m, t, -1)
        q = self.norm(q)
        pooled = torch.cat([q.mean(2), q.amax(2)], -1)
        logits = self.out(pooled)
        imitation = logits[..., self.k + 1] if logits.shape[-1] > self.k + 1 else None
        return logits[..., : self.k], logits[..., self.k], imitation


class ProposalPlanner(nn.Module):
    anchor_poses: Tensor

    def __init__(self, cfg: PlannerModelConfig, token_dim: int) -> None:
        super().__init__()
        p = cfg.proposal
        d = p.d_model
        self.num_proposals, self.iterations, self.num_poses = p.num_proposals, p.iterations, cfg.num_poses
        self.register_buffer("pose_scale", torch.tensor(cfg.pose_scale, dtype=torch.float32), persistent=False)
        self.value_proj = nn.Conv2d(token_dim, d, 1)
        self.status = mlp(status_dim(cfg), d, d)
        self.proposal_embed = nn.Parameter(torch.randn(p.num_proposals, d))
        self.time_embed = nn.Parameter(torch.randn(cfg.num_poses, d) * 0.02)
        self.init_head = mlp(d, p.ffn, 3)
        if p.anchors not in ("fan", "learned"):
            raise ValueError(f"proposal.anchors={p.anchors!r}: expected 'fan' or 'learned'")
        if p.imitation_kind not in ("independent", "softmax", "decoder", "regression"):
            raise ValueError(
                f"proposal.imitation_kind={p.imitation_kind!r}: expected 'independent', 'softmax', 'decoder' or "
                "'regression'"
            )
        # the decoder's mode-imitation head: pooled final proposal queries → one logit per proposal
        self.mode_head = mlp(2 * d, p.ffn, 1) if p.imitation_score and p.imitation_kind == "decoder" else None
        # the regression head: all final queries pooled → one human-like trajectory (T, 3)
        regress = p.imitation_score and p.imitation_kind == "regression"
        self.regression_head = mlp(2 * d, p.ffn, cfg.num_poses * 3) if regress else None
        self.regression_tau = float(p.imitation_regression_tau_m)
        n_anchor = p.num_proposals if p.anchors == "fan" else 0
        times = cfg.dt * torch.arange(1, cfg.num_poses + 1, dtype=torch.float64)
        curv = torch.linspace(-p.anchor_max_curvature, p.anchor_max_curvature, n_anchor, dtype=torch.float64)
        anchors = arc_poses(torch.full_like(curv, p.anchor_speed), curv, torch.zeros_like(curv), times)
        self.register_buffer("anchor_poses", anchors.float() if n_anchor else torch.zeros(1, 1, 3), persistent=False)
        if n_anchor:  # start exactly at the anchors
            last_init = self.init_head[-1]
            assert isinstance(last_init, nn.Linear)
            nn.init.zeros_(last_init.weight)
            nn.init.zeros_(last_init.bias)
        self.anchors = _Anchors(cfg)
        self.pose = PoseEmbedding(d, cfg.pose_scale)
        # the refiner: one set of weights applied `iterations` times
        self.self_attn = nn.MultiheadAttention(d, p.heads, dropout=p.dropout, batch_first=True)
        self.anchored = AnchoredCrossAttention(d, self.anchors.num_points, p.heads)
        self.global_attn = nn.MultiheadAttention(d, p.heads, dropout=p.dropout, batch_first=True)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))
        self.ffn = mlp(d, p.ffn, d)
        self.delta_head = mlp(d, p.ffn, 3)
        last = self.delta_head[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.scorer = ScorerHead(cfg, self.anchors)
        self.imitation_weight = float(p.imitation_weight)
        self.imitation_kind = p.imitation_kind

    def forward(
        self, tokens: Tensor, status: Tensor, projection: Tensor, candidates: Tensor | None = None
    ) -> PlannerOutput:
        """tokens (B, D, Hp, Wp); status (B, `status_dim(cfg)`); projection (B, 3, 4) EGO_REAR_AXLE → model-input
        pixels; candidates (B, M, T, 3) optional extra trajectories to score (e.g. vocabulary rows with offline
        labels)."""
        b = tokens.shape[0]
        n, t = self.num_proposals, self.num_poses
        values = self.value_proj(tokens)  # (B, d, Hp, Wp)
        memory = F.adaptive_avg_pool2d(values, (max(1, values.shape[2] // 2), max(1, values.shape[3] // 2)))
        s = self.status(status)  # (B, d)
        memory = torch.cat([memory.flatten(2).transpose(1, 2), s[:, None]], 1)  # (B, L, d)

        q = (self.proposal_embed[:, None] + self.time_embed[None] + s[:, None, None]).reshape(b, n * t, -1)
        traj = (self.init_head(q) * self.pose_scale).view(b, n, t, 3) + self.anchor_poses
        iterations = [traj]
        for _ in range(self.iterations):
            x = q + self.pose(traj).flatten(1, 2)
            h = self.norms[0](x)
            x = x + self.self_attn(h, h, h, need_weights=False)[0]
            grid, valid = self.anchors(traj, projection)
            x = x + self.anchored(self.norms[1](x), values, grid, valid)
            h = self.norms[2](x)
            x = x + self.global_attn(h, memory, memory, need_weights=False)[0]
            q = x + self.ffn(self.norms[3](x))
            traj = traj + (self.delta_head(q) * self.pose_scale).view(b, n, t, 3)
            iterations.append(traj)

        sub, final, im = self.scorer(traj.detach(), values, s, projection)
        imitation_trajectory = None
        if self.mode_head is not None:
            qn = q.view(b, n, t, -1)
            im = self.mode_head(torch.cat([qn.mean(2), qn.amax(2)], -1))[..., 0]
        elif self.regression_head is not None:
            qn = q.view(b, n * t, -1)
            pooled = torch.cat([qn.mean(1), qn.amax(1)], -1)
            imitation_trajectory = self.regression_head(pooled).view(b, t, 3) * self.pose_scale
            ade = (traj.detach()[..., :2] - imitation_trajectory.detach()[:, None, :, :2]).norm(dim=-1).mean(-1)
            im = -ade / self.regression_tau  # logits: softmax(−ADE/τ) over the proposals
        out = PlannerOutput(
            trajectories=traj,
            iterations=iterations,
            sub_scores=sub,
            final_score=final,
            imitation_score=im,
            imitation_weight=self.imitation_weight,
            imitation_kind=self.imitation_kind,
            imitation_trajectory=imitation_trajectory,
        )
        if candidates is not None:
            cand = self.scorer(candidates, values, s, projection)
            out.candidate_sub_scores, out.candidate_final_score, out.candidate_imitation_score = cand
        return out

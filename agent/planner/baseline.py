"""Perception-free baseline: pooled image tokens + a status token → transformer → one trajectory of T poses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agent.planner.config import PlannerModelConfig, status_dim
from agent.planner.layers import mlp
from agent.planner.output import PlannerOutput


class BaselinePlanner(nn.Module):
    """Tokens (B, D, Hp, Wp) are average-pooled by `pool`, projected to d_model, given learned positions, joined by a
    status token (command one-hot 4, velocity 2, acceleration 2) and decoded by T pose queries."""

    def __init__(self, cfg: PlannerModelConfig, token_dim: int, grid_hw: tuple[int, int]) -> None:
        super().__init__()
        b = cfg.baseline
        self.pool = b.pool
        n_tokens = (grid_hw[0] // b.pool) * (grid_hw[1] // b.pool) + 1
        self.token_proj = nn.Linear(token_dim, b.d_model)
        self.status = nn.Linear(status_dim(cfg), b.d_model)
        self.keyval_pos = nn.Parameter(torch.randn(n_tokens, b.d_model) * 0.02)
        self.queries = nn.Parameter(torch.randn(cfg.num_poses, b.d_model) * 0.02)
        self.transformer = nn.Transformer(
            d_model=b.d_model,
            nhead=b.heads,
            num_encoder_layers=b.layers,
            num_decoder_layers=b.layers,
            dim_feedforward=b.ffn,
            dropout=b.dropout,
            batch_first=True,
        )
        self.head = mlp(b.d_model, b.ffn, 3)
        self.register_buffer("pose_scale", torch.tensor(cfg.pose_scale, dtype=torch.float32), persistent=False)

    def forward(self, tokens: Tensor, status: Tensor, projection: Tensor | None = None) -> PlannerOutput:
        x = F.avg_pool2d(tokens, self.pool) if self.pool > 1 else tokens
        x = self.token_proj(x.flatten(2).transpose(1, 2))  # (B, L, d)
        keyval = torch.cat([x, self.status(status)[:, None]], 1)
        if keyval.shape[1] != self.keyval_pos.shape[0]:
            raise ValueError(
                f"baseline planner built for {self.keyval_pos.shape[0] - 1} pooled tokens, got {x.shape[1]}"
            )
        keyval = keyval + self.keyval_pos
        q = self.queries.expand(tokens.shape[0], -1, -1)
        out = self.transformer(src=keyval, tgt=q)
        traj = (self.head(out) * self.pose_scale)[:, None]  # (B, 1, T, 3)
        return PlannerOutput(trajectories=traj, iterations=[traj])

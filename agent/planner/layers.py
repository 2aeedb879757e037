"""Building blocks shared by the planners: pose embeddings, ego-box anchor points, waypoint-anchored attention.

All trajectories are EGO_REAR_AXLE (x, y, heading); anchor points are 3D EGO_REAR_AXLE points with z = 0 on the
ground; image sampling uses `agent.camera.normalized_grid` + `F.grid_sample` (no custom ops; CPU and CUDA).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agent.camera import normalized_grid
from drive_jepa.frames import points_to_global


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


class PoseEmbedding(nn.Module):
    """(…, 3) poses → (…, d): an MLP over (x/sx, y/sy, cos h, sin h)."""

    scale: Tensor

    def __init__(self, d_model: int, pose_scale: list[float]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(pose_scale[:2], dtype=torch.float32), persistent=False)
        self.net = mlp(4, d_model, d_model)

    def forward(self, poses: Tensor) -> Tensor:
        xy = poses[..., :2] / self.scale
        return self.net(torch.cat([xy, poses[..., 2:3].cos(), poses[..., 2:3].sin()], -1))


def box_anchor_offsets(front: float, rear: float, width: float) -> Tensor:
    """(5, 2) body-frame (x, y) of the ego box's 4 corners and its centre, relative to the rear axle (metres)."""
    hw = width / 2.0
    return torch.tensor([[front, hw], [front, -hw], [-rear, hw], [-rear, -hw], [(front - rear) / 2.0, 0.0]])


def ego_box_points(poses: Tensor, offsets: Tensor, heights: Tensor) -> Tensor:
    """Anchor points of the ego box placed at each pose: (…, 3) → (…, P, 3), P = len(offsets)·len(heights).

    The box corners are rotated by the pose heading and translated to its (x, y) (drive_jepa.frames), then
    replicated at every height above ground.
    """
    xy = points_to_global(offsets.to(poses), poses[..., None, :])  # (…, 5, 2)
    n_h = heights.shape[0]
    xy = xy[..., None, :, :].expand(*xy.shape[:-2], n_h, xy.shape[-2], 2)  # (…, H, 5, 2)
    z = heights.to(poses).view(n_h, 1, 1).expand(*xy.shape[:-1], 1)
    return torch.cat([xy, z], -1).flatten(-3, -2)


class AnchoredCrossAttention(nn.Module):
    """Each query reads the image token grid at its own anchor points (projected ego-box points of its waypoint).

    Values are bilinearly sampled with `grid_sample`; per head, the query predicts a softmax over its anchor points
    (points behind the camera or outside the image are masked out; a query with no visible point reads zeros).
    """

    def __init__(self, d_model: int, num_points: int, heads: int) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} must be divisible by heads {heads}")
        self.heads = heads
        self.num_points = num_points
        self.point_embed = nn.Parameter(torch.zeros(num_points, d_model))
        self.weights = nn.Linear(d_model, heads * num_points)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, query: Tensor, values: Tensor, grid: Tensor, valid: Tensor) -> Tensor:
        """query (B, L, d); values (B, d, Hp, Wp); grid (B, L, P, 2) in [−1, 1]; valid (B, L, P) → (B, L, d)."""
        b, n_q, d = query.shape
        sampled = F.grid_sample(values, grid.to(values.dtype), mode="bilinear", align_corners=False)  # (B, d, L, P)
        sampled = sampled.permute(0, 2, 3, 1) + self.point_embed  # (B, L, P, d)
        logits = self.weights(query).view(b, n_q, self.heads, self.num_points)
        mask = valid[:, :, None, :]
        logits = logits.masked_fill(~mask, float("-inf"))
        attn = torch.softmax(logits, -1).nan_to_num(0.0)  # all-masked rows → 0
        heads = sampled.view(b, n_q, self.num_points, self.heads, d // self.heads)
        out = torch.einsum("blhp,blphc->blhc", attn, heads).reshape(b, n_q, d)
        return self.out(out)


def project_anchors(points: Tensor, projection: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Anchor points (B, L, P, 3) + per-sample P (B, 3, 4) in model-input pixels → grid (B, L, P, 2), valid."""
    return normalized_grid(points, projection[:, None, None], height, width)

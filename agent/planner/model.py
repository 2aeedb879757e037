"""`DrivePlanner`: a token encoder + a planner, the unit that trains, checkpoints and runs in the agent."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from agent.camera import Crop, camera_by_name
from agent.planner.baseline import BaselinePlanner
from agent.planner.config import TARGET_POINT_CLIP, TARGET_POINT_SCALE, PlannerModelConfig
from agent.planner.output import PlannerOutput
from agent.planner.proposal import ProposalPlanner
from agent.planner.tokens import build_encoder, token_grid_shape


class DrivePlanner(nn.Module):
    """video (B, 3, T, H, W) + status (B, 8) [+ projection (B, 3, 4)] [+ target_point (B, 2)] → `PlannerOutput`
    (EGO_REAR_AXLE).

    `projection` maps EGO_REAR_AXLE points (z = 0 on the ground) to model-input pixels (`CameraModel.
    projection_matrix()` of the model-input camera); when omitted, the config's default camera is used.
    `target_point` (EGO_REAR_AXLE, metres) is required when `cfg.target_point_input` and ignored otherwise.
    """

    default_projection: Tensor

    def __init__(self, cfg: PlannerModelConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder if encoder is not None else build_encoder(cfg.encoder)
        token_dim = int(getattr(self.encoder, "dim", cfg.encoder.dim))
        grid_hw = token_grid_shape(cfg.encoder, cfg.image_height, cfg.image_width)
        self.planner: nn.Module
        if cfg.kind == "proposal":
            self.planner = ProposalPlanner(cfg, token_dim)
        elif cfg.kind == "baseline":
            self.planner = BaselinePlanner(cfg, token_dim, grid_hw)
        else:
            raise ValueError(f"model.kind={cfg.kind!r}: expected 'proposal' or 'baseline'")
        # the default camera at the model-input size (a smaller tiny-config input is a pure resize of 512×256)
        camera = camera_by_name(cfg.camera).for_model_input(Crop(), cfg.image_width, cfg.image_height)
        self.camera = camera
        self.register_buffer(
            "default_projection", torch.as_tensor(camera.projection_matrix(), dtype=torch.float32), persistent=False
        )

    def forward(
        self,
        video: Tensor,
        status: Tensor,
        projection: Tensor | None = None,
        candidates: Tensor | None = None,
        target_point: Tensor | None = None,
    ) -> PlannerOutput:
        if video.shape[-2:] != (self.cfg.image_height, self.cfg.image_width):
            raise ValueError(
                f"video must be (B, 3, T, {self.cfg.image_height}, {self.cfg.image_width}), got {tuple(video.shape)}"
            )
        tokens = self.encoder(video)
        return self.plan(tokens, status, projection, candidates, target_point)

    def plan(
        self,
        tokens: Tensor,
        status: Tensor,
        projection: Tensor | None = None,
        candidates: Tensor | None = None,
        target_point: Tensor | None = None,
    ) -> PlannerOutput:
        """From a token grid (B, D, Hp, Wp) (any `TokenEncoder`'s output)."""
        if projection is None:
            projection = self.default_projection.expand(tokens.shape[0], 3, 4)
        if not self.cfg.ego_motion_input:
            status = torch.cat([status[:, :4], torch.zeros_like(status[:, 4:])], 1)
        if self.cfg.target_point_input:
            if target_point is None:
                raise ValueError("this planner takes the route's target point (model.target_point_input=true): "
                                 "pass target_point (B, 2), EGO_REAR_AXLE metres")  # fmt: skip
            if target_point.shape != (status.shape[0], 2):
                raise ValueError(f"target_point must be ({status.shape[0]}, 2), got {tuple(target_point.shape)}")
            tp = (target_point.to(status.dtype) / TARGET_POINT_SCALE).clamp(-TARGET_POINT_CLIP, TARGET_POINT_CLIP)
            status = torch.cat([status, tp], 1)
        if isinstance(self.planner, ProposalPlanner):
            return self.planner(tokens, status, projection.to(tokens.dtype), candidates)
        return self.planner(tokens, status, projection)

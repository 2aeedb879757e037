"""Inference glue for the agent: raw camera frames → model input → proposals and scores → momentum selection.

`PlannerRunner.step` takes the two most recent RGB frames of the front camera at the rig's raw size (oldest
first, uint8 (H, W, 3), **RGB** — the leaderboard adapter converts CARLA's BGRA), the status vector, the ego's
WORLD rear-axle pose and the time, and returns the `Selection` (trajectory in EGO_REAR_AXLE).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agent.camera import CameraModel, Crop, preprocess_image, raw_crop_by_name
from agent.planner.checkpoint import LoadedPlanner
from agent.preprocess import normalize_frames
from agent.selection import MomentumConfig, MomentumSelector, Selection


class PlannerRunner:
    def __init__(
        self,
        loaded: LoadedPlanner,
        momentum: MomentumConfig | None = None,
        crop: Crop | None = None,
        camera: CameraModel | None = None,
    ) -> None:
        """`crop` defaults to the rig named by the model config; `camera` (model-input size) to the checkpoint's."""
        self.model = loaded.model
        self.cfg = loaded.config
        self.camera = camera or loaded.camera
        self.crop = crop if crop is not None else raw_crop_by_name(self.cfg.camera)[1]
        self.selector = MomentumSelector(momentum or MomentumConfig(dt=self.cfg.dt))
        self.device = next(self.model.parameters()).device
        self.projection = torch.as_tensor(self.camera.projection_matrix(), dtype=torch.float32, device=self.device)

    def video(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Raw RGB uint8 frames (oldest first) → (1, 3, T, H, W) ImageNet-normalised model input."""
        if len(frames) != self.cfg.encoder.frames:
            raise ValueError(f"expected {self.cfg.encoder.frames} frames, got {len(frames)}")
        h, w = self.cfg.image_height, self.cfg.image_width
        imgs = [preprocess_image(f, self.crop, w, h) for f in frames]
        return torch.from_numpy(normalize_frames(imgs))[None].to(self.device)

    @torch.no_grad()
    def step(
        self,
        frames: Sequence[np.ndarray],
        status: np.ndarray,
        ego_pose_world: np.ndarray,
        timestamp: float,
        route_start: bool = False,
        target_point: np.ndarray | None = None,
    ) -> Selection:
        """`target_point` (2,) EGO_REAR_AXLE metres: the route target, needed by planners with
        `target_point_input`."""
        status_t = torch.as_tensor(np.asarray(status, dtype=np.float32), device=self.device)[None]
        target = None
        if target_point is not None:
            target = torch.as_tensor(np.asarray(target_point, dtype=np.float32), device=self.device)[None]
        out = self.model(self.video(frames), status_t, self.projection[None], target_point=target)
        proposals = out.trajectories[0].double().cpu().numpy()
        scores = out.scores()[0].double().cpu().numpy()
        return self.selector.select(proposals, scores, ego_pose_world, timestamp, route_start)

"""A `drive-jepa train` checkpoint as the agent's `PlanModel` (the leaderboard agent's `model=checkpoint`).

The planner runs on the GPU with bf16 autocast when one is available, on the CPU in float32 otherwise. How the
CARLA frames are cropped/resized and which camera model the waypoint-anchored attention projects through come from
`agent.deploy.deployment(checkpoint metadata, rig)` (docs/deploy.md): the same pipeline as training for a CARLA-
trained checkpoint, intrinsics matching for a NAVSIM-trained one, and always the real CARLA camera (EGO_REAR_AXLE)
as the projection.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.camera import CameraModel
from agent.deploy import deployment
from agent.model_api import ModelInputs, ModelOutputs
from agent.planner.checkpoint import LoadedPlanner, load_planner_checkpoint
from agent.preprocess import ImageInputConfig
from agent.sensors import SensorRigConfig
from drive_jepa.frames import LINCOLN_MKZ_2020, VehicleGeometry


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is available (use device=auto or cpu)")
    return torch.device(device)


@dataclass
class CheckpointPlanModel:
    loaded: LoadedPlanner
    camera: CameraModel  # model-input size, EGO_REAR_AXLE: the planner's projection
    image: ImageInputConfig  # how CARLA frames become the model input (use as PolicyConfig.image)
    device: torch.device
    bf16: bool

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        rig: SensorRigConfig | None = None,
        geometry: VehicleGeometry = LINCOLN_MKZ_2020,
    ) -> CheckpointPlanModel:
        dev = resolve_device(device)
        loaded = load_planner_checkpoint(path, device=dev)
        dep = deployment(loaded.metadata, rig, geometry)
        return cls(loaded, dep.camera, dep.image, dev, bf16=dev.type == "cuda" and torch.cuda.is_bf16_supported())

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the video the model takes."""
        return self.loaded.config.image_width, self.loaded.config.image_height

    @property
    def frame_offsets(self) -> tuple[float, ...]:
        frames = self.loaded.metadata.get("frames", {})
        offsets = frames.get("video_frame_offsets_s") if isinstance(frames, dict) else None
        n = self.loaded.config.encoder.frames
        return tuple(offsets) if offsets else tuple(-0.5 * (n - 1 - i) for i in range(n))

    @torch.no_grad()
    def plan(self, inputs: ModelInputs) -> ModelOutputs:
        cfg = self.loaded.config
        video = torch.from_numpy(np.ascontiguousarray(inputs.video, dtype=np.float32))[None].to(self.device)
        if tuple(video.shape[-2:]) != (cfg.image_height, cfg.image_width):
            w, h = cfg.image_width, cfg.image_height
            raise ValueError(f"video is {video.shape[-1]}×{video.shape[-2]}, the checkpoint takes {w}×{h}")
        status = np.concatenate(
            [np.asarray(inputs.command, np.float32), [inputs.speed, 0.0], np.asarray(inputs.acceleration, np.float32)]
        ).astype(np.float32)
        status_t = torch.from_numpy(status)[None].to(self.device)
        projection = torch.as_tensor(self.camera.projection_matrix(), dtype=torch.float32, device=self.device)[None]
        amp: Any = torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with amp:
            target = torch.as_tensor(np.asarray(inputs.target_point, np.float32), device=self.device)[None]
            out = self.loaded.model(video, status_t, projection, target_point=target)
        proposals = out.trajectories[0].float().cpu().numpy().astype(np.float64)
        scores = out.scores()[0].float().cpu().numpy().astype(np.float64)
        subscores: dict[str, np.ndarray] = {}
        if out.sub_scores is not None:
            probs = torch.sigmoid(out.sub_scores[0].float()).cpu().numpy()
            names = list(cfg.proposal.score_names)
            subscores = {name: probs[:, k].astype(np.float64) for k, name in enumerate(names[: probs.shape[1]])}
        im = out.imitation_probs()
        if im is not None:
            subscores["im"] = im[0].float().cpu().numpy().astype(np.float64)
        return ModelOutputs(proposals, scores, subscores, dt=cfg.dt)

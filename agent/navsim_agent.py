"""A navsim `AbstractAgent` running a `drive-jepa train` checkpoint, so navsim's own scripts evaluate it unchanged.

    python navsim/planning/script/run_pdm_score.py agent=<a Hydra agent config with
        _target_: agent.navsim_agent.DriveJepaAgent, checkpoint: /runs/navsim/checkpoints> ...

(see `docs/deploy.md` for the agent YAML). Inputs as navsim gives them (`AgentInput`, navsim
`common/dataclasses.py`): per history frame an `EgoStatus` (ego_velocity, ego_acceleration (2,) in the rear-axle
frame, driving_command one-hot of 4) and `Cameras` (cam_f0: RGB uint8 1920×1080 `image`, `sensor2lidar_rotation`
(3, 3) and `sensor2lidar_translation` (3,)). Features exactly as in training (`training.data.dataset`): CAM_F0 at
t − 0.5 s and t (history indices 2 and 3 of navsim's 4), the checkpoint's crop box and resize, ImageNet
normalisation; status = (command, vx, vy, ax, ay) of the current frame; projection = CAM_F0 with this sample's
calibration (nominal CAM_F0 when absent). Output: the highest-scoring proposal, 8 poses at 0.5 s, EGO_REAR_AXLE.

navsim (and nuplan-devkit, pytorch-lightning) are needed only for `DriveJepaAgent` itself and are imported guarded:
without them this module still provides the feature builder (`navsim_features`, `navsim_image_config`), which is
what the tests check against the training pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agent.camera import model_input_camera, navsim_cam_f0
from agent.preprocess import ImageInputConfig, normalize_video, prepare_frame

NAVSIM_HISTORY_FRAMES = 4  # navsim's agent input: t − 1.5 … t at 2 Hz
NAVSIM_SOURCE = (1920, 1080)


def navsim_image_config(metadata: dict[str, Any], source: tuple[int, int] = NAVSIM_SOURCE) -> ImageInputConfig:
    """The crop/resize of NAVSIM CAM_F0 frames for a checkpoint: its training `data_image` box scaled to the
    source size (a checkpoint trained on smaller stored frames sees the same field of view), else Drive-JEPA's
    rows 28:1052 of 1920×1080; the output size is the model's (`metadata.camera.intrinsics`)."""
    k = metadata["camera"]["intrinsics"]
    out_w, out_h = int(k["width"]), int(k["height"])
    w, h = source
    trained = metadata.get("data_image")
    if isinstance(trained, dict) and metadata.get("data_camera", "navsim_cam_f0") == "navsim_cam_f0":
        sx, sy = w / float(trained["source_width"]), h / float(trained["source_height"])
        return ImageInputConfig(
            source_width=w,
            source_height=h,
            crop_top=round(trained["crop_top"] * sy),
            crop_bottom=round(trained["crop_bottom"] * sy),
            crop_left=round(trained["crop_left"] * sx),
            crop_right=round(trained["crop_right"] * sx),
            out_width=out_w,
            out_height=out_h,
            jpeg_quality=None,
        )
    top = round(28 * h / 1080)
    return ImageInputConfig(
        source_width=w, source_height=h, crop_top=top, crop_bottom=h - top, crop_left=0, crop_right=w,
        out_width=out_w, out_height=out_h, jpeg_quality=None,
    )  # fmt: skip


@dataclass
class NavsimFeatures:
    """video (3, T, H, W) float32; status (8,); projection (3, 4) EGO_REAR_AXLE → model-input pixels."""

    video: torch.Tensor
    status: torch.Tensor
    projection: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {"video": self.video, "status": self.status, "projection": self.projection}


def navsim_features(
    images: Sequence[np.ndarray],
    command: np.ndarray,
    velocity: np.ndarray,
    acceleration: np.ndarray,
    image: ImageInputConfig,
    rotation: np.ndarray | None = None,
    translation: np.ndarray | None = None,
) -> NavsimFeatures:
    """NAVSIM-like inputs (RGB uint8 frames oldest first, the current frame's ego status and CAM_F0 calibration)
    → the model's features, identical to `training.data.dataset.DrivingDataset` for the same data."""
    frames = []
    for i, rgb in enumerate(images):
        if not isinstance(rgb, np.ndarray) or rgb.shape[:2] != (image.source_height, image.source_width):
            shape = getattr(rgb, "shape", None)
            raise ValueError(
                f"CAM_F0 frame {i}: expected ({image.source_height}, {image.source_width}, 3), got {shape}"
            )
        frames.append(prepare_frame(rgb[..., :3], image, bgra=False))
    status = np.concatenate(
        [np.asarray(command, np.float32).reshape(4), np.asarray(velocity, np.float32).reshape(-1)[:2],
         np.asarray(acceleration, np.float32).reshape(-1)[:2]]
    )  # fmt: skip
    calibrated = rotation is not None and translation is not None
    cam = navsim_cam_f0(
        np.asarray(rotation, np.float64) if calibrated else None,
        np.asarray(translation, np.float64).reshape(3) if calibrated else None,
        model_input=False,
    )
    projection = model_input_camera(cam, image).projection_matrix()
    return NavsimFeatures(
        torch.from_numpy(normalize_video(frames, image)),
        torch.from_numpy(status),
        torch.as_tensor(projection, dtype=torch.float32),
    )


def features_from_agent_input(agent_input: Any, image: ImageInputConfig, frames: int = 2) -> NavsimFeatures:
    """A navsim `AgentInput` → features: the last `frames` CAM_F0 images, the current ego status and calibration."""
    cams = [c.cam_f0 for c in agent_input.cameras[-frames:]]
    if any(c.image is None for c in cams):
        raise ValueError("AgentInput: CAM_F0 image missing; the agent's sensor config must request cam_f0")
    cur = agent_input.ego_statuses[-1]
    now = cams[-1]
    return navsim_features(
        [np.asarray(c.image) for c in cams],
        np.asarray(cur.driving_command),
        np.asarray(cur.ego_velocity),
        np.asarray(cur.ego_acceleration),
        image,
        None if now.sensor2lidar_rotation is None else np.asarray(now.sensor2lidar_rotation),
        None if now.sensor2lidar_translation is None else np.asarray(now.sensor2lidar_translation),
    )


try:  # navsim is optional (it installs from git and pins old numpy)
    from navsim.agents.abstract_agent import AbstractAgent
    from navsim.common.dataclasses import AgentInput, SensorConfig, Trajectory
    from navsim.planning.training.abstract_feature_target_builder import (
        AbstractFeatureBuilder,
        AbstractTargetBuilder,
    )

    NAVSIM_AVAILABLE = True
except ImportError:
    NAVSIM_AVAILABLE = False


if NAVSIM_AVAILABLE:

    class DriveJepaFeatureBuilder(AbstractFeatureBuilder):
        """navsim feature builder: `features_from_agent_input` with the checkpoint's image config."""

        def __init__(self, image: ImageInputConfig, frames: int = 2) -> None:
            self.image, self.frames = image, frames

        def get_unique_name(self) -> str:
            return "drive_jepa_features"

        def compute_features(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
            return features_from_agent_input(agent_input, self.image, self.frames).as_dict()

    class DriveJepaTargetBuilder(AbstractTargetBuilder):
        """navsim target builder: the human future, 8 poses at 0.5 s, EGO_REAR_AXLE."""

        def get_unique_name(self) -> str:
            return "drive_jepa_targets"

        def compute_targets(self, scene: Any) -> dict[str, torch.Tensor]:
            poses = scene.get_future_trajectory(num_trajectory_frames=8).poses
            return {"trajectory": torch.as_tensor(np.asarray(poses), dtype=torch.float32)}

    class DriveJepaAgent(AbstractAgent):
        """navsim agent around a `drive-jepa train` checkpoint (a run, `checkpoints/` or step directory)."""

        def __init__(self, checkpoint: str, device: str = "cpu", lr: float = 1e-4) -> None:
            import inspect

            # navsim v2 agents take the output sampling (8 poses at 0.5 s); v1 agents only `requires_scene`
            if "trajectory_sampling" in inspect.signature(AbstractAgent.__init__).parameters:
                from nuplan.planning.simulation.trajectory.trajectory_sampling import TrajectorySampling

                super().__init__(TrajectorySampling(time_horizon=4, interval_length=0.5), requires_scene=False)
            else:
                super().__init__(requires_scene=False)
            self.checkpoint, self.device_name, self.lr = checkpoint, device, lr
            from agent.planner.checkpoint import load_planner_checkpoint

            loaded = load_planner_checkpoint(checkpoint, device)
            if loaded.config.target_point_input:
                raise ValueError(
                    f"{checkpoint}: this planner takes CARLA's route target point (model.target_point_input), "
                    "which NAVSIM does not provide; train with model.target_point_input=false for NAVSIM"
                )
            self.planner = loaded.model
            self.metadata = loaded.metadata
            self.image = navsim_image_config(loaded.metadata)
            self.frames = int(loaded.config.encoder.frames)

        def name(self) -> str:
            return "drive_jepa"

        def initialize(self) -> None:
            self.planner.eval()

        def get_sensor_config(self) -> SensorConfig:
            idx = list(range(NAVSIM_HISTORY_FRAMES - self.frames, NAVSIM_HISTORY_FRAMES))  # t − 0.5 s, t
            off = dict.fromkeys(("cam_l0", "cam_l1", "cam_l2", "cam_r0", "cam_r1", "cam_r2", "cam_b0"), False)
            return SensorConfig(cam_f0=idx, lidar_pc=False, **off)

        def get_feature_builders(self) -> list[AbstractFeatureBuilder]:
            return [DriveJepaFeatureBuilder(self.image, self.frames)]

        def get_target_builders(self) -> list[AbstractTargetBuilder]:
            return [DriveJepaTargetBuilder()]

        def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            dev = next(self.planner.parameters()).device
            out = self.planner(features["video"].to(dev), features["status"].to(dev), features["projection"].to(dev))
            return {"trajectory": out.best(), "proposals": out.trajectories, "scores": out.scores()}

        def compute_trajectory(self, agent_input: AgentInput) -> Trajectory:
            feats = features_from_agent_input(agent_input, self.image, self.frames).as_dict()
            with torch.no_grad():
                pred = self.forward({k: v[None] for k, v in feats.items()})
            return Trajectory(pred["trajectory"][0].float().cpu().numpy())

        def compute_loss(
            self,
            features: dict[str, torch.Tensor],
            targets: dict[str, torch.Tensor],
            predictions: dict[str, torch.Tensor],
        ) -> torch.Tensor:
            """Winner-takes-all L1 (x, y, heading) of the proposals against the human trajectory (the imitation
            term of `drive-jepa train`; distillation and scorer losses need teachers and run there)."""
            err = (predictions["proposals"] - targets["trajectory"][:, None]).abs().mean((-1, -2))
            return err.min(-1).values.mean()

        def get_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.planner.parameters(), lr=self.lr)

"""The one driving sample both dataset readers produce (before image preprocessing).

Frames and units: `trajectory` and `target_point` are in EGO_REAR_AXLE at the current frame (x forward, y left,
metres; heading counter-clockwise, radians); `velocity` and `acceleration` are in the ego frame (m/s, m/s²);
`ego_pose_world` is the rear axle's WORLD pose (right-handed, x east, y north; NAVSIM: the log's global frame).
Images are referenced by path, oldest first; `training.data.dataset` turns them into the model's video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DataLayoutError(ValueError):
    """A dataset file or folder is missing or has the wrong layout; the message names the path and what was expected."""


@dataclass
class DrivingSample:
    """One training sample: the current frame's inputs and the human/expert future.

    token: NAVSIM scene token (the current frame's token) or Bench2Drive `<clip>/<frame>`.
    log: NAVSIM log name or Bench2Drive clip id (path relative to the dataset root).
    image_paths: front camera frames at the configured history offsets (e.g. t − 0.5 s, t), oldest first.
    command: (4,) float32 one-hot of NAVSIM's (left, straight, right, unknown).
    speed: m/s, the norm of `velocity`.
    velocity, acceleration: (2,) float32 in the ego frame.
    target_point: (2,) float32 EGO_REAR_AXLE route target; zeros with `target_valid=False` when the dataset has none.
    trajectory: (num_poses, 3) float32 EGO_REAR_AXLE (x, y, heading) at dt, 2·dt, … seconds.
    ego_pose_world: (3,) float64 WORLD pose of the rear axle at t.
    timestamp: seconds (NAVSIM: µs timestamp / 1e6; Bench2Drive: frame index / fps).
    camera_rotation, camera_translation: the current frame's front-camera calibration when the dataset records one
    (NAVSIM `cams.CAM_F0.sensor2lidar_rotation` (3, 3): OpenCV camera axes → lidar/ego axes, and
    `sensor2lidar_translation` (3,) metres); None = use the rig's nominal camera.
    """

    token: str
    source: str
    log: str
    image_paths: tuple[str, ...]
    command: np.ndarray
    speed: float
    velocity: np.ndarray
    acceleration: np.ndarray
    target_point: np.ndarray
    target_valid: bool
    trajectory: np.ndarray
    ego_pose_world: np.ndarray
    timestamp: float
    camera_rotation: np.ndarray | None = None
    camera_translation: np.ndarray | None = None

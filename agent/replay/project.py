"""Project ego-frame ground points into the recorded front camera image.

The ONE place the replay tools turn EGO_REAR_AXLE points into pixels. It uses `drive_jepa.frames.CameraMount`
(CARLA mount → OpenCV camera axes) and CARLA's pinhole (horizontal FOV, square pixels, principal point at the
image centre: f = W / (2 tan(FOV/2))). When the shared camera model (agent.camera) lands, this function is the
one to switch to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drive_jepa.frames import CameraMount, transform_points

MIN_DEPTH_M = 0.5  # points closer than this in front of the camera are not drawn


def project_ego_points(
    points_rear_axle: np.ndarray, camera: dict[str, Any], rear_axle_to_center: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """(…, 2|3) EGO_REAR_AXLE points (metres; z = 0 on the ground when absent) → pixels (…, 2) and valid (…,).

    `camera` is the recording's camera dict (x, y, z, pitch, yaw, roll in CARLA's mount convention, fov in
    degrees); `width`/`height` the size of the image drawn on (any scale of the recorded image).
    """
    pts = np.asarray(points_rear_axle, dtype=np.float64)
    xyz = np.zeros((*pts.shape[:-1], 3))
    xyz[..., : min(pts.shape[-1], 3)] = pts[..., :3]
    xyz[..., 0] -= rear_axle_to_center  # EGO_REAR_AXLE → EGO_CENTER (same axes, origin moved forward)
    mount = CameraMount(
        float(camera["x"]),
        float(camera["y"]),
        float(camera["z"]),
        float(camera.get("pitch", 0.0)),
        float(camera.get("yaw", 0.0)),
        float(camera.get("roll", 0.0)),
    )
    cam = transform_points(mount.ego_to_camera(), xyz)  # OpenCV axes: x right, y down, z forward
    f = width / (2.0 * math.tan(math.radians(float(camera["fov"])) / 2.0))
    depth = cam[..., 2]
    valid = depth > MIN_DEPTH_M
    safe = np.where(valid, depth, 1.0)
    uv = np.stack([f * cam[..., 0] / safe + width / 2.0, f * cam[..., 1] / safe + height / 2.0], -1)
    return uv, valid

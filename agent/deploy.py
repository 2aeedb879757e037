"""Deployment of a `drive-jepa train` checkpoint in CARLA: the camera and coordinate adaptation, in one place.

A checkpoint records how its training images were made (`metadata.json`: `data_camera` = the rig,
`data_image` = the `ImageInputConfig` crop/resize, `camera` = the model-input camera). In CARLA the agent sees the
Bench2Drive front camera (default 1600×900, FOV 70°, at x 0.80, z 1.60 from the box centre). This module decides,
from that metadata and the CARLA rig, two things the agent needs (`Deployment`):

1. **The crop/resize of CARLA frames** (`image`, an `ImageInputConfig` for `PolicyConfig.image`).
   * Trained on CARLA (Bench2Drive, `data_camera = carla_front`): exactly the training pipeline (rows 50:850 of
     1600×900 → model size; JPEG quality 20 round trip, as the Bench2Drive dataset stores frames).
   * Trained on NAVSIM (`navsim_cam_f0`): **intrinsics matching**. The CARLA crop box is chosen so that, after
     the resize to the model input, the CARLA camera has the focal lengths and principal point of NAVSIM's
     model-input CAM_F0 (fx = 1545·512/1920 = 412.0, fy = 1545·256/1024 = 386.25, cx = 256, cy = (560 − 28)·256/
     1024 = 133 at 512×256). For the default rig (f = 800/tan 35° = 1142.5 px) that is columns 90:1510 and rows
     57:814 (1420×757 px: the 63.7° horizontal field of view of CAM_F0 cut out of CARLA's 70°). Objects then
     appear at the size and place the NAVSIM-trained encoder saw them. The resize is anisotropic (as NAVSIM's
     1920×1024 → 512×256 is). A box that does not fit the CARLA image (a narrower FOV) is clipped to the image;
     the projection below stays exact, only the apparent scale differs. No JPEG round trip (NAVSIM's JPEG quality
     is not CARLA's q20 and is high).
2. **The camera model the planner uses at inference** (`camera`: EGO_REAR_AXLE → model-input pixels). Always the
   *actual* CARLA camera: its intrinsics after that crop/resize and its mount, moved from the box centre to the
   rear axle of the ego (`carla_front_camera` with the vehicle geometry; Lincoln MKZ 2020: rear axle 1.39 m behind
   the centre). The planner projects its anchors with it (the `projection` input), as it did with each NAVSIM
   sample's own calibration in training, so the remaining mount differences (NAVSIM nominal CAM_F0 1.70 m ahead
   of the rear axle and 1.50 m up vs CARLA 2.19 m and 1.60 m) are handled geometrically, not learned.

Coordinates: the planner's trajectories are EGO_REAR_AXLE (x forward, y left, heading CCW) at 0.5 s in both
worlds; the agent converts its CARLA localisation (box centre, left-handed world) to the rear axle with
`drive_jepa.frames` before and after the model. With matched intrinsics, a far 3D point lands on the same token of
the 16×32 grid in both setups; near points differ because of the mount heights and positions (tests:
`tests/agent/test_deploy.py`; the tolerance is documented there and in `docs/deploy.md`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from agent.camera import (
    CARLA_CROP,
    NAVSIM_CROP,
    CameraModel,
    carla_front_camera,
    model_input_camera,
    navsim_cam_f0,
)
from agent.preprocess import ImageInputConfig
from agent.sensors import SensorRigConfig
from drive_jepa.frames import LINCOLN_MKZ_2020, VehicleGeometry

BENCH2DRIVE_JPEG_QUALITY = 20  # Bench2Drive stores rgb_front as JPEG quality 20 (its docs/anno.md)


@dataclass(frozen=True)
class Deployment:
    """How a checkpoint runs on a CARLA rig: `image` for `PolicyConfig.image`, `camera` (model-input size,
    EGO_REAR_AXLE) whose `projection_matrix()` is the planner's projection input, `trained_on` the checkpoint's
    rig name and `strategy` the adaptation applied ('same_rig' or 'match_navsim_intrinsics')."""

    image: ImageInputConfig
    camera: CameraModel
    trained_on: str
    strategy: str
    notes: list[str] = field(default_factory=list)


def checkpoint_rig(metadata: dict[str, Any]) -> str:
    """The rig a checkpoint was trained on: `data_camera`, else (older checkpoints) the model camera's name."""
    name = metadata.get("data_camera") or (metadata.get("camera") or {}).get("name")
    if name not in ("navsim_cam_f0", "carla_front"):
        raise ValueError(f"checkpoint metadata: unknown training camera {name!r} (navsim_cam_f0 or carla_front)")
    return str(name)


def model_input_size(metadata: dict[str, Any]) -> tuple[int, int]:
    """(width, height) of the model input, from the checkpoint's model-input camera."""
    try:
        k = metadata["camera"]["intrinsics"]
        return int(k["width"]), int(k["height"])
    except (KeyError, TypeError):
        raise ValueError(
            "checkpoint metadata: no camera.intrinsics width/height (not a drive-jepa checkpoint?)"
        ) from None


def _carla_full(rig: SensorRigConfig, geometry: VehicleGeometry) -> CameraModel:
    cam = rig.camera
    return carla_front_camera(geometry, cam.mount(), (cam.width, cam.height), cam.fov, model_input=False)


def _box_image(
    rig: SensorRigConfig, top: int, bottom: int, left: int, right: int, out: tuple[int, int], jpeg: int | None
) -> ImageInputConfig:
    w, h = rig.camera.width, rig.camera.height
    top, left = max(0, top), max(0, left)
    bottom, right = min(h, bottom), min(w, right)
    return ImageInputConfig(
        source_width=w,
        source_height=h,
        crop_top=top,
        crop_bottom=bottom,
        crop_left=left,
        crop_right=right,
        out_width=out[0],
        out_height=out[1],
        jpeg_quality=jpeg,
    )


def navsim_model_camera(metadata: dict[str, Any], out: tuple[int, int]) -> CameraModel:
    """The nominal CAM_F0 as the NAVSIM-trained model saw it: the checkpoint's `data_image` pipeline when recorded,
    else Drive-JEPA's (rows 28:−28 of 1920×1080) resized to `out`."""
    trained = metadata.get("data_image")
    if isinstance(trained, dict):
        image = ImageInputConfig(**{**trained, "mean": tuple(trained["mean"]), "std": tuple(trained["std"])})
        return model_input_camera(navsim_cam_f0(model_input=False), image)
    return navsim_cam_f0(model_input=False).for_model_input(NAVSIM_CROP, out[0], out[1])


def navsim_matching_image(
    metadata: dict[str, Any], rig: SensorRigConfig, out: tuple[int, int], geometry: VehicleGeometry
) -> ImageInputConfig:
    """The CARLA crop box whose resize to `out` reproduces NAVSIM's model-input CAM_F0 intrinsics (see module doc).

    Box width = fx_carla·W_out/fx_nav, height = fy_carla·H_out/fy_nav, placed so the principal points coincide;
    rounded to whole pixels (≤ 0.5 px of source, < 0.2 px of model input at the default rig)."""
    nav = navsim_model_camera(metadata, out).intrinsics
    src = _carla_full(rig, geometry).intrinsics
    bw = src.fx * out[0] / nav.fx
    bh = src.fy * out[1] / nav.fy
    left = round(src.cx - nav.cx * bw / out[0])
    top = round(src.cy - nav.cy * bh / out[1])
    return _box_image(rig, top, top + round(bh), left, left + round(bw), out, None)


def _same_rig_image(metadata: dict[str, Any], rig: SensorRigConfig, out: tuple[int, int]) -> ImageInputConfig:
    """The training pipeline of a CARLA-trained checkpoint, when the rig has the training source size; else rows
    cropped symmetrically to the model's aspect ratio (the Bench2Drive default 50:850 for 1600×900 → 2:1)."""
    trained = metadata.get("data_image")
    w, h = rig.camera.width, rig.camera.height
    if isinstance(trained, dict) and (trained.get("source_width"), trained.get("source_height")) == (w, h):
        return _box_image(
            rig,
            int(trained["crop_top"]),
            int(trained["crop_bottom"]),
            int(trained["crop_left"]),
            int(trained["crop_right"]),
            out,
            trained.get("jpeg_quality") or BENCH2DRIVE_JPEG_QUALITY,
        )
    if (w, h) == (1600, 900):
        c = CARLA_CROP
        return _box_image(rig, c.top, h - c.bottom, c.left, w - c.right, out, BENCH2DRIVE_JPEG_QUALITY)
    keep = min(h, round(w * out[1] / out[0]))
    top = (h - keep) // 2
    return _box_image(rig, top, top + keep, 0, w, out, BENCH2DRIVE_JPEG_QUALITY)


def deployment(
    metadata: dict[str, Any], rig: SensorRigConfig | None = None, geometry: VehicleGeometry = LINCOLN_MKZ_2020
) -> Deployment:
    """The adaptation of a checkpoint (its `metadata.json` dict) to a CARLA rig (default: Bench2Drive's)."""
    rig = rig or SensorRigConfig()
    out = model_input_size(metadata)
    trained_on = checkpoint_rig(metadata)
    notes: list[str] = []
    if trained_on == "carla_front":
        image, strategy = _same_rig_image(metadata, rig, out), "same_rig"
    else:
        image, strategy = navsim_matching_image(metadata, rig, out, geometry), "match_navsim_intrinsics"
        fov = 2 * math.degrees(math.atan(rig.camera.width / 2 / _carla_full(rig, geometry).intrinsics.fx))
        if image.crop_left == 0 or image.crop_right == rig.camera.width:
            notes.append(f"rig FOV {fov:.1f}° is narrower than CAM_F0's 63.7°: crop clipped, objects look larger")
    image.validate()
    camera = model_input_camera(_carla_full(rig, geometry), image)
    return Deployment(image, camera, trained_on, strategy, notes)


def deployment_camera(
    metadata: dict[str, Any], rig: SensorRigConfig | None = None, geometry: VehicleGeometry = LINCOLN_MKZ_2020
) -> CameraModel:
    """The camera the planner uses at inference in CARLA (model-input size, EGO_REAR_AXLE): pass its
    `projection_matrix()` as the planner's `projection`."""
    return deployment(metadata, rig, geometry).camera


def deployment_image_config(
    metadata: dict[str, Any], rig: SensorRigConfig | None = None, geometry: VehicleGeometry = LINCOLN_MKZ_2020
) -> ImageInputConfig:
    """The crop/resize (and JPEG round trip) to apply to CARLA frames: use as `PolicyConfig.image`."""
    return deployment(metadata, rig, geometry).image

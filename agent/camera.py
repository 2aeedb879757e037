"""Pinhole camera model shared by training and the agent: intrinsics, extrinsics, model-input crop/resize, projection.

Conventions
-----------
* Pixel coordinates are **continuous with pixel (i, j) covering [i, i+1) × [j, j+1)** (its centre at i + 0.5).
  In this convention cropping subtracts the offset and resizing multiplies by the scale exactly, and
  `grid_sample(..., align_corners=False)` coordinates are simply ``2 u / W − 1``. CARLA's and nuPlan's principal
  points (W/2, H/2 for CARLA; 960, 560 for nuPlan's 1920×1080 CAM_F0) are read in this convention.
* 3D points are in an ego frame (`Frame.EGO_REAR_AXLE` or `Frame.EGO_CENTER`): x forward, y left, z up, metres,
  with **z = 0 on the ground** under the ego.
* `ego_to_camera` maps those points to OpenCV camera axes (x right, y down, z forward).

The model input is produced by `preprocess_image` (crop rows/cols, then resize) and the same `Crop` + target size
is applied to the intrinsics by `CameraModel.for_model_input`, so projections land on the model-input pixels.
(The upstream Drive-JEPA code crops rows 28:−28 of the NAVSIM image but projects with the uncropped intrinsics;
here the crop is part of the camera model.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from drive_jepa.frames import CameraMount, Frame, VehicleGeometry

if TYPE_CHECKING:  # agent.preprocess imports this module (the one crop/resize lives here)
    from agent.preprocess import ImageInputConfig

Array = Any  # numpy array or torch tensor


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics (pixels, continuous corner convention above) for an image of `width` × `height`."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float) -> Intrinsics:
        """CARLA's camera: horizontal FOV, square pixels, principal point at the image centre.

        f = W / (2 tan(FOV/2)) (CARLA's `sensor.camera.rgb` projection).
        """
        f = width / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
        return cls(f, f, width / 2.0, height / 2.0, width, height)

    @classmethod
    def from_matrix(cls, k: Array, width: int, height: int) -> Intrinsics:
        k = np.asarray(k, dtype=np.float64)
        if k.shape != (3, 3):
            raise ValueError(f"intrinsics matrix must be 3x3, got shape {k.shape}")
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def crop(self, top: int, bottom: int, left: int = 0, right: int = 0) -> Intrinsics:
        """Remove `top`/`bottom` rows and `left`/`right` columns."""
        w, h = self.width - left - right, self.height - top - bottom
        if w <= 0 or h <= 0:
            raise ValueError(
                f"crop ({top}, {bottom}, {left}, {right}) leaves nothing of a {self.width}x{self.height} image"
            )
        return Intrinsics(self.fx, self.fy, self.cx - left, self.cy - top, w, h)

    def resize(self, width: int, height: int) -> Intrinsics:
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


@dataclass(frozen=True)
class Crop:
    """Rows/columns removed from the raw camera image before resizing to the model input."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class CameraModel:
    """A camera at some image resolution plus its pose on the ego.

    `ego_to_camera` (4×4) maps points of `frame` (EGO_REAR_AXLE or EGO_CENTER, z = 0 at the ground) to OpenCV
    camera axes.
    """

    name: str
    intrinsics: Intrinsics
    ego_to_camera: np.ndarray = field(repr=False)
    frame: Frame = Frame.EGO_REAR_AXLE

    def __post_init__(self) -> None:
        m = np.asarray(self.ego_to_camera, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"camera {self.name!r}: ego_to_camera must be 4x4, got {m.shape}")
        if self.frame not in (Frame.EGO_REAR_AXLE, Frame.EGO_CENTER):
            raise ValueError(f"camera {self.name!r}: frame must be an ego frame, got {self.frame.value}")
        object.__setattr__(self, "ego_to_camera", m)

    # ---------------------------------------------------------------------------------------------------- frames
    def in_frame(self, frame: Frame, geometry: VehicleGeometry) -> CameraModel:
        """The same camera with extrinsics from `frame` (EGO_CENTER ↔ EGO_REAR_AXLE along the vehicle x axis)."""
        if frame is self.frame:
            return self
        d = geometry.rear_axle_to_center
        shift = np.eye(4)
        # a point p in the centre frame is p + (d, 0, 0) in the rear-axle frame, and vice versa
        shift[0, 3] = d if frame is Frame.EGO_CENTER else -d
        return replace(self, ego_to_camera=self.ego_to_camera @ shift, frame=frame)

    # -------------------------------------------------------------------------------------------- preprocessing
    def for_model_input(self, crop: Crop, width: int, height: int) -> CameraModel:
        """The camera as seen in the model input: crop, then resize to `width` × `height`."""
        k = self.intrinsics.crop(crop.top, crop.bottom, crop.left, crop.right).resize(width, height)
        return replace(self, intrinsics=k)

    # ------------------------------------------------------------------------------------------------ projection
    def projection_matrix(self) -> np.ndarray:
        """3×4 P = K·[R|t]: homogeneous ego points → (u·z, v·z, z) in pixels of this camera's image."""
        return self.intrinsics.matrix() @ self.ego_to_camera[:3, :]

    def project(self, points: Array) -> tuple[Array, Array]:
        """Ego points (..., 3) → pixel coords (..., 2) and depth along the optical axis (..., ), metres."""
        return project_points(points, self.projection_matrix())

    def project_normalized(self, points: Array, min_depth: float = 0.1) -> tuple[Array, Array]:
        """Ego points → `grid_sample` coords in [−1, 1] (align_corners=False) and a validity mask (in front, inside)."""
        return normalized_grid(
            points, self.projection_matrix(), self.intrinsics.height, self.intrinsics.width, min_depth
        )

    # -------------------------------------------------------------------------------------------------- metadata
    def to_dict(self) -> dict[str, Any]:
        k = self.intrinsics
        return {
            "name": self.name,
            "frame": self.frame.value,
            "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy, "width": k.width, "height": k.height},
            "ego_to_camera": self.ego_to_camera.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraModel:
        try:
            k = d["intrinsics"]
            return cls(
                name=str(d["name"]),
                intrinsics=Intrinsics(
                    float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]), int(k["width"]), int(k["height"])
                ),
                ego_to_camera=np.asarray(d["ego_to_camera"], dtype=np.float64),
                frame=Frame(d["frame"]),
            )
        except KeyError as exc:
            raise ValueError(f"camera metadata: missing field {exc.args[0]!r}") from None


# ---------------------------------------------------------------------------------------------------------------
# projection helpers (numpy or torch; batched projection matrices allowed)


def project_points(points: Array, projection: Array) -> tuple[Array, Array]:
    """Points (..., 3) and P (3, 4) or broadcastable (..., 3, 4) → pixels (..., 2), depth (...,).

    Points at or behind the camera get a depth ≤ 0; their pixel coords are computed with |z| clamped to 1e-6 and
    must be masked by the caller.
    """
    if type(points).__module__.split(".")[0] == "torch":
        import torch

        p = torch.as_tensor(projection, dtype=points.dtype, device=points.device)
        cam = (p[..., :3, :3] @ points[..., :, None])[..., 0] + p[..., :3, 3]
        z = cam[..., 2]
        zc = torch.where(z.abs() < 1e-6, torch.full_like(z, 1e-6), z)
        return cam[..., :2] / zc[..., None], z
    pts = np.asarray(points, dtype=np.float64)
    pn = np.asarray(projection, dtype=np.float64)
    cam_np = (pn[..., :3, :3] @ pts[..., :, None])[..., 0] + pn[..., :3, 3]
    z_np = cam_np[..., 2]
    zc_np = np.where(np.abs(z_np) < 1e-6, 1e-6, z_np)
    return cam_np[..., :2] / zc_np[..., None], z_np


def normalized_grid(
    points: Array, projection: Array, height: int, width: int, min_depth: float = 0.1
) -> tuple[Array, Array]:
    """Ego points → `F.grid_sample` coords (align_corners=False): x_n = 2u/W − 1, y_n = 2v/H − 1; plus a mask that
    is true where the point is at least `min_depth` in front of the camera and inside the image."""
    uv, z = project_points(points, projection)
    if type(uv).__module__.split(".")[0] == "torch":
        import torch

        scale = torch.tensor([2.0 / width, 2.0 / height], dtype=uv.dtype, device=uv.device)
        grid = uv * scale - 1.0
        valid = (z > min_depth) & (grid.abs() <= 1.0).all(-1)
        # keep the coords finite and far outside for invalid points (grid_sample then reads zeros)
        grid = torch.where(valid[..., None], grid, torch.full_like(grid, -2.0))
        return grid, valid
    grid = uv * np.array([2.0 / width, 2.0 / height]) - 1.0
    valid = (z > min_depth) & np.all(np.abs(grid) <= 1.0, axis=-1)
    return np.where(valid[..., None], grid, -2.0), valid


# ---------------------------------------------------------------------------------------------------------------
# image preprocessing (the single implementation used by datasets and the agent)


def preprocess_image(image: np.ndarray, crop: Crop, width: int, height: int) -> np.ndarray:
    """Crop then resize an (H, W, C) uint8/float image to the model input size (area interpolation when shrinking)."""
    import cv2

    h, w = image.shape[:2]
    out = image[crop.top : h - crop.bottom, crop.left : w - crop.right]
    if out.shape[0] <= 0 or out.shape[1] <= 0:
        raise ValueError(f"crop {crop} leaves nothing of a {w}x{h} image")
    shrink = width < out.shape[1] and height < out.shape[0]
    return cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


# ---------------------------------------------------------------------------------------------------------------
# the two rigs the project uses

MODEL_INPUT_WIDTH = 512
MODEL_INPUT_HEIGHT = 256

# NAVSIM / nuPlan CAM_F0, 1920×1080. Intrinsics of the dominant nuPlan rig (20 of 21 vehicles, 1304 of 1349 log
# DBs): fx = fy = 1545.0, cx = 960.0, cy = 560.0 — per the nuPlan `camera` table as surveyed in public analyses of
# the nuPlan log DBs; NAVSIM exposes the same values per sample as `Cameras.cam_f0.intrinsics`. NAVSIM's
# extrinsics differ per vehicle (`sensor2lidar_rotation/translation`, camera → lidar), so datasets should build
# the camera per sample with `navsim_cam_f0(rotation, translation)`. The default mount below is NOMINAL (camera on
# the windshield ~1.7 m ahead of the rear axle, 1.5 m above ground, looking straight ahead), used only when no
# per-sample calibration is available.
NAVSIM_CAM_F0_K = np.array([[1545.0, 0.0, 960.0], [0.0, 1545.0, 560.0], [0.0, 0.0, 1.0]])
NAVSIM_CAM_F0_SIZE = (1920, 1080)
NAVSIM_CROP = Crop(top=28, bottom=28)  # Drive-JEPA: rows 28:-28, then resize to 512×256
NAVSIM_NOMINAL_TRANSLATION = (1.70, 0.0, 1.50)

# Bench2Drive front camera: 1600×900, FOV 70°, mounted at (x 0.80, y 0.0, z 1.60) relative to the vehicle's
# box centre (Bench2Drive's common rig). To reach the same 2:1 aspect as the NAVSIM input we crop 50 rows at
# top and bottom (1600×800), then resize to 512×256.
CARLA_FRONT_SIZE = (1600, 900)
CARLA_FRONT_FOV = 70.0
CARLA_FRONT_MOUNT = CameraMount(x=0.80, y=0.0, z=1.60)
CARLA_CROP = Crop(top=50, bottom=50)

# OpenCV camera axes in terms of a forward-looking camera body (x forward, y left, z up)
_CV_FROM_BODY = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def navsim_cam_f0(
    sensor2lidar_rotation: Array | None = None,
    sensor2lidar_translation: Array | None = None,
    model_input: bool = True,
) -> CameraModel:
    """NAVSIM's CAM_F0 in EGO_REAR_AXLE (NAVSIM's lidar frame is taken as the rear-axle ego frame).

    `sensor2lidar_rotation` (3×3) maps OpenCV camera axes to the lidar/ego axes and `sensor2lidar_translation`
    (3,) is the camera position there (NAVSIM's `Camera` fields). With `model_input` the crop (rows 28:−28) and the
    resize to 512×256 are applied.
    """
    if sensor2lidar_rotation is None:
        rot = _CV_FROM_BODY.T
        trans = np.asarray(NAVSIM_NOMINAL_TRANSLATION, dtype=np.float64)
    else:
        rot = np.asarray(sensor2lidar_rotation, dtype=np.float64)
        trans = np.asarray(sensor2lidar_translation, dtype=np.float64)
        if rot.shape != (3, 3) or trans.shape != (3,):
            raise ValueError(f"sensor2lidar rotation must be 3x3 and translation (3,), got {rot.shape}, {trans.shape}")
    cam_to_ego = np.eye(4)
    cam_to_ego[:3, :3] = rot
    cam_to_ego[:3, 3] = trans
    cam = CameraModel(
        "navsim_cam_f0",
        Intrinsics.from_matrix(NAVSIM_CAM_F0_K, *NAVSIM_CAM_F0_SIZE),
        np.linalg.inv(cam_to_ego),
        Frame.EGO_REAR_AXLE,
    )
    return cam.for_model_input(NAVSIM_CROP, MODEL_INPUT_WIDTH, MODEL_INPUT_HEIGHT) if model_input else cam


def carla_front_camera(
    geometry: VehicleGeometry,
    mount: CameraMount = CARLA_FRONT_MOUNT,
    size: tuple[int, int] = CARLA_FRONT_SIZE,
    fov_deg: float = CARLA_FRONT_FOV,
    model_input: bool = True,
    crop: Crop = CARLA_CROP,
) -> CameraModel:
    """Bench2Drive's front camera, expressed in EGO_REAR_AXLE of `geometry` (the planner's frame)."""
    cam = CameraModel(
        "carla_front", Intrinsics.from_fov(size[0], size[1], fov_deg), mount.ego_to_camera(), Frame.EGO_CENTER
    )
    cam = cam.in_frame(Frame.EGO_REAR_AXLE, geometry)
    return cam.for_model_input(crop, MODEL_INPUT_WIDTH, MODEL_INPUT_HEIGHT) if model_input else cam


def model_input_camera(camera: CameraModel, image: ImageInputConfig) -> CameraModel:
    """A full-resolution camera → the camera of the model input that `agent.preprocess.prepare_frame(…, image)`
    produces: rescale to the configured source size (a pure resize when the stored frames are smaller than the
    rig's native size), then the config's crop box, then the resize to `out_width` × `out_height`."""
    k = camera.intrinsics
    if (k.width, k.height) != (image.source_width, image.source_height):
        camera = camera.for_model_input(Crop(), image.source_width, image.source_height)
    return camera.for_model_input(image.crop(), image.out_width, image.out_height)


def camera_by_name(name: str, geometry: VehicleGeometry | None = None) -> CameraModel:
    """`navsim_cam_f0` or `carla_front` at model-input resolution (a config string → camera)."""
    from drive_jepa.frames import LINCOLN_MKZ_2020

    if name == "navsim_cam_f0":
        return navsim_cam_f0()
    if name == "carla_front":
        return carla_front_camera(geometry or LINCOLN_MKZ_2020)
    raise ValueError(f"unknown camera {name!r}; expected 'navsim_cam_f0' or 'carla_front'")


def raw_crop_by_name(name: str) -> tuple[tuple[int, int], Crop]:
    """The raw image size (W, H) of a named rig and the crop applied before resizing to the model input."""
    if name == "navsim_cam_f0":
        return NAVSIM_CAM_F0_SIZE, NAVSIM_CROP
    if name == "carla_front":
        return CARLA_FRONT_SIZE, CARLA_CROP
    raise ValueError(f"unknown camera {name!r}; expected 'navsim_cam_f0' or 'carla_front'")

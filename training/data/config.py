"""The `data=` config group: ONE base class for every data option of `drive-jepa train` and `drive-jepa cache-data`.

Options (all subclasses of `DataConfig`, selected with `data=<kind>`):

* `synthetic`, `fork` — painted-path scenes generated on the fly (`training.planner.data`), no files;
* `navsim` — NAVSIM / OpenScene logs (`training.data.navsim_reader`), CAM_F0;
* `bench2drive` — Bench2Drive training clips (`training.data.bench2drive_reader`), the CARLA front camera.

Logged options (`navsim`, `bench2drive`) share `LoggedDataConfig`: the dataset root, frame history, feature cache,
teacher index and the image pipeline (`agent.preprocess.ImageInputConfig`, the same one the agent uses).
This module only declares and registers the schemas (no heavy imports beyond the image config).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from agent.preprocess import ImageInputConfig
from drive_jepa import config as config_lib


@dataclass
class DataConfig:
    """Base of the `data=` group. kind: the option name; seed: data randomness (synthetic scenes, sampling)."""

    kind: str = MISSING
    seed: int = 0


@dataclass
class SyntheticDataConfig(DataConfig):
    """Painted arcs (random speed/curvature/acceleration) with an analytic stand-in scorer for online scores.

    size: samples per epoch; teachers: vocabulary teachers per sample; camera: `agent.camera.camera_by_name`.
    """

    kind: str = "synthetic"
    size: int = 256
    teachers: int = 8
    camera: str = "navsim_cam_f0"
    online_scores: bool = True


@dataclass
class ForkDataConfig(DataConfig):
    """Two safe branches, the human takes one at random (planner bench (a))."""

    kind: str = "fork"
    size: int = 256
    teachers: int = 4
    camera: str = "navsim_cam_f0"
    speed: float = 8.0
    curvature: float = 0.015
    human_left: float = 1.0  # probability that the human takes the left branch


def navsim_image_config() -> ImageInputConfig:
    """NAVSIM CAM_F0 1920×1080 → rows 28:−28 → 512×256 (Drive-JEPA); frames are already JPEG, no round trip."""
    return ImageInputConfig(
        source_width=1920, source_height=1080, crop_top=28, crop_bottom=1052, crop_right=1920, jpeg_quality=None
    )


def bench2drive_image_config() -> ImageInputConfig:
    """Bench2Drive rgb_front 1600×900 → the agent's crop rows 50:850 → 512×256; stored as JPEG q20 already."""
    return ImageInputConfig(jpeg_quality=None)


@dataclass
class LoggedDataConfig(DataConfig):
    """Settings of the recorded datasets. root: dataset root; cache_dir: '' for no cache; teacher_index: '' for
    none (a `drive-jepa teachers` output); max_teachers: teacher indices kept per sample.

    `image.out_width/out_height` must equal the planner's `model.image_width/height`; `drive-jepa train` sets
    them from the model config (so one `model.*` override sizes both)."""

    root: str = MISSING
    history_offsets: list[float] = field(default_factory=lambda: [-0.5, 0.0])
    num_poses: int = 8
    cache_dir: str = ""
    teacher_index: str = ""
    max_teachers: int = 256
    image: ImageInputConfig = field(default_factory=ImageInputConfig)


@dataclass
class NavsimDataConfig(LoggedDataConfig):
    """`data=navsim`: <root>/navsim_logs/<split> + <root>/sensor_blobs/<split>.

    scene_filter: a navsim scene-filter YAML or train/test-split YAML ('' = every scene, navsim defaults: 4 history
    and 10 future frames, non-overlapping); a split YAML's `data_split` overrides `split`. The camera projection
    of each sample comes from its CAM_F0 calibration (`sensor2lidar_rotation/translation`) when the log has it,
    else the nominal CAM_F0 (`agent.camera.navsim_cam_f0()`).
    """

    kind: str = "navsim"
    split: str = "trainval"
    scene_filter: str = ""
    image: ImageInputConfig = field(default_factory=navsim_image_config)


@dataclass
class Bench2DriveDataConfig(LoggedDataConfig):
    """`data=bench2drive`: clip folders under root (clips: explicit list relative to root, null = discover all;
    exclude: clip names or relative paths to leave out, e.g. Bench2DriveZoo's 50 validation clips).

    stride: current frames every `stride` 10 Hz frames (5 = 2 Hz). trigger_rotation_relative: add the parent's yaw
    to trigger-volume rotations (Bench2Drive docs/anno.md). snapshots: cache the world snapshot per sample.
    The camera projection is Bench2Drive's front camera (`agent.camera.carla_front_camera`, Lincoln MKZ 2020).
    """

    kind: str = "bench2drive"
    clips: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    stride: int = 5
    fps: float = 10.0
    trigger_rotation_relative: bool = True
    snapshots: bool = True
    image: ImageInputConfig = field(default_factory=bench2drive_image_config)


def data_camera_name(cfg: DataConfig) -> str:
    """The camera rig a data option's images come from (`agent.camera.camera_by_name` names)."""
    if isinstance(cfg, SyntheticDataConfig | ForkDataConfig):
        return cfg.camera
    if isinstance(cfg, NavsimDataConfig):
        return "navsim_cam_f0"
    if isinstance(cfg, Bench2DriveDataConfig):
        return "carla_front"
    raise ValueError(f"data.kind={cfg.kind!r}: unknown data option (synthetic, fork, navsim, bench2drive)")


config_lib.register("synthetic", SyntheticDataConfig, group="data")
config_lib.register("fork", ForkDataConfig, group="data")
config_lib.register("navsim", NavsimDataConfig, group="data")
config_lib.register("bench2drive", Bench2DriveDataConfig, group="data")

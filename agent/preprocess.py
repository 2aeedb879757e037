"""Camera image → model input, identical at training and inference time.

Steps: BGRA (the leaderboard's camera format) → RGB; optional JPEG round trip at the training data's quality
(Bench2Drive stores front frames as JPEG quality 20; NAVSIM as JPEG too) so the agent sees the same artefacts;
crop a box of source pixels; resize to the model input (cv2.INTER_AREA); ImageNet normalization; stack a
history of frames into a video tensor (3, T, H, W).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from agent.camera import Crop, preprocess_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageInputError(ValueError):
    """A camera frame is missing or not the expected shape/type."""


@dataclass
class ImageInputConfig:
    """How a source camera image becomes the model input. Crop is in source pixels: [top, bottom) × [left, right)."""

    source_width: int = 1600
    source_height: int = 900
    crop_top: int = 50
    crop_bottom: int = 850
    crop_left: int = 0
    crop_right: int = 1600
    out_width: int = 512
    out_height: int = 256
    jpeg_quality: int | None = 20  # None: no JPEG round trip
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def crop(self) -> Crop:
        """The crop as the camera model's margins (pixels removed at each side)."""
        return Crop(
            top=self.crop_top,
            bottom=self.source_height - self.crop_bottom,
            left=self.crop_left,
            right=self.source_width - self.crop_right,
        )

    def validate(self) -> None:
        if not (0 <= self.crop_top < self.crop_bottom <= self.source_height):
            raise ImageInputError(f"crop rows [{self.crop_top}, {self.crop_bottom}) outside 0..{self.source_height}")
        if not (0 <= self.crop_left < self.crop_right <= self.source_width):
            raise ImageInputError(f"crop cols [{self.crop_left}, {self.crop_right}) outside 0..{self.source_width}")


def check_frame(image: object, expect_hw: tuple[int, int] | None = None) -> None:
    """Raise ImageInputError unless `image` is a uint8 (H, W, 3|4) array of the expected size."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
        shape = getattr(image, "shape", None)
        raise ImageInputError(f"camera frame must be a (H, W, 4) BGRA array, got {type(image).__name__} {shape}")
    if image.dtype != np.uint8:
        raise ImageInputError(f"camera frame must be uint8, got {image.dtype}")
    if expect_hw is not None and image.shape[:2] != expect_hw:
        raise ImageInputError(
            f"camera frame is {image.shape[1]}×{image.shape[0]}, expected {expect_hw[1]}×{expect_hw[0]}"
        )


def bgra_to_rgb(image: np.ndarray, expect_hw: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 (H, W, 4) BGRA (or BGR) → uint8 (H, W, 3) RGB. Raises ImageInputError on anything else."""
    check_frame(image, expect_hw)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at `quality` (libjpeg via OpenCV, 4:2:0 as OpenCV's default)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageInputError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageInputError("JPEG decoding failed")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def crop_resize(rgb: np.ndarray, cfg: ImageInputConfig) -> np.ndarray:
    """uint8 RGB source image → uint8 RGB (out_height, out_width, 3), through the camera model's one crop/resize
    (`agent.camera.preprocess_image`), so pixels and projected geometry agree."""
    return preprocess_image(rgb, cfg.crop(), cfg.out_width, cfg.out_height)


def prepare_frame(image: np.ndarray, cfg: ImageInputConfig, bgra: bool = True) -> np.ndarray:
    """One source frame (BGRA from the leaderboard, or RGB from a dataset) → uint8 RGB model-size frame."""
    rgb = bgra_to_rgb(image, (cfg.source_height, cfg.source_width)) if bgra else image
    if cfg.jpeg_quality is not None:
        rgb = jpeg_round_trip(rgb, cfg.jpeg_quality)
    return crop_resize(rgb, cfg)


def normalize_frames(
    frames: list[np.ndarray], mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> np.ndarray:
    """T uint8 RGB frames (H, W, 3), oldest first → float32 (3, T, H, W): (rgb / 255 − mean) / std.

    The one normalization of the project (agent, planner training, V-JEPA pretraining)."""
    scaled = np.stack(frames, 0).astype(np.float32) / np.float32(255.0)  # (T, H, W, 3)
    normed = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normed.transpose(3, 0, 1, 2), dtype=np.float32)


def normalize_video(frames: list[np.ndarray], cfg: ImageInputConfig) -> np.ndarray:
    """`normalize_frames` with the config's mean/std."""
    return normalize_frames(frames, cfg.mean, cfg.std)


@dataclass
class FrameHistory:
    """Keeps recent frames by timestamp and returns the ones at the trained spacing.

    Frames may be pushed raw together with a `prepare` function; each frame is prepared at most once, and only
    when selected (at 20 Hz ticks and a 10 Hz model, half the frames are never needed).

    `offsets` are seconds relative to now, oldest first (Drive-JEPA front-only: (−0.5, 0.0)). A frame for time
    t + offset is the newest frame at or before it (within `tolerance`); before enough history exists the oldest
    frame stands in (the leaderboard's first ticks), which `complete` reports.
    """

    offsets: tuple[float, ...] = (-0.5, 0.0)
    tolerance: float = 0.026  # half a 20 Hz tick, plus float slack
    times: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    prepared: list[bool] = field(default_factory=list)
    prepare: Callable[[np.ndarray], np.ndarray] | None = None

    def reset(self) -> None:
        self.times.clear()
        self.frames.clear()
        self.prepared.clear()

    def push(self, t: float, frame: np.ndarray) -> None:
        done = self.prepare is None
        if self.times and t <= self.times[-1]:
            # a repeated or backwards timestamp replaces the newest frame instead of corrupting the order
            self.times[-1], self.frames[-1], self.prepared[-1] = t, frame, done
        else:
            self.times.append(t)
            self.frames.append(frame)
            self.prepared.append(done)
        horizon = self.times[-1] + min(self.offsets) - 1.0
        while len(self.times) > 1 and self.times[1] < horizon:
            self.times.pop(0)
            self.frames.pop(0)
            self.prepared.pop(0)

    def complete(self) -> bool:
        return bool(self.times) and self.times[0] <= self.times[-1] + min(self.offsets) + self.tolerance

    def select(self) -> list[np.ndarray]:
        if not self.times:
            raise ImageInputError("no camera frame received yet")
        now = self.times[-1]
        out = []
        for off in self.offsets:
            i = max(bisect.bisect_right(self.times, now + off + self.tolerance) - 1, 0)
            if not self.prepared[i] and self.prepare is not None:
                self.frames[i], self.prepared[i] = self.prepare(self.frames[i]), True
            out.append(self.frames[i])
        return out

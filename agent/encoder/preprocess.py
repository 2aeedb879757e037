"""Camera frames -> encoder input, shared by training (driving-video clips) and inference (live camera).

The same crop, resize and normalization must run at training and at inference, so it lives here once.
Drive-JEPA front camera: NAVSIM CAM_F0 1920 x 1080, rows 28 and 28 removed at top and bottom, resized to
512 x 256, ImageNet mean/std (CONVENTIONS.md, NAVSIM section).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agent.camera import Crop, preprocess_image
from agent.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize_frames

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "frames_to_clip"]


def frames_to_clip(
    frames: Sequence[np.ndarray],
    height: int = 256,
    width: int = 512,
    crop_top: int = 28,
    crop_bottom: int = 28,
    reduce: int = 1,
) -> torch.Tensor:
    """RGB uint8 frames (H, W, 3), oldest first -> normalized float32 clip (3, T, height, width).

    Each frame loses `crop_top` / `crop_bottom` source rows, is resized to `width` x `height` with area
    interpolation, scaled to [0, 1] and normalized with ImageNet mean/std. `reduce`: the frames were decoded
    at 1/reduce scale, so the crop (given in full-resolution rows) is divided by it.
    """
    top, bottom = round(crop_top / reduce), round(crop_bottom / reduce)
    out = []
    for i, img in enumerate(frames):
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"frame {i}: expected RGB uint8 (H, W, 3), got {img.dtype} {img.shape}")
        h = img.shape[0]
        if top + bottom >= h:
            raise ValueError(f"frame {i}: crop of {top} + {bottom} rows leaves nothing of {h} rows")
        out.append(preprocess_image(img, Crop(top=top, bottom=bottom), width, height))
    return torch.from_numpy(normalize_frames(out))

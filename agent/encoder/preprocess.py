"""Camera frames -> encoder input, shared by training (driving-video clips) and inference (live camera).

The same crop, resize and normalization must run at training and at inference, so it lives here once.
Drive-JEPA front camera: NAVSIM CAM_F0 1920 x 1080, rows 28 and 28 removed at top and bottom, resized to
512 x 256, ImageNet mean/std (CONVENTIONS.md, NAVSIM section).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    import cv2

    top, bottom = round(crop_top / reduce), round(crop_bottom / reduce)
    out = np.empty((len(frames), height, width, 3), dtype=np.float32)
    for i, img in enumerate(frames):
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"frame {i}: expected RGB uint8 (H, W, 3), got {img.dtype} {img.shape}")
        h = img.shape[0]
        if top + bottom >= h:
            raise ValueError(f"frame {i}: crop of {top} + {bottom} rows leaves nothing of {h} rows")
        out[i] = cv2.resize(img[top : h - bottom], (width, height), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(out).div_(255.0)
    x = (x - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    return x.permute(3, 0, 1, 2).contiguous()

"""Camera frames -> encoder input (shared by training and inference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.encoder.preprocess import IMAGENET_MEAN, IMAGENET_STD, frames_to_clip


def test_navsim_front_camera_to_clip() -> None:
    frames = [np.zeros((1080, 1920, 3), np.uint8), np.full((1080, 1920, 3), 255, np.uint8)]
    frames[0][:28] = 255  # the cropped rows must not leak into the clip
    clip = frames_to_clip(frames)
    assert clip.shape == (3, 2, 256, 512) and clip.dtype == torch.float32
    black = (torch.zeros(3) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    white = (torch.ones(3) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(clip[:, 0], black[:, None, None].expand(3, 256, 512), atol=1e-6)
    assert torch.allclose(clip[:, 1], white[:, None, None].expand(3, 256, 512), atol=1e-6)


def test_channel_order_is_rgb() -> None:
    red = np.zeros((64, 128, 3), np.uint8)
    red[..., 0] = 255
    clip = frames_to_clip([red, red], height=32, width=64, crop_top=0, crop_bottom=0)
    assert float(clip[0].mean()) > 2.0 and float(clip[2].mean()) < -1.5


@pytest.mark.parametrize("bad", [np.zeros((64, 128, 4), np.uint8), np.zeros((64, 128, 3), np.float32)])
def test_bad_frames_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="frame 0: expected RGB uint8"):
        frames_to_clip([bad])

"""The V-JEPA 2 video encoder (ViT, Conv3d tubelets, 3D RoPE) and its strict checkpoint loading.

Planner-facing API (see `docs/encoder.md`):

    enc = load_encoder("vitl.pt", key="target_encoder")     # or VJEPAEncoder(encoder_config("vit_large"))
    tokens = enc(video)              # video (B, 3, T, H, W) normalized float -> (B, N, D)
    grid = enc.forward_grid(video)   # (B, T', H', W', D)
    enc.grid_shape(T, H, W)          # (T', H', W'), e.g. (1, 16, 32) for 2 x 256 x 512
    video = frames_to_clip([rgb_prev, rgb_now])[None]  # camera frames -> (1, 3, 2, 256, 512), as in training
"""

from agent.encoder.checkpoint import (
    CheckpointError,
    infer_encoder_config,
    load_encoder,
    load_strict,
    read_checkpoint,
    select_state_dict,
)
from agent.encoder.preprocess import IMAGENET_MEAN, IMAGENET_STD, frames_to_clip
from agent.encoder.vit import ENCODER_PRESETS, EncoderConfig, VJEPAEncoder, encoder_config

__all__ = [
    "ENCODER_PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CheckpointError",
    "EncoderConfig",
    "VJEPAEncoder",
    "encoder_config",
    "frames_to_clip",
    "infer_encoder_config",
    "load_encoder",
    "load_strict",
    "read_checkpoint",
    "select_state_dict",
]

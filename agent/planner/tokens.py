"""The token-grid interface between video encoders and planners, and a small trainable stand-in encoder.

Video: (B, 3, T, H, W) float, ImageNet-normalised RGB, frames oldest → newest. Token grid: (B, D, Hp, Wp), the
spatial token layout of the model input (token (i, j) covers pixels [j·p, (j+1)·p) × [i·p, (i+1)·p)).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from agent.planner.config import EncoderConfig


@runtime_checkable
class TokenEncoder(Protocol):
    """Anything that turns a video clip (B, 3, T, H, W) into a token grid (B, D, Hp, Wp)."""

    dim: int

    def __call__(self, video: Tensor) -> Tensor: ...


class PatchEncoder(nn.Module):
    """Tubelet conv (T frames × p×p patches, like V-JEPA's patch embedding) + two residual conv blocks.

    A real, trainable encoder for tests and tiny configs; not a substitute for V-JEPA's representations.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.dim = cfg.dim
        self.frames = cfg.frames
        self.embed = nn.Conv3d(
            3, cfg.dim, kernel_size=(cfg.frames, cfg.patch, cfg.patch), stride=(cfg.frames, cfg.patch, cfg.patch)
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.GroupNorm(1, cfg.dim), nn.Conv2d(cfg.dim, cfg.dim, 3, padding=1), nn.GELU())
            for _ in range(2)
        )

    def forward(self, video: Tensor) -> Tensor:
        if video.dim() != 5 or video.shape[1] != 3 or video.shape[2] != self.frames:
            raise ValueError(f"PatchEncoder: expected video (B, 3, {self.frames}, H, W), got {tuple(video.shape)}")
        x = self.embed(video)[:, :, 0]  # (B, D, Hp, Wp): the tubelet merges the frames
        for block in self.blocks:
            x = x + block(x)
        return x


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    if cfg.kind == "patch":
        enc: nn.Module = PatchEncoder(cfg)
    else:
        raise ValueError(f"encoder.kind={cfg.kind!r}: only 'patch' is available in this build (V-JEPA: agent/encoder)")
    if cfg.freeze:
        for p in enc.parameters():
            p.requires_grad_(False)
    return enc


def token_grid_shape(cfg: EncoderConfig, height: int, width: int) -> tuple[int, int]:
    if height % cfg.patch or width % cfg.patch:
        raise ValueError(f"image {width}x{height} is not a multiple of the patch size {cfg.patch}")
    return height // cfg.patch, width // cfg.patch

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


class VJEPATokenEncoder(nn.Module):
    """The V-JEPA 2 ViT as a `TokenEncoder`: video (B, 3, T, H, W) → token grid (B, D, Hp, Wp).

    The tubelet (2 frames) merges the Drive-JEPA input pair into one temporal slice; with more frames the temporal
    slices are averaged. Weights come from `vjepa_checkpoint` (strict: any missing/unexpected/mis-shaped key is an
    error) or are randomly initialised (then train or pretrain them with `drive-jepa pretrain`).
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        from agent.encoder import VJEPAEncoder, encoder_config, load_encoder

        vcfg = encoder_config(cfg.vjepa_size, activation_checkpointing=cfg.activation_checkpointing)
        if vcfg.patch_size != cfg.patch or vcfg.tubelet_size > cfg.frames or cfg.frames % vcfg.tubelet_size:
            raise ValueError(
                f"encoder: V-JEPA {cfg.vjepa_size} has patch {vcfg.patch_size} and tubelet {vcfg.tubelet_size}, "
                f"but the planner config asks for patch {cfg.patch} and {cfg.frames} frames"
            )
        if vcfg.embed_dim != cfg.dim:
            raise ValueError(f"encoder.dim={cfg.dim} but V-JEPA {cfg.vjepa_size} has embed_dim {vcfg.embed_dim}")
        if cfg.vjepa_checkpoint:
            self.vit = load_encoder(cfg.vjepa_checkpoint, key=cfg.vjepa_key, cfg=vcfg)
        else:
            self.vit = VJEPAEncoder(vcfg)
        self.dim = cfg.dim
        self.frames = cfg.frames

    def forward(self, video: Tensor) -> Tensor:
        if video.dim() != 5 or video.shape[1] != 3 or video.shape[2] != self.frames:
            raise ValueError(f"VJEPATokenEncoder: expected video (B, 3, {self.frames}, H, W), got {tuple(video.shape)}")
        grid = self.vit.forward_grid(video)  # (B, T', Hp, Wp, D)
        return grid.mean(1).permute(0, 3, 1, 2).contiguous()


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    enc: nn.Module
    if cfg.kind == "patch":
        enc = PatchEncoder(cfg)
    elif cfg.kind == "vjepa":
        enc = VJEPATokenEncoder(cfg)
    else:
        raise ValueError(f"encoder.kind={cfg.kind!r}: expected 'patch' or 'vjepa'")
    if cfg.freeze:
        for p in enc.parameters():
            p.requires_grad_(False)
    return enc


def token_grid_shape(cfg: EncoderConfig, height: int, width: int) -> tuple[int, int]:
    if height % cfg.patch or width % cfg.patch:
        raise ValueError(f"image {width}x{height} is not a multiple of the patch size {cfg.patch}")
    return height // cfg.patch, width // cfg.patch

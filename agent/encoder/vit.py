"""The V-JEPA 2 video encoder: a ViT with a Conv3d tubelet embedding and 3D RoPE.

Token grid contract (what the planner consumes):

* input `video`: float tensor (B, C, T, H, W), RGB already normalized with ImageNet mean/std, `T` a multiple
  of the tubelet size (2) and `H`, `W` multiples of the patch size (16). Driving input 2 x 256 x 512 gives
  the grid (T', H', W') = (1, 16, 32), N = 512 tokens.
* `encoder(video)` -> (B, N, D) tokens after the final LayerNorm, in token-index order
  `idx = t*H'*W' + h*W' + w` (t = tubelet covering frames 2t, 2t+1; h = pixel rows 16h..16h+15, top to bottom;
  w = pixel columns 16w..16w+15, left to right).
* `encoder.forward_grid(video)` -> (B, T', H', W', D), the same tokens reshaped.
* `encoder(video, masks)` with `masks` (B, K) int64 token indices encodes only those tokens (the context in
  JEPA training); output rows follow the order of `masks`.

No CLS token, no absolute position embedding: positions enter only through RoPE, decoded from token indices
with the input's actual grid, so any even frame count and any multiple-of-16 size work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from agent.encoder.blocks import (
    LAYERNORM_EPS,
    Block,
    init_vit_weights,
    rescale_residual_projections,
    run_blocks,
)
from agent.encoder.rope import decode_positions, rope_tables


@dataclass
class EncoderConfig:
    """Sizes of a V-JEPA encoder. Presets: `ENCODER_PRESETS` (tiny = the parity fixture, vit_large, ...)."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_hidden: int = 4096  # int(embed_dim * mlp_ratio); ViT-g uses mlp_ratio 48/11 -> 6144
    in_chans: int = 3
    patch_size: int = 16  # pixels
    tubelet_size: int = 2  # frames
    qkv_bias: bool = True
    drop_path_rate: float = 0.0  # stochastic depth, linearly increasing over blocks
    activation_checkpointing: bool = False  # recompute blocks in backward to save memory


def _preset(dim: int, depth: int, heads: int, hidden: int) -> EncoderConfig:
    return EncoderConfig(embed_dim=dim, depth=depth, num_heads=heads, mlp_hidden=hidden)


ENCODER_PRESETS: dict[str, EncoderConfig] = {
    "tiny": _preset(96, 2, 3, 384),  # ../shared/fixtures/vjepa2 config A
    "vit_large": _preset(1024, 24, 16, 4096),
    "vit_huge": _preset(1280, 32, 16, 5120),
    "vit_giant": _preset(1408, 40, 22, 6144),
}


def encoder_config(name: str, **overrides: object) -> EncoderConfig:
    """A copy of preset `name` with field overrides."""
    if name not in ENCODER_PRESETS:
        raise ValueError(f"unknown encoder preset {name!r}; choose one of {sorted(ENCODER_PRESETS)}")
    from dataclasses import replace

    return replace(ENCODER_PRESETS[name], **overrides)  # type: ignore[arg-type]


class PatchEmbed3D(nn.Module):
    """Tubelet embedding `Conv3d(C -> D, kernel = stride = (tubelet, patch, patch))` -> (B, N, D)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, tubelet_size: int) -> None:
        super().__init__()
        k = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=k, stride=k)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.proj(video).flatten(2).transpose(1, 2)


class VJEPAEncoder(nn.Module):
    """V-JEPA 2 `VisionTransformer` (RoPE, no CLS, final norm); state dict keys match the official ones."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_dim = cfg.embed_dim
        self.patch_embed = PatchEmbed3D(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.tubelet_size)
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist() if cfg.depth else []
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_hidden, cfg.qkv_bias, drop_path=r) for r in rates
        )
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=LAYERNORM_EPS)
        self.apply(init_vit_weights)
        rescale_residual_projections(self.blocks)

    @property
    def head_dim(self) -> int:
        return self.cfg.embed_dim // self.cfg.num_heads

    def grid_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid (T', H', W') for `frames` x `height` x `width` pixels; checks divisibility."""
        c = self.cfg
        if frames % c.tubelet_size or height % c.patch_size or width % c.patch_size:
            raise ValueError(
                f"video of {frames} frames x {height} x {width} px: frames must be a multiple of "
                f"{c.tubelet_size} and height/width multiples of {c.patch_size}"
            )
        return frames // c.tubelet_size, height // c.patch_size, width // c.patch_size

    def _check_video(self, video: torch.Tensor) -> tuple[int, int, int]:
        if video.ndim != 5 or video.shape[1] != self.cfg.in_chans:
            raise ValueError(f"video: expected (B, {self.cfg.in_chans}, T, H, W), got shape {tuple(video.shape)}")
        return self.grid_shape(*video.shape[2:])

    def forward(self, video: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B, N, D) of `video` (B, C, T, H, W); with `masks` (B, K): only those tokens (B, K, D)."""
        grid = self._check_video(video)
        x = self.patch_embed(video)
        b, n, _ = x.shape
        if masks is None:
            index = torch.arange(n, device=x.device).expand(b, n)
        else:
            if masks.ndim != 2 or masks.shape[0] != b:
                raise ValueError(f"masks: expected (B={b}, K) token indices, got shape {tuple(masks.shape)}")
            index = masks.to(device=x.device, dtype=torch.long)
            x = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        cos, sin = rope_tables(decode_positions(index, grid[1:]), self.head_dim)
        x = run_blocks(self.blocks, x, cos, sin, self.cfg.activation_checkpointing and self.training)
        return self.norm(x)

    def forward_grid(self, video: torch.Tensor) -> torch.Tensor:
        """Tokens of `video` as a grid (B, T', H', W', D)."""
        grid = self._check_video(video)
        tokens = self.forward(video)
        return tokens.reshape(tokens.shape[0], *grid, tokens.shape[-1])

"""The V-JEPA 2 predictor: a narrow ViT that maps context tokens + mask tokens to target-token features.

Forward (official `VisionTransformerPredictor`, restated in `../shared/fixtures/vjepa2/README.md`):

1. `predictor_embed` (Linear D -> Dp) on the context features (B, Kc, D);
2. one learned mask token `mask_tokens[mask_index % num_mask_tokens]` per target position (B, Kt, Dp); no
   position embedding - positions enter through RoPE only;
3. blocks (pre-norm, RoPE) over `[context ; targets]` with positions `[masks_enc ; masks_pred]`;
4. `predictor_norm`, keep the Kt target rows (in `masks_pred` order), `predictor_proj` (Dp -> D).

The official code sorts the sequence by position before the blocks; attention is unmasked and positions travel
with tokens, so the result is permutation-equivariant and the sort is skipped here (fixture: <= 1.1e-6).

Position decoding quirk: the official predictor decodes token indices with a *square* grid of side
`img_size[0] // patch_size` (the size it was built with), even for non-square inputs. `square_grid_positions`
(default True) reproduces it; set it False to decode with the true (H', W') of the input instead.
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
class PredictorConfig:
    """Predictor sizes. V-JEPA 2: width 384, depth 12, 12 heads, 10 mask tokens in released files."""

    embed_dim: int = 1024  # encoder width (input and output)
    predictor_embed_dim: int = 384
    depth: int = 12
    num_heads: int = 12
    mlp_hidden: int = 1536
    num_mask_tokens: int = 10
    img_height: int = 256  # only for the square-grid position quirk: side = img_height // patch_size
    patch_size: int = 16
    qkv_bias: bool = True
    drop_path_rate: float = 0.0
    square_grid_positions: bool = True
    activation_checkpointing: bool = False


class VJEPAPredictor(nn.Module):
    """State dict keys match the official predictor after removing `module.backbone.`."""

    def __init__(self, cfg: PredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dp = cfg.predictor_embed_dim
        self.predictor_embed = nn.Linear(cfg.embed_dim, dp)
        self.mask_tokens = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, dp)) for _ in range(cfg.num_mask_tokens))
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist() if cfg.depth else []
        self.predictor_blocks = nn.ModuleList(
            Block(dp, cfg.num_heads, cfg.mlp_hidden, cfg.qkv_bias, drop_path=r) for r in rates
        )
        self.predictor_norm = nn.LayerNorm(dp, eps=LAYERNORM_EPS)
        self.predictor_proj = nn.Linear(dp, cfg.embed_dim)
        self.apply(init_vit_weights)
        rescale_residual_projections(self.predictor_blocks)
        for tok in self.mask_tokens:
            nn.init.trunc_normal_(tok, std=0.02)

    def position_grid_hw(self, grid_hw: tuple[int, int]) -> tuple[int, int]:
        """The (H, W) used to decode token indices into positions (see the square-grid quirk)."""
        if self.cfg.square_grid_positions:
            side = self.cfg.img_height // self.cfg.patch_size
            return side, side
        return grid_hw

    def forward(
        self,
        context: torch.Tensor,
        masks_enc: torch.Tensor,
        masks_pred: torch.Tensor,
        *,
        mask_index: int,
        grid_hw: tuple[int, int],
    ) -> torch.Tensor:
        """Predicted target features (B, Kt, D) in `masks_pred` order.

        `context` (B, Kc, D) encoder features of the tokens `masks_enc` (B, Kc); `masks_pred` (B, Kt) target
        token indices; `mask_index` picks the mask token (the training loop uses 0, the frames-per-clip group;
        a direct official call defaults to 1); `grid_hw` = (H', W') of the input token grid.
        """
        b, kc, _ = context.shape
        kt = masks_pred.shape[1]
        if masks_enc.shape != (b, kc) or masks_pred.shape[0] != b:
            raise ValueError(
                f"predictor: context {tuple(context.shape)} needs masks_enc (B, Kc) = ({b}, {kc}) and "
                f"masks_pred (B, Kt), got {tuple(masks_enc.shape)} and {tuple(masks_pred.shape)}"
            )
        x = self.predictor_embed(context)
        token = self.mask_tokens[mask_index % len(self.mask_tokens)]
        x = torch.cat((x, token.to(x.dtype).expand(b, kt, -1)), dim=1)
        index = torch.cat((masks_enc, masks_pred), dim=1).to(device=x.device, dtype=torch.long)
        head_dim = self.cfg.predictor_embed_dim // self.cfg.num_heads
        cos, sin = rope_tables(decode_positions(index, self.position_grid_hw(grid_hw)), head_dim)
        x = run_blocks(self.predictor_blocks, x, cos, sin, self.cfg.activation_checkpointing and self.training)
        x = self.predictor_norm(x[:, kc:])
        return self.predictor_proj(x)

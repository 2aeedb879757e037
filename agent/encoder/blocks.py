"""Transformer blocks shared by the V-JEPA encoder and predictor: pre-norm, fused-qkv attention with 3D RoPE.

Parameter names follow V-JEPA 2 (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`) so official
state dicts load one-to-one. The MLP and stochastic depth are timm's `Mlp` and `DropPath`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import nn

from agent.encoder.rope import apply_rope

LAYERNORM_EPS = 1e-6  # every model LayerNorm in V-JEPA 2 (norm1, norm2, final norm, predictor_norm)


class RoPEAttention(nn.Module):
    """Multi-head self-attention over all tokens (no mask), RoPE on q and k.

    `qkv` is one Linear whose output rows are laid out `[q | k | v]`, heads contiguous inside each part; scale
    `1/sqrt(head_dim)`; output `proj` with bias. Uses `F.scaled_dot_product_attention` (flash/memory-efficient
    kernels on GPU).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, N, head_dim)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block: `x += attn(norm1(x))`, `x += mlp(norm2(x))` (GELU, exact erf)."""

    def __init__(
        self, dim: int, num_heads: int, mlp_hidden: int, qkv_bias: bool = True, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.attn = RoPEAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LAYERNORM_EPS)
        self.mlp = Mlp(dim, hidden_features=mlp_hidden, act_layer=nn.GELU)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), cos, sin))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, checkpointing: bool
) -> torch.Tensor:
    """Run `blocks` in order; with `checkpointing` (and grad enabled) each block recomputes in backward."""
    use_ckpt = checkpointing and torch.is_grad_enabled()
    for blk in blocks:
        if use_ckpt:
            x = torch.utils.checkpoint.checkpoint(blk, x, cos, sin, use_reentrant=False)
        else:
            x = blk(x, cos, sin)
    return x


def init_vit_weights(module: nn.Module) -> None:
    """V-JEPA-style init: trunc-normal(0.02) Linear/Conv weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def rescale_residual_projections(blocks: nn.ModuleList) -> None:
    """Divide each block's `attn.proj` and `mlp.fc2` weights by sqrt(2 * layer) (layer counted from 1)."""
    with torch.no_grad():
        for i, blk in enumerate(blocks, start=1):
            assert isinstance(blk, Block)
            blk.attn.proj.weight.div_((2.0 * i) ** 0.5)
            blk.mlp.fc2.weight.div_((2.0 * i) ** 0.5)

"""3D rotary position encoding (RoPE) exactly as V-JEPA 2 computes it.

Layout of one attention head of size `head_dim` (V-JEPA 2 `RoPEAttention`, facebookresearch/vjepa2
`src/models/utils/modules.py`; facts restated in `../shared/fixtures/vjepa2/README.md`):

* `d = 2 * floor(floor(head_dim / 3) / 2)` dims per axis, in the order temporal, height, width from the
  start of the head; the last `head_dim - 3 d` dims are left unrotated (head_dim 64 -> 20/20/20 + 4).
* Inside a chunk of size `d`, `m = d / 2` frequencies `omega_j = 10000^(-j / m)` (they depend on the chunk
  size, not on head_dim). Element `i` of the chunk uses angle `theta_i = p * omega_(i mod m)`:
  cos/sin are *tiled* (`.repeat`), not interleaved. Adjacent pairs are rotated:
  `out[2k] = x[2k] cos(theta_2k) - x[2k+1] sin(theta_2k)`,
  `out[2k+1] = x[2k+1] cos(theta_2k+1) + x[2k] sin(theta_2k+1)`.
  The two members of a pair therefore use different frequencies. This is not a true rotation, but pretrained
  weights depend on it, so it is reproduced as is.
* Positions are integer patch coordinates (tubelet t, row h, column w), never normalized.

Implementation: the per-token angle table for the whole head is built once per forward pass
(`rope_tables`), with cos = 1 and sin = 0 on unrotated dims, and every attention layer applies it with one
multiply-add (`apply_rope`). Angles are computed in float32 and cast to the activation dtype.
"""

from __future__ import annotations

import torch

ROPE_BASE = 10000.0


def rope_axis_dim(head_dim: int) -> int:
    """Number of dims rotated per axis (t, h, w) for a head of size `head_dim`."""
    return 2 * ((head_dim // 3) // 2)


def axis_frequencies(d: int, device: torch.device | None = None) -> torch.Tensor:
    """The `d` per-element frequencies of one chunk of size `d`: `omega_(i mod d/2)`, float32, shape (d,)."""
    m = d // 2
    omega = 1.0 / ROPE_BASE ** (torch.arange(m, dtype=torch.float32, device=device) / m)
    return omega.repeat(2)


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...) over the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def rotate_axis(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotate one chunk `x` (..., N, d) by integer positions `pos` (..., N) (reference form)."""
    theta = pos.to(torch.float32).unsqueeze(-1) * axis_frequencies(x.shape[-1], x.device)
    return x * theta.cos().to(x.dtype) + rotate_pairs(x) * theta.sin().to(x.dtype)


def decode_positions(index: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Token index -> integer (t, h, w), with `index = t*H*W + h*W + w`. Returns (..., 3) int64."""
    gh, gw = grid_hw
    t = torch.div(index, gh * gw, rounding_mode="floor")
    rem = index - t * (gh * gw)
    h = torch.div(rem, gw, rounding_mode="floor")
    w = rem - h * gw
    return torch.stack((t, h, w), dim=-1)


def rope_tables(thw: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for whole heads from positions `thw` (B, N, 3).

    Returns two float32 tensors of shape (B, 1, N, head_dim) (the 1 broadcasts over heads); unrotated dims
    have cos 1 and sin 0.
    """
    d = rope_axis_dim(head_dim)
    omega = axis_frequencies(d, thw.device)  # (d,)
    theta = thw.to(torch.float32).unsqueeze(-1) * omega  # (B, N, 3, d)
    theta = theta.flatten(-2)  # (B, N, 3d) in t, h, w order
    cos, sin = theta.cos(), theta.sin()
    rest = head_dim - 3 * d
    if rest:
        shape = (*theta.shape[:-1], rest)
        cos = torch.cat((cos, cos.new_ones(shape)), dim=-1)
        sin = torch.cat((sin, sin.new_zeros(shape)), dim=-1)
    return cos.unsqueeze(1), sin.unsqueeze(1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Apply the tables from `rope_tables` to queries or keys `x` (B, heads, N, head_dim)."""
    return x * cos.to(x.dtype) + rotate_pairs(x) * sin.to(x.dtype)

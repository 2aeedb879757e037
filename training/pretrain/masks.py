"""Multiblock 3D masks for V-JEPA pretraining, vectorized over the batch.

Semantics follow the official `_MaskGenerator` (facebookresearch/vjepa2 `src/masks/multiseq_multiblock3d.py`,
restated in `../shared/fixtures/vjepa2/README.md`):

* one block size (t, h, w) per call, shared by the batch, drawn from a `torch.Generator` seeded with the
  call counter (0, 1, 2, ... per mask config): three uniforms in the order temporal scale, spatial scale,
  aspect ratio; `t = max(1, int(T' * ts))`, `n = int(H' W' * ss)`, `h = round(sqrt(n ar))`,
  `w = round(sqrt(n / ar))`, clipped to the grid. With the same counter the sizes equal the official ones;
* per sample, `num_blocks` blocks placed uniformly (overlap allowed); their union (plus every tubelet at or
  after `max(1, int(T' * max_temporal_keep))`) is the target set, the complement the context; samples with an
  empty context are redrawn;
* index lists are sorted ascending; all context lists are cut to the batch minimum length, and so are the
  target lists (keeping the lowest indices), optionally capped at `max_keep` context tokens.

Unlike the official collator (a Python loop per sample and per block), placement, union and truncation here
are batched tensor operations; only the redraw of empty contexts loops, over attempts, not samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class MaskConfig:
    """One multiblock mask family (defaults: the official short-range config)."""

    num_blocks: int = 8
    spatial_scale: tuple[float, float] = (0.15, 0.15)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    temporal_scale: tuple[float, float] = (1.0, 1.0)
    max_temporal_keep: float = 1.0
    max_keep: int | None = None


def default_mask_configs() -> list[MaskConfig]:
    """The two official V-JEPA 2 pretraining configs: 8 short-range blocks (0.15) and 2 long-range (0.7)."""
    return [MaskConfig(), MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7))]


@dataclass
class Masks:
    """Context (`enc`, (B, Kc)) and target (`pred`, (B, Kt)) token indices, int64, each row ascending."""

    enc: torch.Tensor
    pred: torch.Tensor
    block_thw: tuple[int, int, int] = field(default=(0, 0, 0))


def block_size(cfg: MaskConfig, grid_thw: tuple[int, int, int], seed: int) -> tuple[int, int, int]:
    """The (t, h, w) block size for call `seed` (same draws as the official generator)."""
    gt, gh, gw = grid_thw
    g = torch.Generator().manual_seed(seed)
    r = torch.rand(3, generator=g).tolist()  # three consecutive draws, as three rand(1) calls give
    ts = cfg.temporal_scale[0] + r[0] * (cfg.temporal_scale[1] - cfg.temporal_scale[0])
    t = max(1, int(gt * ts))
    ss = cfg.spatial_scale[0] + r[1] * (cfg.spatial_scale[1] - cfg.spatial_scale[0])
    n = int(gh * gw * ss)
    ar = cfg.aspect_ratio[0] + r[2] * (cfg.aspect_ratio[1] - cfg.aspect_ratio[0])
    h = min(round(math.sqrt(n * ar)), gh)
    w = min(round(math.sqrt(n / ar)), gw)
    return t, h, w


def _place_blocks(
    batch: int,
    num_blocks: int,
    grid_thw: tuple[int, int, int],
    size: tuple[int, int, int],
    g: torch.Generator,
) -> torch.Tensor:
    """Target mask (batch, T', H', W') bool: the union of `num_blocks` uniformly placed blocks per sample."""
    covered = []
    for extent, length in zip(grid_thw, size, strict=True):
        start = torch.randint(0, extent - length + 1, (batch, num_blocks, 1), generator=g)
        coord = torch.arange(extent)
        covered.append((coord >= start) & (coord < start + length))  # (B, nb, extent)
    ct, ch, cw = covered
    inside = ct[:, :, :, None, None] & ch[:, :, None, :, None] & cw[:, :, None, None, :]
    return inside.any(dim=1)


def _sorted_indices(mask: torch.Tensor, keep: int) -> torch.Tensor:
    """The first `keep` indices where `mask` (B, N) is True, ascending, as (B, keep) int64."""
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    return order[:, :keep].contiguous()


def sample_masks(
    cfg: MaskConfig, grid_thw: tuple[int, int, int], batch: int, call: int, generator: torch.Generator
) -> Masks:
    """Masks for one batch. `call` seeds the block size; `generator` drives the placements."""
    size = block_size(cfg, grid_thw, call)
    gt = grid_thw[0]
    keep_t = max(1, int(gt * cfg.max_temporal_keep))
    target = torch.empty(batch, *grid_thw, dtype=torch.bool)
    todo = torch.arange(batch)
    while todo.numel():
        draw = _place_blocks(todo.numel(), cfg.num_blocks, grid_thw, size, generator)
        if keep_t < gt:
            draw[:, keep_t:] = True
        target[todo] = draw
        empty = draw.flatten(1).all(dim=1)  # no context left: redraw these samples
        todo = todo[empty]
    target = target.flatten(1)
    n_pred = target.sum(dim=1)
    kc = int((target.shape[1] - n_pred).min())
    if cfg.max_keep is not None:
        kc = min(kc, cfg.max_keep)
    kt = int(n_pred.min())
    return Masks(enc=_sorted_indices(~target, kc), pred=_sorted_indices(target, kt), block_thw=size)


class MaskSampler:
    """Masks for every config of a training step, reproducible from (seed, step, rank).

    The call counter of each config is the training step, so block sizes follow the official sequence
    (0, 1, 2, ...) and a resumed run draws exactly the masks it would have drawn without stopping.
    """

    def __init__(self, cfgs: list[MaskConfig], grid_thw: tuple[int, int, int], seed: int, rank: int = 0) -> None:
        if not cfgs:
            raise ValueError("at least one mask config is needed")
        self.cfgs = cfgs
        self.grid_thw = grid_thw
        self.seed = seed
        self.rank = rank

    def __call__(self, step: int, batch: int) -> list[Masks]:
        state = np.random.SeedSequence([self.seed, step, self.rank]).generate_state(2, dtype=np.uint32)
        g = torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)
        return [sample_masks(c, self.grid_thw, batch, step, g) for c in self.cfgs]

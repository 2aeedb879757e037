"""Multiblock 3D masks against the official collator's output (../shared/fixtures/vjepa2/a_masks.npz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import fixtures_dir
from training.pretrain.masks import MaskConfig, MaskSampler, block_size, default_mask_configs, sample_masks

SETS = {"fixture_grid": (16, 16), "pretrain_16f_256px": (8, 24)}  # calls, batch per call


@pytest.fixture(scope="module")
def official() -> dict[str, np.ndarray]:
    with np.load(fixtures_dir("vjepa2", "a_masks.npz")) as z:
        return {k: z[k] for k in z.files}


def _grid(official: dict[str, np.ndarray], name: str) -> tuple[int, int, int]:
    t, h, w = (int(v) for v in official[f"{name}__grid_thw"])
    return t, h, w


@pytest.mark.parametrize("name", sorted(SETS))
@pytest.mark.parametrize("j", [0, 1])
def test_block_sizes_equal_official(official: dict[str, np.ndarray], name: str, j: int) -> None:
    cfg = default_mask_configs()[j]
    grid = _grid(official, name)
    for call in range(SETS[name][0]):
        expected = tuple(int(v) for v in official[f"{name}__cfg{j}__call{call:02d}__block_thw"])
        assert block_size(cfg, grid, call) == expected, (name, j, call)


@pytest.mark.parametrize("name", sorted(SETS))
@pytest.mark.parametrize("j", [0, 1])
def test_statistics_match_official(official: dict[str, np.ndarray], name: str, j: int) -> None:
    """Mean context/target fractions over the same calls agree within 0.05 of N; K ranges overlap."""
    cfg = default_mask_configs()[j]
    grid = _grid(official, name)
    n = grid[0] * grid[1] * grid[2]
    calls, batch = SETS[name]
    ref_kc = [official[f"{name}__cfg{j}__call{c:02d}__enc"].shape[1] for c in range(calls)]
    ref_kt = [official[f"{name}__cfg{j}__call{c:02d}__pred"].shape[1] for c in range(calls)]
    g = torch.Generator().manual_seed(123)
    ours = [sample_masks(cfg, grid, batch, c, g) for _ in range(3) for c in range(calls)]
    kc = [m.enc.shape[1] for m in ours]
    kt = [m.pred.shape[1] for m in ours]
    assert abs(np.mean(kc) - np.mean(ref_kc)) / n < 0.05
    assert abs(np.mean(kt) - np.mean(ref_kt)) / n < 0.05
    assert min(kt) <= max(ref_kt) and max(kt) >= min(ref_kt)
    assert min(kc) <= max(ref_kc) and max(kc) >= min(ref_kc)


def _check_structure(enc: np.ndarray, pred: np.ndarray, grid: tuple[int, int, int]) -> None:
    n = grid[0] * grid[1] * grid[2]
    hw = grid[1] * grid[2]
    assert enc.shape[1] + pred.shape[1] <= n
    for e, p in zip(enc, pred, strict=True):
        assert np.all(np.diff(e) > 0) and np.all(np.diff(p) > 0)  # sorted, unique
        assert not set(e.tolist()) & set(p.tolist())  # disjoint
        for idx in (e, p):  # tubes: same spatial set per tubelet; only the last tubelet may be partial
            t = idx // hw
            spatial = [set((idx[t == k] % hw).tolist()) for k in range(t.max() + 1)]
            assert all(s == spatial[0] for s in spatial[:-1])
            assert spatial[-1] <= spatial[0]


@pytest.mark.parametrize("name", sorted(SETS))
def test_structure_like_official(official: dict[str, np.ndarray], name: str) -> None:
    grid = _grid(official, name)
    _check_structure(official[f"{name}__cfg0__call00__enc"], official[f"{name}__cfg0__call00__pred"], grid)
    g = torch.Generator().manual_seed(0)
    for j, cfg in enumerate(default_mask_configs()):
        for call in range(4):
            m = sample_masks(cfg, grid, 8, call, g)
            assert m.enc.dtype == torch.int64 and m.block_thw == block_size(cfg, grid, call), j
            _check_structure(m.enc.numpy(), m.pred.numpy(), grid)


def test_sampler_is_deterministic_and_rank_dependent() -> None:
    grid = (1, 16, 32)  # driving input 2 x 256 x 512
    s0, s1 = (
        MaskSampler(default_mask_configs(), grid, seed=7),
        MaskSampler(default_mask_configs(), grid, seed=7),
    )
    a, b = s0(5, 4), s1(5, 4)
    assert all(torch.equal(x.enc, y.enc) and torch.equal(x.pred, y.pred) for x, y in zip(a, b, strict=True))
    other = MaskSampler(default_mask_configs(), grid, seed=7, rank=1)(5, 4)
    assert not torch.equal(a[0].pred, other[0].pred)


def test_temporal_keep_and_max_keep() -> None:
    cfg = MaskConfig(num_blocks=1, spatial_scale=(0.1, 0.1), max_temporal_keep=0.5, max_keep=5)
    m = sample_masks(cfg, (4, 8, 8), 6, 0, torch.Generator().manual_seed(0))
    assert m.enc.shape[1] == 5
    assert int(m.enc.max()) < 2 * 64  # context only in the first half of the clip
    assert m.pred.shape[1] >= 2 * 64  # the dropped tubelets are all targets

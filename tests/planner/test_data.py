"""The batch contract and the synthetic datasets."""

from __future__ import annotations

import pytest
import torch

from training.planner.data import (
    ForkDataset,
    PlannerSample,
    SyntheticPlannerDataset,
    collate,
    load_vocabulary,
    synthetic_scores,
)
from training.scoring.vocab import SHIPPED


def _sample(m: int, labels: bool = True, proj: bool = False) -> PlannerSample:
    return PlannerSample(
        video=torch.zeros(3, 2, 8, 16),
        status=torch.zeros(8),
        trajectory=torch.zeros(8, 3),
        teacher_indices=torch.arange(m),
        projection=torch.zeros(3, 4) if proj else None,
        score_candidates=torch.tensor([1, 2]) if labels else None,
        score_labels=torch.ones(2, 9) if labels else None,
    )


def test_collate_pads_teachers_and_stacks_labels():
    b = collate([_sample(1), _sample(3)])
    assert b.teacher_indices.tolist() == [[0, -1, -1], [0, 1, 2]]
    assert b.score_labels is not None and b.score_labels.shape == (2, 2, 9)
    assert b.projection is None and b.video.shape == (2, 3, 2, 8, 16)
    assert collate([_sample(1, labels=False), _sample(1)]).score_labels is None
    with pytest.raises(ValueError, match="projection"):
        collate([_sample(1, proj=True), _sample(1)])


def test_vocabulary_at_half_second_and_its_hash():
    vocab, sha = load_vocabulary(str(SHIPPED["navsim_8192"]))
    assert vocab.shape == (8192, 8, 3) and sha.startswith("cc44a31e75a5")
    with pytest.raises(FileNotFoundError, match="vocabulary"):
        load_vocabulary("/nonexistent/vocab.npy")


def test_synthetic_and_fork_samples_are_deterministic_and_consistent():
    vocab, _ = load_vocabulary(str(SHIPPED["navsim_8192"]))
    ds = SyntheticPlannerDataset(4, 32, 64, vocab, teachers=5)
    a, b = ds[2], ds[2]
    assert torch.equal(a.video, b.video) and torch.equal(a.trajectory, b.trajectory)
    assert a.teacher_indices.shape == (5,) and a.status[:4].sum() == 1.0
    fork = ForkDataset(8, 32, 64, vocab, teachers=3, human_left=1.0)
    assert all(fork[i].token.endswith("-L") for i in range(8))
    assert fork.branches[0, -1, 1] > 3.0 and fork.branches[1, -1, 1] < -3.0  # left and right branch
    assert fork[0].teacher_indices.shape == (6,)
    # the stand-in scorer: the human path itself scores 1 everywhere
    batch = collate([a])
    s = synthetic_scores(batch.trajectory[:, None], batch, ["nc", "ep"])
    assert s.tolist() == [[[1.0, 1.0]]]


def test_standing_subset_keeps_a_seeded_fraction_of_standing_samples() -> None:
    from types import SimpleNamespace

    import numpy as np

    from training.planner.data import is_standing, is_start, standing_subset

    moving = np.stack([np.arange(1, 9) * 4.0, np.zeros(8), np.zeros(8)], -1)
    still = np.zeros((8, 3))
    samples = [SimpleNamespace(speed=0.0 if k % 4 else 6.0, trajectory=still if k % 4 else moving) for k in range(400)]
    inner = type("Inner", (), {"reader": samples, "entry_path": lambda self, i: None, "__len__": lambda self: 400})()
    ds = SimpleNamespace(dataset=inner)
    assert is_standing(0.1, still) and not is_standing(0.1, moving) and not is_standing(3.0, still)
    sub = standing_subset(ds, 0.2, seed=3)  # type: ignore[arg-type]
    kept = list(sub.indices)
    assert all(k in kept for k in range(0, 400, 4))  # every moving sample stays
    n_still = sum(1 for k in kept if k % 4)
    assert 30 <= n_still <= 90  # about 20 % of the 300 standing ones
    assert kept == list(standing_subset(ds, 0.2, seed=3).indices)  # deterministic
    with pytest.raises(ValueError, match="standing_keep"):
        standing_subset(ds, 1.5)  # type: ignore[arg-type]
    samples[1].trajectory = moving  # a start: standing now, driving off in its label
    assert is_start(0.0, moving) and not is_start(0.0, still) and not is_start(6.0, moving)
    again = list(standing_subset(ds, 0.2, seed=3, start_repeat=3).indices)  # type: ignore[arg-type]
    assert again.count(1) == 3 and all(again.count(k) == 1 for k in range(0, 400, 4))
    with pytest.raises(ValueError, match="start_repeat"):
        standing_subset(ds, 0.2, start_repeat=0)  # type: ignore[arg-type]


def test_collate_stacks_target_points_only_when_every_sample_has_one():
    a, b = _sample(1), _sample(2)
    a.target_point, b.target_point = torch.tensor([20.0, 1.0]), torch.tensor([5.0, -3.0])
    batch = collate([a, b])
    assert batch.target_point is not None and batch.target_point.tolist() == [[20.0, 1.0], [5.0, -3.0]]
    assert batch.to("cpu").target_point is not None
    assert collate([a, _sample(1)]).target_point is None

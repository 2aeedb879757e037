"""The batch contract and the synthetic datasets."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import fixtures_dir
from training.planner.data import (
    ForkDataset,
    PlannerSample,
    SyntheticPlannerDataset,
    collate,
    load_vocabulary,
    synthetic_scores,
)


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
    vocab, sha = load_vocabulary(str(fixtures_dir("vocab", "navsim_8192.npy")))
    assert vocab.shape == (8192, 8, 3) and sha.startswith("cc44a31e75a5")
    with pytest.raises(FileNotFoundError, match="vocabulary"):
        load_vocabulary("/nonexistent/vocab.npy")


def test_synthetic_and_fork_samples_are_deterministic_and_consistent():
    vocab, _ = load_vocabulary(str(fixtures_dir("vocab", "navsim_8192.npy")))
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

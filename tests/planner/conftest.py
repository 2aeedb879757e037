"""Tiny planner configs shared by the planner tests (CPU, seconds)."""

from __future__ import annotations

import pytest

from agent.planner.config import BaselineConfig, EncoderConfig, PlannerModelConfig, ProposalConfig


def tiny_model_config(kind: str = "proposal", proposals: int = 6) -> PlannerModelConfig:
    return PlannerModelConfig(
        kind=kind,
        image_height=32,
        image_width=64,
        encoder=EncoderConfig(dim=16, patch=8),
        proposal=ProposalConfig(num_proposals=proposals, iterations=2, d_model=32, heads=4, ffn=64),
        baseline=BaselineConfig(d_model=32, heads=4, layers=1, ffn=64, pool=2),
    )


@pytest.fixture
def tiny_cfg() -> PlannerModelConfig:
    return tiny_model_config()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """The dev VM has 2 shared cores: one intra-op thread is ~15× faster than two under load for these tiny models."""
    import torch

    torch.set_num_threads(1)

"""What a planner returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class PlannerOutput:
    """Planner outputs, all EGO_REAR_AXLE (x, y, heading) in metres/radians at the model's `dt`.

    trajectories: (B, N, T, 3) final proposals (N = 1 for the baseline).
    iterations: the proposals after each stage (initial, then every refinement), each (B, N, T, 3).
    sub_scores / final_score: scorer logits (B, N, K) / (B, N) for the final proposals (None for the baseline).
    candidate_sub_scores / candidate_final_score: the same for extra candidate trajectories, when given.
    """

    trajectories: Tensor
    iterations: list[Tensor] = field(default_factory=list)
    sub_scores: Tensor | None = None
    final_score: Tensor | None = None
    candidate_sub_scores: Tensor | None = None
    candidate_final_score: Tensor | None = None

    def scores(self) -> Tensor:
        """Final score per proposal in [0, 1] (B, N); the baseline's single trajectory scores 1."""
        if self.final_score is None:
            return torch.ones(self.trajectories.shape[:2], device=self.trajectories.device)
        return torch.sigmoid(self.final_score)

    def best(self) -> Tensor:
        """(B, T, 3): the highest-scoring proposal per sample (no momentum; see agent.selection for that)."""
        idx = self.scores().argmax(-1)
        return self.trajectories[torch.arange(idx.shape[0], device=idx.device), idx]

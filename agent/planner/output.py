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
    imitation_score / candidate_imitation_score: imitation logits (B, N) / (B, M) of a scorer with an imitation
    head (None otherwise); `scores()` then weighs them in with the exponent `imitation_weight`, read as
    `imitation_kind` says ("independent": sigmoid per trajectory; "softmax" / "decoder": softmax over the sample's
    proposals).
    """

    trajectories: Tensor
    iterations: list[Tensor] = field(default_factory=list)
    sub_scores: Tensor | None = None
    final_score: Tensor | None = None
    candidate_sub_scores: Tensor | None = None
    candidate_final_score: Tensor | None = None
    imitation_score: Tensor | None = None
    candidate_imitation_score: Tensor | None = None
    imitation_weight: float = 1.0
    imitation_kind: str = "independent"
    imitation_trajectory: Tensor | None = None  # (B, T, 3) the regressed human-like trajectory ("regression")

    def scores(self) -> Tensor:
        """Score per proposal in [0, 1] (B, N): sigmoid(final) [· (im / its max over the proposals)^imitation_weight,
        im = `imitation_probs()`]; the baseline's single
        trajectory scores 1. The imitation factor is relative, so that the best-imitating proposal keeps its final
        score's scale (momentum selection adds a comfort term on that scale)."""
        if self.final_score is None:
            return torch.ones(self.trajectories.shape[:2], device=self.trajectories.device)
        score = torch.sigmoid(self.final_score)
        if self.imitation_score is not None and self.imitation_weight > 0:
            im = self.imitation_probs()
            assert im is not None
            rel = im / im.amax(-1, keepdim=True).clamp(min=1e-12)
            score = score * rel**self.imitation_weight
        return score

    def imitation_probs(self) -> Tensor | None:
        """The imitation head as probabilities (B, N): sigmoid per proposal ("independent"), or softmax over the
        proposals ("softmax", "decoder", "regression"); None without an imitation head."""
        if self.imitation_score is None:
            return None
        if self.imitation_kind == "independent":
            return torch.sigmoid(self.imitation_score)
        return torch.softmax(self.imitation_score, -1)

    def best(self) -> Tensor:
        """(B, T, 3): the highest-scoring proposal per sample (no momentum; see agent.selection for that)."""
        idx = self.scores().argmax(-1)
        return self.trajectories[torch.arange(idx.shape[0], device=idx.device), idx]

"""Planner losses: min-over-proposals imitation at every stage, multimodal trajectory distillation, scorer BCE.

Trajectories are EGO_REAR_AXLE (x, y, heading), metres and radians, (…, T, 3) at the planner's `dt`. Distances are
L1 over (x, y, heading) averaged over the T poses (heading differences wrapped to [−π, π)), as in the released
Drive-JEPA code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from agent.planner.output import PlannerOutput
from drive_jepa.frames import wrap_angle

ScoreFn = Callable[[Tensor, Any], Tensor]
"""`score_fn(proposals (B, N, T, 3), batch) -> sub-scores (B, N, K)` in [0, 1], e.g. an online simulator scorer."""


@dataclass
class LossConfig:
    """stage_weights: one weight per planner stage (initial proposals, then each refinement); empty = all 1.
    mtd_weight: λ of multimodal trajectory distillation (0 = human-only supervision).
    score_weight / final_score_weight: BCE weights of the sub-scores and of the final score.
    final score target: Π(multiplicative sub-scores) · Σ w·(weighted sub-scores) / Σ w (EPDMS form).
    imitation_score_weight / imitation_tau_m: weight of a scorer's imitation head loss (model.proposal.
    imitation_score), on the proposals and on the labelled candidates; ADE = mean (x, y) distance to the human
    trajectory in metres. `model.proposal.imitation_kind=independent`: BCE against exp(−ADE/τ) per trajectory;
    `softmax` / `decoder`: cross-entropy over the sample's trajectories against softmax(−ADE/τ) (Hydra-MDP);
    `regression`: L1 (as the imitation loss) of the regressed human-like trajectory."""

    stage_weights: list[float] = field(default_factory=list)
    mtd_weight: float = 1.0
    score_weight: float = 1.0
    final_score_weight: float = 1.0
    multiplicative: list[str] = field(default_factory=lambda: ["nc", "dac", "ddc", "tlc"])
    weighted: dict[str, float] = field(default_factory=lambda: {"ep": 5.0, "ttc": 5.0, "lk": 2.0, "hc": 2.0, "ec": 2.0})
    imitation_score_weight: float = 1.0
    imitation_tau_m: float = 2.0


def pose_l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean L1 over (x, y, wrapped heading) and time: pred (…, T, 3), target broadcastable → (…)."""
    d = pred - target
    d = torch.cat([d[..., :2], wrap_angle(d[..., 2:3])], -1)
    return d.abs().mean(-1).mean(-1)


def min_over_proposals(proposals: Tensor, target: Tensor) -> Tensor:
    """proposals (B, N, T, 3), target (B, T, 3) → (B,) the distance of the closest proposal."""
    return pose_l1(proposals, target[:, None]).amin(1)


def imitation_loss(iterations: list[Tensor], human: Tensor, stage_weights: list[float]) -> Tensor:
    """Σ_k w_k · mean_b min_n L1(proposal_kn, human_b) over all planner stages."""
    weights = stage_weights or [1.0] * len(iterations)
    if len(weights) != len(iterations):
        raise ValueError(f"loss.stage_weights has {len(weights)} entries, the planner has {len(iterations)} stages")
    return sum(
        (w * min_over_proposals(p, human).mean() for w, p in zip(weights, iterations, strict=True)),
        torch.zeros((), device=human.device),
    )


def gather_teachers(vocabulary: Tensor, indices: Tensor) -> tuple[Tensor, Tensor]:
    """vocabulary (V, T, 3), indices (B, M) with −1 padding → teachers (B, M, T, 3), mask (B, M)."""
    mask = indices >= 0
    if bool((indices >= vocabulary.shape[0]).any()):
        raise ValueError(f"teacher index {int(indices.max())} out of range for a vocabulary of {vocabulary.shape[0]}")
    return vocabulary[indices.clamp(min=0)], mask


def distillation_loss(proposals: Tensor, teachers: Tensor, mask: Tensor) -> Tensor:
    """MTD: for every teacher, the min-over-proposals distance; averaged over each sample's valid teachers, then
    over the samples that have any. proposals (B, N, T, 3), teachers (B, M, T, 3), mask (B, M) → scalar."""
    d = pose_l1(proposals[:, None], teachers[:, :, None]).amin(2)  # (B, M)
    m = mask.to(d.dtype)
    count = m.sum(1)
    per_sample = (d * m).sum(1) / count.clamp(min=1.0)
    has = (count > 0).to(d.dtype)
    return (per_sample * has).sum() / has.sum().clamp(min=1.0)


def final_score_target(sub: Tensor, names: list[str], cfg: LossConfig) -> Tensor:
    """EPDMS-form aggregate of sub-score targets (…, K) → (…); names missing from `names` are skipped."""
    idx = {n: i for i, n in enumerate(names)}
    prod = torch.ones_like(sub[..., 0])
    for n in cfg.multiplicative:
        if n in idx:
            prod = prod * sub[..., idx[n]]
    pairs = [(idx[n], w) for n, w in cfg.weighted.items() if n in idx]
    if not pairs:
        return prod
    total = sum(w for _, w in pairs)
    weighted = sum(w * sub[..., i] for i, w in pairs) / total
    return prod * weighted


def score_loss(
    logits: Tensor,
    final_logits: Tensor | None,
    targets: Tensor,
    names: list[str],
    cfg: LossConfig,
    mask: Tensor | None = None,
) -> Tensor:
    """BCE of sub-score logits (B, N, K) against targets in [0, 1] (B, N, K), plus the final score against the
    EPDMS-form aggregate; `mask` (B,) drops samples without labels."""
    if targets.shape != logits.shape:
        raise ValueError(f"score targets must be {tuple(logits.shape)} (B, N, K), got {tuple(targets.shape)}")
    targets = targets.to(logits.dtype)
    w = torch.ones(logits.shape[0], device=logits.device) if mask is None else mask.to(logits.dtype)
    denom = w.sum().clamp(min=1.0)
    sub = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean((1, 2))
    loss = cfg.score_weight * (sub * w).sum() / denom
    if final_logits is not None and cfg.final_score_weight > 0:
        final_t = final_score_target(targets, names, cfg)
        fin = F.binary_cross_entropy_with_logits(final_logits, final_t, reduction="none").mean(1)
        loss = loss + cfg.final_score_weight * (fin * w).sum() / denom
    return loss


def imitation_score_target(trajectories: Tensor, human: Tensor, tau_m: float) -> Tensor:
    """exp(−ADE/τ) in (0, 1]: trajectories (B, M, T, 3), human (B, T, 3) → (B, M); ADE = mean (x, y) distance (m)."""
    ade = (trajectories[..., :2] - human[:, None, :, :2]).norm(dim=-1).mean(-1)
    return torch.exp(-ade / tau_m)


def imitation_score_loss(logits: Tensor, trajectories: Tensor, human: Tensor, tau_m: float) -> Tensor:
    """BCE of imitation logits (B, M) against `imitation_score_target` of their (detached) trajectories."""
    target = imitation_score_target(trajectories.detach(), human, tau_m)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def imitation_softmax_loss(logits: Tensor, trajectories: Tensor, human: Tensor, tau_m: float) -> Tensor:
    """Hydra-MDP's imitation loss: cross-entropy of softmax(logits) over a sample's M trajectories against
    softmax(−ADE/τ) of their (detached) trajectories; logits (B, M), trajectories (B, M, T, 3), human (B, T, 3)."""
    ade = (trajectories.detach()[..., :2] - human[:, None, :, :2]).norm(dim=-1).mean(-1)
    target = torch.softmax(-ade / tau_m, dim=-1).to(logits.dtype)
    return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


@dataclass
class LossTerms:
    total: Tensor
    imitation: Tensor
    distillation: Tensor
    scores: Tensor
    imitation_score: Tensor | None = None

    def as_floats(self) -> dict[str, float]:
        return {k: float(v.detach()) for k, v in vars(self).items() if v is not None}


class PlannerLoss(torch.nn.Module):
    """All planner losses. `vocabulary` (V, T, 3) at the planner's poses (e.g. the 8192 vocabulary at 0.5 s)."""

    vocabulary: Tensor

    def __init__(self, cfg: LossConfig, score_names: list[str], vocabulary: Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.score_names = score_names
        self.register_buffer(
            "vocabulary", vocabulary if vocabulary is not None else torch.zeros(0, 1, 3), persistent=False
        )

    def forward(
        self,
        out: PlannerOutput,
        human: Tensor,
        teacher_indices: Tensor | None = None,
        score_targets: Tensor | None = None,
        candidate_targets: Tensor | None = None,
        score_mask: Tensor | None = None,
        candidates: Tensor | None = None,
    ) -> LossTerms:
        """human (B, T, 3); teacher_indices (B, M) into the vocabulary (−1 = padding); score_targets (B, N, K) for the
        proposals (offline or from a `ScoreFn`); candidate_targets (B, M, K) for `out.candidate_*`; candidates
        (B, M, T, 3) the candidate trajectories (for the imitation head's targets)."""
        zero = torch.zeros((), device=human.device)
        imitation = imitation_loss(out.iterations, human, self.cfg.stage_weights)
        mtd = zero
        if self.cfg.mtd_weight > 0 and teacher_indices is not None and teacher_indices.numel() > 0:
            if self.vocabulary.shape[0] == 0:
                raise ValueError("teacher indices were given but the loss has no vocabulary")
            teachers, mask = gather_teachers(self.vocabulary, teacher_indices)
            mtd = distillation_loss(out.trajectories, teachers, mask)
        scores = zero
        if score_targets is not None and out.sub_scores is not None:
            scores = scores + score_loss(
                out.sub_scores, out.final_score, score_targets, self.score_names, self.cfg, score_mask
            )
        if candidate_targets is not None and out.candidate_sub_scores is not None:
            scores = scores + score_loss(
                out.candidate_sub_scores,
                out.candidate_final_score,
                candidate_targets,
                self.score_names,
                self.cfg,
                score_mask,
            )
        total = imitation + self.cfg.mtd_weight * mtd + scores
        im_score = None
        if out.imitation_score is not None and self.cfg.imitation_score_weight > 0:
            tau = self.cfg.imitation_tau_m
            if out.imitation_kind == "regression":
                if out.imitation_trajectory is None:
                    raise ValueError("imitation_kind=regression: the planner returned no imitation_trajectory")
                im_score = pose_l1(out.imitation_trajectory, human).mean()
            else:
                im_loss = imitation_score_loss if out.imitation_kind == "independent" else imitation_softmax_loss
                im_score = im_loss(out.imitation_score, out.trajectories, human, tau)
                if out.candidate_imitation_score is not None and candidates is not None:
                    im_score = im_score + im_loss(out.candidate_imitation_score, candidates, human, tau)
            total = total + self.cfg.imitation_score_weight * im_score
        return LossTerms(total, imitation, mtd, scores, im_score)

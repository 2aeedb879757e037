"""Planner losses against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agent.planner.output import PlannerOutput
from training.planner.losses import (
    LossConfig,
    PlannerLoss,
    distillation_loss,
    final_score_target,
    gather_teachers,
    imitation_loss,
    imitation_score_target,
    imitation_softmax_loss,
    min_over_proposals,
    pose_l1,
    score_loss,
)
from training.scoring.vocab import SHIPPED


def _traj(x: float, y: float, h: float = 0.0, t: int = 2) -> torch.Tensor:
    return torch.tensor([[x, y, h]] * t)


def test_pose_l1_wraps_heading():
    a, b = _traj(0, 0, math.pi - 0.1), _traj(1, 2, -math.pi + 0.1)
    assert float(pose_l1(a, b)) == pytest.approx((1 + 2 + 0.2) / 3)


def test_min_over_proposals_and_stage_weights():
    human = _traj(1.0, 0.0)[None]  # (1, T, 3)
    props = torch.stack([_traj(4.0, 0.0), _traj(1.0, 3.0)])[None]  # distances 1.0 and 1.0 → (3/3, 3/3)
    props2 = torch.stack([_traj(1.0, 0.3), _traj(9.0, 0.0)])[None]  # 0.1 and 8/3
    assert float(min_over_proposals(props, human)[0]) == pytest.approx(1.0)
    assert float(imitation_loss([props, props2], human, [0.5, 2.0])) == pytest.approx(0.5 * 1.0 + 2.0 * 0.1)
    with pytest.raises(ValueError, match="stage_weights"):
        imitation_loss([props], human, [1.0, 1.0])


def test_distillation_is_mean_over_teachers_of_min_over_proposals_with_padding():
    props = torch.stack([_traj(0.0, 3.0), _traj(0.0, -3.0)])[None].repeat(2, 1, 1, 1)  # left and right proposals
    vocab = torch.stack([_traj(0.0, 3.0), _traj(0.0, -3.0), _traj(0.0, 0.0), _traj(3.0, 3.0)])
    idx = torch.tensor([[0, 3, -1], [-1, -1, -1]])  # sample 0: teachers 0 and 3; sample 1: none
    teachers, mask = gather_teachers(vocab, idx)
    assert mask.tolist() == [[True, True, False], [False, False, False]]
    # sample 0: teacher 0 is matched exactly (0), teacher 3 is 3 m off in x from the left proposal (1.0)
    assert float(distillation_loss(props, teachers, mask)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="out of range"):
        gather_teachers(vocab, torch.tensor([[4]]))


def test_score_loss_and_final_target_by_hand():
    names = ["nc", "ep", "ttc"]
    cfg = LossConfig(multiplicative=["nc"], weighted={"ep": 5.0, "ttc": 5.0})
    t = torch.tensor([[[1.0, 0.6, 0.0], [0.0, 1.0, 1.0]]])
    assert final_score_target(t, names, cfg)[0].tolist() == pytest.approx([0.3, 0.0])
    logits = torch.zeros(1, 2, 3)
    # BCE at logit 0 is log 2 whatever the target
    assert float(score_loss(logits, torch.zeros(1, 2), t, names, cfg)) == pytest.approx(2 * math.log(2))
    masked = score_loss(logits, None, t, names, cfg, mask=torch.tensor([0.0]))
    assert float(masked) == 0.0
    with pytest.raises(ValueError, match=r"\(B, N, K\)"):
        score_loss(logits, None, t[:, :1], names, cfg)


def test_planner_loss_combines_terms_with_a_score_fn():
    human = _traj(1.0, 0.0)[None]
    props = torch.stack([_traj(1.0, 0.0), _traj(0.0, 3.0)])[None]
    out = PlannerOutput(props, [props], sub_scores=torch.zeros(1, 2, 1), final_score=torch.zeros(1, 2))
    vocab = torch.stack([_traj(0.0, 3.0), _traj(0.0, -3.0)])

    def score_fn(proposals: torch.Tensor, batch: object) -> torch.Tensor:  # 1 where the proposal is left of the ego
        return (proposals[..., 1].mean(-1, keepdim=True) > 0).float()

    loss = PlannerLoss(LossConfig(mtd_weight=0.5, multiplicative=[], weighted={"ep": 1.0}), ["ep"], vocab)
    terms = loss(out, human, torch.tensor([[0, 1]]), score_targets=score_fn(out.trajectories, None))
    assert float(terms.imitation) == pytest.approx(0.0)
    # left teacher matched exactly; right teacher (0, −3) is closest to the proposal at (1, 0): (1 + 3 + 0) / 3
    assert float(terms.distillation) == pytest.approx((0.0 + 4.0 / 3.0) / 2)
    assert float(terms.scores) == pytest.approx(2 * math.log(2))
    assert float(terms.total) == pytest.approx(0.5 * 2.0 / 3.0 + 2 * math.log(2))


def test_real_vocabulary_rows_as_teachers():
    vocab = np.load(SHIPPED["navsim_8192"])[:, 4::5]  # 8 poses at 0.5 s
    v = torch.from_numpy(vocab)
    teachers, mask = gather_teachers(v, torch.tensor([[10, 20, -1]]))
    assert teachers.shape == (1, 3, 8, 3) and torch.equal(teachers[0, 1], v[20])
    # a proposal set that contains a teacher exactly has zero distance to it
    props = v[[10, 99]][None]
    d = distillation_loss(props, teachers[:, :1], mask[:, :1])
    assert float(d) == 0.0


def test_imitation_score_head_targets_exp_minus_ade_on_proposals_and_candidates():
    human = _traj(1.0, 0.0)[None]
    props = torch.stack([_traj(1.0, 0.0), _traj(1.0, 3.0)])[None]  # ADE 0 and 3 m
    cands = torch.stack([_traj(1.0, 0.0), _traj(5.0, 0.0)])[None]  # ADE 0 and 4 m
    target = imitation_score_target(props, human, 2.0)
    assert target[0].tolist() == pytest.approx([1.0, math.exp(-1.5)])
    zero = torch.zeros(1, 2)
    out = PlannerOutput(props, [props], sub_scores=torch.zeros(1, 2, 1), final_score=zero.clone(),
                        imitation_score=zero.clone(), candidate_imitation_score=zero.clone())  # fmt: skip
    cfg = LossConfig(mtd_weight=0.0, imitation_score_weight=0.5, imitation_tau_m=2.0)
    terms = PlannerLoss(cfg, ["ep"])(out, human, candidates=cands)
    assert terms.imitation_score is not None  # BCE of logit 0 is log 2 whatever the target: proposals + candidates
    assert float(terms.imitation_score) == pytest.approx(2 * math.log(2))
    assert float(terms.total) == pytest.approx(0.5 * 2 * math.log(2))
    assert "imitation_score" in terms.as_floats()
    out.imitation_score = torch.tensor([[3.0, -3.0]])  # a confident head lowers its loss
    assert float(PlannerLoss(cfg, ["ep"])(out, human).imitation_score) < math.log(2)
    assert "imitation_score" not in PlannerLoss(LossConfig(), ["ep"])(PlannerOutput(props, [props]), human).as_floats()


def test_scores_weigh_in_the_imitation_head():
    props = torch.zeros(1, 2, 2, 3)
    out = PlannerOutput(props, final_score=torch.tensor([[2.0, 1.0]]), imitation_score=torch.tensor([[-3.0, 3.0]]))
    assert out.scores().argmax().item() == 1  # the proposal the imitation head trusts wins
    assert out.scores()[0, 1].item() == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())  # keeps its scale
    out.imitation_weight = 0.0
    assert out.scores().argmax().item() == 0
    assert torch.equal(out.scores(), torch.sigmoid(out.final_score))


def test_softmax_imitation_head_ranks_the_proposals_as_hydra_mdp():
    human = _traj(1.0, 0.0)[None]
    props = torch.stack([_traj(1.0, 0.0), _traj(1.0, 1.0), _traj(1.0, 3.0)])[None]  # ADE 0, 1, 3 m
    target = torch.softmax(-torch.tensor([0.0, 1.0, 3.0]) / 1.0, 0)
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    expected = -(target * torch.log_softmax(logits[0], 0)).sum()
    assert float(imitation_softmax_loss(logits, props, human, 1.0)) == pytest.approx(float(expected))
    # the loss is minimal at logits equal to the target's log-probabilities (up to a constant)
    best = torch.log(target)[None] + 7.0
    assert float(imitation_softmax_loss(best, props, human, 1.0)) < float(
        imitation_softmax_loss(logits, props, human, 1.0)
    )
    out = PlannerOutput(props, [props], sub_scores=torch.zeros(1, 3, 1), final_score=torch.zeros(1, 3),
                        imitation_score=logits, imitation_kind="softmax")  # fmt: skip
    terms = PlannerLoss(LossConfig(mtd_weight=0.0, imitation_tau_m=1.0), ["ep"])(out, human)
    assert float(terms.imitation_score) == pytest.approx(float(expected))
    # read as a softmax at inference: the factor is softmax / its max = exp(logit − max logit)
    rel = torch.exp(logits - logits.max())
    assert torch.allclose(out.scores(), torch.sigmoid(torch.zeros(1, 3)) * rel)
    assert out.scores().argmax().item() == 2


def test_regression_imitation_head_is_l1_to_the_human_and_ranks_by_distance_to_it():
    human = _traj(1.0, 0.0)[None]
    props = torch.stack([_traj(1.0, 0.0), _traj(1.0, 2.0)])[None]
    regressed = _traj(1.0, 1.5)[None]  # closer to the second proposal
    ade = torch.tensor([[1.5, 0.5]])
    out = PlannerOutput(props, [props], sub_scores=torch.zeros(1, 2, 1), final_score=torch.zeros(1, 2),
                        imitation_score=-ade, imitation_kind="regression", imitation_trajectory=regressed)  # fmt: skip
    terms = PlannerLoss(LossConfig(mtd_weight=0.0), ["ep"])(out, human)
    assert float(terms.imitation_score) == pytest.approx(float(pose_l1(regressed, human).mean()))  # 1.5 / 3
    assert out.scores().argmax().item() == 1
    assert torch.allclose(out.imitation_probs(), torch.softmax(-ade, -1))

"""Planner modules: shapes, weight tying, anchored sampling reads the right image place, CPU training step."""

from __future__ import annotations

import math

import pytest
import torch

from agent.camera import navsim_cam_f0
from agent.planner.layers import AnchoredCrossAttention, box_anchor_offsets, ego_box_points, project_anchors
from agent.planner.model import DrivePlanner
from agent.planner.proposal import ProposalPlanner
from agent.planner.tokens import PatchEncoder, TokenEncoder
from tests.planner.conftest import tiny_model_config


def test_proposal_planner_shapes_and_weight_tied_iterations(tiny_cfg):
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg)
    assert isinstance(model.encoder, TokenEncoder) and isinstance(model.encoder, PatchEncoder)
    video, status = torch.randn(3, 3, 2, 32, 64), torch.randn(3, 8)
    out = model(video, status, candidates=torch.zeros(3, 5, 8, 3))
    assert out.trajectories.shape == (3, 6, 8, 3)
    assert len(out.iterations) == tiny_cfg.proposal.iterations + 1
    assert out.sub_scores is not None and out.sub_scores.shape == (3, 6, len(tiny_cfg.proposal.score_names))
    assert out.final_score is not None and out.final_score.shape == (3, 6)
    assert out.candidate_sub_scores is not None and out.candidate_sub_scores.shape == (3, 5, 9)
    assert out.best().shape == (3, 8, 3)
    # more iterations reuse the same weights: the parameter count does not depend on K
    more = tiny_model_config()
    more.proposal.iterations = 5
    assert sum(p.numel() for p in DrivePlanner(more).parameters()) == sum(p.numel() for p in model.parameters())


def test_baseline_planner_shapes():
    model = DrivePlanner(tiny_model_config("baseline"))
    out = model(torch.randn(2, 3, 2, 32, 64), torch.randn(2, 8))
    assert out.trajectories.shape == (2, 1, 8, 3) and out.sub_scores is None
    assert torch.equal(out.scores(), torch.ones(2, 1))


def test_box_points_and_projection_by_hand():
    offsets = box_anchor_offsets(4.0, 1.0, 2.0)
    pose = torch.tensor([[10.0, 2.0, math.pi / 2]])
    pts = ego_box_points(pose, offsets, torch.tensor([0.0, 1.5]))
    assert pts.shape == (1, 10, 3)
    # front-left corner (4, +1) rotated by 90° → (−1, 4), translated → (9, 6); heights 0 then 1.5
    assert torch.allclose(pts[0, 0], torch.tensor([9.0, 6.0, 0.0]))
    assert torch.allclose(pts[0, 5], torch.tensor([9.0, 6.0, 1.5]))
    cam = navsim_cam_f0()
    p = torch.as_tensor(cam.projection_matrix(), dtype=torch.float32)[None]
    grid, valid = project_anchors(pts[None].float(), p, 256, 512)
    g_ref, v_ref = cam.project_normalized(pts[0].double())
    assert torch.allclose(grid[0, 0], g_ref.float(), atol=1e-5) and torch.equal(valid[0, 0], v_ref)


def test_anchored_attention_reads_the_projected_location():
    """A token grid that is zero except one token: a query whose anchors project there reads it, others don't."""
    torch.manual_seed(0)
    attn = AnchoredCrossAttention(8, num_points=1, heads=2)
    values = torch.zeros(1, 8, 4, 8)
    values[0, :, 1, 6] = 1.0  # token (row 1, col 6)
    centre = torch.tensor([(6 + 0.5) / 8 * 2 - 1, (1 + 0.5) / 4 * 2 - 1])
    grid = torch.stack([centre, torch.tensor([-0.9, 0.9]), centre])[None, :, None]  # (1, 3, 1, 2)
    valid = torch.tensor([[[True], [True], [False]]])
    q = torch.randn(1, 3, 8)
    with torch.no_grad():
        attn.point_embed.zero_()
        out = attn(q, values, grid, valid)
        base = attn.out(torch.zeros(8))
    assert not torch.allclose(out[0, 0], base)
    assert torch.allclose(out[0, 1], base, atol=1e-6) and torch.allclose(out[0, 2], base, atol=1e-6)


def test_gradients_reach_encoder_through_anchored_sampling(tiny_cfg):
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg)
    planner = model.planner
    assert isinstance(planner, ProposalPlanner)
    video = torch.randn(2, 3, 2, 32, 64)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(2):  # the pose-increment head starts at zero: one step opens the path through the refiner
        opt.zero_grad()
        out = model(video, torch.zeros(2, 8))
        assert out.final_score is not None
        ((out.trajectories - 5.0).abs().mean() + out.final_score.mean()).backward()
        opt.step()
    assert planner.scorer.cross.weights.weight.grad is not None
    assert planner.anchored.out.weight.grad is not None and planner.anchored.out.weight.grad.abs().sum() > 0
    assert model.encoder.embed.weight.grad is not None and model.encoder.embed.weight.grad.abs().sum() > 0


def test_tiny_planner_fits_a_trajectory_on_cpu(tiny_cfg):
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    target = torch.stack([torch.arange(1, 9) * 2.0, torch.zeros(8), torch.zeros(8)], -1)
    video, status = torch.randn(4, 3, 2, 32, 64), torch.zeros(4, 8)
    first = None
    for _ in range(40):
        out = model(video, status)
        loss = (out.trajectories - target).abs().mean(-1).mean(-1).amin(-1).mean()
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * first


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny_cfg):
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg).eval()
    video, status = torch.randn(2, 3, 2, 32, 64), torch.randn(2, 8)
    with torch.no_grad():
        cpu = model(video, status)
        gpu = model.cuda()(video.cuda(), status.cuda())
    assert torch.allclose(cpu.trajectories, gpu.trajectories.cpu(), atol=1e-3)
    assert cpu.final_score is not None and gpu.final_score is not None
    assert torch.allclose(cpu.final_score, gpu.final_score.cpu(), atol=1e-3)


@pytest.mark.parametrize("motion", [True, False])
def test_ego_motion_input_switch(tiny_cfg, motion):
    tiny_cfg.ego_motion_input = motion
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg).eval()
    with torch.no_grad():  # the pose heads start at zero (outputs = anchors whatever the input): randomize them
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    video = torch.randn(1, 3, 2, tiny_cfg.image_height, tiny_cfg.image_width)
    still = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    moving = torch.tensor([[0.0, 1.0, 0.0, 0.0, 8.0, 0.0, 1.0, 0.0]])
    left = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    with torch.no_grad():
        a, b, c = (model(video, s).trajectories for s in (still, moving, left))
    assert torch.equal(a, b) != motion  # velocity / acceleration reach the planner only when switched on
    assert not torch.equal(a, c)  # the command always does


@pytest.mark.parametrize("kind", ["proposal", "baseline"])
def test_target_point_input_switch(tiny_cfg, kind):
    tiny_cfg.kind = kind
    tiny_cfg.target_point_input = True
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    video = torch.randn(1, 3, 2, tiny_cfg.image_height, tiny_cfg.image_width)
    status = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    with torch.no_grad():
        ahead = model(video, status, target_point=torch.tensor([[20.0, 0.0]])).trajectories
        left = model(video, status, target_point=torch.tensor([[5.0, 15.0]])).trajectories
        far = model(video, status, target_point=torch.tensor([[500.0, 0.0]])).trajectories
        clipped = model(video, status, target_point=torch.tensor([[60.0, 0.0]])).trajectories
    assert not torch.equal(ahead, left)  # the target point reaches the planner
    assert torch.equal(far, clipped)  # scaled by 1/10 m and clipped at ±6 units (60 m)
    with pytest.raises(ValueError, match="target point"):
        model(video, status)
    with pytest.raises(ValueError, match=r"target_point must be \(1, 2\)"):
        model(video, status, target_point=torch.zeros(1, 3))


def test_target_point_is_ignored_when_switched_off(tiny_cfg):
    torch.manual_seed(0)
    model = DrivePlanner(tiny_cfg).eval()
    video, status = torch.randn(1, 3, 2, tiny_cfg.image_height, tiny_cfg.image_width), torch.zeros(1, 8)
    with torch.no_grad():
        a = model(video, status, target_point=torch.tensor([[20.0, 0.0]])).trajectories
        b = model(video, status).trajectories
    assert torch.equal(a, b)

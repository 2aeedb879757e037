"""The Drive-JEPA lite checkpoint shipped in the repository loads strictly and plans (docs/learn.md)."""

from __future__ import annotations

from pathlib import Path

import torch

from agent.planner.checkpoint import load_planner_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "agent" / "checkpoints" / "drive_jepa_lite"


def test_shipped_checkpoint_loads_and_plans() -> None:
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size <= 20 * 2**20
    loaded = load_planner_checkpoint(SHIPPED)
    cfg = loaded.config
    assert (cfg.image_height, cfg.image_width) == (128, 256) and cfg.encoder.kind == "vjepa"
    assert not cfg.ego_motion_input and cfg.target_point_input and cfg.proposal.imitation_score
    video = torch.zeros(1, 3, 2, 128, 256)
    status = torch.tensor([[0.0, 1.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0]])
    with torch.no_grad():
        out = loaded.model(video, status, target_point=torch.tensor([[20.0, 0.0]]))
    assert out.trajectories.shape == (1, cfg.proposal.num_proposals, 8, 3)
    assert torch.isfinite(out.trajectories).all() and out.final_score is not None and out.imitation_score is not None
    assert (SHIPPED / "README.md").is_file()

"""A checkpoint from `drive-jepa train` drives the leaderboard agent (real carla client, bicycle stand-in)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent import leaderboard_agent as la
from agent.camera import carla_front_camera
from agent.checkpoint_model import CheckpointPlanModel, rig_model_camera
from agent.preprocess import ImageInputConfig
from agent.sensors import FrontCameraConfig
from drive_jepa.frames import LINCOLN_MKZ_2020
from tests.agent.sim import BicycleSim, l_shaped_route


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from drive_jepa import cli
    from training.planner.train import tiny_overrides

    out = tmp_path_factory.mktemp("ckpt") / "run"
    assert cli.main(["train", *tiny_overrides(), "steps=3", f"out={out}"]) == 0
    return out


def test_rig_camera_equals_the_camera_models_carla_front_camera():
    ours = rig_model_camera(FrontCameraConfig(), ImageInputConfig(), 512, 256, LINCOLN_MKZ_2020)
    ref = carla_front_camera(LINCOLN_MKZ_2020)
    assert np.allclose(ours.projection_matrix(), ref.projection_matrix(), atol=1e-9)


def test_checkpoint_model_outputs(tiny_checkpoint):
    model = CheckpointPlanModel.load(tiny_checkpoint, device="cpu")
    assert model.image_size == (64, 32) and model.frame_offsets == (-0.5, 0.0)
    from agent.model_api import ModelInputs

    out = model.plan(
        ModelInputs(
            video=np.zeros((3, 2, 32, 64), np.float32),
            command=np.array([0, 1, 0, 0], np.float32),
            speed=3.0,
            acceleration=np.zeros(2, np.float32),
            target_point=np.array([20.0, 0.0], np.float32),
        )
    )
    n = model.loaded.config.proposal.num_proposals
    assert out.proposals.shape == (n, 8, 3) and out.scores.shape == (n,)
    assert np.all((out.scores >= 0) & (out.scores <= 1)) and set(out.subscores) >= {"nc", "dac", "ep"}
    with pytest.raises(ValueError, match="checkpoint takes 64×32"):
        model.plan(ModelInputs(np.zeros((3, 2, 16, 16), np.float32), np.zeros(4), 0.0, np.zeros(2), np.zeros(2)))


def test_leaderboard_agent_runs_a_trained_checkpoint_with_momentum(tiny_checkpoint, tmp_path):
    carla = pytest.importorskip("carla")
    conf = tmp_path / "agent.yaml"
    conf.write_text(
        f"model: checkpoint\ncheckpoint: {tiny_checkpoint}\ndevice: cpu\n"
        "policy:\n  rig:\n    camera: {width: 400, height: 225}\n"
        "  image: {source_width: 400, source_height: 225, crop_top: 12, crop_bottom: 212, crop_right: 400}\n"
    )
    agent = la.DriveJEPAAgent("localhost", 2000, False)
    sim = BicycleSim()
    agent.set_global_plan(*sim.global_plan(*l_shaped_route()))
    agent.setup(str(conf))
    assert (agent.cfg.policy.image.out_width, agent.cfg.policy.image.out_height) == (64, 32)
    comforts = []
    for _ in range(30):
        control = agent.run_step(sim.input_data(400, 225), sim.t)
        assert isinstance(control, carla.VehicleControl)
        assert all(math.isfinite(v) for v in (control.throttle, control.steer, control.brake))
        info = agent.last_info
        assert not [w for w in info.warnings if w.startswith("policy error")], info.warnings
        if info.selection is not None:
            comforts.append(info.selection.comfort is not None)
        sim.apply(control)
    agent.destroy()
    # momentum-aware selection is active: after the first model step each selection has a comfort term
    assert comforts and not comforts[0] and all(comforts[1:])


def test_latency_bench_runs_the_full_adapter(capsys):
    import json

    from drive_jepa import cli

    assert cli.main(["bench", "agent", "--preset", "tiny", "--ticks", "8", "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["model_step_median_ms"] > 0 and row["reuse_step_median_ms"] < row["model_step_median_ms"]

"""`drive-jepa train` end to end on CPU: both planners, checkpoints, resume, agent loading, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agent.planner.checkpoint import load_planner_checkpoint, resolve_checkpoint
from drive_jepa import config as dj_config
from drive_jepa.cli import main as cli_main
from training.planner.train import TrainConfig, tiny_overrides, train
from training.scoring.vocab import SHIPPED


def _cfg(tmp: Path, *extra: str) -> TrainConfig:
    vocab = SHIPPED["navsim_8192"]
    return dj_config.compose("train", TrainConfig, [*tiny_overrides(), f"out={tmp}", f"vocabulary={vocab}", *extra])


@pytest.mark.parametrize("kind", ["proposal", "baseline"])
def test_both_planners_train_and_the_agent_loads_the_checkpoint(tmp_path: Path, kind: str):
    cfg = _cfg(tmp_path, f"model.kind={kind}", "steps=12", "log_every=1", "optim.lr=3e-3")
    train(cfg)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert min(r["imitation"] for r in records[-3:]) < records[0]["imitation"]
    loaded = load_planner_checkpoint(tmp_path)
    assert loaded.config.kind == kind and loaded.metadata["step"] == 12
    assert loaded.metadata["vocabulary"]["sha256"].startswith("cc44a31e")
    assert loaded.metadata["frames"]["trajectory_frame"] == "ego_rear_axle"
    assert loaded.camera.intrinsics.width == 64 and loaded.camera.intrinsics.height == 32
    with torch.no_grad():
        out = loaded.model(torch.zeros(1, 3, 2, 32, 64), torch.zeros(1, 8))
    assert out.trajectories.shape[-2:] == (8, 3)


def test_resume_continues_without_double_counting(tmp_path: Path):
    train(_cfg(tmp_path, "steps=6", "log_every=2", "checkpoint_every=4"))
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000006"
    # a longer run in the same folder resumes from step 6
    train(_cfg(tmp_path, "steps=10", "log_every=2", "checkpoint_every=4"))
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 10]
    assert resolve_checkpoint(tmp_path).name == "step_00000010"
    assert not list((tmp_path / "checkpoints").glob("*.tmp-*"))
    saved = dj_config.compose("train", TrainConfig, [], config_file=tmp_path / "config.yaml")
    assert saved.steps == 10 and saved.data.kind == "synthetic"


def test_agent_rejects_mismatched_weights(tmp_path: Path):
    train(_cfg(tmp_path, "steps=1"))
    step_dir = resolve_checkpoint(tmp_path)
    text = (step_dir / "model.yaml").read_text().replace("num_proposals: 6", "num_proposals: 7")
    (step_dir / "model.yaml").write_text(text)
    with pytest.raises(ValueError, match="do not match"):
        load_planner_checkpoint(step_dir)
    with pytest.raises(FileNotFoundError, match="no planner checkpoint"):
        load_planner_checkpoint(tmp_path / "nothing")


def test_cli_train_help_cfg_and_bad_override(capsys, tmp_path: Path):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    assert "data=synthetic|fork" in capsys.readouterr().out
    assert cli_main(["train", "--tiny", "--cfg", "data=fork"]) == 0
    assert "kind: fork" in capsys.readouterr().out
    assert cli_main(["train", "model.nope=1"]) == 2
    assert cli_main(["train", "--tiny", f"out={tmp_path}", "vocabulary=/nonexistent.npy"]) == 2
    assert "vocabulary" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_ddp_on_cpu(tmp_path: Path):
    """Two Gloo ranks on CPU through torchrun; only rank 0 writes, the checkpoint loads in the agent."""
    import os
    import subprocess
    import sys

    vocab = SHIPPED["navsim_8192"]
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc_per_node=2",
        "--master_port=29533",
        "-m",
        "drive_jepa",
        "train",
        "--tiny",
        f"out={tmp_path}",
        f"vocabulary={vocab}",
        "steps=4",
        "log_every=2",
        "loss.score_weight=0",
        "loss.final_score_weight=0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert load_planner_checkpoint(tmp_path).metadata["step"] == 4


def test_agent_runner_plans_from_raw_frames_with_momentum(tmp_path: Path):
    import numpy as np

    from agent.planner.runner import PlannerRunner

    train(_cfg(tmp_path, "steps=2"))
    runner = PlannerRunner(load_planner_checkpoint(tmp_path))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8) for _ in range(2)]
    status = np.array([0, 1, 0, 0, 8.0, 0, 0, 0])
    first = runner.step(frames, status, np.array([0.0, 0.0, 0.0]), 0.0, route_start=True)
    assert first.trajectory.shape == (8, 3) and first.comfort is None
    second = runner.step(frames, status, np.array([4.0, 0.0, 0.0]), 0.5)
    assert second.comfort is not None and second.scores.shape == (6,)
    assert runner.video(frames).shape == (1, 3, 2, 32, 64)


def test_online_score_fn_is_called_with_the_proposals(tmp_path: Path):
    calls: list[tuple[int, ...]] = []

    def score_fn(proposals: torch.Tensor, batch: object) -> torch.Tensor:
        calls.append(tuple(proposals.shape))
        assert not proposals.requires_grad
        return torch.ones(*proposals.shape[:2], 9)  # every sub-score passes

    metrics = train(_cfg(tmp_path, "steps=3", "log_every=3"), score_fn=score_fn)
    assert calls == [(4, 6, 8, 3)] * 3
    assert metrics["scores"] > 0


def test_metrics_truncation_survives_a_cut_line(tmp_path: Path):
    from training.metrics_log import truncate_metrics

    f = tmp_path / "metrics.jsonl"
    f.write_text('{"step": 2}\n{"step": 4}\n{"step": 6}\n{"loss": 1.0}\n{"ste')
    truncate_metrics(f, 4)
    assert f.read_text() == '{"step": 2}\n{"step": 4}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temp file left
    truncate_metrics(tmp_path / "missing.jsonl", 4)
    assert not (tmp_path / "missing.jsonl").exists()


def _train_target_point_planner(tmp: Path, steps: int) -> None:
    """A tiny target-point planner trained on one synthetic Bench2Drive clip (5 m/s south) → tmp/run; clip: tmp/b2d."""
    import numpy as np

    from tests.training.synth_data import write_b2d_clip

    t = np.arange(60) / 10.0
    poses = np.stack([np.full(60, 100.0), 200.0 - 5.0 * t, np.full(60, -90.0)], -1)
    write_b2d_clip(tmp / "b2d", "ParkingExit", "Town12_Route922_Weather12", poses)
    vocab = SHIPPED["navsim_8192"]
    args = [*tiny_overrides("bench2drive"), "data=bench2drive", f"data.root={tmp / 'b2d'}", f"vocabulary={vocab}",
            "model.target_point_input=true", f"steps={steps}", "batch_size=2", f"out={tmp / 'run'}"]  # fmt: skip
    train(dj_config.compose("train", TrainConfig, args))


def test_target_point_planner_trains_on_bench2drive_and_the_agent_feeds_it(tmp_path: Path):
    import numpy as np

    from agent.checkpoint_model import CheckpointPlanModel
    from agent.model_api import ModelInputs

    _train_target_point_planner(tmp_path, steps=2)
    model = CheckpointPlanModel.load(tmp_path / "run", device="cpu")
    assert model.loaded.config.target_point_input
    assert model.loaded.metadata["frames"]["target_point"].startswith("route target")
    with torch.no_grad():
        for p in model.loaded.model.parameters():
            p.normal_(0.0, 0.2)

    def plan(target: list[float]) -> np.ndarray:
        inputs = ModelInputs(np.zeros((3, 2, 32, 64), np.float32), np.array([0, 1, 0, 0], np.float32), 3.0,
                             np.zeros(2, np.float32), np.array(target, np.float32))  # fmt: skip
        return model.plan(inputs).proposals

    assert not np.array_equal(plan([20.0, 0.0]), plan([5.0, 15.0]))
    with pytest.raises(ValueError, match="needs route target points, which data=synthetic does not provide"):
        train(_cfg(tmp_path / "synthetic", "model.target_point_input=true", "steps=1"))


@pytest.mark.parametrize("kind", ["independent", "softmax", "decoder", "regression"])
def test_imitation_score_head_trains_and_reaches_the_agent(tmp_path: Path, kind: str):
    import numpy as np

    from agent.checkpoint_model import CheckpointPlanModel
    from agent.model_api import ModelInputs

    cfg = _cfg(tmp_path, "model.proposal.imitation_score=true", f"model.proposal.imitation_kind={kind}", "steps=3",
               "log_every=1")  # fmt: skip
    train(cfg)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["imitation_score"] > 0 for r in records)
    model = CheckpointPlanModel.load(tmp_path, device="cpu")
    inputs = ModelInputs(np.zeros((3, 2, 32, 64), np.float32), np.array([0, 1, 0, 0], np.float32), 3.0,
                         np.zeros(2, np.float32), np.array([20.0, 0.0], np.float32))  # fmt: skip
    out = model.plan(inputs)
    assert "im" in out.subscores and out.subscores["im"].shape == out.scores.shape
    assert np.all((out.scores > 0) & (out.scores <= 1))
    if kind != "independent":  # read as a distribution over the proposals
        assert out.subscores["im"].sum() == pytest.approx(1.0, abs=1e-5)
    has_mode_head = any(k.startswith("planner.mode_head.") for k in model.loaded.model.state_dict())
    assert has_mode_head == (kind == "decoder")


def test_init_starts_a_run_from_another_checkpoint(tmp_path: Path, capsys):
    from safetensors.torch import load_file

    train(_cfg(tmp_path / "a", "steps=2"))
    cfg = _cfg(tmp_path / "b", "model.proposal.imitation_score=true", "model.proposal.imitation_kind=decoder",
               "steps=1", "optim.lr=0", f"init={tmp_path / 'a'}")  # fmt: skip
    train(cfg)
    line = capsys.readouterr().out
    assert f"from {tmp_path / 'a'}; fresh: planner.mode_head.0.bias" in line
    a = load_file(str(resolve_checkpoint(tmp_path / "a") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "b") / "model.safetensors"))
    assert torch.equal(a["planner.init_head.0.weight"], b["planner.init_head.0.weight"])  # copied, lr 0 kept it
    assert load_planner_checkpoint(tmp_path / "b").metadata["step"] == 1  # a fresh run, not a resume of a
    with pytest.raises(ValueError, match=r"init=.*nowhere: .*no planner checkpoint"):
        train(_cfg(tmp_path / "c", "steps=1", f"init={tmp_path / 'nowhere'}"))


def test_count_modes_is_single_linkage_of_end_points():
    from training.planner.selection_report import count_modes

    assert count_modes([[0, 0], [1, 0], [2.5, 0], [10, 0], [10, 1.5], [30, 30]], 2.0) == 3  # chain, pair, single
    assert count_modes([[0, 0]], 2.0) == 1 and count_modes([[0, 0], [0, 5]], 2.0) == 2


def test_selection_report_compares_chosen_and_closest_proposals(tmp_path: Path, capsys):

    _train_target_point_planner(tmp_path, steps=1)
    data = ["data=bench2drive", f"data.root={tmp_path / 'b2d'}", f"checkpoint={tmp_path / 'run'}", "threads=1"]
    assert cli_main(["selection-report", *data, "min_speed=4", f"out={tmp_path / 'r.json'}"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["samples"] == 3 and abs(report["x_expert"] - 20.0) < 1e-3  # 5 m/s for 4 s
    assert report["ade_closest"] <= report["ade_chosen"] + 1e-9
    assert set(report["subscores_chosen"]) >= {"nc", "dac", "ep"}
    ranks = report["ade_by_ranking"]
    assert ranks["scores() (what the agent ranks by)"] == pytest.approx(report["ade_chosen"])
    fixed = next(v for k, v in ranks.items() if k.endswith("(best fixed index)"))
    assert report["ade_closest"] - 1e-5 <= fixed <= ranks["random proposal"] + 1e-5
    assert "EPDMS of the predicted sub-scores" in ranks
    assert 1 <= report["modes"] <= 16 and report["endpoint_spread"] >= 0
    printed = capsys.readouterr().out
    assert "ADE to the expert: chosen" in printed and "proposal modes" in printed
    assert cli_main(["selection-report", *data, "min_speed=4", "min_turn=0.5"]) == 2  # the clip drives straight
    assert "min_turn=0.5" in capsys.readouterr().err
    assert cli_main(["selection-report", *data, "min_speed=6"]) == 2
    assert "no sample of 3 matches min_speed=6.0" in capsys.readouterr().err
    assert cli_main(["selection-report", "data=bench2drive", f"data.root={tmp_path / 'b2d'}",
                     f"checkpoint={tmp_path / 'nothing'}"]) == 2  # fmt: skip
    assert "no planner checkpoint" in capsys.readouterr().err


def test_learning_rate_schedules_and_config_checks(tmp_path: Path, capsys):
    import math

    from training.planner.train import check_config, learning_rate

    cfg = _cfg(tmp_path, "steps=100", "optim.lr=1e-3", "optim.warmup_steps=10")
    assert learning_rate(cfg, 0) == pytest.approx(1e-4) and learning_rate(cfg, 50) == pytest.approx(1e-3)
    cfg.optim.schedule, cfg.optim.min_lr_ratio = "cosine", 0.1
    assert learning_rate(cfg, 9) == pytest.approx(1e-3)  # end of warmup = the peak
    assert learning_rate(cfg, 55) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert learning_rate(cfg, 100) == pytest.approx(1e-4)  # min_lr_ratio · lr at the end
    for override, message in [
        ("steps=-5", "steps=-5: expected an integer ≥ 1"),
        ("batch_size=0", "batch_size=0: expected an integer ≥ 1"),
        ("standing_keep=0", "standing_keep=0.0: expected a fraction in (0, 1]"),
        ("optim.schedule=linear", "optim.schedule='linear': expected 'constant' or 'cosine'"),
    ]:
        with pytest.raises(ValueError) as err:
            check_config(_cfg(tmp_path, override))
        assert str(err.value) == message
    # the command: one line, exit 2, and no run folder written
    assert cli_main(["train", "steps=-5", f"out={tmp_path / 'never'}"]) == 2
    assert capsys.readouterr().err.strip() == "drive-jepa train: steps=-5: expected an integer ≥ 1"
    assert not (tmp_path / "never").exists()


def test_training_reports_progress_with_eta(tmp_path: Path, capsys):
    from training.metrics_log import StepProgress

    p = StepProgress("train", start=0, total=10, every_s=3600.0)
    assert p(1, 2.5) is None  # within the interval: quiet
    line = p(10, 1.25)  # the last step always reports
    assert line is not None and line.startswith("train: step 10/10 (100 %) · loss 1.25 · ") and "ETA 0m00s" in line
    train(_cfg(tmp_path, "steps=2"))
    err = capsys.readouterr().err
    assert "data: preparing synthetic samples" in err and "samples ready in" in err
    assert "train: step 2/2 (100 %)" in err


def test_an_out_of_another_model_is_a_one_line_error(tmp_path: Path, capsys):
    train(_cfg(tmp_path, "steps=1"))
    capsys.readouterr()
    assert cli_main(["train", *tiny_overrides(), f"out={tmp_path}", "steps=2", "model.proposal.num_proposals=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"out={tmp_path} holds a run of another model" in err
    assert "model.proposal.num_proposals: " in err and "≠ 5" in err and "resume=false" in err
    assert load_planner_checkpoint(tmp_path).metadata["step"] == 1  # untouched

"""The pretraining loop end to end on CPU: `drive-jepa pretrain` (tiny model), resume, schedules, DDP."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from agent.encoder import load_encoder, read_checkpoint
from drive_jepa.cli import main as cli_main
from drive_jepa.config import compose
from training.pretrain.config import PretrainConfig, register_configs
from training.pretrain.optim import OptimConfig, ema_at, lr_at, wd_at
from training.pretrain.train import pretrain

REPO = Path(__file__).resolve().parents[2]
FEATURE_STD_FLOOR = 0.05  # min over dims of the per-dimension std of the layer-normed target features


@pytest.fixture(scope="module")
def b2d_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three Bench2Drive-style routes of a textured scene panning left at 30 px/s (10 Hz frames)."""
    root = tmp_path_factory.mktemp("b2d")
    rng = np.random.default_rng(0)
    for r in range(3):
        folder = root / "Scenario" / f"Town0{r + 1}_Rep0_route{r}" / "camera" / "rgb_front"
        folder.mkdir(parents=True)
        texture = rng.integers(0, 256, (12, 40, 3)).astype(np.uint8)
        scene = cv2.resize(texture, (400, 120), interpolation=cv2.INTER_CUBIC)
        for i in range(30):
            cv2.imwrite(str(folder / f"{i:05d}.jpg"), np.roll(scene, -3 * i, axis=1)[:, :160])
    return root


def _overrides(root: Path, out: Path, steps: int, **extra: object) -> list[str]:
    args = {
        "data.root": root,
        "data.height": 64,
        "data.width": 128,
        "data.crop_top": 0,
        "data.crop_bottom": 0,
        "data.workers": 0,
        "run.out_dir": out,
        "run.steps": steps,
        "run.batch_size": 6,
        "run.log_every": 1,
        "run.throughput_warmup_steps": 1,
        "optim.warmup_steps": 3,
        "optim.ref_lr": 1e-3,
        "optim.ema_start": 0.99,
        "optim.ema_end": 0.999,
    }
    args.update(extra)
    return ["model=tiny", *(f"{k}={v}" for k, v in args.items())]


def _metrics(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_cfg_prints_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["pretrain", "--cfg", "model=tiny", "run.steps=7"]) == 0
    text = capsys.readouterr().out
    assert "encoder: tiny" in text and "steps: 7" in text and "spatial_scale" in text


def test_tiny_cpu_run_learns_without_collapse(
    b2d_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert cli_main(["pretrain", *_overrides(b2d_root, out, 24)]) == 0
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 25))
    losses = [float(r["loss"]) for r in rows]  # type: ignore[arg-type]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.01, losses
    assert all(float(r["feature_std_min"]) > FEATURE_STD_FLOOR for r in rows)  # type: ignore[arg-type]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_done"] == 24 and summary["clips_per_s_overall"] > 0
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert "encoder: tiny" in (out / "config.yaml").read_text()
    capsys.readouterr()
    assert cli_main(["pretrain", "--config-file", str(out / "config.yaml"), "--cfg"]) == 0  # reproducible
    assert "encoder: tiny" in capsys.readouterr().out
    # the checkpoint has the official layout and loads strictly as an encoder
    ckpt = read_checkpoint(out / "latest.pt")
    assert all(k.startswith("module.backbone.") for k in ckpt["target_encoder"])
    assert {"encoder", "predictor", "target_encoder", "opt", "epoch", "loss"} <= set(ckpt)
    enc = load_encoder(out / "latest.pt", key="target_encoder")
    assert enc.grid_shape(2, 64, 128) == (1, 4, 8)


def test_resume_reproduces_the_loss_curve(b2d_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    register_configs()
    straight, split = tmp_path / "straight", tmp_path / "split"
    pretrain(compose("pretrain", PretrainConfig, _overrides(b2d_root, straight, 6, **{"run.tensorboard": False})))
    assert "pretrain: step 6/6 (100 %) · loss " in capsys.readouterr().err  # progress with ETA on stderr
    first = _overrides(b2d_root, split, 6, **{"run.tensorboard": False, "run.stop_after_steps": 3})
    assert pretrain(compose("pretrain", PretrainConfig, first))["steps_done"] == 3
    with (split / "metrics.jsonl").open("a") as f:  # a line logged after the checkpoint, lost by a crash
        f.write(json.dumps({"step": 4, "loss": -1.0}) + "\n")
    again = pretrain(compose("pretrain", PretrainConfig, _overrides(b2d_root, split, 6, **{"run.tensorboard": False})))
    assert again["resumed_from"] == 3 and again["steps_done"] == 6
    a, b = _metrics(straight), _metrics(split)
    assert [r["step"] for r in b] == list(range(1, 7))  # no duplicated or stale lines
    assert [r["loss"] for r in a] == [r["loss"] for r in b]  # bit-identical on CPU
    wa, wb = read_checkpoint(straight / "latest.pt"), read_checkpoint(split / "latest.pt")
    for k, v in wa["target_encoder"].items():
        assert torch.equal(v, wb["target_encoder"][k]), k


def test_schedules_follow_official_formulas() -> None:
    cfg = OptimConfig(start_lr=1e-4, ref_lr=1e-3, final_lr=1e-6, warmup_steps=10, weight_decay=0.04,
                      final_weight_decay=0.4, ema_start=0.99, ema_end=1.0)  # fmt: skip
    t_max = 100
    assert lr_at(5, cfg, t_max) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert lr_at(10, cfg, t_max) == pytest.approx(1e-3)
    assert lr_at(55, cfg, t_max) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(100, cfg, t_max) == pytest.approx(1e-6)
    assert wd_at(50, cfg, t_max) == pytest.approx(0.4 + (0.04 - 0.4) * 0.5)
    assert wd_at(100, cfg, t_max) == pytest.approx(0.4)
    assert ema_at(0, cfg, 100) == 0.99 and ema_at(50, cfg, 100) == pytest.approx(0.995)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ddp_two_processes_with_torchrun_and_loader_workers(b2d_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    extra = {
        "run.batch_size": 2,
        "run.tensorboard": False,
        "data.height": 32,
        "data.width": 64,
        "data.workers": 1,
    }
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    rendezvous = ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    cmd = [*launcher, *rendezvous, "-m", "drive_jepa", "pretrain", *_overrides(b2d_root, out, 3, **extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps_done"] == 3
    assert read_checkpoint(out / "latest.pt")["world_size"] == 2


@pytest.mark.gpu
@pytest.mark.parametrize("compiled", [False, True])
def test_bf16_step_on_gpu(b2d_root: Path, tmp_path: Path, compiled: bool) -> None:
    register_configs()
    extra = {"run.device": "cuda", "run.tensorboard": False, "run.compile": compiled}
    ov = _overrides(b2d_root, tmp_path / "gpu", 3, **extra)
    summary = pretrain(compose("pretrain", PretrainConfig, ov))
    assert summary["precision"] == "bf16" and summary["device"].startswith("cuda")
    assert math.isfinite(summary["last"]["loss"])


def test_help_and_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["pretrain", "--help"])
    assert exc.value.code == 0 and "torchrun" in capsys.readouterr().out
    assert cli_main(["pretrain", "model=tiny", "run.stepz=3"]) == 2
    assert "run.stepz" in capsys.readouterr().err
    assert cli_main(["pretrain", "model=tiny", "data.kind=bench2drive", "data.root=/nonexistent/x"]) == 2
    assert "data.root /nonexistent/x: folder not found" in capsys.readouterr().err

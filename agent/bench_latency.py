"""`drive-jepa bench agent`: the leaderboard agent's `run_step` latency, model steps and reuse steps separately.

The planner is built from a preset with random weights (weights do not change the cost) and written as a real
checkpoint, then driven through the full leaderboard adapter with synthetic `input_data` in the leaderboard's
layout (1600×900 BGRA camera, GNSS, IMU, speedometer) on a straight route.

Presets: `tiny` (the tests' CPU config: patch encoder, 32×64 input) and `full` (V-JEPA ViT-L, 2×256×512 input,
32 proposals × 8 waypoints, 4 refinements — the paper's configuration).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agent.planner.config import TINY_MODEL_OVERRIDES

if TYPE_CHECKING:
    from agent.camera import CameraModel
    from agent.planner.config import PlannerModelConfig

PRESETS: dict[str, list[str]] = {
    "tiny": list(TINY_MODEL_OVERRIDES),
    "full": [
        "model.encoder.kind=vjepa",
        "model.encoder.vjepa_size=vit_large",
        "model.encoder.dim=1024",
        "model.encoder.patch=16",
    ],
}


def build_checkpoint(preset: str, out: Path) -> Path:
    from omegaconf import OmegaConf

    from agent.planner.checkpoint import write_checkpoint
    from agent.planner.config import PlannerModelConfig
    from agent.planner.model import DrivePlanner

    dotlist = [o.removeprefix("model.") for o in PRESETS[preset]]
    merged = OmegaConf.merge(OmegaConf.structured(PlannerModelConfig), OmegaConf.from_dotlist(dotlist))
    model_cfg = OmegaConf.to_object(merged)
    assert isinstance(model_cfg, PlannerModelConfig)
    return write_checkpoint(out, 0, DrivePlanner(model_cfg), model_cfg, _camera(model_cfg))


def _camera(model_cfg: PlannerModelConfig) -> CameraModel:
    from agent.camera import Crop, camera_by_name

    cam = camera_by_name(model_cfg.camera)
    if (cam.intrinsics.width, cam.intrinsics.height) != (model_cfg.image_width, model_cfg.image_height):
        cam = cam.for_model_input(Crop(), model_cfg.image_width, model_cfg.image_height)
    return cam


def measure(preset: str, ticks: int, device: str, model_period: float) -> dict[str, float | str | int]:
    import torch

    from agent import leaderboard_agent as la
    from drive_jepa.frames import GeoReference

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_checkpoint(preset, Path(tmp) / "ckpt")
        conf = Path(tmp) / "agent.yaml"
        conf.write_text(
            f"model: checkpoint\ncheckpoint: {ckpt.parent}\ndevice: {device}\n"
            f"policy:\n  model_period_s: {model_period}\n"
        )
        agent = la.DriveJEPAAgent("localhost", 2000, False)
        ref = GeoReference(42.0, 2.0)
        pts = np.stack([np.arange(0.0, 400.0, 10.0), np.zeros(40)], -1)
        gps = ref.carla_to_gnss(pts)
        agent.set_global_plan([({"lat": a, "lon": b, "z": 0.0}, 4) for a, b in gps], [((x, y, 0.0), 4) for x, y in pts])
        agent.setup(str(conf))
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (900, 1600, 4), dtype=np.uint8)
        model_ms: list[float] = []
        reuse_ms: list[float] = []
        parts: dict[str, list[float]] = {}
        for k in range(ticks):
            x = 0.2 * k
            g = np.append(ref.carla_to_gnss(np.array([x - 1.4, 0.0])), 0.0)
            data = {
                "CAM_FRONT": (k, img),
                "GPS": (k, g),
                "IMU": (k, np.array([0.0, 0.0, 9.81, 0.0, 0.0, 0.0, np.pi / 2])),
                "SPEED": (k, {"speed": 4.0}),
            }
            t0 = time.perf_counter()
            agent.run_step(data, 0.05 * k)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = 1e3 * (time.perf_counter() - t0)
            info = agent.last_info
            if k >= 2:  # warm-up
                (model_ms if info is not None and info.model_ran else reuse_ms).append(dt)
                if info is not None and info.model_ran:
                    for key, v in info.timings_ms.items():
                        parts.setdefault(key, []).append(v)
        agent.destroy()
    return {
        "preset": preset,
        "device": device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"),
        "ticks": ticks,
        "model_step_median_ms": statistics.median(model_ms),
        "model_step_p90_ms": float(np.percentile(model_ms, 90)),
        "reuse_step_median_ms": statistics.median(reuse_ms) if reuse_ms else float("nan"),
        "torch_threads": torch.get_num_threads(),
        **{f"{k}_median_ms": statistics.median(v) for k, v in parts.items()},
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="drive-jepa bench agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--ticks", type=int, default=42, help="simulator ticks at 20 Hz (model at --model-period)")
    p.add_argument("--device", default="auto")
    p.add_argument("--model-period", type=float, default=0.1)
    ns = p.parse_args(argv)
    print(json.dumps(measure(ns.preset, ns.ticks, ns.device, ns.model_period), indent=1))
    return 0

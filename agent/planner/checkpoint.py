"""Planner checkpoints: one directory per save, written atomically, loadable by the agent.

Layout of `<run>/checkpoints/step_<NNNNNNNN>/`:

* `model.yaml` — the `PlannerModelConfig` (enough to rebuild the network);
* `model.safetensors` — the weights (encoder + planner), loaded strictly;
* `metadata.json` — format tag, step, camera (`CameraModel.to_dict()` at model-input size), frames and units,
  vocabulary path + SHA-256, score names, anything extra the trainer adds;
* `config.yaml` — the full training config (training only; the agent ignores it);
* `trainer.pt` — optimiser/RNG state for resuming (training only; `torch.load(weights_only=True)`).

`<run>/checkpoints/latest` names the newest complete step directory. A directory is first written as
`<name>.tmp-<pid>` and renamed into place, so a crash never leaves a half checkpoint under a real name.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agent.camera import CameraModel
from agent.planner.config import PlannerModelConfig
from agent.planner.model import DrivePlanner

FORMAT = "drive-jepa-planner/1"
LATEST = "latest"


def frames_metadata(cfg: PlannerModelConfig) -> dict[str, Any]:
    return {
        "trajectory_frame": "ego_rear_axle",
        "pose": "(x, y, heading) metres, radians; x forward, y left, heading counter-clockwise",
        "num_poses": cfg.num_poses,
        "dt": cfg.dt,
        "t0": cfg.dt,
        "anchor_points": "ego_rear_axle, z = 0 on the ground",
        "video": "(3, T, H, W) ImageNet-normalised RGB, oldest frame first",
        # the frame spacing every dataset of this project feeds (NAVSIM 2 Hz: t − 0.5 s, t); the agent reads it
        "video_frame_offsets_s": [-0.5 * (cfg.encoder.frames - 1 - i) for i in range(cfg.encoder.frames)],
        "status": "command one-hot (left, straight, right, unknown), vx, vy, ax, ay (rear axle, ego frame)",
        "target_point": "route target (x, y) metres, ego_rear_axle" if cfg.target_point_input else "not used",
    }


def model_config_yaml(cfg: PlannerModelConfig) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def model_config_from_yaml(text: str, source: Path) -> PlannerModelConfig:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(PlannerModelConfig), OmegaConf.create(text))
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ValueError(f"{source}: bad model config: {str(exc).splitlines()[0]}") from None
    assert isinstance(obj, PlannerModelConfig)
    return obj


def write_checkpoint(
    root: Path,
    step: int,
    model: nn.Module,
    cfg: PlannerModelConfig,
    camera: CameraModel,
    metadata: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
    trainer_state: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Write `root/step_<step>/` atomically, point `root/latest` at it, keep the newest `keep` step dirs."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = root / name
    tmp = root / f"{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    (tmp / "model.yaml").write_text(model_config_yaml(cfg))
    meta = {
        "format": FORMAT,
        "step": step,
        "camera": camera.to_dict(),
        "frames": frames_metadata(cfg),
        "score_names": list(cfg.proposal.score_names) if cfg.kind == "proposal" else [],
        **(metadata or {}),
    }
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    for fname, data in (extra_files or {}).items():
        (tmp / fname).write_bytes(data)
    if trainer_state is not None:
        torch.save(trainer_state, tmp / "trainer.pt")
    if final.exists():  # re-saving the same step: move the old one away first, then drop it
        old = root / f"{name}.old-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    pointer = root / f"{LATEST}.tmp-{os.getpid()}"
    pointer.write_text(name + "\n")
    pointer.replace(root / LATEST)
    steps = sorted(p for p in root.glob("step_*") if p.is_dir() and "." not in p.name)
    for old_dir in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old_dir, ignore_errors=True)
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A step directory, a `checkpoints/` directory or a run directory → the step directory to load."""
    p = Path(path)
    for candidate in (p, p / "checkpoints"):
        if (candidate / "model.safetensors").is_file():
            return candidate
        pointer = candidate / LATEST
        if pointer.is_file():
            step_dir = candidate / pointer.read_text().strip()
            if not (step_dir / "model.safetensors").is_file():
                raise FileNotFoundError(f"{pointer}: names {step_dir.name}, which has no model.safetensors")
            return step_dir
    raise FileNotFoundError(f"{p}: no planner checkpoint (expected model.safetensors or a `latest` pointer)")


@dataclass
class LoadedPlanner:
    model: DrivePlanner
    config: PlannerModelConfig
    camera: CameraModel
    metadata: dict[str, Any]
    path: Path


def load_planner_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedPlanner:
    """Rebuild the planner of a checkpoint (strict weight loading) in eval mode, with its camera and metadata."""
    from safetensors.torch import load_file

    step_dir = resolve_checkpoint(path)
    meta_file = step_dir / "metadata.json"
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_file}: format {meta.get('format')!r}, expected {FORMAT!r}")
    cfg = model_config_from_yaml((step_dir / "model.yaml").read_text(), step_dir / "model.yaml")
    # the encoder's weights are in model.safetensors: do not re-read the V-JEPA file it was initialised from
    cfg.encoder.vjepa_checkpoint = None
    model = DrivePlanner(cfg)
    state = load_file(str(step_dir / "model.safetensors"), device="cpu")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split("\n")[1:2]).strip()
        raise ValueError(f"{step_dir / 'model.safetensors'}: weights do not match model.yaml ({detail})") from None
    model.to(device).eval()
    return LoadedPlanner(model, cfg, CameraModel.from_dict(meta["camera"]), meta, step_dir)

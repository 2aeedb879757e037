"""`drive-jepa train`: train a planner (baseline or proposal-centric) with a plain PyTorch loop.

Single process by default; under `torchrun --nproc_per_node=N -m drive_jepa train …` (WORLD_SIZE > 1) it runs
DistributedDataParallel (NCCL on CUDA, Gloo on CPU) with a DistributedSampler; only rank 0 writes. Checkpoints go
to `<out>/checkpoints/step_*/` (see `agent.planner.checkpoint`) every `checkpoint_every` steps and at the end;
with `resume=true` (default) a run picks up from `<out>/checkpoints/latest`. Metrics: `<out>/metrics.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from agent.planner.config import TINY_MODEL_OVERRIDES, PlannerModelConfig
from drive_jepa import config as dj_config
from training.data.config import DataConfig, ForkDataConfig, LoggedDataConfig, SyntheticDataConfig, data_camera_name
from training.metrics_log import StepProgress, truncate_metrics
from training.planner.losses import LossConfig, ScoreFn


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    warmup_steps: int = 0
    # "constant" (after warmup), or "cosine": from lr down to lr · min_lr_ratio at `steps` (what lets a plateaued
    # run settle; the step counter is the run's own, so a resumed run continues the same curve)
    schedule: str = "constant"
    min_lr_ratio: float = 0.0


@dataclass
class TrainConfig:
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"data": "synthetic"}])
    data: DataConfig = MISSING
    model: PlannerModelConfig = field(default_factory=PlannerModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # a (V, 40, 3) .npy (a relative path: against the working directory, else the project root) or the name of a
    # shipped vocabulary
    vocabulary: str = "navsim_8192"
    out: str = "runs/planner"
    steps: int = 1000
    batch_size: int = 16
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch intra-op threads on CPU (0 = torch's default)
    # recorded data: the fraction of "standing" samples (speed < 0.5 m/s and under 1 m travelled in the label) kept
    # (a deterministic subset); experts wait a lot (red lights, flows), and a planner fed mostly waits learns to wait
    standing_keep: float = 1.0
    # recorded data: each "start" sample (standing, then driving off within the label) this many times: with video
    # input, two identical frames mostly mean "keep standing"; the few starts teach when to go again
    start_repeat: int = 1
    # a planner checkpoint (run folder or step) whose weights start this run: every tensor that matches in name and
    # shape is copied, the rest keep their fresh init (listed on start); optimizer and step start fresh. For
    # fine-tuning, e.g. a new head on a trained model. Ignored when the run resumes from its own checkpoint.
    init: str = ""
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    resume: bool = True
    progress: bool = True  # a progress line (step, loss, s/step, ETA) on stderr at most every 10 s


dj_config.register("train", TrainConfig)


def tiny_overrides(data: str = "synthetic") -> list[str]:
    """Overrides that make a CPU run take seconds (used by tests and docs); `data`: the data option in use
    (generated options also get a small epoch, recorded ones use every selected sample)."""
    sized = ["data.size=32"] if data in ("synthetic", "fork") else []
    return [
        *TINY_MODEL_OVERRIDES,
        "batch_size=4",
        "threads=1",
        *sized,
    ]


# --------------------------------------------------------------------------------------------------------------


def model_differences(cfg: TrainConfig, ckpt_root: Path) -> list[str]:
    """`key: saved ≠ now` for every model setting in which the run's latest checkpoint differs from `cfg.model`
    (the encoder's initial weights file excepted: a resumed run loads its own weights)."""
    from omegaconf import OmegaConf

    from agent.planner.checkpoint import resolve_checkpoint

    saved_path = resolve_checkpoint(ckpt_root) / "model.yaml"
    if not saved_path.is_file():
        return []
    saved = OmegaConf.to_container(OmegaConf.load(saved_path))
    now = OmegaConf.to_container(OmegaConf.structured(cfg.model))

    def flat(d: Any, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(saved), flat(now)
    skip = {"encoder.vjepa_checkpoint"}
    # settings added to the model config after that checkpoint was written are not compared (their defaults)
    return [f"model.{k}: {a[k]!r} ≠ {b[k]!r}" for k in sorted(set(a) & set(b)) if k not in skip and a[k] != b[k]]


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step `step` (0-based): linear warmup, then constant or cosine decay."""
    o = cfg.optim
    warm = min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps > 0 else 1.0
    if o.schedule == "constant":
        return o.lr * warm
    span = max(1, cfg.steps - o.warmup_steps)
    progress = min(1.0, max(0.0, (step - o.warmup_steps) / span))
    return o.lr * warm * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def check_config(cfg: TrainConfig) -> None:
    """Values no run can use, as one-line errors naming the key (before anything is loaded or written)."""
    positive = {
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "log_every": cfg.log_every,
        "keep_checkpoints": cfg.keep_checkpoints,
        "start_repeat": cfg.start_repeat,
    }
    for key, value in positive.items():
        if value < 1:
            raise ValueError(f"{key}={value}: expected an integer ≥ 1")
    nonnegative = {"num_workers": cfg.num_workers, "threads": cfg.threads, "checkpoint_every": cfg.checkpoint_every}
    for key, value in nonnegative.items():  # checkpoint_every=0: only the final checkpoint
        if value < 0:
            raise ValueError(f"{key}={value}: expected an integer ≥ 0")
    if not 0.0 < cfg.standing_keep <= 1.0:
        raise ValueError(f"standing_keep={cfg.standing_keep}: expected a fraction in (0, 1]")
    if cfg.optim.schedule not in ("constant", "cosine"):
        raise ValueError(f"optim.schedule={cfg.optim.schedule!r}: expected 'constant' or 'cosine'")
    if not 0.0 <= cfg.optim.min_lr_ratio <= 1.0:
        raise ValueError(f"optim.min_lr_ratio={cfg.optim.min_lr_ratio}: expected a fraction in [0, 1]")
    if cfg.optim.lr < 0 or cfg.optim.weight_decay < 0:
        raise ValueError(f"optim.lr={cfg.optim.lr}, optim.weight_decay={cfg.optim.weight_decay}: expected ≥ 0")


def align_data_with_model(cfg: TrainConfig) -> None:
    """Recorded data (navsim, bench2drive): the prepared frames take the model's input size, and the model's
    default camera (used when no projection is passed, e.g. by an agent without calibration) is the data's rig.
    Every sample still carries its own projection. Changes `cfg` in place (saved with the run)."""
    if isinstance(cfg.data, LoggedDataConfig):
        cfg.data.image.out_width = cfg.model.image_width
        cfg.data.image.out_height = cfg.model.image_height
        cfg.model.camera = data_camera_name(cfg.data)
    if cfg.model.target_point_input and cfg.data.kind != "bench2drive":
        raise ValueError(
            f"model.target_point_input=true needs route target points, which data={cfg.data.kind} does not "
            "provide (only data=bench2drive does); set model.target_point_input=false"
        )


def data_metadata(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint records about its training data (read by `agent.deploy`)."""
    from dataclasses import asdict

    meta: dict[str, Any] = {"data": cfg.data.kind, "data_camera": data_camera_name(cfg.data)}
    if isinstance(cfg.data, LoggedDataConfig):
        meta["data_image"] = asdict(cfg.data.image)
    return meta


def init_from_checkpoint(model: Any, path: str) -> tuple[int, list[str]]:
    """Copy into `model` every tensor of the checkpoint at `path` that matches in name and shape; returns (copied
    count, the model's tensor names left at their fresh init). A checkpoint sharing nothing is an error."""
    from safetensors.torch import load_file

    from agent.planner.checkpoint import resolve_checkpoint

    try:
        step_dir = resolve_checkpoint(path)
    except FileNotFoundError as exc:
        raise ValueError(f"init={path}: {exc}") from None
    if not (step_dir / "model.safetensors").is_file():
        raise ValueError(f"init={path}: not a planner checkpoint (no model.safetensors, no checkpoints/latest)")
    state = load_file(str(step_dir / "model.safetensors"))
    own = model.state_dict()
    match = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not match:
        raise ValueError(f"init={path}: no tensor matches this model in name and shape (another architecture?)")
    model.load_state_dict(match, strict=False)
    return len(match), sorted(k for k in own if k not in match)


def build_dataset(cfg: TrainConfig, vocabulary: Any) -> Any:
    from training.planner.data import ForkDataset, SyntheticPlannerDataset

    m = cfg.model
    d = cfg.data
    if isinstance(d, LoggedDataConfig):
        from training.data.dataset import DrivingDataset
        from training.planner.data import DrivingPlannerDataset

        planner_ds = DrivingPlannerDataset(DrivingDataset(d), m.image_height, m.image_width, m.num_poses)
        if cfg.standing_keep < 1.0 or cfg.start_repeat != 1:
            from training.planner.data import standing_subset

            return standing_subset(planner_ds, cfg.standing_keep, cfg.seed, cfg.start_repeat)
        return planner_ds
    if isinstance(d, SyntheticDataConfig):
        return SyntheticPlannerDataset(
            d.size, m.image_height, m.image_width, vocabulary, d.camera, d.teachers, d.seed, m.dt, m.num_poses
        )
    if isinstance(d, ForkDataConfig):
        return ForkDataset(
            d.size,
            m.image_height,
            m.image_width,
            vocabulary,
            d.camera,
            d.teachers,
            d.seed,
            d.speed,
            d.curvature,
            m.dt,
            m.num_poses,
            d.human_left,
        )
    raise ValueError(f"data.kind={d.kind!r}: no dataset for it (synthetic, fork, navsim, bench2drive)")


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    if world <= 1:
        return _Dist()
    dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def train(cfg: TrainConfig, score_fn: ScoreFn | None = None) -> dict[str, Any]:
    """Run (or resume) training; returns the final metrics of rank 0.

    `score_fn(proposals (B, N, T, 3), batch) -> (B, N, K)` supplies online sub-score targets of the proposals
    (e.g. the fast simulator scorer); without it, synthetic data uses its analytic stand-in (`synthetic_scores`)
    when `data.online_scores` is set, and other data trains the scorer from offline labels only."""
    check_config(cfg)
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, DistributedSampler

    from agent.planner.checkpoint import resolve_checkpoint, write_checkpoint
    from agent.planner.model import DrivePlanner
    from training.planner.data import collate, load_vocabulary, synthetic_scores
    from training.planner.losses import PlannerLoss

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device_kind = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    dist_info = _init_distributed(device_kind)
    device = torch.device(f"cuda:{dist_info.local_rank}" if device_kind == "cuda" else "cpu")
    seed = cfg.seed + dist_info.rank
    random.seed(seed)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank

    align_data_with_model(cfg)
    if cfg.init and not (cfg.resume and (Path(cfg.out) / "checkpoints" / "latest").is_file()):
        from agent.planner.checkpoint import resolve_checkpoint as _resolve

        try:  # before the data is prepared: a wrong init= fails at once
            _resolve(cfg.init)
        except FileNotFoundError as exc:
            raise ValueError(f"init={cfg.init}: {exc}") from None
    if cfg.resume and (Path(cfg.out) / "checkpoints" / "latest").is_file():
        differ = model_differences(cfg, Path(cfg.out) / "checkpoints")
        if differ:
            raise ValueError(
                f"out={cfg.out} holds a run of another model ({'; '.join(differ[:3])}"
                f"{' …' if len(differ) > 3 else ''}): use another out=, or resume=false to start over there"
            )
    vocabulary, vocab_sha = load_vocabulary(cfg.vocabulary, cfg.model.num_poses, cfg.model.dt)
    t_data = time.monotonic()
    if cfg.progress and dist_info.main:
        print(f"data: preparing {cfg.data.kind} samples …", file=sys.stderr, flush=True)
    dataset = build_dataset(cfg, vocabulary)
    if cfg.progress and dist_info.main:
        print(f"data: {len(dataset)} samples ready in {time.monotonic() - t_data:.1f} s", file=sys.stderr, flush=True)
    model = DrivePlanner(cfg.model).to(device)
    score_names = list(cfg.model.proposal.score_names)
    loss_fn = PlannerLoss(cfg.loss, score_names, vocabulary).to(device)
    resuming = cfg.resume and (Path(cfg.out) / "checkpoints" / "latest").is_file()
    if cfg.init and not resuming:
        copied, fresh = init_from_checkpoint(model, cfg.init)
        if dist_info.main:
            print(f"init: {copied} tensors from {cfg.init}; fresh: {', '.join(fresh) or 'none'}", flush=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)

    out = Path(cfg.out)
    ckpt_root = out / "checkpoints"
    step = 0
    if cfg.resume and (ckpt_root / "latest").is_file():
        from safetensors.torch import load_file

        step_dir = resolve_checkpoint(ckpt_root)
        try:
            model.load_state_dict(load_file(str(step_dir / "model.safetensors"), device=str(device)), strict=True)
        except RuntimeError as exc:  # what model_differences did not name
            raise ValueError(
                f"out={cfg.out}: its checkpoint {step_dir.name} does not fit this model "
                f"({str(exc).splitlines()[0][:200]}); use another out= or resume=false"
            ) from None
        state = torch.load(step_dir / "trainer.pt", map_location=device, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        torch.set_rng_state(state["torch_rng"].cpu())
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        dj_config.save(cfg, out / "config.yaml")
        truncate_metrics(out / "metrics.jsonl", step)

    net: torch.nn.Module = model
    if dist_info.world > 1:
        # find_unused_parameters: e.g. the scorer head gets no gradient when its loss weights are 0
        net = DistributedDataParallel(
            model,
            device_ids=[dist_info.local_rank] if device_kind == "cuda" else None,
            find_unused_parameters=True,
        )
    sampler: DistributedSampler[Any] | None = (
        DistributedSampler(dataset, dist_info.world, dist_info.rank, seed=cfg.seed) if dist_info.world > 1 else None
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.num_workers,
        collate_fn=collate,
        drop_last=len(dataset) >= cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed + step),
    )
    if score_fn is None and isinstance(cfg.data, SyntheticDataConfig) and cfg.data.online_scores:

        def score_fn(proposals: Any, batch: Any) -> Any:
            return synthetic_scores(proposals, batch, score_names)

    online = score_fn is not None and cfg.model.kind == "proposal"
    camera = model.camera
    metadata = {
        "vocabulary": {"path": cfg.vocabulary, "sha256": vocab_sha},
        **data_metadata(cfg),
        "model_kind": cfg.model.kind,
    }

    def save(at: int) -> None:
        if not dist_info.main:
            return
        write_checkpoint(
            ckpt_root,
            at,
            model,
            cfg.model,
            camera,
            metadata,
            extra_files={"config.yaml": dj_config.to_yaml(cfg).encode()},
            trainer_state={"optimizer": opt.state_dict(), "step": at, "torch_rng": torch.get_rng_state()},
            keep=cfg.keep_checkpoints,
        )

    model.train()
    last: dict[str, Any] = {}
    t0 = time.time()
    progress = StepProgress("train", step, cfg.steps, enabled=cfg.progress and dist_info.main)
    epoch = 0
    while step < cfg.steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for batch in loader:
            if step >= cfg.steps:
                break
            b = batch.to(device)
            candidates = None
            if b.score_candidates is not None:
                candidates = vocabulary.to(device)[b.score_candidates]
            result = net(b.video, b.status, b.projection, candidates, b.target_point)
            targets = score_fn(result.trajectories.detach(), b) if online and score_fn is not None else None
            terms = loss_fn(
                result,
                b.trajectory,
                b.teacher_indices,
                score_targets=targets,
                candidate_targets=b.score_labels,
                score_mask=b.score_mask,
                candidates=candidates,
            )
            opt.zero_grad(set_to_none=True)
            terms.total.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            lr = learning_rate(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            step += 1
            progress(step, float(terms.total.detach()))
            if dist_info.main and (step % cfg.log_every == 0 or step == cfg.steps):
                last = {"step": step, **terms.as_floats(), "elapsed_s": round(time.time() - t0, 3)}
                with (out / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps(last) + "\n")
            if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save(step)
        epoch += 1
    save(step)
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return last


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa train",
        description="Train a Drive-JEPA planner. Pick the dataset with `data=synthetic|fork|navsim|bench2drive` "
        "(navsim/bench2drive: set data.root), the planner with "
        "`model.kind=proposal|baseline`, override any field with key=value (see --cfg). Multi-GPU: "
        "`torchrun --nproc_per_node=N -m drive_jepa train ...`.",
    )
    dj_config.add_config_arguments(parser)
    parser.add_argument("--tiny", action="store_true", help="prepend the tiny CPU overrides (seconds per run)")
    ns = parser.parse_args(argv)
    if ns.tiny:
        chosen = [o.split("=", 1)[1] for o in ns.overrides if o.startswith("data=")]
        ns.overrides = tiny_overrides(chosen[-1] if chosen else "synthetic") + list(ns.overrides)

    def run(cfg: TrainConfig) -> int:
        try:
            metrics = train(cfg)
        except (FileNotFoundError, ValueError) as exc:
            print(f"drive-jepa train: {exc}", file=sys.stderr)
            return 2
        if metrics:  # rank 0 only
            print(json.dumps(metrics))
        return 0

    return dj_config.run_with_config("train", TrainConfig, ns, run)

"""The V-JEPA pretraining loop on driving video.

One step: schedules (lr, wd) for the step -> masks for the step -> targets from the EMA encoder on the full
clip -> context encoder + predictor loss (bf16 autocast on CUDA) -> AdamW step -> EMA update. Masks, clips and
schedules are pure functions of (seed, step, rank), so a run resumed from `latest.pt` continues exactly as
if it had not stopped (same losses on CPU, bit for bit).

Checkpoints use the official V-JEPA 2 layout (`encoder`, `predictor`, `target_encoder` with `module.backbone.`
keys, `opt`, `scaler`, `epoch`, `loss`, `batch_size`, `world_size`, `lr`), so upstream tools and
`agent.encoder.load_encoder` read them; resume state (`step`, RNG states, the config YAML) is in extra keys.
Files: `<out_dir>/latest.pt` (atomic temp + rename), `metrics.jsonl` (one line per logged step, never
duplicated after a resume), `summary.json`, `config.yaml`, `tb/` (TensorBoard).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agent.encoder import VJEPAEncoder, encoder_config, load_strict, read_checkpoint, select_state_dict
from drive_jepa.atomic import atomic_file, write_json_atomic
from drive_jepa.config import save, to_yaml
from training.data.video import auto_workers, build_dataset, worker_init
from training.metrics_log import StepProgress, truncate_metrics
from training.pretrain.config import PretrainConfig
from training.pretrain.distributed import (
    DistInfo,
    all_reduce_mean,
    check_same_across_ranks,
    init_distributed,
    shutdown,
)
from training.pretrain.jepa import JEPA, ema_update, target_features
from training.pretrain.masks import Masks, MaskSampler
from training.pretrain.meters import Throughput, feature_std
from training.pretrain.optim import apply_schedules, build_optimizer, ema_at, lr_at, wd_at
from training.pretrain.predictor import PredictorConfig, VJEPAPredictor

log = logging.getLogger("drive_jepa.pretrain")
PREFIX = "module.backbone."


@dataclass
class Models:
    encoder: VJEPAEncoder
    predictor: VJEPAPredictor
    target: VJEPAEncoder


def build_models(cfg: PretrainConfig) -> Models:
    """Fresh (or V-JEPA 2-initialized) context encoder, predictor and target encoder (encoder copy)."""
    m = cfg.model
    enc_cfg = encoder_config(
        m.encoder, drop_path_rate=m.drop_path_rate, activation_checkpointing=m.activation_checkpointing
    )
    encoder = VJEPAEncoder(enc_cfg)
    predictor = VJEPAPredictor(
        PredictorConfig(
            embed_dim=enc_cfg.embed_dim,
            predictor_embed_dim=m.predictor_dim,
            depth=m.predictor_depth,
            num_heads=m.predictor_heads,
            mlp_hidden=4 * m.predictor_dim,
            num_mask_tokens=m.num_mask_tokens,
            img_height=m.predictor_img_height,
            patch_size=enc_cfg.patch_size,
            drop_path_rate=m.drop_path_rate,
            square_grid_positions=m.square_grid_positions,
            activation_checkpointing=m.activation_checkpointing,
        )
    )
    if m.init_checkpoint:
        ckpt = read_checkpoint(m.init_checkpoint)
        key = m.init_encoder_key
        load_strict(encoder, select_state_dict(ckpt, key, f"{m.init_checkpoint}[{key}]"), m.init_checkpoint)
        if m.init_predictor and "predictor" in ckpt:
            src = f"{m.init_checkpoint}[predictor]"
            load_strict(predictor, select_state_dict(ckpt, "predictor", src), src)
    target = copy.deepcopy(encoder)
    target.requires_grad_(False)
    return Models(encoder, predictor, target)


def _prefixed(module: nn.Module) -> dict[str, torch.Tensor]:
    return {PREFIX + k: v for k, v in module.state_dict().items()}


def save_checkpoint(path: Path, models: Models, opt: torch.optim.Optimizer, step: int, extra: dict[str, Any]) -> None:
    """Write the official-layout checkpoint plus resume state atomically."""
    state = {
        "encoder": _prefixed(models.encoder),
        "predictor": _prefixed(models.predictor),
        "target_encoder": _prefixed(models.target),
        "opt": opt.state_dict(),
        "scaler": None,  # bf16 autocast needs no GradScaler
        "step": step,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        **extra,
    }
    with atomic_file(path, "wb") as f:
        torch.save(state, f)


def load_resume(path: Path, models: Models, opt: torch.optim.Optimizer) -> int:
    """Restore models, optimizer and RNG from `path`; returns the number of finished steps."""
    ckpt = read_checkpoint(path)
    for key, module in (
        ("encoder", models.encoder),
        ("predictor", models.predictor),
        ("target_encoder", models.target),
    ):
        load_strict(module, select_state_dict(ckpt, key, f"{path}[{key}]"), f"{path}[{key}]")
    opt.load_state_dict(ckpt["opt"])
    torch.set_rng_state(ckpt["rng_cpu"])
    if ckpt.get("rng_cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng_cuda"])
    return int(ckpt["step"])


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Clip indices of steps `start..total-1` for this rank: step s, rank r -> [(s*W + r)*B, ... + B)."""

    def __init__(self, start: int, total: int, batch: int, rank: int, world: int) -> None:
        self.start, self.total, self.batch, self.rank, self.world = start, total, batch, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.total):
            base = (s * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def _masks_to(masks: list[Masks], device: torch.device) -> list[Masks]:
    return [
        Masks(m.enc.to(device, non_blocking=True), m.pred.to(device, non_blocking=True), m.block_thw) for m in masks
    ]


def check_run(cfg: PretrainConfig) -> None:
    """Values no run can use, as one-line errors naming the key, before anything is loaded or written."""
    r = cfg.run
    for key, value in {"run.steps": r.steps, "run.batch_size": r.batch_size, "run.log_every": r.log_every,
                       "run.ckpt_every": r.ckpt_every}.items():  # fmt: skip
        if value < 1:
            raise ValueError(f"{key}={value}: expected an integer ≥ 1")
    if r.stop_after_steps < 0:
        raise ValueError(f"run.stop_after_steps={r.stop_after_steps}: expected ≥ 0 (0 = run to run.steps)")


def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Run (or resume) pretraining; returns the summary also written to `<out_dir>/summary.json`."""
    check_run(cfg)
    dist = init_distributed(cfg.run.device)
    try:
        return _pretrain(cfg, dist)
    finally:
        shutdown(dist)


def _pretrain(cfg: PretrainConfig, dist: DistInfo) -> dict[str, Any]:
    run, device = cfg.run, dist.device
    out = Path(run.out_dir)
    ckpt_path = out / "latest.pt"
    metrics_path = out / "metrics.jsonl"
    torch.manual_seed(run.seed)  # the same initial weights on every rank (the target copy is not broadcast)
    if device.type == "cuda":  # parity needs full fp32 matmuls; training speed wants TF32 for fp32 ops
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    models = build_models(cfg)
    torch.manual_seed(run.seed + dist.rank)  # per-rank randomness from here on (stochastic depth)
    for mod in (models.encoder, models.predictor, models.target):
        mod.to(device)
    if run.compile:  # per block, in place: state-dict keys stay those of the official layout
        for blk in [*models.encoder.blocks, *models.predictor.predictor_blocks, *models.target.blocks]:
            blk.compile(dynamic=True)
    opt = build_optimizer(models.encoder, models.predictor, cfg.optim)
    start = 0
    if run.resume and ckpt_path.exists():
        start = load_resume(ckpt_path, models, opt)
        log.info("resumed from %s at step %d", ckpt_path, start)
    d = cfg.data
    workers = auto_workers(d.workers)
    # the data first: a wrong data.root fails before the run folder is written
    dataset = build_dataset(d, seed=run.seed, length=run.steps * run.batch_size * dist.world_size)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save(cfg, out / "config.yaml")
        truncate_metrics(metrics_path, start)

    jepa: nn.Module = JEPA(models.encoder, models.predictor)
    if dist.distributed:  # unused mask tokens are the same every step: a static graph handles them
        ids = [device.index] if device.type == "cuda" else None
        jepa = nn.parallel.DistributedDataParallel(jepa, device_ids=ids, static_graph=True)

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=StepBatchSampler(start, run.steps, run.batch_size, dist.rank, dist.world_size),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        worker_init_fn=worker_init,
        # workers start from a clean forkserver process, not a fork of this one: a forked copy of a process
        # whose OpenMP / OpenCV thread pools are running can deadlock (seen in the test suite)
        multiprocessing_context="forkserver" if workers > 0 else None,
    )
    grid = models.encoder.grid_shape(d.num_frames, d.height, d.width)
    sampler = MaskSampler(cfg.masks, grid, run.seed, dist.rank)
    t_max = max(1, int(run.t_max_scale * run.steps))
    use_bf16 = device.type == "cuda" and run.precision == "bf16"
    writer = None
    if dist.is_main and run.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"), purge_step=start + 1)
    meter = Throughput(device, run.throughput_warmup_steps)
    progress = StepProgress("pretrain", start, run.steps, enabled=run.progress and dist.is_main)
    last: dict[str, Any] = {}
    jepa.train()
    models.target.eval()
    step = start
    for step, clips_cpu in enumerate(loader, start=start):
        k = step + 1  # 1-based step number, as the official schedulers count
        lr, wd = lr_at(k, cfg.optim, t_max), wd_at(k, cfg.optim, t_max)
        apply_schedules(opt, lr, wd)
        clips = clips_cpu.to(device, non_blocking=True)
        masks = _masks_to(sampler(step, clips.shape[0]), device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
        with autocast:
            h = target_features(models.target, clips)
            loss, per_cfg = jepa(clips, h, masks)
        loss.backward()
        if cfg.optim.clip_grad is not None:
            params = list(models.encoder.parameters()) + list(models.predictor.parameters())
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.clip_grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema_update(models.target, models.encoder, ema_at(step, cfg.optim, t_max))
        meter.step(clips.shape[0] * dist.world_size)
        progress(k, float(loss.detach()) if progress.due(k) else None)

        if k % run.log_every == 0 or k == run.steps:
            loss_all = all_reduce_mean(torch.cat((loss.detach().reshape(1), per_cfg)), dist).tolist()
            std_mean, std_min = feature_std(h)
            rate = meter.rate()
            last = {
                "step": k,
                "loss": loss_all[0],
                "loss_per_mask": loss_all[1:],
                "lr": lr,
                "wd": wd,
                "feature_std_mean": std_mean,
                "feature_std_min": std_min,
                "clips_per_s": rate,
            }
            if dist.is_main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(last) + "\n")
                if writer is not None:
                    writer.add_scalar("loss/total", loss_all[0], k)
                    for j, v in enumerate(loss_all[1:]):
                        writer.add_scalar(f"loss/mask{j}", v, k)
                    writer.add_scalar("opt/lr", lr, k)
                    writer.add_scalar("opt/wd", wd, k)
                    writer.add_scalar("features/std_mean", std_mean, k)
                    writer.add_scalar("features/std_min", std_min, k)
                    if rate is not None:
                        writer.add_scalar("perf/clips_per_s", rate, k)
                log.info("step %d loss %.4f lr %.2e std %.3f clips/s %s", k, loss_all[0], lr, std_mean, rate)
        stopping = run.stop_after_steps > 0 and k - start >= run.stop_after_steps
        if (k % run.ckpt_every == 0 or k == run.steps or stopping) and dist.is_main:
            extra = {
                "epoch": 1,  # clips are drawn from one index space of run.steps batches
                "loss": float(loss.detach()),
                "batch_size": run.batch_size,
                "world_size": dist.world_size,
                "lr": lr,
                "config": to_yaml(cfg),
            }
            save_checkpoint(ckpt_path, models, opt, k, extra)
        if dist.distributed and (k % run.ckpt_every == 0 or stopping):
            torch.distributed.barrier()
        if stopping:
            break

    if writer is not None:
        writer.close()
    check_same_across_ranks(models.target, dist, "the EMA target encoder")
    check_same_across_ranks(models.encoder, dist, "the context encoder")
    summary = {
        "steps_done": step + 1 if run.steps > start else start,  # finished steps, all sessions
        "resumed_from": start,
        "last": last,
        "clips_per_s_overall": meter.overall(),
        "device": str(device),
        "world_size": dist.world_size,
        "precision": "bf16" if use_bf16 else "fp32",
    }
    if dist.is_main:
        write_json_atomic(out / "summary.json", summary, indent=1)
    return summary

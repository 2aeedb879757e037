"""Optimizer and schedules of V-JEPA 2 pretraining (official `app/vjepa/utils.py init_opt`,
`src/utils/schedulers.py`).

* AdamW with four parameter groups, in this order: encoder weights, predictor weights (weight decay), encoder
  biases and 1-D params, predictor biases and 1-D params (`weight_decay 0`, `WD_exclude`). The mask tokens
  are 3-D and fall in the decayed group, as officially.
* Learning rate: linear warmup `start_lr -> ref_lr`, then cosine to `final_lr` at `t_max` (`WarmupCosine`).
* Weight decay: cosine `wd -> final_wd` over `t_max` on the non-excluded groups.
* EMA momentum: linear `ema[0] -> ema[1]` over the run.

All schedules are pure functions of the step (1-based: step `k` uses `f(k)`), so a resumed run reproduces
them without saved scheduler state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class OptimConfig:
    """AdamW and schedule settings, in steps.

    V-JEPA 2 ViT-L (`configs/train/vitl16/pretrain-256px-16f.yaml`): start_lr 1e-4, lr 5.25e-4, warmup 12000
    steps, final_lr = lr (constant, then a separate cooldown run), wd 0.04, ema 0.99925. Our default
    decays the LR cosine to 1e-6 within the run: driving pretraining is a short continuation of V-JEPA 2.
    """

    start_lr: float = 1e-4
    ref_lr: float = 5.25e-4
    final_lr: float = 1e-6
    warmup_steps: int = 1000
    weight_decay: float = 0.04
    final_weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    ema_start: float = 0.99925
    ema_end: float = 0.99925
    clip_grad: float | None = None  # global grad-norm clip; V-JEPA 2 does not clip


def param_groups(encoder: nn.Module, predictor: nn.Module) -> list[dict[str, object]]:
    """The official four AdamW groups."""

    def split(m: nn.Module, decay: bool) -> list[nn.Parameter]:
        return [p for n, p in m.named_parameters() if p.requires_grad and (("bias" not in n and p.ndim != 1) == decay)]

    return [
        {"params": split(encoder, True)},
        {"params": split(predictor, True)},
        {"params": split(encoder, False), "WD_exclude": True, "weight_decay": 0.0},
        {"params": split(predictor, False), "WD_exclude": True, "weight_decay": 0.0},
    ]


def build_optimizer(encoder: nn.Module, predictor: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the four groups; the fused CUDA kernel when the parameters live on a GPU."""
    on_cuda = next(encoder.parameters()).is_cuda
    return torch.optim.AdamW(
        param_groups(encoder, predictor),
        lr=cfg.start_lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        fused=True if on_cuda else None,
    )


def lr_at(step: int, cfg: OptimConfig, t_max: int) -> float:
    """Warmup-cosine learning rate for 1-based `step`."""
    if step < cfg.warmup_steps:
        return cfg.start_lr + step / max(1, cfg.warmup_steps) * (cfg.ref_lr - cfg.start_lr)
    progress = (step - cfg.warmup_steps) / max(1, t_max - cfg.warmup_steps)
    cos = cfg.final_lr + (cfg.ref_lr - cfg.final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return max(cfg.final_lr, cos)


def wd_at(step: int, cfg: OptimConfig, t_max: int) -> float:
    """Cosine weight decay for 1-based `step`, clamped at `final_weight_decay`."""
    ref, final = cfg.weight_decay, cfg.final_weight_decay
    wd = final + (ref - final) * 0.5 * (1.0 + math.cos(math.pi * step / max(1, t_max)))
    return max(final, wd) if final <= ref else min(final, wd)


def ema_at(step: int, cfg: OptimConfig, total: int) -> float:
    """EMA momentum used after optimizer step `step` (0-based count of finished steps before it)."""
    return cfg.ema_start + step * (cfg.ema_end - cfg.ema_start) / max(1, total)


def apply_schedules(opt: torch.optim.Optimizer, lr: float, wd: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
        if not group.get("WD_exclude", False):
            group["weight_decay"] = wd

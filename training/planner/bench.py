"""`drive-jepa bench planner`: show the two method claims on synthetic data.

* `fork` — a two-mode fork (both branches safe and painted; the human takes one at random). The same tiny
  proposal planner is trained with human-only supervision (λ = 0) and with multimodal trajectory distillation
  (λ > 0, teachers from both branches) through `drive-jepa train`'s own `train()`. Reported on held-out samples:
  mode coverage (fraction of samples where BOTH branches have a proposal within `tau` m ADE), modes covered per
  scene (of 2; the diversity measure that matters here), recall of each branch, the fraction of proposals on a
  branch, and the raw pairwise diversity = mean pairwise ADE between a sample's proposals (m; it also counts
  proposals that no loss touches).
* `momentum` — a closed-loop synthetic drive: every 0.5 s a set of candidate plans (speed and curvature variants)
  with noisy scores; the ego follows the selected plan. Reported with and without momentum-aware selection:
  frame-to-frame plan change (ADE between the selected plan and the previous one warped into the current frame, at
  common times), the switch rate, and the mean raw score of the selected plan (the cost of momentum).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from drive_jepa.atomic import write_text_atomic


def _ade(a: Any, b: Any) -> Any:
    """Mean L2 over poses of (x, y): broadcasting (…, T, ≥2) arrays/tensors → (…)."""
    return ((a[..., :2] - b[..., :2]) ** 2).sum(-1) ** 0.5


def fork_bench(
    steps: int = 300,
    mtd_weight: float = 1.0,
    tau: float = 1.0,
    eval_samples: int = 64,
    seed: int = 0,
    vocabulary: str | None = None,
    workdir: Path | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    import torch

    from agent.planner.checkpoint import load_planner_checkpoint
    from drive_jepa import config as dj_config
    from training.data.config import data_camera_name
    from training.planner.data import ForkDataset, collate, load_vocabulary
    from training.planner.train import TrainConfig, tiny_overrides, train

    results: dict[str, Any] = {"steps": steps, "mtd_weight": mtd_weight, "tau_m": tau, "eval_samples": eval_samples}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(workdir) if workdir is not None else Path(tmp)
        for name, lam in (("human_only", 0.0), ("mtd", mtd_weight)):
            ov = [
                *tiny_overrides(),
                "data=fork",
                "data.size=256",
                f"steps={steps}",
                f"seed={seed}",
                "optim.lr=2e-3",
                "loss.score_weight=0",
                "loss.final_score_weight=0",
                f"loss.mtd_weight={lam}",
                "checkpoint_every=0",
                f"log_every={max(1, steps)}",
                f"out={base / name}",
                "resume=false",
                *(overrides or []),
            ]
            if vocabulary:
                ov.append(f"vocabulary={vocabulary}")
            cfg = dj_config.compose("train", TrainConfig, ov)
            t0 = time.time()
            train(cfg)
            train_s = time.time() - t0
            loaded = load_planner_checkpoint(base / name)
            vocab, _ = load_vocabulary(cfg.vocabulary, cfg.model.num_poses, cfg.model.dt)
            ds = ForkDataset(
                eval_samples,
                cfg.model.image_height,
                cfg.model.image_width,
                vocab,
                data_camera_name(cfg.data),
                0,
                seed + 1000,
                speed=getattr(cfg.data, "speed", 8.0),
                curvature=getattr(cfg.data, "curvature", 0.015),
            )
            batch = collate([ds[i] for i in range(eval_samples)])
            with torch.no_grad():
                props = loaded.model(batch.video, batch.status).trajectories  # (B, N, T, 3)
            d_branch = _ade(props[:, :, None], ds.branches[None, None]).mean(-1)  # (B, N, 2)
            hit = d_branch.amin(1) < tau  # (B, 2)
            pair = _ade(props[:, :, None], props[:, None]).mean(-1)  # (B, N, N)
            n = props.shape[1]
            diversity = pair.sum((1, 2)) / (n * (n - 1))
            human = _ade(props, batch.trajectory[:, None]).mean(-1).amin(1)
            results[name] = {
                "coverage_both_modes": float(hit.all(1).float().mean()),
                "modes_covered_of_2": float(hit.float().sum(1).mean()),
                "recall_left": float(hit[:, 0].float().mean()),
                "recall_right": float(hit[:, 1].float().mean()),
                "diversity_m": float(diversity.mean()),
                "proposals_on_a_branch": float((d_branch.amin(2) < tau).float().mean()),
                "min_ade_to_human_m": float(human.mean()),
                "train_s": round(train_s, 2),
            }
    return results


def momentum_bench(
    frames: int = 200,
    seed: int = 0,
    noise: float = 0.05,
    dt: float = 0.5,
    previous_weight: float = 7.0,
    comfort_weight: float = 1.0,
) -> dict[str, Any]:
    import torch

    from agent.selection import MomentumConfig, MomentumSelector
    from drive_jepa.frames import arc_poses, to_global, to_local

    accels = np.array([-1.0, 0.0, 1.0])
    curvs = np.array([-0.02, 0.0, 0.02])
    acc_grid, curv_grid = (g.ravel() for g in np.meshgrid(accels, curvs, indexing="ij"))
    quality = 0.8 - 0.03 * np.abs(acc_grid) - 0.03 * np.abs(curv_grid) / 0.02
    times = torch.arange(1, 9) * dt
    out: dict[str, Any] = {
        "frames": frames,
        "candidates": len(quality),
        "score_noise_std": noise,
        "weights": [previous_weight, comfort_weight],
    }
    for name, use in (("argmax", False), ("momentum", True)):
        rng = np.random.default_rng(seed)
        selector = MomentumSelector(MomentumConfig(previous_weight, comfort_weight, dt=dt))
        ego = np.zeros(3)
        speed = 8.0
        prev_plan: np.ndarray | None = None
        prev_ego = ego
        changes, switches, raw_sel, raw_best = [], [], [], []
        prev_idx = -1
        for f in range(frames):
            props = (
                arc_poses(
                    torch.full((len(quality),), speed),
                    torch.as_tensor(curv_grid, dtype=torch.float32),
                    torch.as_tensor(acc_grid, dtype=torch.float32),
                    times,
                )
                .double()
                .numpy()
            )
            scores = np.clip(quality + noise * rng.standard_normal(len(quality)), 0.0, 1.0)
            if use:
                sel = selector.select(props, scores, ego, f * dt)
                idx = sel.index
            else:
                idx = int(np.argmax(scores))
            plan = props[idx]
            raw_sel.append(scores[idx])
            raw_best.append(scores.max())
            if prev_plan is not None:
                # previous plan in the current frame at common times 0.5 … 3.5 s
                world = to_global(prev_plan, prev_ego[None])
                local = to_local(world, ego[None])
                changes.append(float(_ade(plan[:-1], local[1:]).mean()))
                switches.append(idx != prev_idx)
            prev_plan, prev_ego, prev_idx = plan, ego.copy(), idx
            # the ego follows the plan for dt: new pose = the plan's first pose; speed from the first segment
            ego = to_global(plan[0], ego)
            speed = max(0.0, float(np.hypot(*(plan[1, :2] - plan[0, :2])) / dt))
            speed = min(speed, 15.0)
        out[name] = {
            "mean_plan_change_m": float(np.mean(changes)),
            "switch_rate": float(np.mean(switches)),
            "mean_selected_raw_score": float(np.mean(raw_sel)),
            "mean_best_raw_score": float(np.mean(raw_best)),
        }
    out["plan_change_reduction"] = 1.0 - out["momentum"]["mean_plan_change_m"] / out["argmax"]["mean_plan_change_m"]
    out["mean_score_cost"] = out["argmax"]["mean_selected_raw_score"] - out["momentum"]["mean_selected_raw_score"]
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa bench planner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True)
    p_fork = sub.add_parser("fork", help="MTD vs human-only on a two-mode fork (trains two tiny planners on CPU)")
    p_fork.add_argument("--steps", type=int, default=300)
    p_fork.add_argument("--mtd-weight", type=float, default=1.0)
    p_fork.add_argument("--tau", type=float, default=1.0, help="ADE (m) under which a branch counts as covered")
    p_fork.add_argument("--seed", type=int, default=0)
    p_fork.add_argument("--vocabulary", default=None, help="vocabulary .npy (default: the training config's)")
    p_mom = sub.add_parser("momentum", help="momentum-aware vs plain argmax selection on a synthetic drive")
    p_mom.add_argument("--frames", type=int, default=200)
    p_mom.add_argument("--seed", type=int, default=0)
    p_mom.add_argument("--noise", type=float, default=0.05, help="std of the per-frame score noise")
    for p in (p_fork, p_mom):
        p.add_argument("--json", type=Path, default=None, help="also write the result to this JSON file (atomic)")
    ns = parser.parse_args(argv)
    try:
        if ns.task == "fork":
            import torch

            torch.set_num_threads(1)
            res = fork_bench(ns.steps, ns.mtd_weight, ns.tau, seed=ns.seed, vocabulary=ns.vocabulary)
        else:
            res = momentum_bench(ns.frames, ns.seed, ns.noise)
    except (FileNotFoundError, ValueError) as exc:
        print(f"drive-jepa bench planner: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(res, indent=2)
    print(text)
    if ns.json is not None:
        write_text_atomic(ns.json, text + "\n")
    return 0

"""`drive-jepa selection-report`: does the scorer pick the proposal the expert would drive? (open loop)

    drive-jepa selection-report checkpoint=runs/learn/planner data=bench2drive data.root=runs/learn/data/clips \\
        data.cache_dir=runs/learn/cache samples=200 min_speed=3

On `samples` recorded samples (seeded draw; those with ego speed ≥ `min_speed` m/s, or ≤ `max_speed` when set),
it runs the checkpoint and compares the **chosen** proposal (argmax of the scores, as the agent's argmax
selection) with the **closest** one (least ADE, mean (x, y) distance to the expert's trajectory in EGO_REAR_AXLE):
ADE of each, how far each goes in the horizon against the expert, and the mean of every predicted sub-score for
both (with the final score and, where the scorer has one, the imitation score `im`). A chosen ADE far above the
closest one means the proposals hold the expert's plan and the scorer passes it over: a scorer problem, not a
proposal problem. Also the proposals' multimodality: `modes`, the number of distinct modes per sample (clusters of
the proposals' end points under single linkage at `mode_radius` m, default 2) and their mean pairwise end-point
distance; `min_turn=0.5` keeps only samples where the expert turns by ≥ 0.5 rad over the horizon (junction turns,
where the MTD-on vs MTD-off comparison of issue 15 measures it). Prints a table; `out=FILE.json` also writes the
figures.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from drive_jepa import config as config_lib
from training.data.config import DataConfig


@dataclass
class SelectionReportConfig:
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"data": "bench2drive"}])
    data: DataConfig = MISSING
    checkpoint: str = MISSING  # a training run folder or one of its checkpoint steps
    samples: int = 200
    min_speed: float = 3.0  # m/s: moving samples (the interesting ones for selection)
    max_speed: float = -1.0  # m/s: when ≥ 0, only samples at most this fast (e.g. 0.5: standing)
    seed: int = 0
    threads: int = 2
    out: str = ""  # optional JSON output
    # only samples where the expert turns: |heading change over the horizon| ≥ this (rad; 0 = every sample). The
    # junction turns, where several ways are open and multimodal proposals matter
    min_turn: float = 0.0
    mode_radius: float = 2.0  # m: proposal end points closer than this (single linkage) are one mode


config_lib.register("selection_report", SelectionReportConfig)


def selection_report(cfg: SelectionReportConfig) -> dict[str, Any]:
    """The figures (see the module doc) as a dict: counts, means of the chosen and the closest proposal."""
    import numpy as np
    import torch

    from agent.planner.checkpoint import load_planner_checkpoint
    from training.data.config import LoggedDataConfig
    from training.data.dataset import DrivingDataset

    if not isinstance(cfg.data, LoggedDataConfig):
        raise ValueError(f"data={cfg.data.kind}: selection-report needs recorded data (bench2drive or navsim)")
    torch.set_num_threads(max(1, cfg.threads))
    loaded = load_planner_checkpoint(cfg.checkpoint)
    mc = loaded.config
    if mc.kind != "proposal":
        raise ValueError(f"{cfg.checkpoint}: a {mc.kind} planner has one trajectory, nothing to select")
    cfg.data.image.out_width, cfg.data.image.out_height = mc.image_width, mc.image_height
    ds = DrivingDataset(cfg.data)
    model = loaded.model.eval()
    names = [*mc.proposal.score_names, "final", *(["im"] if mc.proposal.imitation_score else [])]
    order = np.random.default_rng(cfg.seed).permutation(len(ds))
    rows: list[dict[str, float]] = []
    subs_chosen, subs_closest = [], []
    ranked: dict[str, list[float]] = {}  # ADE of the proposal each alternative ranking would pick
    per_index: list[Any] = []  # ADE of every proposal index (for the best fixed index)
    for i in order:
        s = ds[int(i)]
        speed = float(s.speed)
        if speed < cfg.min_speed or (cfg.max_speed >= 0 and speed > cfg.max_speed):
            continue
        if cfg.min_turn > 0 and abs(float(s.trajectory[-1, 2])) < cfg.min_turn:
            continue
        target = s.target_point[None] if mc.target_point_input else None
        with torch.no_grad():
            out = model(s.video[None], s.status[None], s.projection[None], target_point=target)
        traj, human = out.trajectories[0], s.trajectory
        ade = (traj[:, :, :2] - human[None, :, :2]).norm(dim=-1).mean(-1)
        chosen, closest = int(out.scores()[0].argmax()), int(ade.argmin())
        rows.append({
            "ade_chosen": float(ade[chosen]), "ade_closest": float(ade[closest]),
            "x_expert": float(human[-1, 0]), "x_chosen": float(traj[chosen, -1, 0]),
            "x_closest": float(traj[closest, -1, 0]), "same": float(chosen == closest),
            "modes": float(count_modes(traj[:, -1, :2].numpy(), cfg.mode_radius)),
            "endpoint_spread": float(torch.pdist(traj[:, -1, :2]).mean()) if len(traj) > 1 else 0.0,
        })  # fmt: skip
        per_index.append(ade.numpy())
        for name, pick in alternative_picks(out, mc.proposal.score_names).items():
            ranked.setdefault(name, []).append(float(ade[pick]))
        if out.imitation_trajectory is not None:
            reg = out.imitation_trajectory[0]
            ranked.setdefault("no ranking: the regressed trajectory itself", []).append(
                float((reg[:, :2] - human[:, :2]).norm(dim=-1).mean())
            )
        if out.sub_scores is not None:
            p = torch.sigmoid(out.sub_scores[0])
            extra = [out.final_score[0]] if out.final_score is not None else []
            if out.imitation_score is not None:
                extra.append(out.imitation_score[0])
            p = torch.cat([p, torch.sigmoid(torch.stack(extra, -1))], -1) if extra else p
            subs_chosen.append(p[chosen].tolist())
            subs_closest.append(p[closest].tolist())
        if len(rows) >= cfg.samples:
            break
    if not rows:
        raise ValueError(
            f"no sample of {len(ds)} matches min_speed={cfg.min_speed} / max_speed={cfg.max_speed} / "
            f"min_turn={cfg.min_turn}"
        )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    report: dict[str, Any] = {
        "checkpoint": str(cfg.checkpoint), "samples": len(rows), "min_turn": cfg.min_turn,
        "mode_radius": cfg.mode_radius, **mean,
    }  # fmt: skip
    fixed = np.mean(per_index, 0)
    report["ade_by_ranking"] = {
        **{k: float(np.mean(v)) for k, v in ranked.items()},
        f"always proposal {int(fixed.argmin())} (best fixed index)": float(fixed.min()),
        "random proposal": float(fixed.mean()),
    }
    if subs_chosen:
        report["subscores_chosen"] = dict(zip(names, np.mean(subs_chosen, 0).round(4).tolist(), strict=False))
        report["subscores_closest"] = dict(zip(names, np.mean(subs_closest, 0).round(4).tolist(), strict=False))
    return report


def count_modes(endpoints: Any, radius: float) -> int:
    """Distinct modes among proposals: clusters of their end points (N, 2) under single linkage at `radius` m
    (two proposals ending closer than `radius` are one mode, and chains of such pairs too)."""
    import numpy as np

    pts = np.asarray(endpoints, np.float64).reshape(-1, 2)
    n = len(pts)
    label = np.arange(n)
    close = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1)) < radius
    for _ in range(n):  # propagate the smallest label through the linkage graph until it settles
        new = np.where(close, label[None], n).min(1)
        if np.array_equal(new, label):
            break
        label = new
    return len(np.unique(label))


def alternative_picks(out: Any, score_names: list[str]) -> dict[str, int]:
    """The proposal each ranking picks for the first sample of `out`: the model's own `scores()`, the final-score
    head alone, the EPDMS aggregate of the predicted sub-scores, the imitation head alone."""
    import torch

    from training.planner.losses import LossConfig, final_score_target

    picks = {"scores() (what the agent ranks by)": int(out.scores()[0].argmax())}
    if out.final_score is not None:
        picks["final-score head alone"] = int(out.final_score[0].argmax())
    if out.sub_scores is not None:
        agg = final_score_target(torch.sigmoid(out.sub_scores[0]), list(score_names), LossConfig())
        picks["EPDMS of the predicted sub-scores"] = int(agg.argmax())
    im = out.imitation_probs()
    if im is not None:
        picks["imitation head alone"] = int(im[0].argmax())
    return picks


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['samples']} samples of {r['checkpoint']}",
        f"ADE to the expert: chosen {r['ade_chosen']:.2f} m, closest proposal {r['ade_closest']:.2f} m "
        f"(the same proposal in {100 * r['same']:.0f} %)",
        f"x at the horizon: expert {r['x_expert']:.1f} m, chosen {r['x_chosen']:.1f} m, closest {r['x_closest']:.1f} m",
        f"proposal modes (end points {r.get('mode_radius', 2.0):g} m apart, single linkage): {r['modes']:.2f} per "
        f"sample; mean pairwise end-point distance {r['endpoint_spread']:.2f} m",
    ]
    for name, ade in r.get("ade_by_ranking", {}).items():
        lines.append(f"ADE of the pick of {name}: {ade:.2f} m")
    if "subscores_chosen" in r:
        for who in ("chosen", "closest"):
            subs = " ".join(f"{k}={v:.3f}" for k, v in r[f"subscores_{who}"].items())
            lines.append(f"predicted sub-scores, {who:7s}: {subs}")
    return "\n".join(lines) + "\n"


def _run(cfg: SelectionReportConfig) -> int:
    from drive_jepa.atomic import write_json_atomic
    from training.data.sample import DataLayoutError

    try:
        report = selection_report(cfg)
    except (DataLayoutError, ValueError, OSError) as exc:
        print(f"drive-jepa selection-report: {exc}", file=sys.stderr)
        return 2
    print(format_report(report), end="")
    if cfg.out:
        write_json_atomic(cfg.out, report)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa selection-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    config_lib.add_config_arguments(parser)
    ns = parser.parse_args(argv)
    return config_lib.run_with_config("selection_report", SelectionReportConfig, ns, _run)

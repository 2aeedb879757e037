"""Counterfactual re-run: another model, open loop, on a recording's inputs, compared frame by frame.

For each recorded model step the other model gets the same inputs as the recorded agent: the frame history at
its configured offsets (recorded images, decoded and resized back to the camera's source size, then prepared by
the model's own `policy.image` settings — a recording stores a downscaled JPEG, so this is an approximation of
what the agent saw unless `record_options.image_width` was 0), and the recorded command, speed, acceleration and
target point. Its proposals are selected with argmax (open loop: the ego still follows the recorded drive).

Per step the comparison reports (EGO_REAR_AXLE metres): ADE / FDE between the two selected plans, both scores,
and "why": the other model's score of its proposal nearest to the recorded choice, and its sub-scores for both;
also the recorded ego speed, both selected plans' planned speed (`plan_speed`) and end points, for the timelines.

Over the window, the *divergence point* (`find_divergence`) is the first frame from which the two selected plans
stay more than `DIVERGE_ADE_M` apart (ADE) for at least `DIVERGE_MIN_FRAMES` consecutive frames.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.model_api import ModelInputs, ModelOutputs, PlanModel
from agent.preprocess import normalize_video, prepare_frame
from agent.recording import Replay, Step
from agent.selection import ArgmaxSelector, Selector
from drive_jepa.atomic import atomic_file

DIFFER_FDE_M = 1.0  # selected plans whose end points are farther apart than this "differ"
DIVERGE_ADE_M = 1.0  # the two selected plans diverge where their ADE exceeds this (metres) ...
DIVERGE_MIN_FRAMES = 3  # ... for at least this many consecutive frames (0.3 s at 10 Hz; one-frame flickers don't)
PLAN_SPEED_HORIZON_S = 1.0  # a plan's "planned speed" is its mean speed over this first part of the plan
RECORDED_PLAN_DT = ModelOutputs.dt  # recorded proposals follow the model contract: 0.5 s spacing, first at +0.5 s


def load_rerun_config(spec: str, replay: Replay) -> Any:
    """`--rerun` argument → AgentConfig: a checkpoint folder, an agent YAML, or a model name (`route_follow`,
    `drive_jepa_lite`).

    The recorded run's config is the base (so the camera and image settings match), then the model is swapped.
    """
    from agent.leaderboard_agent import AgentConfig, load_agent_config

    base_yaml = replay.meta.get("config_yaml")
    p = Path(spec)
    if p.is_file():
        return load_agent_config(p)
    if base_yaml:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "recorded.yaml"
            f.write_text(base_yaml)
            cfg = load_agent_config(f)
    else:
        cfg = AgentConfig()
    if p.is_dir():
        cfg.model, cfg.checkpoint = "checkpoint", str(p)
    elif spec in ("route_follow", "drive_jepa_lite"):
        cfg.model, cfg.checkpoint = spec, None
    else:
        raise ValueError(
            f"--rerun {spec!r}: expected a checkpoint folder, an agent config YAML, 'route_follow' or 'drive_jepa_lite'"
        )
    cfg.record = False
    return cfg


@dataclass
class FrameComparison:
    step: Step
    outputs: ModelOutputs
    index: int
    final_scores: np.ndarray
    row: dict[str, Any] = field(default_factory=dict)

    def as_step(self) -> Step:
        """The counterfactual as a Step (same image and ego) so the renderer can draw it."""
        header = {**self.step.header, "selected": self.index}
        arrays = {"proposals": self.outputs.proposals, "final_scores": self.final_scores}
        return Step(header, arrays, self.step.jpeg)


class InputRebuilder:
    """Recorded steps → ModelInputs for a model with `policy` settings (history offsets, image crop/resize)."""

    def __init__(self, replay: Replay, policy_cfg: Any) -> None:
        self.replay = replay
        self.cfg = policy_cfg
        self.times = replay.times
        self._cache: dict[int, np.ndarray] = {}

    def _frame(self, i: int) -> np.ndarray:
        if i not in self._cache:
            bgr = self.replay.steps[i].image_bgr()
            img = self.cfg.image
            if bgr is None:
                raise ValueError(f"{self.replay.path}: step {i} has no camera image")
            src = cv2.resize(bgr, (img.source_width, img.source_height), interpolation=cv2.INTER_LINEAR)
            rgb = cv2.cvtColor(src, cv2.COLOR_BGR2RGB)
            self._cache[i] = prepare_frame(rgb, img, bgra=False)
            if len(self._cache) > 64:
                self._cache.pop(next(iter(self._cache)))
        return self._cache[i]

    def inputs(self, i: int) -> ModelInputs:
        step = self.replay.steps[i]
        rec = step.header.get("inputs")
        if rec is None:
            raise ValueError(f"{self.replay.path}: step {i} has no recorded model inputs")
        t = step.t
        frames = []
        for off in self.cfg.history_offsets:
            j = int(np.searchsorted(self.times, t + off + 0.026, side="right")) - 1
            frames.append(self._frame(max(j, 0)))
        return ModelInputs(
            video=normalize_video(frames, self.cfg.image),
            command=np.asarray(rec["command"], dtype=np.float32),
            speed=float(rec["speed"]),
            acceleration=np.asarray(rec["acceleration"], dtype=np.float32),
            target_point=np.asarray(rec["target_point"], dtype=np.float32),
        )


def plan_speed(plans: np.ndarray, dt: float, horizon_s: float = PLAN_SPEED_HORIZON_S) -> np.ndarray:
    """Planned speed (m/s) of plans (..., T, 2+) with poses at dt, 2 dt, …: the path length from the ego origin
    through the poses up to `horizon_s` (or the plan's end, if shorter), divided by that time."""
    xy = _with_origin(np.asarray(plans, dtype=np.float64)[..., :2])
    n = int(np.clip(round(horizon_s / dt), 1, xy.shape[-2] - 1))
    seg = np.linalg.norm(np.diff(xy[..., : n + 1, :], axis=-2), axis=-1)
    return np.asarray(seg.sum(-1) / (n * dt))


def _with_origin(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((*xy.shape[:-2], 1, 2)), xy], -2)


def _nearest(props: np.ndarray, plan: np.ndarray) -> tuple[int, float]:
    """Index of the proposal (N, T, 3) nearest to `plan` (T', 3) by mean xy distance over common steps, and it."""
    n = min(props.shape[1], plan.shape[0])
    d = np.linalg.norm(props[:, :n, :2] - plan[None, :n, :2], axis=-1).mean(-1)
    i = int(np.argmin(d))
    return i, float(d[i])


def compare(
    replay: Replay,
    indices: list[int],
    model: PlanModel,
    policy_cfg: Any,
    selector: Selector | None = None,
) -> list[FrameComparison]:
    """Run `model` on the recorded steps `indices` (in order) and compare with what the agent selected."""
    sel = selector or ArgmaxSelector()
    sel.reset()
    rebuild = InputRebuilder(replay, policy_cfg)
    out = []
    for i in indices:
        step = replay.steps[i]
        if "proposals" not in step.arrays or step.header.get("inputs") is None:
            continue
        outputs = model.plan(rebuild.inputs(i))
        ego = step.header.get("ego") or {}
        selection = sel.choose(outputs, np.asarray(ego.get("rear_axle", [0.0, 0.0, 0.0])), step.t)
        fc = FrameComparison(step, outputs, selection.index, np.asarray(selection.scores, dtype=np.float32))
        fc.row = _row(replay, fc)
        out.append(fc)
    return out


def _row(replay: Replay, fc: FrameComparison) -> dict[str, Any]:
    s = fc.step
    rec_props = s.arrays["proposals"].astype(np.float64)
    rec_scores = s.get("final_scores")
    rec_i = int(s.header["selected"])
    rec_plan = rec_props[rec_i]
    cf_props = np.asarray(fc.outputs.proposals, dtype=np.float64)
    cf_plan = cf_props[fc.index]
    n = min(len(rec_plan), len(cf_plan))
    dist = np.linalg.norm(rec_plan[:n, :2] - cf_plan[:n, :2], axis=-1)
    like_i, like_d = _nearest(cf_props, rec_plan)
    back_i, _ = _nearest(rec_props, cf_plan)
    t0 = replay.steps[0].t
    ego = s.header.get("ego") or {}
    row: dict[str, Any] = {
        "t": round(s.t, 3),
        "t_rel": round(s.t - t0, 3),
        "step": s.header.get("step"),
        "rec_index": rec_i,
        "rec_score": _f(rec_scores[rec_i]) if rec_scores is not None else math.nan,
        "cf_index": fc.index,
        "cf_score": _f(fc.final_scores[fc.index]),
        "ade_m": round(float(dist.mean()), 3),
        "fde_m": round(float(dist[-1]), 3),
        "differs": bool(dist[-1] > DIFFER_FDE_M),
        "cf_score_of_recorded_like": _f(fc.final_scores[like_i]),
        "cf_recorded_like_ade_m": round(like_d, 3),
        "rec_score_of_cf_like": _f(rec_scores[back_i]) if rec_scores is not None else math.nan,
        "rec_ego_speed_mps": _f(ego.get("speed", math.nan)),
        "rec_plan_speed_mps": _f(plan_speed(rec_plan, RECORDED_PLAN_DT)),
        "cf_plan_speed_mps": _f(plan_speed(cf_plan, float(fc.outputs.dt))),
        "rec_end_x_m": _f(rec_plan[-1, 0]),
        "rec_end_y_m": _f(rec_plan[-1, 1]),
        "cf_end_x_m": _f(cf_plan[-1, 0]),
        "cf_end_y_m": _f(cf_plan[-1, 1]),
    }
    for name, sub in sorted(fc.outputs.subscores.items()):
        sub = np.asarray(sub)
        row[f"cf_{name}_selected"] = _f(sub[fc.index])
        row[f"cf_{name}_recorded_like"] = _f(sub[like_i])
    return row


def _f(x: Any) -> float:
    return round(float(x), 4)


def why(row: dict[str, Any]) -> str:
    """One line explaining a difference from the scores."""
    if not row["differs"]:
        return f"same plan (FDE {row['fde_m']:.2f} m)"
    gap = row["cf_score"] - row["cf_score_of_recorded_like"]
    subs = {
        k[3:-9]: row[k] - row[f"cf_{k[3:-9]}_recorded_like"]
        for k in row
        if k.endswith("_selected") and k.startswith("cf_")
    }
    top = max(subs.items(), key=lambda kv: abs(kv[1])) if subs else None
    tail = f"; largest sub-score gap {top[0]} {top[1]:+.3f}" if top else ""
    return (
        f"differs (FDE {row['fde_m']:.2f} m): other model scores its pick {gap:+.3f} above the recorded-like plan{tail}"
    )


@dataclass(frozen=True)
class Divergence:
    """Where the two selected plans part: frame `k` of the comparison (row `k`), at `t` / `t_rel` seconds."""

    k: int
    t: float
    t_rel: float
    step: int | None
    ade_m: float
    threshold_m: float
    min_frames: int

    def line(self) -> str:
        return (
            f"plans diverge at t={self.t_rel:.1f} s (step {self.step}, ADE {self.ade_m:.2f} m; "
            f"ADE > {self.threshold_m:g} m for at least {self.min_frames} frames)"
        )


def find_divergence(ade: np.ndarray, threshold_m: float, min_frames: int) -> int | None:
    """Index of the first frame that starts `min_frames` consecutive frames with ADE > `threshold_m` (NaN counts as
    not above), or None. A shorter run at the end of the window does not count."""
    if min_frames < 1:
        raise ValueError(f"min_frames must be at least 1, got {min_frames}")
    above = (np.nan_to_num(np.asarray(ade, dtype=np.float64), nan=-np.inf) > threshold_m).astype(np.int64)
    if len(above) < min_frames:
        return None
    window_sums = np.convolve(above, np.ones(min_frames, np.int64), mode="valid")
    hits = np.flatnonzero(window_sums == min_frames)
    return int(hits[0]) if hits.size else None


def divergence(
    rows: list[dict[str, Any]], threshold_m: float = DIVERGE_ADE_M, min_frames: int = DIVERGE_MIN_FRAMES
) -> Divergence | None:
    """The divergence point of comparison rows (in time order), or None when the plans never diverge."""
    k = find_divergence(np.array([r["ade_m"] for r in rows], dtype=np.float64), threshold_m, min_frames)
    if k is None:
        return None
    r = rows[k]
    return Divergence(k, r["t"], r["t_rel"], r["step"], r["ade_m"], threshold_m, min_frames)


def no_divergence_line(threshold_m: float = DIVERGE_ADE_M, min_frames: int = DIVERGE_MIN_FRAMES) -> str:
    return f"plans do not diverge in the window (never ADE > {threshold_m:g} m for {min_frames} frames in a row)"


def mark_divergence(rows: list[dict[str, Any]], div: Divergence | None) -> None:
    """Add the `divergence_point` column: True on the divergence frame's row only."""
    for k, r in enumerate(rows):
        r["divergence_point"] = div is not None and k == div.k


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_file(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*keys, "why"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "why": why(r)})

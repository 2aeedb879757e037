"""`drive-jepa replay`: render an agent recording (.djr) to MP4 + Rerun, or compare it with another model.

Examples:
    drive-jepa replay runs/eval1 --list                 # routes, status, recordings (partial marked), CARLA logs
    drive-jepa replay runs/eval1 --route-id 7 --before-infraction 10     # video of the 10 s before the infraction
    drive-jepa replay runs/eval1 --route-id 7 --before-infraction 10 --rerun runs/ckpt_b   # vs another checkpoint
    drive-jepa replay path/to/replay.djr --from 30 --to 45 --no-rrd
    drive-jepa replay path/to/replay.djr --last 10 --rerun route_follow

Times (--from/--to) are seconds from the start of the recording. Outputs go to --out (default: a folder
`<recording>_replay/` beside the recording): replay.mp4, replay.rrd (open with `rerun replay.rrd`), and with
--rerun: counterfactual.mp4 (recorded left, other model right) and counterfactual.csv (one row per frame).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from agent.recording import Replay, ReplayFormatError, read_replay
from agent.replay.render import PERIODIC_KINDS

log = logging.getLogger(__name__)


class ReplayUsageError(ValueError):
    """Bad arguments or a missing artefact; the message is the one line shown to the user."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("source", type=Path, help="a .djr recording, or an evaluation folder (with --route-id / --list)")
    p.add_argument("--route-id", help="route in the evaluation folder: 7, RouteScenario_7 or RouteScenario_7_rep0")
    p.add_argument("--list", action="store_true", help="list the routes, their artefacts; partial recordings marked")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <recording>_replay/)")
    rng = p.add_argument_group("frame range (default: the whole recording)")
    rng.add_argument("--from", dest="start", type=float, default=None, help="start, seconds from the recording start")
    rng.add_argument("--to", dest="end", type=float, default=None, help="end, seconds from the recording start")
    rng.add_argument("--last", type=float, default=None, help="only the last N seconds")
    rng.add_argument(
        "--before-infraction", type=float, default=None, metavar="S", help="S seconds before an infraction (+1 s after)"
    )
    rng.add_argument("--infraction", type=int, default=1, help="which infraction, 1-based in time order (default 1)")
    p.add_argument("--no-video", action="store_true", help="skip replay.mp4")
    p.add_argument("--no-rrd", action="store_true", help="skip replay.rrd")
    p.add_argument(
        "--rerun",
        metavar="CHECKPOINT_OR_CONFIG",
        help="compare with another model: checkpoint folder, agent YAML, route_follow, drive_jepa_lite",
    )
    p.add_argument(
        "--diverge-ade",
        type=float,
        default=None,
        metavar="M",
        help="with --rerun: the plans diverge where their ADE exceeds M metres (default 1.0) ...",
    )
    p.add_argument(
        "--diverge-frames",
        type=int,
        default=None,
        metavar="N",
        help="... for at least N consecutive frames (default 3)",
    )
    return p


def select_range(replay: Replay, ns: argparse.Namespace) -> list[int]:
    """Step indices in the requested range (times relative to the first step)."""
    if not replay.steps:
        raise ReplayUsageError(f"{replay.path}: the recording has no steps")
    t = replay.times - replay.times[0]
    lo, hi = -np.inf, np.inf
    if ns.before_infraction is not None:
        timed = sorted(float(e["t"]) for e in replay.events if "t" in e and e.get("kind") not in PERIODIC_KINDS)
        if not timed:
            raise ReplayUsageError(f"{replay.path}: no infraction with a time in the recording or the route's record")
        if not 1 <= ns.infraction <= len(timed):
            raise ReplayUsageError(f"--infraction {ns.infraction}: the recording has {len(timed)} timed events")
        te = timed[ns.infraction - 1] - replay.times[0]
        lo, hi = te - ns.before_infraction, te + 1.0
    if ns.last is not None:
        lo = max(lo, t[-1] - ns.last)
    if ns.start is not None:
        lo = max(lo, ns.start)
    if ns.end is not None:
        hi = min(hi, ns.end)
    idx = [i for i in range(len(t)) if lo - 1e-6 <= t[i] <= hi + 1e-6]
    if not idx:
        raise ReplayUsageError(f"{replay.path}: no steps in [{lo:.1f}, {hi:.1f}] s (recording is {t[-1]:.1f} s long)")
    return idx


def _resolve(ns: argparse.Namespace) -> tuple[Path, dict[str, object] | None]:
    """The recording to open and the leaderboard record of its route (when opened from an evaluation folder)."""
    from agent.replay.locate import route_artifacts

    src: Path = ns.source
    if src.is_file():
        return src, None
    if not src.is_dir():
        raise ReplayUsageError(f"{src}: no such recording or evaluation folder")
    if not ns.route_id:
        raise ReplayUsageError(f"{src} is a folder: pass --route-id ID (or --list to see the routes)")
    art = route_artifacts(src, ns.route_id)
    if not art.recordings:
        hint = "" if art.record else " (and no record either: is the route id right?)"
        raise ReplayUsageError(
            f"{src}: no recording for {art.key}{hint}; run the evaluation with the agent's record=true"
        )
    return art.recordings[0], art.record


def _list(eval_dir: Path) -> int:
    from agent.replay.catalog import VIDEO, replay_dir, scan_recording
    from agent.replay.locate import list_routes

    routes = list_routes(eval_dir)
    if not routes:
        print(f"{eval_dir}: no routes found (expected records/ and agent/ of a drive-jepa eval folder)")
        return 1
    for r in routes:
        rec = r.record or {}
        score = (rec.get("scores") or {}).get("score_composed", "-")
        print(
            f"{r.key:28s} {rec.get('status', '-')[:34]:34s} DS {score!s:>8s}"
            f"  infractions {rec.get('num_infractions', '-')}"
        )
        for p in r.recordings:
            try:
                scan = scan_recording(p)  # record headers only: fast on long routes
            except (OSError, ReplayFormatError) as exc:
                print(f"    replay      {p}   UNREADABLE ({exc})")
                continue
            state = f"complete, {scan.steps} steps"
            if not scan.complete:
                state = f"PARTIAL (interrupted attempt): {scan.partial}; {scan.steps} steps"
            print(f"    replay      {p}   [{state}]")
            if (replay_dir(p) / VIDEO).is_file():
                print(f"    rendered    {replay_dir(p)}")
        for p in r.carla_logs:
            print(f"    carla log   {p}   (drive-jepa carla-replay {p})")
    return 0


def run(ns: argparse.Namespace) -> int:
    from agent.replay import render
    from agent.replay.catalog import replay_dir
    from agent.replay.locate import attach_infractions

    if ns.list:
        return _list(ns.source)
    path, record = _resolve(ns)
    replay = read_replay(path)
    if replay.truncated:
        print(f"note: {path}: {replay.truncated}; using the {len(replay.steps)} steps before it", file=sys.stderr)
    if record is not None:
        min_speed = 0
        for ev in attach_infractions(replay, record):
            if ev.get("kind") in PERIODIC_KINDS or str(ev["message"]).startswith("Average speed is"):
                min_speed += 1  # the periodic min-speed reports: route checkpoints, not penalised by Bench2Drive
                continue
            when = f"t={ev['t'] - replay.times[0]:.1f} s" if "t" in ev else "not located"
            if ev.get("time_source") == "nearest position":
                when = "t≈" + when[2:] + ", nearest position"
            print(f"infraction ({when}): {ev['message']}")
        if min_speed:
            print(f"({min_speed} min-speed reports: route checkpoint measurements, ticks on the timeline)")
    idx = select_range(replay, ns)
    steps = [replay.steps[i] for i in idx]
    out = ns.out or replay_dir(path)
    t0 = replay.times[0]
    print(
        f"{path}: {len(replay.steps)} steps, {replay.duration:.1f} s; rendering {len(steps)} steps "
        f"[{steps[0].t - t0:.1f}, {steps[-1].t - t0:.1f}] s → {out}"
    )
    if not ns.no_video:
        n = render.write_video(render.frames(replay, steps), out / "replay.mp4")
        print(f"wrote {out / 'replay.mp4'} ({n} frames)")
    if not ns.no_rrd:
        from agent.replay.rerun_export import write_rrd

        write_rrd(replay, steps, out / "replay.rrd")
        print(f"wrote {out / 'replay.rrd'} (open with: rerun {out / 'replay.rrd'})")
    if ns.rerun:
        _counterfactual(replay, idx, ns.rerun, out, ns.diverge_ade, ns.diverge_frames)
    return 0


def _counterfactual(
    replay: Replay, idx: list[int], spec: str, out: Path, diverge_ade: float | None, diverge_frames: int | None
) -> None:
    from agent.leaderboard_agent import build_model
    from agent.replay import counterfactual as cf
    from agent.replay import render
    from agent.replay.cf_panel import CounterfactualPanel

    threshold = cf.DIVERGE_ADE_M if diverge_ade is None else diverge_ade
    min_frames = cf.DIVERGE_MIN_FRAMES if diverge_frames is None else diverge_frames
    if min_frames < 1:
        raise ReplayUsageError(f"--diverge-frames {min_frames}: expected at least 1")
    try:
        cfg = cf.load_rerun_config(spec, replay)
        model = build_model(cfg)
    except (ValueError, ImportError, OSError) as exc:
        raise ReplayUsageError(f"--rerun {spec}: cannot build the model ({exc})") from None
    # the whole history before the range is available to the rebuilt inputs; run only the selected steps
    comps = cf.compare(replay, idx, model, cfg.policy)
    if not comps:
        raise ReplayUsageError(f"{replay.path}: no steps with model inputs in the range to re-run")
    rows = [c.row for c in comps]
    div = cf.divergence(rows, threshold, min_frames)
    cf.mark_divergence(rows, div)
    cf.write_csv(rows, out / "counterfactual.csv")
    fde = np.array([r["fde_m"] for r in rows])
    panel = CounterfactualPanel(rows, replay.events, div, 2 * render.SIDE_W, threshold, min_frames)

    def frames_iter() -> Iterator[np.ndarray]:
        for k, c in enumerate(comps):
            r = c.row
            caption = [
                f"t {r['t_rel']:.1f} s  recorded #{r['rec_index']} score {r['rec_score']:.3f}   "
                f"other #{r['cf_index']} score {r['cf_score']:.3f}   ADE {r['ade_m']:.2f} m  FDE {r['fde_m']:.2f} m",
                f"other model's score of the recorded-like plan: {r['cf_score_of_recorded_like']:.3f}"
                f"  (nearest proposal {r['cf_recorded_like_ade_m']:.2f} m away)",
                cf.why(r)[:150],
            ]
            yield render.side_by_side(replay, c.step, c.as_step(), f"other: {spec}", panel.draw(k, caption))

    n = render.write_video(frames_iter(), out / "counterfactual.mp4")
    differ = sum(r["differs"] for r in rows)
    print(
        f"wrote {out / 'counterfactual.mp4'} ({n} frames) and {out / 'counterfactual.csv'}: "
        f"{differ}/{len(rows)} frames differ (FDE > {cf.DIFFER_FDE_M} m), mean FDE {fde.mean():.2f} m"
    )
    print(div.line() if div is not None else cf.no_divergence_line(threshold, min_frames))


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(ns)
    except (ReplayUsageError, ReplayFormatError) as exc:
        print(f"drive-jepa replay: {exc}", file=sys.stderr)
        return 2

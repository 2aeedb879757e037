"""`drive-jepa demo`: the main job on the embedded default — Bench2Drive routes closed-loop in the CPU lite world.

Steps (each is a regular command you can run yourself; their output goes under --out):
  1. `drive-jepa doctor` (core checks; what is missing for CARLA/NAVSIM is only reported)
  2. `drive-jepa agent-config ... record=true threads=1` → OUT/agent.yaml for the Drive-JEPA leaderboard agent
     (default: the trained Drive-JEPA lite checkpoint shipped in agent/checkpoints/drive_jepa_lite, model card
     README.md there; `--checkpoint` = your own `drive-jepa train` folder; `--model route_follow` = the
     weight-free baseline that follows the route and sees nothing)
  3. `drive-jepa eval world=lite` on the N shortest bench2drive220 routes of the lite towns, `--parallel` at once
     → OUT/eval (the same harness, agent file and results format as CARLA; rerun to resume)
  4. `drive-jepa report OUT/eval` → OUT/eval/report (merged.json, report.md, report.html)
  5. `drive-jepa replay OUT/eval --route-id R` → a video of each route's recording (camera with the model's
     proposals and the chosen plan, bird's-eye view, scores)
The lite world is not CARLA (simplified physics and rendering; Bench2Drive's scenarios staged as
docs/lite_world.md describes). The shipped checkpoint is small and CPU-trained: on the 55 lite routes it drives
worse than the route follower (strict DS 49.40 against 55.32, docs/learn.md); the demo shows it as it is.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path


def _step(title: str, argv: list[str]) -> int:
    from drive_jepa import cli

    print(f"\n== {title}\n$ drive-jepa {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = cli.main(argv)
    print(f"-- {title}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
    return rc


def shortest_lite_routes(n: int) -> tuple[Path, list[str]]:
    """The lite route file (shipped with carla_tools) and its `n` shortest route ids."""
    from drive_jepa.routes import load_routes

    routes_file = Path(importlib.import_module("carla_tools.lite.routes_data").LITE_ROUTES)
    routes = sorted(load_routes(routes_file), key=lambda r: (r.length_m, r.id))
    return routes_file, [r.id for r in routes[:n]]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="drive-jepa demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--routes", type=int, default=2, help="how many routes (the shortest lite routes first)")
    p.add_argument(
        "--parallel",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="routes run at once (lite worlds in parallel; default: 2, or 1 on a 1-core machine)",
    )
    p.add_argument(
        "--model",
        choices=("drive_jepa_lite", "route_follow"),
        default="drive_jepa_lite",
        help="the shipped Drive-JEPA lite checkpoint (default) or the weight-free route-following baseline",
    )
    p.add_argument("--checkpoint", default=None, help="a `drive-jepa train` checkpoint folder (overrides --model)")
    p.add_argument("--vehicles", type=int, default=30, help="background vehicles per route")
    p.add_argument("--no-video", action="store_true", help="skip the replay videos")
    ns = p.parse_args(argv)

    out: Path = ns.out
    out.mkdir(parents=True, exist_ok=True)
    if _step("1/5 setup check", ["doctor"]) != 0:
        return 1
    model = ["model=checkpoint", f"checkpoint={ns.checkpoint}"] if ns.checkpoint else [f"model={ns.model}"]
    agent_yaml = out / "agent.yaml"
    # one torch thread: the lite world and the model share the cores (more threads only add contention)
    argv = ["agent-config", *model, "record=true", "threads=1", "--out", str(agent_yaml)]
    if _step("2/5 agent config", argv) != 0:
        return 1
    routes_file, ids = shortest_lite_routes(ns.routes)
    agent_file = Path(importlib.import_module("agent.leaderboard_agent").__file__ or "")
    eval_dir = out / "eval"
    rc = _step(
        "3/5 closed-loop evaluation (lite world)",
        [
            "eval", "world=lite", "--routes", str(routes_file), "--route-ids", ",".join(ids),
            "--agent", str(agent_file), "--agent-config", str(agent_yaml.resolve()), "--out", str(eval_dir),
            "--no-ray", f"evaluator.extra_args=['--lite-vehicles={ns.vehicles}']",
            f"servers.servers_per_gpu={max(ns.parallel, 1)}",
        ],
    )  # fmt: skip
    if rc != 0:
        return rc
    if _step("4/5 report", ["report", str(eval_dir), "--out", str(eval_dir / "report")]) != 0:
        return 1
    if not ns.no_video:
        for rid in ids:
            rc = _step(
                f"5/5 replay of route {rid}",
                ["replay", str(eval_dir), "--route-id", rid, "--no-rrd", "--out", str(out / "replays" / rid)],
            )
            if rc != 0:
                print(f"demo: no replay for route {rid} (see above)", file=sys.stderr)
    print(
        f"\ndemo done: results {eval_dir / 'merged.json'}, report {eval_dir / 'report' / 'report.html'}, "
        f"videos {out / 'replays'}"
    )
    return 0

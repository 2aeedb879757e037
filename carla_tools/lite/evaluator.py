"""The lite world behind the leaderboard evaluator's command line, so `drive-jepa eval servers.world=lite` runs
the same jobs as with CARLA (one route per process, a checkpoint file in format A, the same agent file).

    python -m carla_tools.lite.evaluator --routes=R.xml --routes-subset=ID --agent=A.py --agent-config=C \\
        --checkpoint=eval.json [--repetitions=1 ...the other leaderboard options, accepted and ignored...]
        [--lite-seed=0 --lite-vehicles=60 --lite-max-route-m=M]

`--host/--port/--traffic-manager-*`, `--timeout`, `--gpu-rank`, `--track`, `--debug*` and `--record` are accepted
for compatibility (the lite world has no server, GPU or CARLA recorder). Per-route files (`metric_info.json`, the
agent's recordings) go to $SAVE_PATH, where the harness points Bench2Drive agents too. A progress line is
printed every simulated 5 s (the harness's watchdog reads the log). Exit code 0, or −1 (255) after a simulation
crash, like the leaderboard.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from drive_jepa.leaderboard_format import EVALUATOR_OPTIONS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carla_tools.lite.evaluator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--routes", required=True)
    p.add_argument("--routes-subset", default="")
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("-a", "--agent", required=True)
    p.add_argument("--agent-config", default="")
    p.add_argument("--checkpoint", default="./simulation_results.json")
    p.add_argument("--resume", type=bool, default=False)
    # the harness passes every option of the leaderboard evaluator; the lite world accepts and ignores the rest
    typed = {"--routes", "--routes-subset", "--repetitions", "--agent", "--agent-config", "--checkpoint", "--resume"}
    for opt in (o for o in EVALUATOR_OPTIONS if o not in typed):
        p.add_argument(opt, default=None)
    p.add_argument("--lite-seed", type=int, default=0)
    p.add_argument("--lite-vehicles", type=int, default=60)
    p.add_argument("--lite-max-route-m", type=float, default=None)
    p.add_argument("--lite-maps-dir", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    from carla_tools.lite.agent_api import AgentLoadError, instantiate, load_agent_class
    from carla_tools.lite.runner import LiteConfig, run_routes
    from carla_tools.lite.town import TOWNS
    from drive_jepa.routes import RouteFileError, load_routes

    try:
        routes = load_routes(ns.routes)
        cls = load_agent_class(ns.agent)
    except (RouteFileError, AgentLoadError) as exc:
        print(f"lite evaluator: {exc}", file=sys.stderr)
        return 2
    wanted = {x for x in str(ns.routes_subset).replace(",", " ").split() if x}
    chosen = [r for r in routes if not wanted or r.id in wanted]
    missing = [r.id for r in chosen if r.town not in TOWNS]
    if missing:
        print(f"lite evaluator: routes {missing} are in towns without a lite map ({', '.join(TOWNS)})", file=sys.stderr)
        return 2
    if not chosen:
        print(f"lite evaluator: no route {sorted(wanted)} in {ns.routes}", file=sys.stderr)
        return 2
    cfg = LiteConfig(
        seed=ns.lite_seed, num_vehicles=ns.lite_vehicles, max_route_m=ns.lite_max_route_m, maps_dir=ns.lite_maps_dir
    )
    save_path = os.environ.get("SAVE_PATH") or str(Path(ns.checkpoint).resolve().parent)
    ticks = {"n": 0}

    def progress(world: Any, _data: dict[str, Any]) -> None:
        ticks["n"] += 1
        if ticks["n"] % 100 == 0:
            print(f"lite: t={world.time:.1f} s", flush=True)

    result = run_routes(
        chosen,
        lambda: instantiate(cls),
        ns.checkpoint,
        ns.agent_config,
        cfg,
        resume=True,
        out_dir=save_path,
        on_step=progress,
    )
    records = result["_checkpoint"]["records"]
    crashed = any("Simulation crashed" in r["status"] for r in records)
    return 255 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`drive-jepa lite`: run leaderboard agents on Bench2Drive routes in the CPU lite world (SUMO + CARLA towns).

  drive-jepa lite ROUTES.xml --out results/lite.json [--agent FILE --agent-config CFG] [--route-ids ID,ID]
  drive-jepa lite [ROUTES.xml --route-ids ID] --benchmark [--width 1600 --height 900 --steps 400]

Only routes in Town01–07 and Town10HD run (the towns whose maps ship with the package); others are skipped
with a note. Results are a Bench2Drive leaderboard checkpoint (format A) that `drive-jepa report` and
Bench2Drive's own tools read unchanged; per-route `metric_info.json` files go next to it. The lite world is
not CARLA: see docs/lite_world.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

EXPERT = Path(__file__).resolve().parent / "expert.py"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa lite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("routes", nargs="?", type=Path, help="Bench2Drive / leaderboard route XML")
    p.add_argument("--out", type=Path, default=Path("results/lite/lite_checkpoint.json"), help="checkpoint JSON")
    p.add_argument(
        "--metric-dir", type=Path, default=None,
        help="folder of the per-route <save_name>/metric_info.json (comfort, efficiency); default: --out's folder",
    )  # fmt: skip
    p.add_argument("--agent", type=Path, default=EXPERT, help="agent module file (default: the lite expert)")
    p.add_argument("--agent-config", default="", help="passed to the agent's setup()")
    p.add_argument("--route-ids", default="", help="comma-separated route ids to run (default: all lite routes)")
    p.add_argument("--limit", type=int, default=0, help="run at most N routes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vehicles", type=int, default=60, help="background vehicles around the route")
    p.add_argument("--max-route-m", type=float, default=None, help="cut every route to its first N metres")
    p.add_argument("--maps-dir", default=None, help="folder of TownXX.net.xml.gz (default: shipped nets)")
    p.add_argument("--no-resume", action="store_true", help="start a fresh checkpoint instead of resuming")
    p.add_argument("--no-scenarios", action="store_true", help="do not stage the routes' Bench2Drive scenarios")
    p.add_argument(
        "--snapshots", type=Path, default=None,
        help="write world snapshots (drive_jepa_carla_snapshot/1, one <route id>.jsonl per route) to this folder",
    )  # fmt: skip
    p.add_argument("--benchmark", action="store_true", help="measure simulated steps/s with a camera and exit")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--fov", type=float, default=70.0)
    p.add_argument("--steps", type=int, default=400)
    return p


def lane_walk_route(town_name: str = "Town03", length: float = 200.0) -> Any:
    """A synthetic route (no route file needed): from the town's longest driving lane along its successors."""
    import numpy as np

    from carla_tools.lite.route import interpolate
    from carla_tools.lite.town import load_town
    from drive_jepa.frames import carla_points_to_world
    from drive_jepa.routes import Route

    town = load_town(town_name)
    lanes = [i for i, ln in enumerate(town.lanes) if ln.drivable and not ln.internal]
    k = max(lanes, key=lambda i: float(np.hypot(*np.diff(town.lanes[i].shape, axis=0).T).sum()))
    parts = [town.lanes[k].shape]
    total = 0.0
    while total < length and town.successors.get(k):
        via, k = town.successors[k][0]
        parts += ([town.lanes[via].shape] if via >= 0 else []) + [town.lanes[k].shape]
        total = sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in parts)
    world = np.concatenate(parts)
    xy = carla_points_to_world(world)
    pts = interpolate(np.concatenate([xy, np.zeros((len(xy), 1))], -1), 2.0)
    return Route("lane_walk", town_name, pts)


def benchmark(
    width: int, height: int, fov: float, steps: int, seed: int = 0, vehicles: int = 60, route: Any = None
) -> dict[str, float]:
    """Steps/s of the full loop (SUMO step, ego, camera + GNSS + IMU + speed, criteria, expert), with the
    route's scenarios staged (their actors drawn, simulated and checked)."""
    from carla_tools.lite.criteria import RouteCriteria
    from carla_tools.lite.expert import LiteExpert
    from carla_tools.lite.route import build_dense_route, global_plan
    from carla_tools.lite.sensors import parse_sensors
    from carla_tools.lite.town import load_town
    from carla_tools.lite.vehicle import as_control
    from carla_tools.lite.world import LiteWorld

    route = route if route is not None else lane_walk_route()
    town = load_town(route.town)
    dense = build_dense_route(route, town)
    specs = parse_sensors([
        {"type": "sensor.camera.rgb", "x": 0.8, "y": 0.0, "z": 1.6, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
         "width": width, "height": height, "fov": fov, "id": "CAM_FRONT"},
        {"type": "sensor.other.imu", "x": -1.4, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
         "sensor_tick": 0.05, "id": "IMU"},
        {"type": "sensor.other.gnss", "x": -1.4, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
         "sensor_tick": 0.01, "id": "GPS"},
        {"type": "sensor.speedometer", "reading_frequency": 20, "id": "SPEED"},
    ])  # fmt: skip
    agent = LiteExpert()
    agent.set_global_plan(*global_plan(dense, town))
    agent.setup("")
    with LiteWorld(
        town, dense, seed=seed, num_vehicles=vehicles, scenarios=route.scenarios, route_id=route.id
    ) as world:
        crit = RouteCriteria(world)
        agent.set_lite_world(world)
        world.read_sensors(specs)  # build the static scene once (not timed)
        t0 = time.perf_counter()
        render_t = 0.0
        n = 0
        most_actors = 0
        for n in range(1, steps + 1):  # noqa: B007
            most_actors = max(most_actors, len(world.scenarios.actors))
            r0 = time.perf_counter()
            data = world.read_sensors(specs)
            render_t += time.perf_counter() - r0
            world.step(as_control(agent.run_step(data, world.time)))
            crit.update(world)
            if crit.done:
                break
        wall = time.perf_counter() - t0
    return {
        "steps": n,
        "steps_per_s": n / wall,
        "sensors_ms": 1000 * render_t / n,
        "total_ms": 1000 * wall / n,
        "scenario_actors": most_actors,  # most scenario actors present at once
    }


def main(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    if ns.benchmark:
        bench_route = None
        if ns.routes is not None:
            from carla_tools.lite.town import TOWNS
            from drive_jepa.routes import load_routes

            wanted = {x for x in ns.route_ids.split(",") if x}
            lite = [r for r in load_routes(ns.routes) if r.town in TOWNS and (not wanted or r.id in wanted)]
            bench_route = lite[0] if lite else None
        r = benchmark(ns.width, ns.height, ns.fov, ns.steps, ns.seed, ns.vehicles, bench_route)
        print(
            f"lite benchmark: {r['steps']} steps at {ns.width}x{ns.height}: {r['steps_per_s']:.1f} steps/s "
            f"({r['total_ms']:.1f} ms/step, sensors {r['sensors_ms']:.1f} ms; "
            f"up to {r['scenario_actors']} scenario actors at once)"
        )
        return 0
    if ns.routes is None:
        print("drive-jepa lite: give a route XML (or --benchmark)", file=sys.stderr)
        return 2
    from carla_tools.lite.agent_api import AgentLoadError, instantiate, load_agent_class
    from carla_tools.lite.runner import LiteConfig, run_routes
    from carla_tools.lite.town import TOWNS
    from drive_jepa.routes import RouteFileError, load_routes

    try:
        routes = load_routes(ns.routes)
        cls = load_agent_class(ns.agent)
    except (RouteFileError, AgentLoadError) as exc:
        print(f"drive-jepa lite: {exc}", file=sys.stderr)
        return 2
    wanted = {x for x in ns.route_ids.split(",") if x}
    skipped = [r.id for r in routes if r.town not in TOWNS]
    routes = [r for r in routes if r.town in TOWNS and (not wanted or r.id in wanted)]
    if ns.limit:
        routes = routes[: ns.limit]
    if skipped:
        print(f"lite: skipping {len(skipped)} routes in towns without a lite map")
    if not routes:
        print("drive-jepa lite: no route to run", file=sys.stderr)
        return 2
    cfg = LiteConfig(seed=ns.seed, num_vehicles=ns.vehicles, max_route_m=ns.max_route_m, maps_dir=ns.maps_dir,
                     scenarios=not ns.no_scenarios)  # fmt: skip
    snapshots = None
    if ns.snapshots is not None and ns.snapshots.exists() and not ns.snapshots.is_dir():
        print(f"drive-jepa lite: --snapshots {ns.snapshots}: exists and is not a folder", file=sys.stderr)
        return 2
    if ns.snapshots is not None:
        from carla_tools.lite.snapshot import RouteSnapshots

        snapshots = RouteSnapshots(ns.snapshots)
    try:
        result = run_routes(routes, lambda: instantiate(cls), ns.out, ns.agent_config, cfg,
                            resume=not ns.no_resume, out_dir=ns.metric_dir, on_step=snapshots)  # fmt: skip
    finally:
        if snapshots is not None:
            snapshots.close()
    g = result["_checkpoint"]["global_record"]
    print(
        f"lite: {len(result['_checkpoint']['records'])} routes → {ns.out}: "
        f"DS {g['scores_mean']['score_composed']:.2f}"
        f"  RC {g['scores_mean']['score_route']:.2f}  penalty {g['scores_mean']['score_penalty']:.3f}"
    )
    return 0

"""Run leaderboard agents on Bench2Drive routes in the lite world and write Bench2Drive results.

`run_route` is a plain library function (no global state besides libsumo's one-simulation-per-process rule):
it builds the world of one route, drives the agent through the leaderboard protocol and returns the route's
record (format A). `run_routes` runs a list of routes into one checkpoint file, resuming from it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from carla_tools.lite.agent_api import instantiate
from carla_tools.lite.criteria import INFRACTION_KEYS, RouteCriteria
from carla_tools.lite.results import checkpoint, make_record, read_records
from carla_tools.lite.route import build_dense_route, global_plan
from carla_tools.lite.sensors import SensorSpecError, parse_sensors, sensor_tags
from carla_tools.lite.town import TOWNS, load_town
from carla_tools.lite.vehicle import as_control
from carla_tools.lite.world import LiteWorld
from carla_tools.lite.world_view import world_view
from drive_jepa.atomic import write_json_atomic
from drive_jepa.routes import Route


@dataclass(frozen=True)
class LiteConfig:
    """Knobs of a lite-world run."""

    seed: int = 0
    num_vehicles: int = 60  # background cars kept around the route
    max_ticks: int = 4000  # Bench2Drive's TickRuntime limit (200 s at 20 Hz)
    max_route_m: float | None = None  # cut routes to their first N metres (tests, smoke runs)
    maps_dir: str | None = None  # SUMO nets folder (default: the nets shipped with the package)
    metric_info: bool = True  # write <out_dir>/<save_name>/metric_info.json for the comfort/efficiency tools
    rep: int = 0
    scenarios: bool = True  # stage the routes' Bench2Drive scenarios (carla_tools.lite.scenarios)


def truncate_route(route: Route, max_m: float) -> Route:
    """The route's first `max_m` metres of waypoints (at least two)."""
    d = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(route.waypoints[:, :2], axis=0).T))])
    n = max(2, int(np.searchsorted(d, max_m, side="right")))
    return replace(route, waypoints=route.waypoints[:n])


def save_name(route: Route, rep: int, now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now()
    stamp = f"{now:%m_%d_%H_%M_%S}"
    return f"RouteScenario_{route.id}_rep{rep}_{route.town}_{scenario_name(route)}_{weather_id(route)}_{stamp}"


def scenario_name(route: Route) -> str:
    return route.scenarios[0].name if route.scenarios else "NoScenario"


def weather_id(route: Route) -> str:
    """Bench2Drive stores the index of the route's weather in leaderboard/data/weather.xml; routes here carry
    no
    such index, so the lite world reports '0' (it renders no weather)."""
    return "0"


def _metric_entry(world: LiteWorld) -> dict[str, list[float]]:
    """Bench2Drive's `get_metric_info()` values from the privileged ego state (CARLA conventions: left-handed
    vectors, degrees, deg/s)."""
    pose = world.ego_pose
    h = float(pose[2])
    yaw = -math.degrees(h)
    fwd = [math.cos(h), -math.sin(h), 0.0]
    right = [math.cos(math.radians(yaw + 90)), math.sin(math.radians(yaw + 90)), 0.0]
    lat = world.ego.speed * world.ego.yaw_rate  # right-handed, left positive
    ax = world.ego.accel * math.cos(h) - lat * math.sin(h)
    ay = world.ego.accel * math.sin(h) + lat * math.cos(h)
    x, y, z = world.ego_carla_location()
    return {
        "acceleration": [ax, -ay, 0.0],
        "angular_velocity": [0.0, 0.0, -math.degrees(world.ego.yaw_rate)],
        "forward_vector": fwd,
        "right_vector": right,
        "location": [x, y, z],
        "rotation": [0.0, 0.0, yaw],
    }


def run_route(
    route: Route,
    agent: Any,
    out_dir: Path | str,
    agent_config: str = "",
    config: LiteConfig | None = None,
    index: int = 0,
    on_step: Callable[[LiteWorld, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Drive `agent` (an agent instance, or a class / factory building one) along `route`; return its record.

    The protocol is Bench2Drive's evaluator's: agent(host, port, debug) → set_global_plan(gps, world) →
    setup(f"{agent_config}+{save_name}") → sensors() → run_step(input_data, timestamp) per 0.05 s tick →
    destroy(). `on_step(world, input_data)` is called after every tick (e.g. to save frames).
    """
    cfg = config or LiteConfig()
    out = Path(out_dir)
    if route.town not in TOWNS:
        raise ValueError(f"route {route.id}: town {route.town} has no lite map (lite towns: {', '.join(TOWNS)})")
    if cfg.max_route_m is not None:
        route = truncate_route(route, cfg.max_route_m)
    town = load_town(route.town, cfg.maps_dir)
    dense = build_dense_route(route, town)
    name = save_name(route, cfg.rep)
    base: dict[str, Any] = {
        "index": index, "route_id": route.id, "rep": cfg.rep, "scenario_name": scenario_name(route),
        "weather_id": weather_id(route), "save_name": name, "town": route.town, "route_length": dense.length,
    }  # fmt: skip
    t0 = time.monotonic()
    empty: dict[str, list[str]] = {k: [] for k in INFRACTION_KEYS}

    def early(failure: str) -> dict[str, Any]:
        return make_record(**base, infractions=empty, score_route=0, score_penalty=1.0, duration_game=0.0,
                           duration_system=time.monotonic() - t0, failure=failure)  # fmt: skip

    # Bench2Drive's evaluator order: load the world, build the agent, give it the plan, then
    # setup(agent_config + '+' + save_name) and sensors()
    try:
        world = LiteWorld(town, dense, seed=cfg.seed, num_vehicles=cfg.num_vehicles,
                          scenarios=route.scenarios if cfg.scenarios else (), route_id=route.id)  # fmt: skip
    except Exception as exc:
        print(f"lite: route {route.id}: the world could not be built: {exc}")
        return early("Simulation crashed")
    failure = ""
    metric: dict[str, Any] = {}
    with world:
        try:
            if isinstance(agent, type):
                instance = instantiate(agent)
            else:
                instance = agent if hasattr(agent, "run_step") else agent()
            instance.set_global_plan(*global_plan(dense, town))
            instance.setup(f"{agent_config}+{name}")
            specs = parse_sensors(instance.sensors())
        except SensorSpecError as exc:
            print(f"lite: route {route.id}: {exc}")
            return early("Agent's sensors were invalid")
        except Exception:
            traceback.print_exc()
            return early("Agent couldn't be set up")
        criteria = RouteCriteria(world, max_ticks=cfg.max_ticks)
        if hasattr(instance, "set_lite_world"):
            instance.set_lite_world(world)
        if callable(getattr(instance, "set_world_observer", None)):  # recordings: the world around the ego
            instance.set_world_observer(functools.partial(world_view, world))
        sent = 0

        def forward_events() -> None:  # the criteria's infractions, timestamped, into the agent's recording
            nonlocal sent
            if callable(getattr(instance, "record_event", None)):
                for ev in criteria.events[sent:]:
                    extra = {k: v for k, v in ev.items() if k not in ("t", "kind", "message")}
                    instance.record_event(ev["kind"], ev["message"], timestamp=ev["t"], source="evaluator", **extra)
            sent = len(criteria.events)

        while not criteria.done:
            input_data = world.read_sensors(specs)
            try:
                control = as_control(instance.run_step(input_data, world.time))
            except Exception:
                traceback.print_exc()
                failure = "Agent crashed"
                break
            try:
                world.step(control)
            except Exception:
                traceback.print_exc()
                failure = "Simulation crashed"
                break
            criteria.update(world)
            if len(criteria.events) > sent:
                forward_events()
            if cfg.metric_info:
                metric[str(world.frame - 1)] = _metric_entry(world)
            if on_step is not None:
                on_step(world, input_data)
        criteria.finish()
        forward_events()
        duration_game = world.time
        staged = world.scenarios.records()
        agent_stats = None
        if callable(getattr(instance, "episode_stats", None)):
            try:
                agent_stats = instance.episode_stats()
            except Exception:
                traceback.print_exc()
    try:
        instance.destroy()
    except Exception:
        traceback.print_exc()
    metric_path = out / name / "metric_info.json"
    if cfg.metric_info and not metric_path.exists():  # an agent may have written its own (Bench2Drive agents do)
        write_json_atomic(metric_path, metric)
    record = make_record(
        **base,
        infractions=criteria.infractions,
        score_route=criteria.route_completion,
        score_penalty=criteria.penalty(),
        duration_game=duration_game,
        duration_system=time.monotonic() - t0,
        failure=failure or criteria.failure,
    )
    record["meta"]["world"] = "lite"  # not CARLA: reports mark such runs (bench2drive.results.LITE_WORLD)
    record["meta"]["infraction_events"] = criteria.events  # each message with its simulation time (lite only)
    record["meta"]["lite_scenarios"] = staged  # which scenarios were staged, triggered, ended (lite only)
    # red lights met on the route (front within 15 m of a red stop line of its lane) and run (lite only)
    record["meta"]["red_lights"] = {
        "encountered": len(criteria.red_encounters),
        "run": len(criteria.infractions.get("red_light", [])),
    }
    if agent_stats is not None:
        record["meta"]["agent_stats"] = agent_stats  # the agent's own per-route figures (lite only)
    return record


def run_routes(
    routes: list[Route],
    agent_factory: Callable[[], Any],
    checkpoint_path: Path | str,
    agent_config: str = "",
    config: LiteConfig | None = None,
    resume: bool = True,
    out_dir: Path | str | None = None,
    on_step: Callable[[LiteWorld, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run routes in order into one leaderboard checkpoint (rewritten after every route); resumes by skipping
    routes whose record is already there. A fresh agent is built per route, as the leaderboard does.
    `out_dir` (default: the checkpoint's folder) receives the per-route `<save_name>/metric_info.json`."""
    path = Path(checkpoint_path)
    records = read_records(path) if resume else []
    done = {r["route_id"] for r in records}
    sensors: list[str] = []
    if path.is_file() and resume:
        sensors = list(json.loads(path.read_text()).get("sensors", []))
    cfg = config or LiteConfig()
    for route in routes:
        rid = f"RouteScenario_{route.id}_rep{cfg.rep}"
        if rid in done:
            continue
        agent = agent_factory()
        if not sensors:
            try:
                sensors = sensor_tags(parse_sensors(agent.sensors()))
            except Exception:
                sensors = []
        target = Path(out_dir) if out_dir is not None else path.parent
        rec = run_route(route, agent, target, agent_config, cfg, index=len(records), on_step=on_step)
        records.append(rec)
        done.add(rid)
        print(
            f"lite: {rec['route_id']} {route.town}: {rec['status']}  "
            f"DS {rec['scores']['score_composed']:.2f}  "
            f"RC {rec['scores']['score_route']}  penalty {rec['scores']['score_penalty']}  "
            f"({rec['meta']['duration_game']:.1f} s simulated in {rec['meta']['duration_system']:.1f} s)"
        )
        write_json_atomic(path, checkpoint(records, len(routes), sensors))
        if "Simulation crashed" in rec["status"] or "sensors were invalid" in rec["status"]:
            break  # the leaderboard stops the whole evaluation on these
    result = checkpoint(records, len(routes), sensors)
    write_json_atomic(path, result)
    return result

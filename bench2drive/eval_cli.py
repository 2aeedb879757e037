"""`drive-jepa eval`: run Bench2Drive routes closed-loop on N CARLA servers; rerun the same command to resume.

Convenience flags map onto config keys (shown in brackets); any key of the `eval` config can also be given as
`key=value` (see `--cfg`). Layout of the output folder and resume rules: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from drive_jepa.config import add_config_arguments, run_with_config

EPILOG = """examples:
  # the 220 routes on a 4-GPU box, one CARLA server per GPU; rerun the same line to resume after a crash
  drive-jepa eval --agent agent/leaderboard_agent.py --agent-config cfg.yaml --gpus 0,1,2,3 --out runs/b220

  # attach to servers someone else runs (host:rpc_port:tm_port), only the Merging ability, 3 repetitions
  drive-jepa eval --agent a.py --attach 10.0.0.5:2000:8000 --abilities Merging --repetitions 3

  # on an existing Ray cluster, one server per GPU wherever Ray places it
  drive-jepa eval --agent a.py --ray-address auto ray.gpus_per_server=1 servers.gpus=[0,1,2,3,4,5,6,7]
"""


def _q(value: str) -> str:
    """Quote a string for a Hydra override (paths with '+', ':' or spaces stay one value)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _list(values: list[str]) -> str:
    return "[" + ",".join(_q(v) for v in values) + "]"


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa eval",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--routes", help="route XML [routes]; default $BENCH2DRIVE_ROOT/leaderboard/data/bench2drive220.xml")
    p.add_argument("--agent", help="the agent's .py file (get_entry_point) [agent]")
    p.add_argument("--agent-config", help="passed to the agent's setup() [agent_config]")
    p.add_argument("--out", help="output folder [out]; rerunning with the same folder resumes")
    p.add_argument("--world", choices=["carla", "lite"], help="carla (default) or the CPU lite world [servers.world]")
    p.add_argument("--gpus", help="comma list of GPU indices, one CARLA server each [servers.gpus]")
    p.add_argument("--servers-per-gpu", type=int, help="[servers.servers_per_gpu]")
    p.add_argument("--attach", action="append", metavar="HOST:RPC:TM", help="use a running server [servers.attach]")
    p.add_argument("--route-ids", help="comma list of route ids [select.route_ids]")
    p.add_argument("--towns", help="comma list, e.g. Town12,Town13 [select.towns]")
    p.add_argument("--scenario-types", help="comma list of first-scenario types [select.scenario_types]")
    p.add_argument("--abilities", help="comma list of Overtaking,Merging,Emergency_Brake,Give_Way,Traffic_Signs")
    p.add_argument("--repetitions", type=int, help="[repetitions]")
    p.add_argument("--record", action="store_true", help="keep CARLA recorder logs per route [record]")
    p.add_argument("--durations", action="append", metavar="CSV", help="earlier per-route durations [durations]")
    p.add_argument("--ray-address", help="an existing Ray cluster; default a local Ray instance [ray.address]")
    p.add_argument("--no-ray", action="store_true", help="run servers in threads of this process [ray.enabled]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar [progress]")
    p.add_argument(
        "--retry",
        action="append",
        choices=["agent_crash"],
        help="also rerun done routes whose outcome was this (after fixing the agent) [retry]",
    )
    p.add_argument(
        "--new-run",
        action="store_true",
        help="--out holds a run of another agent: move it to OUT/previous/<time>/ and start afresh [new_run]",
    )
    add_config_arguments(p)
    return p


def flags_to_overrides(ns: argparse.Namespace) -> list[str]:
    o: list[str] = []
    for flag, key in (
        ("routes", "routes"),
        ("agent", "agent"),
        ("agent_config", "agent_config"),
        ("out", "out"),
        ("ray_address", "ray.address"),
    ):
        if getattr(ns, flag) is not None:
            o.append(f"{key}={_q(getattr(ns, flag))}")
    if ns.world is not None:
        o.append(f"servers.world={ns.world}")
    if ns.gpus is not None:
        gpus = _csv(ns.gpus)
        bad = [g for g in gpus if not g.isdigit()]
        if bad or not gpus:
            raise ValueError(f"--gpus {ns.gpus!r}: expected a comma list of GPU indices, e.g. 0,1,2,3")
        o.append(f"servers.gpus=[{','.join(str(int(g)) for g in gpus)}]")
    if ns.servers_per_gpu is not None:
        o.append(f"servers.servers_per_gpu={ns.servers_per_gpu}")
    if ns.attach:
        o.append(f"servers.attach={_list(ns.attach)}")
    for flag, key in (
        ("route_ids", "select.route_ids"),
        ("towns", "select.towns"),
        ("scenario_types", "select.scenario_types"),
        ("abilities", "select.abilities"),
    ):
        if getattr(ns, flag) is not None:
            o.append(f"{key}={_list(_csv(getattr(ns, flag)))}")
    if ns.repetitions is not None:
        o.append(f"repetitions={ns.repetitions}")
    if ns.record:
        o.append("record=true")
    if ns.durations:
        o.append(f"durations={_list(ns.durations)}")
    if ns.no_ray:
        o.append("ray.enabled=false")
    if ns.no_progress:
        o.append("progress=false")
    if ns.new_run:
        o.append("new_run=true")
    if ns.retry:
        o.append(f"retry={_list(ns.retry)}")
    return o


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same clean shutdown as Ctrl-C: stop the jobs and servers this run started


def main(argv: list[str]) -> int:
    from bench2drive.harness.config import EvalConfig
    from bench2drive.harness.run import EvalSetupError, evaluate, finish
    from bench2drive.harness.selection import SelectionError
    from drive_jepa.routes import RouteFileError

    ns = build_parser().parse_intermixed_args(argv)
    # `world=lite` is short for `servers.world=lite` (the and the README's spelling)
    given = [f"servers.{o}" if o.startswith("world=") else o for o in ns.overrides]
    try:
        ns.overrides = flags_to_overrides(ns) + given
    except ValueError as exc:
        print(f"drive-jepa eval: {exc}", file=sys.stderr)
        return 2

    def run(cfg: EvalConfig) -> int:
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
        try:
            summary, store = evaluate(cfg)
        except (EvalSetupError, SelectionError, RouteFileError, ValueError) as exc:
            print(f"drive-jepa eval: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(
                "drive-jepa eval: interrupted; jobs and servers stopped. Rerun the same command to resume.",
                file=sys.stderr,
            )
            return 130
        print(finish(store, Path(cfg.out).resolve()))
        counts = store.counts()
        print(
            f"routes: {summary.total} selected, {summary.done_before} already done, "
            f"{summary.finished} finished, {summary.agent_crash} agent crash, "
            f"{summary.setup_failed} agent setup failed, "
            f"{summary.failed} failed after retries, {summary.retried} retried, "
            f"{summary.left} left; store: {counts}"
        )
        if summary.servers_down:
            print(f"servers given up: {', '.join(summary.servers_down)}", file=sys.stderr)
        if summary.stopped:
            print(f"drive-jepa eval: stopped: {summary.stopped}", file=sys.stderr)
            return 2
        return 0 if summary.failed == 0 and summary.setup_failed == 0 and summary.left == 0 else 1

    return run_with_config("eval", EvalConfig, ns, run)

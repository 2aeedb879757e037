"""Run Bench2Drive's `leaderboard_evaluator.main()` against a CARLA server that is already running.

Usage (what the harness runs, in `$BENCH2DRIVE_ROOT`, with the leaderboard on PYTHONPATH):

    python leaderboard_attach.py <the exact leaderboard_evaluator.py arguments>

Bench2Drive's evaluator (7ec25d1) launches its own `CarlaUE4.sh` in `LeaderboardEvaluator._setup_simulation`
on `find_free_port(--port)`; since a running server holds that port, it would start a second server elsewhere,
and on a crash its kill-by-name cleanup does not stop it. This launcher keeps everything else of the evaluator
(argument parsing, route loop, statistics, checkpoint writing, exit code) and replaces only that setup
method by
one that connects to `--host:--port` and applies the same world settings the original applies: synchronous
mode
at 20 Hz, deterministic ragdolls, no spectator-as-ego, and a Traffic Manager on `--traffic-manager-port` in
synchronous hybrid-physics mode.

It also accepts the PyPI `carla-0-9-15` client (the Python 3.11 build of the 0.9.15 client), whose
distribution
name is not `carla`, for the evaluator's `pkg_resources.get_distribution("carla")` version check.

This file is executed as a script in the job's environment; it imports only the standard library, `carla` and
the leaderboard.
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
import types
from typing import Any


def _attach_setup(self: Any, args: Any) -> tuple[Any, float, Any]:
    """Connect to the running server at args.host:args.port (replaces the server-launching setup)."""
    import carla

    client = carla.Client(args.host, args.port)
    timeout = float(args.timeout) if args.timeout else float(self.client_timeout)
    client.set_timeout(timeout)
    last_error: Exception | None = None
    for attempt in range(5):
        try:
            settings = carla.WorldSettings(
                synchronous_mode=True,
                fixed_delta_seconds=1.0 / self.frame_rate,
                deterministic_ragdolls=True,
                spectator_as_ego=False,
            )
            client.get_world().apply_settings(settings)
            traffic_manager = client.get_trafficmanager(args.traffic_manager_port)
            traffic_manager.set_synchronous_mode(True)
            traffic_manager.set_hybrid_physics_mode(True)
            print(f"attached to CARLA at {args.host}:{args.port}, TM {args.traffic_manager_port}", flush=True)
            return client, timeout, traffic_manager
        except RuntimeError as exc:  # the carla client raises RuntimeError on time-outs
            last_error = exc
            print(f"attach attempt {attempt} failed: {exc}", flush=True)
            time.sleep(5)
    raise RuntimeError(f"could not attach to CARLA at {args.host}:{args.port}: {last_error}")


class _Distribution:
    def __init__(self, version: str) -> None:
        self.version = version


def _get_distribution(name: str) -> _Distribution:
    for dist in (name, "carla-0-9-15") if name == "carla" else (name,):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        return _Distribution("0.9.15" if dist == "carla-0-9-15" else version)
    raise importlib.metadata.PackageNotFoundError(name)


def main() -> None:
    from leaderboard import leaderboard_evaluator as evaluator

    evaluator.LeaderboardEvaluator._setup_simulation = _attach_setup
    evaluator.pkg_resources = types.SimpleNamespace(get_distribution=_get_distribution)
    sys.argv[0] = evaluator.__file__ or sys.argv[0]
    evaluator.main()


if __name__ == "__main__":
    main()

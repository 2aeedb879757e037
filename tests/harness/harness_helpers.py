"""Harness test helpers: paths of the stand-in server/evaluator executables and a fast config."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench2drive.harness.config import EvalConfig

STANDINS = Path(__file__).parent / "standins"
FAKE_SERVER = STANDINS / "fake_carla_server.py"
FAKE_EVALUATOR = STANDINS / "fake_evaluator.py"


def load_factor() -> float:
    """How much slower than a quiet machine this one is now: the 1-minute load average per core, at least 1 and
    at most 6. The harness tests' time budgets (watchdog, server start) are multiplied by it, so that a loaded
    machine (CI beside other jobs, a suite run in parallel) slows them down instead of turning a crash that took
    long to happen into a 'no progress' timeout."""
    import os

    try:
        per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(6.0, max(1.0, per_core))


def write_plan(path: Path, plan: Any) -> str:
    path.write_text(json.dumps(plan))
    return str(path)


def fast_config(
    tmp_path: Path,
    b2d_root: Path,
    routes: Path,
    eval_plan: dict[str, list[str]] | None = None,
    server_plan: list[str] | None = None,
    servers: int = 2,
    **overrides: Any,
) -> EvalConfig:
    """An EvalConfig that runs the stand-ins with short timeouts (threads, no Ray, no progress bar)."""
    state = tmp_path / "server_state"
    state.mkdir(exist_ok=True)
    env = {"FAKE_EVAL_DURATION_S": "0.1"}
    server_env = {"FAKE_SERVER_STATE": str(state)}
    if eval_plan is not None:
        env["FAKE_EVAL_PLAN"] = write_plan(tmp_path / "eval_plan.json", eval_plan)
    if server_plan is not None:
        server_env["FAKE_SERVER_PLAN"] = write_plan(tmp_path / "server_plan.json", server_plan)
    (tmp_path / "agent.py").write_text("def get_entry_point():\n    return 'Agent'\n")
    cfg = EvalConfig(
        out=str(tmp_path / "out"),
        routes=str(routes),
        bench2drive_root=str(b2d_root),
        agent=str(tmp_path / "agent.py"),
        agent_config="cfg.yaml+ckpt.pth",
        progress=False,
        preflight=False,  # the stand-in agent is a name only; tests/harness/test_preflight.py covers the check
    )
    cfg.servers.gpus = list(range(servers))
    cfg.servers.launch_command = [sys.executable, str(FAKE_SERVER)]
    cfg.servers.rpc_base_port = 21000
    cfg.servers.tm_base_port = 26000
    slow = load_factor()
    cfg.servers.ready_timeout_s = 10.0 * slow
    cfg.servers.probe_timeout_s = 1.0 * slow
    cfg.servers.stop_timeout_s = 2.0 * slow
    cfg.evaluator.launcher = [str(FAKE_EVALUATOR)]
    cfg.evaluator.extra_env = env
    cfg.servers.extra_env = server_env
    cfg.watchdog.no_progress_s = 1.0 * slow
    cfg.watchdog.route_timeout_s = 20.0 * slow
    cfg.watchdog.poll_s = 0.05
    cfg.watchdog.frame_probe_s = 0.0
    cfg.watchdog.kill_grace_s = 1.0 * slow
    cfg.ray.enabled = False
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg

"""Agent preflight: before the first route, check the agent the way the evaluator will load it.

One subprocess with the evaluator's interpreter, environment (PYTHONPATH with the leaderboard, scenario_runner and
CARLA's PythonAPI) and working directory ($BENCH2DRIVE_ROOT): the agent file imports, `get_entry_point()` names a
class in it, and, when that class has a `preflight(agent_config)` hook (drive-jepa's agent has), the config loads,
the checkpoint loads and the sensors are valid. A failure is one line naming what failed; nothing is recorded.
Other agents (UniAD, VAD, …) get the import check only: their setup() needs a running simulator.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench2drive.harness.evaluator import job_environment
from bench2drive.harness.job import JobSettings

_CODE = """
import importlib, os, sys
path, conf = sys.argv[1], sys.argv[2]
try:  # as leaderboard_evaluator.py loads it: the file's folder on sys.path, then import by module name
    sys.path.insert(0, os.path.dirname(path))
    module = importlib.import_module(os.path.basename(path).split(".")[0])
except Exception as exc:
    sys.exit(f"agent file {path} does not import: {type(exc).__name__}: {exc}".splitlines()[0])
entry = getattr(module, "get_entry_point", None)
if entry is None:
    sys.exit(f"agent file {path}: no get_entry_point()")
name = entry()
cls = getattr(module, name, None)
if cls is None:
    sys.exit(f"agent file {path}: get_entry_point() names {name!r}, which the file does not define")
hook = getattr(cls, "preflight", None)
if not callable(hook):
    print(f"{name}: imports (no preflight hook: its config is checked by setup() in the first route)")
    sys.exit(0)
try:
    print(hook(conf))
except Exception as exc:
    sys.exit(f"agent config {conf or '(defaults)'}: {type(exc).__name__}: {exc}".splitlines()[0])
"""


class PreflightError(ValueError):
    """The agent cannot run: one line naming the file / config and the reason."""


def preflight_agent(settings: JobSettings, timeout_s: float = 600.0) -> str:
    """Run the check; returns the agent's one-line summary or raises `PreflightError`."""
    python = settings.python or sys.executable
    with tempfile.TemporaryDirectory(prefix="drive-jepa-preflight-") as save:
        env = job_environment(
            bench2drive_root=Path(settings.bench2drive_root),
            carla_root=settings.carla_root,
            save_path=Path(save),
            gpu=None,
            track=settings.track,
            extra=dict(settings.extra_env),
        )
        try:
            proc = subprocess.run(
                [python, "-c", _CODE, settings.agent, settings.agent_config],
                cwd=settings.bench2drive_root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PreflightError(f"agent preflight: loading {settings.agent} took over {timeout_s:.0f} s") from None
        except OSError as exc:
            raise PreflightError(f"agent preflight: cannot start {python}: {exc}") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise PreflightError(f"agent preflight failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    out = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    return out[-1] if out else "agent ok"

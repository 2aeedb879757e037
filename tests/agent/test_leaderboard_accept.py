"""The agent against Bench2Drive's REAL leaderboard classes (../shared/tools/leaderboard_accept.py): the evaluator
module imports with the project's environment, and the agent passes the sensor and call contract with the default
config and with the shipped trained checkpoint. Needs a Bench2Drive 7ec25d1 checkout ($BENCH2DRIVE_ROOT: its
leaderboard/ and scenario_runner/) and CARLA's PythonAPI `agents` package ($CARLA_ROOT/PythonAPI/carla); skips
with the reason otherwise (docs/evaluation.md, "Checking the agent against the real leaderboard")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.bench2drive, pytest.mark.slow]

TOOL = REPO_ROOT.parent / "shared" / "tools" / "leaderboard_accept.py"
ROUTES = REPO_ROOT.parent / "shared" / "fixtures" / "bench2drive" / "routes" / "bench2drive220.xml"


def _env() -> dict[str, str]:
    b2d, carla_root = os.environ.get("BENCH2DRIVE_ROOT", ""), os.environ.get("CARLA_ROOT", "")
    if not b2d or not (Path(b2d) / "leaderboard" / "leaderboard" / "leaderboard_evaluator.py").is_file():
        pytest.skip("BENCH2DRIVE_ROOT does not point at a Bench2Drive checkout (leaderboard/, scenario_runner/)")
    agents = Path(carla_root) / "PythonAPI" / "carla"
    if not carla_root or not (agents / "agents" / "navigation" / "local_planner.py").is_file():
        pytest.skip("CARLA_ROOT has no PythonAPI/carla/agents (CARLA's navigation package the leaderboard imports)")
    if not TOOL.is_file():
        pytest.skip(f"{TOOL} not found (standalone checkout without ../shared)")
    paths = [str(Path(b2d) / "leaderboard"), str(Path(b2d) / "scenario_runner"), str(agents)]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def test_the_real_evaluator_module_imports_with_the_project_environment():
    env = _env()
    proc = subprocess.run([sys.executable, "-c", "import leaderboard.leaderboard_evaluator"], env=env,
                          capture_output=True, text=True, cwd=os.environ["BENCH2DRIVE_ROOT"], check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]


@pytest.mark.parametrize("model", ["route_follow", "shipped checkpoint"])
def test_the_agent_passes_the_real_leaderboard_contract(tmp_path: Path, model: str):
    env = _env()
    conf = tmp_path / "agent.yaml"
    if model == "route_follow":
        conf.write_text("model: route_follow\n")
    else:
        shipped = REPO_ROOT / "agent" / "checkpoints" / "drive_jepa_lite"
        conf.write_text(f"model: checkpoint\ncheckpoint: {shipped}\nthreads: 1\n")
    cmd = [sys.executable, str(TOOL), "--agent-file", str(REPO_ROOT / "agent" / "leaderboard_agent.py"),
           "--agent-config", str(conf), "--routes", str(ROUTES), "--ticks", "20"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    verdict = (proc.stdout.strip().splitlines() or [""])[-1]
    assert proc.returncode == 0 and verdict.startswith("OK: "), verdict or proc.stderr[-2000:]

"""Outcome classification rules and the evaluator command line / environment against Bench2Drive's."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import signal
import sys
from pathlib import Path

import pytest

from bench2drive.harness.checkpoint import read_checkpoint
from bench2drive.harness.evaluator import (
    REQUIRED_OPTIONS,
    JobPaths,
    evaluator_args,
    job_environment,
    option_names,
)
from bench2drive.harness.outcome import Outcome, classify
from carla_tools.server import Endpoint
from drive_jepa.leaderboard_format import EVALUATOR_OPTIONS
from tests.harness.harness_helpers import FAKE_EVALUATOR


@pytest.mark.parametrize(
    ("code", "status", "log", "expected"),
    [
        (0, "Completed", "", Outcome.FINISHED),
        (0, "Failed - TickRuntime", "", Outcome.FINISHED),
        (-11, "Failed - Agent got blocked", "", Outcome.FINISHED),  # crashed after writing the record
        (255, "Failed - Simulation crashed", "RuntimeError: time-out", Outcome.SIM_CRASH),
        (0, "Failed - Agent crashed", "", Outcome.AGENT_CRASH),
        (0, "Failed - Agent couldn't be set up", "", Outcome.AGENT_SETUP),
        (0, "Failed - Agent's sensors were invalid", "", Outcome.AGENT_SETUP),
        (-11, None, "", Outcome.SIM_CRASH),
        (3, None, "RuntimeError: time-out of 600000ms while waiting for the simulator", Outcome.SIM_CRASH),
        (0, None, "", Outcome.SIM_CRASH),
        (1, None, "Could not set up the required agent:\nTraceback", Outcome.AGENT_SETUP),
        (
            1,
            None,
            'File "leaderboard_evaluator.py", line 118, in __init__\n'
            "    self.module_agent = importlib.import_module(module_name)\n"
            "ModuleNotFoundError: No module named 'x'",
            Outcome.AGENT_SETUP,
        ),
    ],
)
def test_classify(code: int, status: str | None, log: str, expected: Outcome) -> None:
    record = None if status is None else {"route_id": "RouteScenario_1_rep0", "status": status}
    outcome, reason = classify(code, record, log)
    assert outcome is expected
    assert reason
    if code == -11 and record is None:
        assert reason == "no record, killed by SIGSEGV"
    if code == 3:
        assert "time-out of 600000ms" in reason
    assert expected.infrastructure == (expected in (Outcome.SIM_CRASH, Outcome.TIMEOUT))


def test_classify_kill_reason_wins() -> None:
    assert classify(-signal.SIGTERM, None, "", (Outcome.TIMEOUT, "no progress for 5 s (watchdog)")) == (
        Outcome.TIMEOUT,
        "no progress for 5 s (watchdog)",
    )


def test_truncated_checkpoint_reads_as_no_records(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"_checkpoint": {"records": [{"route_id": "RouteSc')
    read = read_checkpoint(path)
    assert read.records == [] and read.error and "unreadable" in read.error
    assert read_checkpoint(tmp_path / "missing.json").error


def _paths(tmp_path: Path, record: bool) -> JobPaths:
    return JobPaths(
        tmp_path,
        tmp_path / "checkpoint.json",
        tmp_path / "live.txt",
        tmp_path / "log",
        tmp_path / "agent",
        tmp_path / "rec" if record else None,
    )


def _args(tmp_path: Path, record: bool = True) -> list[str]:
    return evaluator_args(
        routes=tmp_path / "r.xml",
        route_id="1711",
        agent="/a/agent.py",
        agent_config="cfg.py+ckpt.pth",
        endpoint=Endpoint("127.0.0.1", 2003, 8001, 2),
        paths=_paths(tmp_path, record),
        timeout_s=600.0,
    )


def test_command_uses_only_bench2drive_options(tmp_path: Path) -> None:
    args = _args(tmp_path)
    names = option_names(args)
    assert set(names) <= set(EVALUATOR_OPTIONS) and set(REQUIRED_OPTIONS) <= set(names)
    assert len(names) == len(set(names))
    assert "--resume" not in names  # type=bool upstream: any value would mean True
    # The stand-in evaluator's parser declares Bench2Drive's options with their types and defaults.
    spec = importlib.util.spec_from_file_location("fake_evaluator", FAKE_EVALUATOR)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    ns: argparse.Namespace = module.parser().parse_args(args)
    assert (ns.port, ns.traffic_manager_port, ns.gpu_rank, ns.routes_subset, ns.repetitions) == (
        2003,
        8001,
        2,
        "1711",
        1,
    )
    assert ns.agent_config == "cfg.py+ckpt.pth" and ns.record == str(tmp_path / "rec") and ns.timeout == 600.0
    assert "--record" not in option_names(_args(tmp_path, record=False))


def _upstream_options(path: Path) -> list[str]:
    """Option strings of every `parser.add_argument(...)` call in the evaluator (read, never imported)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            out += [a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")]
    return out


def test_options_match_the_real_evaluator() -> None:
    root = os.environ.get("BENCH2DRIVE_ROOT")
    path = Path(root or "/nonexistent") / "leaderboard" / "leaderboard" / "leaderboard_evaluator.py"
    if not path.is_file():
        pytest.skip("BENCH2DRIVE_ROOT with leaderboard/leaderboard/leaderboard_evaluator.py is not available")
    assert tuple(_upstream_options(path)) == EVALUATOR_OPTIONS


def test_job_environment(tmp_path: Path) -> None:
    env = job_environment(
        bench2drive_root=Path("/b2d"),
        carla_root="/carla",
        save_path=tmp_path,
        gpu=3,
        base={"PYTHONPATH": "/x", "HOME": "/h"},
        extra={"A": "1"},
    )
    assert env["PYTHONPATH"].split(os.pathsep) == [
        "/carla/PythonAPI",
        "/carla/PythonAPI/carla",
        "/b2d/leaderboard",
        "/b2d/leaderboard/team_code",
        "/b2d/scenario_runner",
        "/x",
    ]
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["SAVE_PATH"] == str(tmp_path) and env["A"] == "1"
    assert env["CARLA_ROOT"] == "/carla" and env["SCENARIO_RUNNER_ROOT"] == "/b2d/scenario_runner"
    assert env["HOME"] == "/h"


def test_attach_launcher_patches_only_the_server_setup(tmp_path: Path) -> None:
    """Run leaderboard_attach.py against a tiny stand-in `leaderboard` package: main() runs with our argv, the
    server-launching setup is replaced, and the carla-0-9-15 distribution passes the version check."""
    pkg = tmp_path / "lb" / "leaderboard"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "leaderboard_evaluator.py").write_text(
        "import sys\n"
        "class _Orig:\n"  # stands for pkg_resources, which finds no 'carla' distribution here
        "    @staticmethod\n"
        "    def get_distribution(name):\n"
        "        raise LookupError(name)\n"
        "pkg_resources = _Orig\n"
        "class LeaderboardEvaluator:\n"
        "    client_timeout = 300.0\n"
        "    frame_rate = 20.0\n"
        "    def _setup_simulation(self, args):\n"
        "        raise SystemExit('original setup must not run')\n"
        "def main():\n"
        "    ev = LeaderboardEvaluator()\n"
        "    print('dist', pkg_resources.get_distribution('carla').version)\n"
        "    print('argv', sys.argv[1:])\n"
        "    print('setup', LeaderboardEvaluator._setup_simulation.__name__)\n"
    )
    import subprocess

    from bench2drive.harness.evaluator import ATTACH_LAUNCHER

    env = {**os.environ, "PYTHONPATH": str(tmp_path / "lb")}
    out = subprocess.run(
        [sys.executable, str(ATTACH_LAUNCHER), "--port=2003"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "dist 0.9.15" in out and "argv ['--port=2003']" in out and "setup _attach_setup" in out


def test_eval_bad_gpu_list_is_a_one_line_error(capsys) -> None:
    from drive_jepa.cli import main

    assert main(["eval", "--gpus", "abc", "--agent", "agent.py"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "drive-jepa eval: --gpus 'abc': expected a comma list of GPU indices, e.g. 0,1,2,3"


def test_the_same_agent_is_recognised_across_paths_and_told_apart_by_content() -> None:
    from bench2drive.harness.run import same_agent

    a = {"agent": "/x/agent/leaderboard_agent.py", "agent_config": "/x/run/agent.yaml", "agent_config_sha256": "1"}
    moved = {"agent": "agent/leaderboard_agent.py", "agent_config": "run/agent.yaml", "agent_config_sha256": "1"}
    assert same_agent(a, moved)  # a run folder written with relative paths, or a moved checkout
    assert not same_agent(a, {**a, "agent_config_sha256": "2"})  # the same file, other content
    assert not same_agent(a, {**a, "agent": "/x/other_agent.py"})
    uniad = {"agent": "uniad_b2d_agent.py", "agent_config": "cfg.py+ckpt.pth", "agent_config_sha256": None}
    assert same_agent(uniad, dict(uniad)) and not same_agent(uniad, {**uniad, "agent_config": "cfg.py+other.pth"})

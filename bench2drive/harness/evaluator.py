"""The command line and environment of one leaderboard job (one route, one repetition).

Facts from Bench2Drive (Thinklab-SJTU/Bench2Drive @ 7ec25d1,
`leaderboard/leaderboard/leaderboard_evaluator.py`
`main()` and `leaderboard/scripts/run_evaluation.sh`):

- options: --host --port --traffic-manager-port --traffic-manager-seed --debug --record --timeout --routes
  --routes-subset --repetitions -a/--agent --agent-config --track --resume --checkpoint --debug-checkpoint
  --gpu-rank (`drive_jepa.leaderboard_format.EVALUATOR_OPTIONS`); `--resume` is `type=bool`, so any
  non-empty value means True — we never pass it (each attempt starts from an empty checkpoint of its own);
- the evaluator reads `leaderboard/data/weather.xml` relative to the working directory, so jobs run in
  `$BENCH2DRIVE_ROOT`;
- PYTHONPATH holds `$CARLA_ROOT/PythonAPI`, `$CARLA_ROOT/PythonAPI/carla` (the `agents` package),
  `leaderboard`, `leaderboard/team_code` and `scenario_runner`; SCENARIO_RUNNER_ROOT, LEADERBOARD_ROOT,
  CHALLENGE_TRACK_CODENAME, IS_BENCH2DRIVE, SAVE_PATH (the agent's output folder) are exported and
  CUDA_VISIBLE_DEVICES is the GPU rank;
- the evaluator itself launches `CarlaUE4.sh` on `find_free_port(--port)`, which skips a port a running server
  holds. To run against the server this harness manages, jobs go through `leaderboard_attach.py`, which runs
  the
  same `main()` with the same arguments after replacing only the server-launching setup by a connection to
  `--host:--port` (see that file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from carla_tools.server import Endpoint

REQUIRED_OPTIONS: tuple[str, ...] = ("--routes", "--agent")

ATTACH_LAUNCHER = Path(__file__).with_name("leaderboard_attach.py")


@dataclass(frozen=True)
class JobPaths:
    """Files of one attempt. `checkpoint` is the leaderboard's --checkpoint (results format A)."""

    attempt_dir: Path
    checkpoint: Path
    debug_checkpoint: Path
    log: Path
    save_path: Path
    record_dir: Path | None


def evaluator_args(
    *,
    routes: Path,
    route_id: str,
    agent: str,
    agent_config: str,
    endpoint: Endpoint,
    paths: JobPaths,
    track: str = "SENSORS",
    timeout_s: float = 600.0,
    tm_seed: int = 0,
    debug: int = 0,
) -> list[str]:
    """The leaderboard arguments for one route (`--routes-subset <id>`, one repetition), as `--opt=value`."""
    args = [
        f"--routes={routes}",
        f"--routes-subset={route_id}",
        "--repetitions=1",
        f"--track={track}",
        f"--checkpoint={paths.checkpoint}",
        f"--debug-checkpoint={paths.debug_checkpoint}",
        f"--agent={agent}",
        f"--agent-config={agent_config}",
        f"--debug={debug}",
        f"--host={endpoint.host}",
        f"--port={endpoint.port}",
        f"--traffic-manager-port={endpoint.tm_port}",
        f"--traffic-manager-seed={tm_seed}",
        f"--timeout={timeout_s:g}",
        f"--gpu-rank={endpoint.gpu if endpoint.gpu is not None else 0}",
    ]
    if paths.record_dir is not None:
        args.append(f"--record={paths.record_dir}")
    return args


def option_names(args: list[str]) -> list[str]:
    """The option names used in an argument list (`--a=b` and `--a b` forms)."""
    return [a.split("=", 1)[0] for a in args if a.startswith("-")]


def job_environment(
    *,
    bench2drive_root: Path,
    carla_root: str,
    save_path: Path,
    gpu: int | None,
    track: str = "SENSORS",
    extra: dict[str, str] | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one evaluator process (base = this process's environment by default)."""
    env = dict(os.environ if base is None else base)
    b2d = bench2drive_root
    paths = []
    if carla_root:
        paths += [f"{carla_root}/PythonAPI", f"{carla_root}/PythonAPI/carla"]
    paths += [str(b2d / "leaderboard"), str(b2d / "leaderboard" / "team_code"), str(b2d / "scenario_runner")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if carla_root:
        env["CARLA_ROOT"] = carla_root
    env["SCENARIO_RUNNER_ROOT"] = str(b2d / "scenario_runner")
    env["LEADERBOARD_ROOT"] = str(b2d / "leaderboard")
    env["CHALLENGE_TRACK_CODENAME"] = track
    env["IS_BENCH2DRIVE"] = "True"
    env["SAVE_PATH"] = str(save_path)
    env["PYTHONUNBUFFERED"] = "1"
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.update(extra or {})
    return env

"""One attempt of one route: the leaderboard evaluator as a supervised subprocess.

The evaluator runs in its own session (process group) so that it and everything it spawns (the agent's worker
processes) can be killed together. A watchdog kills it when nothing shows progress for `no_progress_s` seconds
— progress being new output in its log, a rewritten checkpoint, new files from the agent, or (CARLA) an
advancing world frame — or when the route exceeds `route_timeout_s` of wall time, or when its server process
died. The result is classified by `outcome.classify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench2drive.harness.checkpoint import read_checkpoint, route_number
from bench2drive.harness.evaluator import ATTACH_LAUNCHER, JobPaths, evaluator_args, job_environment
from bench2drive.harness.outcome import Outcome, classify
from carla_tools.procs import stop_recorded_group, terminate_group, write_group_file
from carla_tools.server import SimServer


@dataclass(frozen=True)
class JobSpec:
    """One route repetition to run. `key` = `RouteScenario_<route>_rep<repetition>` (the leaderboard's id)."""

    key: str
    route: str
    repetition: int
    expected_s: float = 0.0
    attempt: int = 1


def route_key(route: str, repetition: int) -> str:
    return f"RouteScenario_{route}_rep{repetition}"


@dataclass
class JobSettings:
    """Per-run settings shared by every job (picklable: it travels to Ray actors). Times in seconds."""

    out: str
    routes: str
    agent: str
    agent_config: str = ""
    track: str = "SENSORS"
    bench2drive_root: str = ""
    carla_root: str = ""
    python: str = ""
    launcher: list[str] = field(default_factory=list)  # default: leaderboard_attach.py
    client_timeout_s: float = 600.0
    tm_seed: int = 0
    debug: int = 0
    record: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    no_progress_s: float = 900.0
    route_timeout_s: float = 4 * 3600.0
    poll_s: float = 1.0
    frame_probe_s: float = 30.0
    kill_grace_s: float = 10.0
    log_tail_bytes: int = 20000


@dataclass
class AttemptResult:
    """What one attempt produced; `record` is the leaderboard record (format A) for the route, if any."""

    key: str
    route: str
    repetition: int
    attempt: int
    server: str
    outcome: str
    reason: str
    exit_code: int | None = None
    wall_s: float = 0.0
    record: dict[str, Any] | None = None
    log: str = ""
    checkpoint: str = ""
    started_at: float = 0.0
    server_restarts: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("record")
        return d


def job_paths(settings: JobSettings, job: JobSpec) -> JobPaths:
    out = Path(settings.out).resolve()
    attempt_dir = out / "attempts" / job.key / f"attempt{job.attempt}"
    save_path = out / "agent"
    record_dir = save_path / "carla_recorder" / job.key / f"attempt{job.attempt}" if settings.record else None
    return JobPaths(
        attempt_dir=attempt_dir,
        checkpoint=attempt_dir / "checkpoint.json",
        debug_checkpoint=attempt_dir / "live_results.txt",
        log=attempt_dir / "evaluator.log",
        save_path=save_path,
        record_dir=record_dir,
    )


def build_command(settings: JobSettings, job: JobSpec, server: SimServer, paths: JobPaths) -> list[str]:
    import sys

    launcher = list(settings.launcher) or [str(ATTACH_LAUNCHER)]
    args = evaluator_args(
        routes=Path(settings.routes).resolve(),
        route_id=job.route,
        agent=settings.agent,
        agent_config=settings.agent_config,
        endpoint=server.endpoint(),
        paths=paths,
        track=settings.track,
        timeout_s=settings.client_timeout_s,
        tm_seed=settings.tm_seed,
        debug=settings.debug,
    )
    return [settings.python or sys.executable, *launcher, *args, *settings.extra_args]


def _tail(path: Path, nbytes: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _stat_marker(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return (-1, -1)


def _dir_marker(path: Path) -> int:
    """Latest mtime under the agent's folder (cheap: top two levels only)."""
    best = 0
    try:
        with os.scandir(path) as it:
            for entry in it:
                best = max(best, entry.stat().st_mtime_ns)
    except OSError:
        pass
    return best


def run_attempt(
    job: JobSpec, settings: JobSettings, server: SimServer, stop: threading.Event | None = None
) -> AttemptResult:
    """Run `job` once against `server`; never raises for evaluator failures (they become the outcome)."""
    paths = job_paths(settings, job)
    if paths.attempt_dir.exists():  # left by an interrupted run that never recorded this attempt
        stop_recorded_group(paths.attempt_dir / "pid.json", settings.kill_grace_s)  # its evaluator, if alive
        shutil.rmtree(paths.attempt_dir)
    paths.attempt_dir.mkdir(parents=True)
    paths.save_path.mkdir(parents=True, exist_ok=True)
    if paths.record_dir is not None:
        paths.record_dir.mkdir(parents=True, exist_ok=True)
    endpoint = server.endpoint()
    env = job_environment(
        bench2drive_root=Path(settings.bench2drive_root or ".").resolve(),
        carla_root=settings.carla_root,
        save_path=paths.save_path,
        gpu=endpoint.gpu,
        track=settings.track,
        extra=settings.extra_env,
    )
    cmd = build_command(settings, job, server, paths)
    cwd = settings.bench2drive_root or None
    started_at = time.time()
    t0 = time.monotonic()
    killed: tuple[Outcome, str] | None = None
    with paths.log.open("wb") as log:
        log.write(("# " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        write_group_file(paths.attempt_dir / "pid.json", proc)
        try:
            killed = _watch(proc, paths, settings, server, stop, t0)
        finally:
            if proc.poll() is None:
                terminate_group(proc, settings.kill_grace_s)
    wall = time.monotonic() - t0
    read = read_checkpoint(paths.checkpoint)
    record = None
    for rec in read.records:
        if route_number(str(rec["route_id"])) == job.route:
            record = dict(rec)
    if record is not None and job.repetition != 0:
        # Each job runs a single repetition (--repetitions=1), which the leaderboard names rep0.
        record["route_id"] = job.key
    outcome, reason = classify(proc.returncode, record, _tail(paths.log, settings.log_tail_bytes), killed)
    return AttemptResult(
        key=job.key,
        route=job.route,
        repetition=job.repetition,
        attempt=job.attempt,
        server=server.name,
        outcome=outcome.value,
        reason=reason,
        exit_code=proc.returncode,
        wall_s=round(wall, 3),
        record=record,
        log=str(paths.log),
        checkpoint=str(paths.checkpoint),
        started_at=started_at,
    )


def _watch(
    proc: subprocess.Popen[bytes],
    paths: JobPaths,
    settings: JobSettings,
    server: SimServer,
    stop: threading.Event | None,
    t0: float,
) -> tuple[Outcome, str] | None:
    """Poll until the evaluator exits; return (outcome, reason) when the harness has to kill it."""
    marker: tuple[Any, ...] = ()
    last_change = time.monotonic()
    frame: int | None = None
    next_frame_probe = time.monotonic() + settings.frame_probe_s
    while proc.poll() is None:
        if stop is not None and stop.wait(settings.poll_s):
            terminate_group(proc, settings.kill_grace_s)
            return Outcome.TIMEOUT, "harness shutting down"
        if stop is None:
            time.sleep(settings.poll_s)
        now = time.monotonic()
        if settings.frame_probe_s > 0 and now >= next_frame_probe:
            frame = server.progress_marker()
            next_frame_probe = now + settings.frame_probe_s
        current = (
            _stat_marker(paths.log),
            _stat_marker(paths.checkpoint),
            _dir_marker(paths.save_path),
            frame,
        )
        if current != marker:
            marker, last_change = current, now
        if proc.poll() is not None:
            break
        if server.restartable and not server.alive():
            terminate_group(proc, settings.kill_grace_s)
            return Outcome.SIM_CRASH, "server process exited during the route"
        if now - last_change > settings.no_progress_s:
            terminate_group(proc, settings.kill_grace_s)
            return Outcome.TIMEOUT, f"no progress for {settings.no_progress_s:g} s (watchdog)"
        if now - t0 > settings.route_timeout_s:
            terminate_group(proc, settings.kill_grace_s)
            return Outcome.TIMEOUT, f"route exceeded {settings.route_timeout_s:g} s of wall time"
    return None

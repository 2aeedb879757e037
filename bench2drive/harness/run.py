"""`drive-jepa eval` end to end: resolve inputs, select routes, start servers, schedule, merge.

Output layout (`out`, documented in docs/evaluation.md):

    config.yaml                          the composed config of the latest invocation
    records/<key>.json                   per-route record store (resume source of truth)
    attempts/<key>/attempt<N>/           evaluator.log, checkpoint.json (format A), live_results.txt
    agent/                               SAVE_PATH: the agent's <save_name>/ folders (metric_info.json...)
    agent/carla_recorder/<key>/attempt<N>/  CARLA recorder logs (record=true)
    servers/<name>.log                   each launched server's output
    durations.csv                        per-route wall seconds of this run (feeds `durations=` of later runs)
    merged.json                          Bench2Drive merged results (bench2drive.results), for `drive-jepa
    report`
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench2drive.harness.config import EvalConfig
from bench2drive.harness.executor import Executor, LocalExecutor, RayExecutor
from bench2drive.harness.job import AttemptResult, JobSettings, JobSpec, route_key
from bench2drive.harness.progress import Progress
from bench2drive.harness.scheduler import RunSummary, Scheduler
from bench2drive.harness.selection import expected_durations, read_durations, select_routes
from bench2drive.harness.store import RecordStore
from carla_tools.lite.routes_data import LITE_ROUTES
from carla_tools.server import ServerSpec
from carla_tools.worlds import LITE_EVALUATOR
from drive_jepa.atomic import atomic_file, write_json_atomic
from drive_jepa.routes import load_routes


class EvalSetupError(ValueError):
    """Bad or missing input for an evaluation run; the message names the field."""


def resolve(cfg: EvalConfig) -> EvalConfig:
    """Fill empty paths from the environment and check what must exist."""
    if not cfg.bench2drive_root:
        cfg.bench2drive_root = os.environ.get("BENCH2DRIVE_ROOT", "")
    if not cfg.servers.carla_root:
        cfg.servers.carla_root = os.environ.get("CARLA_ROOT", "")
    lite = cfg.servers.world == "lite"
    if not cfg.routes:
        if lite:  # the bench2drive220 routes in the towns the lite world ships maps for
            cfg.routes = str(LITE_ROUTES)
        elif not cfg.bench2drive_root:
            raise EvalSetupError("routes: no route file given and BENCH2DRIVE_ROOT is not set")
        else:
            cfg.routes = str(Path(cfg.bench2drive_root) / "leaderboard" / "data" / "bench2drive220.xml")
    if not cfg.agent:
        raise EvalSetupError("agent: the agent's .py file is required (agent=path/to/agent.py)")
    if not Path(cfg.agent).is_file():
        raise EvalSetupError(f"agent: {cfg.agent} is not a file")
    # jobs run in other working directories (the evaluator's is $BENCH2DRIVE_ROOT): hand them absolute paths
    cfg.agent = str(Path(cfg.agent).resolve())
    # the agent config is whatever the agent's setup() takes (a file, or e.g. UniAD's "config.py+ckpt.pth"):
    # each '+'-separated part that names an existing path here is made absolute
    cfg.agent_config = "+".join(
        str(Path(part).resolve()) if part and Path(part).exists() else part for part in cfg.agent_config.split("+")
    )
    cfg.routes = str(Path(cfg.routes).resolve())
    cfg.out = str(Path(cfg.out).resolve())
    if lite:
        if not cfg.evaluator.launcher:
            cfg.evaluator.launcher = list(LITE_EVALUATOR)
        if not cfg.bench2drive_root:
            cfg.bench2drive_root = "."  # the lite world needs no Bench2Drive checkout
    elif not cfg.bench2drive_root or not Path(cfg.bench2drive_root).is_dir():
        raise EvalSetupError(f"bench2drive_root: {cfg.bench2drive_root!r} is not a folder (set BENCH2DRIVE_ROOT)")
    if cfg.repetitions < 1:
        raise EvalSetupError(f"repetitions: expected >= 1, got {cfg.repetitions}")
    if not cfg.servers.attach and not cfg.servers.gpus and cfg.ray.gpus_per_server <= 0:
        raise EvalSetupError("servers: give servers.gpus, servers.attach or ray.gpus_per_server")
    return cfg


AGENT_FILE = "agent.json"  # the identity of the agent a run folder belongs to
_RUN_ENTRIES = ("records", "attempts", "agent", "servers", "merged.json", "summary.json", "durations.csv", AGENT_FILE)


def agent_identity(cfg: EvalConfig) -> dict[str, Any]:
    """What makes two invocations the same agent: the agent file and the agent config, by path and content."""
    import hashlib

    def sha(path: str) -> str | None:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path and Path(path).is_file() else None

    return {
        "agent": cfg.agent,
        "agent_sha256": sha(cfg.agent),
        "agent_config": cfg.agent_config,
        "agent_config_sha256": sha(cfg.agent_config),
    }


def _stored_identity(out: Path) -> dict[str, Any] | None:
    """The agent identity of the run in `out`: its agent.json, or (runs from before agent.json) the agent and
    agent config paths of its config.yaml, with the agent config's current content."""
    try:
        if (out / AGENT_FILE).is_file():
            stored: dict[str, Any] = json.loads((out / AGENT_FILE).read_text())
            return stored
        if (out / "config.yaml").is_file():
            from omegaconf import OmegaConf

            old = OmegaConf.to_container(OmegaConf.load(out / "config.yaml"))
            if not isinstance(old, dict):
                return None
            legacy = EvalConfig(agent=str(old.get("agent", "")), agent_config=str(old.get("agent_config", "")))
            return agent_identity(legacy)
    except (OSError, ValueError):
        return None
    return None


def same_agent(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two agent identities are the same agent: the same agent file name and the same agent-config content (or,
    for agent configs that are not one file, e.g. UniAD's "config.py+ckpt.pth", the same string). Paths may
    differ (a run folder written with relative paths, a moved checkout)."""
    if Path(str(a.get("agent", ""))).name != Path(str(b.get("agent", ""))).name:
        return False
    if a.get("agent_config_sha256") or b.get("agent_config_sha256"):
        return bool(a.get("agent_config_sha256") == b.get("agent_config_sha256"))
    return bool(a.get("agent_config", "") == b.get("agent_config", ""))


def claim_run_folder(cfg: EvalConfig, out: Path) -> None:
    """Refuse an --out that holds another agent's run (its records would be mixed into one merged.json), or with
    `new_run` move that run to `out/previous/<time>/` first; then record this run's agent identity."""
    import datetime as dt

    ident = agent_identity(cfg)
    stored_path = out / AGENT_FILE
    has_run = (out / "records").is_dir() and any((out / "records").glob("*.json"))
    if has_run:
        stored = _stored_identity(out)
        same = stored is not None and same_agent(stored, ident)
        if not same and not cfg.new_run:
            what = (
                "an unknown agent (no agent.json)"
                if stored is None
                else f"agent {stored.get('agent')} with agent config {stored.get('agent_config') or '(none)'}"
                f" (sha256 {str(stored.get('agent_config_sha256'))[:12]})"
            )
            raise EvalSetupError(
                f"out: {out} holds a run of {what}, not of {ident['agent']} with "
                f"{ident['agent_config'] or '(no agent config)'} (sha256 {str(ident['agent_config_sha256'])[:12]}); "
                "use another --out, or --new-run to move that run to previous/ and start afresh"
            )
        if not same:
            dest = out / "previous" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            dest.mkdir(parents=True, exist_ok=False)
            for name in _RUN_ENTRIES:
                if (out / name).exists():
                    (out / name).rename(dest / name)
            print(f"drive-jepa eval: the earlier run in {out} moved to {dest}", file=sys.stderr)
    write_json_atomic(stored_path, ident, indent=2)


def server_specs(cfg: EvalConfig, out: Path) -> list[ServerSpec]:
    sv = cfg.servers
    common: dict[str, Any] = dict(
        world=sv.world,
        carla_root=sv.carla_root,
        launch_command=list(sv.launch_command),
        extra_args=list(sv.extra_args),
        env=dict(sv.extra_env),
        ready_timeout_s=sv.ready_timeout_s,
        probe_timeout_s=sv.probe_timeout_s,
        stop_timeout_s=sv.stop_timeout_s,
        probe=sv.probe,
        log_dir=str(out / "servers"),
        rpc_base=sv.rpc_base_port,
        tm_base=sv.tm_base_port,
        port_stride=sv.port_stride,
    )
    if sv.attach:
        return [ServerSpec(name=f"a{i}", attach=a, gpu=None, **common) for i, a in enumerate(sv.attach)]
    gpus: list[int | None] = list(sv.gpus)
    if cfg.ray.gpus_per_server > 0:  # Ray places the servers; count = GPUs listed (or 1 per listed slot)
        gpus = [None] * max(1, len(sv.gpus))
    return [
        ServerSpec(name=f"g{g if g is not None else i}s{k}", gpu=g, **common)
        for i, g in enumerate(gpus)
        for k in range(sv.servers_per_gpu)
    ]


def job_settings(cfg: EvalConfig, out: Path) -> JobSettings:
    ev, wd = cfg.evaluator, cfg.watchdog
    return JobSettings(
        out=str(out),
        routes=str(Path(cfg.routes).resolve()),
        agent=str(Path(cfg.agent).resolve()),
        agent_config=cfg.agent_config,
        track=cfg.track,
        bench2drive_root=str(Path(cfg.bench2drive_root).resolve()),
        carla_root=cfg.servers.carla_root,
        python=ev.python,
        launcher=list(ev.launcher),
        client_timeout_s=ev.client_timeout_s,
        tm_seed=ev.tm_seed,
        debug=ev.debug,
        record=cfg.record,
        extra_env=dict(ev.extra_env),
        extra_args=list(ev.extra_args),
        no_progress_s=wd.no_progress_s,
        route_timeout_s=wd.route_timeout_s,
        poll_s=wd.poll_s,
        frame_probe_s=wd.frame_probe_s,
        kill_grace_s=wd.kill_grace_s,
    )


def build_jobs(cfg: EvalConfig) -> list[JobSpec]:
    routes = load_routes(cfg.routes)
    sel = cfg.select
    chosen = select_routes(routes, sel.route_ids, sel.towns, sel.scenario_types, sel.abilities)
    if cfg.servers.world == "lite":
        from carla_tools.lite.town import TOWNS

        chosen = [r for r in chosen if r.town in TOWNS]  # the lite world has maps for Town01–07 and Town10HD
    expected = expected_durations(chosen, read_durations(Path(p) for p in cfg.durations))
    return [
        JobSpec(key=route_key(r.id, k), route=r.id, repetition=k, expected_s=expected[r.id])
        for r in chosen
        for k in range(cfg.repetitions)
    ]


def make_executor(cfg: EvalConfig, specs: list[ServerSpec], settings: JobSettings) -> Executor:
    sv = cfg.servers
    if cfg.ray.enabled:
        return RayExecutor(
            specs,
            settings,
            sv.max_restarts,
            sv.restart_after_failure,
            cfg.ray.address,
            cfg.ray.gpus_per_server,
        )
    return LocalExecutor(specs, settings, sv.max_restarts, sv.restart_after_failure)


def merge_and_write(store: RecordStore, path: Path | None) -> dict[str, Any]:
    """Merge the store's records with `bench2drive.results` (issue 3) and write them atomically to `path`."""
    from bench2drive.results import merge_records, write_merged  # type: ignore[import-not-found,unused-ignore]

    merged: dict[str, Any] = merge_records(store.leaderboard_records())
    if path is not None:
        write_merged(merged, path)
    return merged


def running_ds(store: RecordStore) -> float | None:
    """Strict DS over the routes evaluated so far (not the tools' /220), None before the first record."""
    try:
        from bench2drive.results import headline  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    h = headline(store.leaderboard_records())
    return None if h is None else h.driving_score


def write_durations(store: RecordStore, path: Path) -> None:
    rows = []
    for key, doc in sorted(store.docs.items()):
        walls = [a["wall_s"] for a in doc["attempts"] if a["outcome"] in ("finished", "agent_crash")]
        if walls:
            rows.append((key, walls[-1]))
    with atomic_file(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(["route_id", "duration_system_s"])
        w.writerows(rows)


def evaluate(
    cfg: EvalConfig,
    executor: Executor | None = None,
    hook: Callable[[Scheduler, AttemptResult | None], None] | None = None,
) -> tuple[RunSummary, RecordStore]:
    """Run (or resume) the evaluation described by `cfg`; returns the summary and the record store.

    `hook` is called after every recorded attempt (after the progress display), e.g. to stop a run in tests.
    """
    from drive_jepa.config import save

    cfg = resolve(cfg)
    out = Path(cfg.out).resolve()
    jobs = build_jobs(cfg)
    settings = job_settings(cfg, out)
    if cfg.preflight:  # before anything is written: a broken agent or config fails here, not in every route
        from bench2drive.harness.preflight import PreflightError, preflight_agent

        try:
            line = preflight_agent(settings)
        except PreflightError as exc:
            raise EvalSetupError(str(exc)) from None
        if cfg.progress:
            print(f"drive-jepa eval: preflight: {line}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    claim_run_folder(cfg, out)
    save(cfg, out / "config.yaml")
    store = RecordStore(out)
    specs = server_specs(cfg, out)
    if executor is None:
        executor = make_executor(cfg, specs, settings)
    progress = Progress(cfg.progress, lambda: running_ds(store))

    def on_event(sched: Scheduler, result: AttemptResult | None) -> None:
        progress(sched, result)
        if hook is not None:
            hook(sched, result)

    bad = [o for o in cfg.retry if o not in ("agent_crash", "finished")]
    if bad:
        raise EvalSetupError(f"retry: {bad[0]!r} is not a route outcome to rerun (agent_crash or finished)")
    scheduler = Scheduler(
        executor,
        store,
        cfg.max_attempts,
        on_event=on_event,
        poll_s=0.2,
        setup_stop_after=cfg.setup_stop_after,
        rerun_outcomes=cfg.retry,
    )
    try:
        summary = scheduler.run(jobs)
    finally:
        progress.close()
        executor.shutdown()
    write_durations(store, out / "durations.csv")
    write_json_atomic(out / "summary.json", summary.__dict__)
    return summary, store


def finish(store: RecordStore, out: Path) -> str:
    """Write merged.json; returns one line for the user."""
    try:
        merge_and_write(store, out / "merged.json")
    except ImportError as exc:
        print(f"drive-jepa eval: merged.json not written: {exc}", file=sys.stderr)
        return "merged.json not written (bench2drive.results unavailable)"
    from bench2drive.results import headline  # type: ignore[import-not-found,unused-ignore]

    h = headline(store.leaderboard_records())
    if h is None:
        return "merged.json: no route has a record yet"
    return f"merged.json: {h.text(len(store.docs))}"

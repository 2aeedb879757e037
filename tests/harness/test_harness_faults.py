"""Fault-injection runs of the whole harness with stand-in servers and evaluators (no CARLA)."""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path

import pytest

from bench2drive.harness.run import evaluate
from bench2drive.harness.store import DONE, FAILED
from tests.conftest import fixtures_dir
from tests.harness.harness_helpers import fast_config, load_factor

DEV10 = ("routes", "drivetransformer_bench2drive_dev10.xml")


def _routes() -> Path:
    return fixtures_dir("bench2drive", *DEV10)


def _ids() -> list[str]:
    from drive_jepa.routes import load_routes

    return [r.id for r in load_routes(_routes())]


def _docs(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


def test_mixed_faults_are_classified_retried_and_recorded(tmp_path: Path, b2d_root: Path) -> None:
    ids = _ids()
    plan = {
        ids[0]: ["finish"],
        ids[1]: ["segfault", "finish"],
        ids[2]: ["hang", "finish:Failed - TickRuntime"],
        ids[3]: ["exit3", "partial", "sim_crash"],  # three infrastructure failures: given up
        ids[4]: ["agent_crash"],  # the agent's fault: final, not retried
        ids[5]: ["sim_crash", "agent_setup"],
        "*": ["finish"],
    }
    cfg = fast_config(tmp_path, b2d_root, _routes(), plan, max_attempts=3)
    summary, _ = evaluate(cfg)
    docs = _docs(Path(cfg.out))
    assert set(docs) == {f"RouteScenario_{i}_rep0" for i in ids}
    d = {i: docs[f"RouteScenario_{i}_rep0"] for i in ids}
    assert [a["outcome"] for a in d[ids[0]]["attempts"]] == ["finished"]
    assert [a["outcome"] for a in d[ids[1]]["attempts"]] == ["sim_crash", "finished"]
    assert "SIGSEGV" in d[ids[1]]["attempts"][0]["reason"]
    assert [a["outcome"] for a in d[ids[2]]["attempts"]] == ["timeout", "finished"]
    assert "no progress" in d[ids[2]]["attempts"][0]["reason"]
    assert d[ids[2]]["record"]["status"] == "Failed - TickRuntime"
    assert [a["outcome"] for a in d[ids[3]]["attempts"]] == ["sim_crash"] * 3
    assert "time-out" in d[ids[3]]["attempts"][0]["reason"]
    assert d[ids[3]]["state"] == FAILED
    assert d[ids[3]]["record"]["status"] == "Failed - Simulation crashed"  # kept from the last attempt
    assert [a["outcome"] for a in d[ids[4]]["attempts"]] == ["agent_crash"]
    assert d[ids[4]]["state"] == DONE and d[ids[4]]["record"]["status"] == "Failed - Agent crashed"
    assert [a["outcome"] for a in d[ids[5]]["attempts"]] == ["sim_crash", "agent_setup"]
    assert d[ids[5]]["state"] == FAILED  # the agent never drove: not the route's result, a rerun tries it again
    assert summary.failed == 1 and summary.agent_crash == 1 and summary.setup_failed == 1 and summary.left == 0
    assert summary.retried == 2 + 1 + 2 + 1 - 1 + 0  # segfault, hang, exit3+partial, sim_crash
    for doc in docs.values():  # every attempt kept its files
        for a in doc["attempts"]:
            assert Path(a["log"]).is_file()
    # no evaluator or server process is left behind
    assert not any(_alive(pid) for pid in _server_pids(tmp_path))


def _server_pids(tmp_path: Path) -> list[int]:
    lines = (tmp_path / "server_state" / "starts.txt").read_text().splitlines()
    return [int(x) for line in lines for x in line.split()[1:3]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # an exited process stays a zombie until its parent (or init) reaps it: that is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


BEHAVIOURS = {
    "finish": "finished",
    "finish:Failed - Agent got blocked": "finished",
    "agent_crash": "agent_crash",
    "agent_setup": "agent_setup",
    "segfault": "sim_crash",
    "exit3": "sim_crash",
    "partial": "sim_crash",
    "sim_crash": "sim_crash",
    "hang": "timeout",
}
WEIGHTS = {
    "finish": 8,
    "finish:Failed - Agent got blocked": 2,
    "agent_crash": 1,
    "agent_setup": 1,
    "segfault": 2,
    "exit3": 2,
    "partial": 1,
    "sim_crash": 3,
    "hang": 1,
}


def _expected(steps: list[str], max_attempts: int) -> list[str]:
    """The outcomes one uninterrupted run must record for a route with these planned behaviours."""
    out = []
    for k in range(max_attempts):
        outcome = BEHAVIOURS[steps[min(k, len(steps) - 1)]]
        out.append(outcome)
        if outcome in ("finished", "agent_crash", "agent_setup"):
            break
    return out


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("seed", range(6))
def test_randomized_runs_lose_and_duplicate_nothing(tmp_path: Path, b2d_root: Path, seed: int) -> None:
    rng = random.Random(seed)
    ids = rng.sample(_ids(), 6)
    reps = rng.choice([1, 2])
    names, weights = zip(*WEIGHTS.items(), strict=True)
    plan = {i: rng.choices(names, weights, k=3) for i in ids}
    max_attempts = rng.choice([1, 2, 3])
    interrupt_after = rng.choice([None, 2, 5])
    cfg = fast_config(
        tmp_path,
        b2d_root,
        _routes(),
        plan,
        servers=rng.choice([1, 2, 3]),
        max_attempts=max_attempts,
        repetitions=reps,
    )
    cfg.select.route_ids = ids
    cfg.watchdog.no_progress_s = 0.5 * load_factor()
    cfg.setup_stop_after = 0  # random plans may start with setup failures; the early stop has its own test
    seen = [0]

    def hook(_sched, result) -> None:  # type: ignore[no-untyped-def]
        if result is not None:
            seen[0] += 1
            if interrupt_after is not None and seen[0] >= interrupt_after:
                raise _Interrupt

    with contextlib.suppress(_Interrupt):
        evaluate(cfg, hook=hook)
    out = Path(cfg.out)
    first = _docs(out)
    keys = {f"RouteScenario_{i}_rep{k}" for i in ids for k in range(reps)}
    assert set(first) <= keys
    for key, doc in first.items():
        outcomes = [a["outcome"] for a in doc["attempts"]]
        assert [a["attempt"] for a in doc["attempts"]] == list(range(1, len(outcomes) + 1))
        final = [o for o in outcomes if o in ("finished", "agent_crash")]
        assert len(final) <= 1 and (not final or outcomes[-1] == final[0])
        expected = _expected(plan[doc["route"]], max_attempts)
        assert outcomes == expected[: len(outcomes)], (key, outcomes, expected)
        if interrupt_after is None:
            assert outcomes == expected
        if doc["record"] is not None:
            assert doc["record"]["route_id"] == key
    if interrupt_after is None:
        assert set(first) == keys

    # Resume: same command, now every attempt finishes. Done routes are untouched, the rest complete.
    plan2 = {"*": ["finish"]}
    (tmp_path / "eval_plan.json").write_text(json.dumps(plan2))
    summary, store = evaluate(cfg)
    second = _docs(out)
    assert set(second) == keys
    for key, doc in second.items():
        assert doc["state"] == DONE
        if key in first and first[key]["state"] == DONE:
            assert doc == first[key]  # never rerun, never re-recorded
        else:
            assert doc["attempts"][-1]["outcome"] == "finished"
    records = store.leaderboard_records()
    assert sorted(r["route_id"] for r in records) == sorted(keys)  # one record per route repetition
    assert summary.done_before == sum(1 for d in first.values() if d["state"] == DONE)


def test_a_failing_worker_is_given_up_and_its_route_goes_elsewhere(tmp_path: Path, b2d_root: Path) -> None:
    from bench2drive.harness.executor import LocalExecutor
    from bench2drive.harness.run import job_settings, resolve, server_specs

    cfg = resolve(fast_config(tmp_path, b2d_root, _routes(), {"*": ["finish"]}, servers=2))
    cfg.select.route_ids = _ids()[:3]
    out = Path(cfg.out)
    executor = LocalExecutor(server_specs(cfg, out), job_settings(cfg, out), 1, True)

    def broken(job):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    executor.workers["g0s0"].run = broken  # type: ignore[method-assign]
    summary, store = evaluate(cfg, executor=executor)
    assert summary.finished == 3 and summary.left == 0 and summary.servers_down == ["g0s0"]
    down = [a for d in store.docs.values() for a in d["attempts"] if a["outcome"] == "server_down"]
    assert len(down) == 1 and "No space left on device" in down[0]["reason"]
    assert all(d["attempts"][-1]["server"] == "g1s0" for d in store.docs.values())


def _start_hanging_harness(tmp_path: Path, b2d_root: Path, port_offset: int, extra: list[str], **popen: object):
    """`drive-jepa eval` as a subprocess on one route whose evaluator hangs (fake server and evaluator); returns
    (process, route id, plan file, output folder, pid file of attempt 1) once the attempt has started."""
    import subprocess
    import sys
    import time

    from tests.harness.harness_helpers import FAKE_EVALUATOR, FAKE_SERVER

    route = _ids()[0]
    (tmp_path / "a.py").write_text("")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"*": ["hang"]}))
    out = tmp_path / "out"
    state = tmp_path / "server_state"
    state.mkdir()
    cmd = [
        sys.executable, "-m", "drive_jepa", "eval", "--no-ray", "--no-progress",
        "--agent", str(tmp_path / "a.py"), "--routes", str(_routes()), "--route-ids", route, "--gpus", "0",
        "--out", str(out),
        f"bench2drive_root={b2d_root}",
        f"servers.launch_command=[{sys.executable},{FAKE_SERVER}]",
        f"evaluator.launcher=[{FAKE_EVALUATOR}]",
        f"+evaluator.extra_env.FAKE_EVAL_PLAN={plan}",
        f"+servers.extra_env.FAKE_SERVER_STATE={state}",
        f"servers.rpc_base_port={21500 + port_offset}",
        f"servers.tm_base_port={26500 + port_offset}",
        "watchdog.no_progress_s=60",
        "watchdog.frame_probe_s=0",
        "preflight=false",  # a.py is a stand-in, not an agent
        *extra,
    ]  # fmt: skip
    harness = subprocess.Popen(cmd, **popen)  # type: ignore[call-overload]
    pid_file = out / "attempts" / f"RouteScenario_{route}_rep0" / "attempt1" / "pid.json"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return harness, route, plan, out, pid_file


def test_rerun_after_the_harness_was_killed_stops_its_leftovers(tmp_path: Path, b2d_root: Path) -> None:
    """SIGKILL the harness mid-route: its server and evaluator (own sessions) survive it. Rerunning the same
    command stops exactly those two groups (found through their group files) and finishes the route."""
    import signal
    import subprocess
    import time

    harness, route, plan, out, pid_file = _start_hanging_harness(
        tmp_path, b2d_root, 0, [], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert pid_file.exists(), "the harness never started the route"
    time.sleep(0.3)
    harness.send_signal(signal.SIGKILL)
    harness.wait()
    evaluator_pid = json.loads(pid_file.read_text())["pid"]
    server_pids = _server_pids(tmp_path)
    assert _alive(evaluator_pid) and all(_alive(p) for p in server_pids)  # orphans, as after a real kill -9

    plan.write_text(json.dumps({"*": ["finish"]}))
    cfg = fast_config(tmp_path, b2d_root, _routes(), {"*": ["finish"]}, servers=1)
    cfg.out = str(out)
    cfg.select.route_ids = [route]
    cfg.servers.rpc_base_port, cfg.servers.tm_base_port = 21500, 26500
    summary, store = evaluate(cfg)
    assert summary.finished == 1
    assert [a["attempt"] for a in store.docs[f"RouteScenario_{route}_rep0"]["attempts"]] == [1]
    assert not _alive(evaluator_pid) and not any(_alive(p) for p in server_pids)


def test_sigterm_stops_the_run_and_everything_it_started(tmp_path: Path, b2d_root: Path) -> None:
    import signal
    import subprocess
    import time

    harness, route, _plan, out, pid_file = _start_hanging_harness(
        tmp_path,
        b2d_root,
        100,
        ["watchdog.kill_grace_s=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)
    evaluator_pid = json.loads(pid_file.read_text())["pid"]
    harness.send_signal(signal.SIGTERM)
    _, err = harness.communicate(timeout=60)
    assert harness.returncode == 130 and "Rerun the same command to resume" in err
    assert not _alive(evaluator_pid) and not any(_alive(p) for p in _server_pids(tmp_path))
    assert not (out / "records" / f"RouteScenario_{route}_rep0.json").exists()  # nothing half-recorded


def test_a_run_whose_first_routes_all_fail_at_setup_stops_and_retry_reruns_agent_crashes(
    tmp_path: Path, b2d_root: Path
) -> None:
    ids = _ids()
    plan = {"*": ["agent_setup"]}
    cfg = fast_config(tmp_path, b2d_root, _routes(), plan, servers=1)
    summary, store = evaluate(cfg)
    assert summary.stopped.startswith("the first 3 route(s) all failed at agent setup: record status")
    assert summary.setup_failed == 3 and summary.finished == 0 and summary.left == len(ids) - 3
    assert all(store.state(k) == FAILED for k in store.docs) and not any(store.is_done(k) for k in store.docs)
    # fixed: the same command runs everything; a route that crashed the agent is rerun only with --retry
    (tmp_path / "eval_plan.json").write_text(json.dumps({ids[0]: ["agent_crash"], "*": ["finish"]}))
    summary, store = evaluate(cfg)
    assert summary.finished == len(ids) - 1 and summary.agent_crash == 1 and summary.left == 0
    key = f"RouteScenario_{ids[0]}_rep0"
    assert store.outcome(key) == "agent_crash" and store.is_done(key)
    (tmp_path / "eval_plan.json").write_text(json.dumps({"*": ["finish"]}))
    assert evaluate(cfg)[0].done_before == len(ids)  # without --retry: nothing runs
    cfg.retry = ["agent_crash"]
    summary, store = evaluate(cfg)
    assert summary.finished == 1 and store.outcome(key) == "finished"
    doc = store.docs[key]
    assert [a["outcome"] for a in doc["attempts"]] == ["agent_setup", "agent_crash", "finished"]
    assert doc["reopened"] == [{"after_attempt": 2, "outcome": "agent_crash"}]

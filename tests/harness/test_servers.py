"""Server process handling with the stand-in CARLA server: ports, readiness through the real carla client,
crash/hang detection, restart, and termination of exactly the process group the harness started."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from bench2drive.harness.run import evaluate
from carla_tools import probe
from carla_tools.ports import pick_server_ports, port_is_free, release_ports
from carla_tools.server import AttachedCarlaServer, LaunchedCarlaServer, ServerError, ServerSpec
from carla_tools.worlds import make_server
from tests.conftest import fixtures_dir
from tests.harness.harness_helpers import FAKE_SERVER, fast_config, load_factor

pytestmark = pytest.mark.carla  # the readiness probe is the real CARLA client


def _spec(tmp_path: Path, plan: list[str] | None = None, base: int = 23000, **kw: object) -> ServerSpec:
    env = {"FAKE_SERVER_STATE": str(tmp_path)}
    if plan is not None:
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        env["FAKE_SERVER_PLAN"] = str(tmp_path / "plan.json")
    slow = load_factor()  # budgets scale with the machine's load (tests/harness/harness_helpers.py)
    args: dict[str, object] = dict(probe_timeout_s=1.0 * slow, ready_timeout_s=5.0 * slow, stop_timeout_s=2.0 * slow)
    args.update({k: v * slow if k.endswith("_timeout_s") and isinstance(v, float) else v for k, v in kw.items()})
    return ServerSpec(
        name="t0",
        gpu=1,
        launch_command=[sys.executable, str(FAKE_SERVER)],
        rpc_base=base,
        tm_base=base + 5000,
        log_dir=str(tmp_path),
        env=env,
        **args,
    )  # type: ignore[arg-type]


def _starts(tmp_path: Path) -> list[list[str]]:
    return [line.split() for line in (tmp_path / "starts.txt").read_text().splitlines()]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_ports_skip_taken_and_reserved() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 24001))  # someone else holds what would be the first streaming port
    holder.listen()
    try:
        assert not port_is_free(24001)
        a = pick_server_ports(24000, 29000)
        assert a.rpc == 24003 and a.streaming == 24004 and a.secondary == 24005 and a.traffic_manager == 29000
        b = pick_server_ports(24000, 29000)  # reserved by this process, though nothing is bound yet
        assert b.rpc == 24006 and b.traffic_manager == 29001
        release_ports(a)
        release_ports(b)
        assert pick_server_ports(24000, 29000).rpc == 24003
    finally:
        holder.close()
        release_ports(pick_server_ports(24000, 29000))


def test_launch_probe_and_stop_kill_the_whole_group(tmp_path: Path) -> None:
    server = make_server(_spec(tmp_path))
    assert isinstance(server, LaunchedCarlaServer)
    server.start()
    ep = server.endpoint()
    assert probe.carla_version(ep.host, ep.port, 2.0) == "0.9.15"  # the real client talked to it
    assert server.healthy() and ep.gpu == 1
    cmd = server.command(server.ports)  # type: ignore[arg-type]
    assert cmd[2:] == [
        "-RenderOffScreen",
        "-nosound",
        f"-carla-rpc-port={ep.port}",
        f"-carla-streaming-port={ep.port + 1}",
        "-graphicsadapter=1",
    ]
    assert not port_is_free(ep.port) and not port_is_free(ep.port + 1)
    ((_, pid, child, *_),) = _starts(tmp_path)
    server.stop()
    assert _gone(int(pid)) and _gone(int(child))  # the server's own child went with its group
    assert probe.carla_version("127.0.0.1", ep.port, 0.5) is None


def test_start_failures_and_restart(tmp_path: Path) -> None:
    server = LaunchedCarlaServer(_spec(tmp_path, ["segfault", "mute", "die_after:0.3", "ok"], ready_timeout_s=1.5))
    with pytest.raises(ServerError, match="exited with code -11"):
        server.start()
    with pytest.raises(ServerError, match="no answer"):  # holds the port, never answers: a hang
        server.start()
    server.start()
    assert server.alive()
    import time

    deadline = time.monotonic() + 5.0 * load_factor()  # it dies 0.3 s after answering; later on a loaded machine
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.alive() and not server.healthy()  # crash detected
    server.restart()
    assert server.healthy()
    server.stop()
    starts = _starts(tmp_path)
    assert [s[4] for s in starts] == ["segfault", "mute", "die_after:0.3", "ok"]
    assert all(_gone(int(s[1])) and _gone(int(s[2])) for s in starts)  # even the orphans of crashed servers


def test_attach_never_signals(tmp_path: Path) -> None:
    owner = LaunchedCarlaServer(_spec(tmp_path, base=23100))
    owner.start()
    ep = owner.endpoint()
    try:
        attached = make_server(
            ServerSpec(
                name="a0",
                attach=f"127.0.0.1:{ep.port}:{ep.tm_port}",
                probe_timeout_s=1.0,
                ready_timeout_s=2.0,
            )
        )
        assert isinstance(attached, AttachedCarlaServer) and not attached.restartable
        attached.start()
        attached.stop()
        assert owner.healthy()  # stopping an attached server does nothing to it
        assert attached.endpoint().port == ep.port and attached.endpoint().tm_port == ep.tm_port
    finally:
        owner.stop()
    with pytest.raises(ServerError, match="host:rpc_port:tm_port"):
        make_server(ServerSpec(name="a1", attach="localhost:2000"))
    assert make_server(ServerSpec(name="a2", attach="h:2000:8000:3")).endpoint().gpu == 3
    with pytest.raises(ServerError, match="unknown"):
        make_server(ServerSpec(name="x", world="nope"))


def test_server_crash_during_a_route_is_retried_on_a_restarted_server(tmp_path: Path, b2d_root: Path) -> None:
    routes = fixtures_dir("bench2drive", "routes", "drivetransformer_bench2drive_dev10.xml")
    cfg = fast_config(tmp_path, b2d_root, routes, {"*": ["finish"]}, server_plan=["die_after:0.5", "ok"], servers=1)
    cfg.select.route_ids = ["2091", "3255", "3514"]
    cfg.evaluator.extra_env["FAKE_EVAL_DURATION_S"] = "1.0"  # the first route is running when the server dies
    summary, store = evaluate(cfg)
    outcomes = [a["outcome"] for d in store.docs.values() for a in d["attempts"]]
    assert outcomes.count("sim_crash") == 1 and outcomes.count("finished") == 3
    crashed = next(a for d in store.docs.values() for a in d["attempts"] if a["outcome"] == "sim_crash")
    assert crashed["reason"] == "server process exited during the route"
    assert summary.failed == 0 and summary.left == 0
    assert len((tmp_path / "server_state" / "starts.txt").read_text().splitlines()) == 2


def test_record_keeps_recorder_logs_next_to_agent_files(tmp_path: Path, b2d_root: Path) -> None:
    routes = fixtures_dir("bench2drive", "routes", "drivetransformer_bench2drive_dev10.xml")
    cfg = fast_config(tmp_path, b2d_root, routes, {"*": ["finish"]}, record=True, servers=1)
    cfg.select.route_ids = ["2091"]
    evaluate(cfg)
    out = Path(cfg.out)
    logs = list((out / "agent" / "carla_recorder" / "RouteScenario_2091_rep0" / "attempt1").glob("*.log"))
    assert [p.name for p in logs] == ["RouteScenario_2091_rep0.log"]
    doc = json.loads((out / "records" / "RouteScenario_2091_rep0.json").read_text())
    assert (out / "agent" / doc["record"]["save_name"] / "metric_info.json").is_file()
    assert os.path.isfile(out / "servers" / "g0s0.log")

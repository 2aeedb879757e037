"""Static checks of docker/: the compose file's harness command is valid for `drive-jepa eval` and attaches to
exactly its server services; the evaluation image pins Bench2Drive to a full commit."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bench2drive.eval_cli import build_parser, flags_to_overrides
from carla_tools.server import AttachedCarlaServer, ServerSpec

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _expand(text: str) -> str:
    """Compose-style ${VAR:-default} / ${VAR:?msg} with test values."""
    return re.sub(r"\$\{(\w+)(:[-?][^}]*)?\}", lambda m: {"AGENT": "/work/agent/a.py"}.get(m.group(1), "x"), text)


def test_compose_harness_attaches_to_every_server() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    servers = sorted(n for n in services if n.startswith("carla-"))
    assert len(servers) == 4
    command = [_expand(c) for c in services["harness"]["command"]]
    assert command[0] == "eval"
    ns = build_parser().parse_args(command[1:])
    attach = ns.attach
    hosts = [a.split(":")[0] for a in attach]
    assert sorted(hosts) == servers
    endpoints = [AttachedCarlaServer(ServerSpec(name=f"a{i}", attach=a)).endpoint() for i, a in enumerate(attach)]
    assert len({e.tm_port for e in endpoints}) == len(endpoints)  # one Traffic Manager port per server
    gpus = sorted(int(services[h]["environment"]["GPU"]) for h in hosts)
    assert gpus == sorted(e.gpu for e in endpoints)  # type: ignore[type-var]
    assert any(o.startswith("servers.attach=") for o in flags_to_overrides(ns))
    assert set(services["harness"]["depends_on"]) == set(servers)


def test_eval_image_pins_bench2drive() -> None:
    text = (DOCKER / "eval.Dockerfile").read_text()
    commit = re.search(r"ARG BENCH2DRIVE_COMMIT=([0-9a-f]+)", text)
    assert commit and len(commit.group(1)) == 40 and commit.group(1).startswith("7ec25d1")
    assert "FROM python:3.11" in text
    server = (DOCKER / "carla-server.Dockerfile").read_text()
    assert "FROM carlasim/carla:0.9.15" in server
    for flag in (
        "-RenderOffScreen",
        "-nosound",
        "-carla-rpc-port=",
        "-carla-streaming-port=",
        "-graphicsadapter=",
    ):
        assert flag in server

"""Registry of world kinds the evaluation harness can run routes in.

`make_server(spec)` builds the `SimServer` for `spec.world`. Only `carla` exists today; another world (the CPU
`lite` world) registers a builder here under its own name and becomes selectable with `servers.world=<name>`.
"""

from __future__ import annotations

from collections.abc import Callable

from carla_tools.server import AttachedCarlaServer, LaunchedCarlaServer, ServerError, ServerSpec, SimServer


def _carla(spec: ServerSpec) -> SimServer:
    return AttachedCarlaServer(spec) if spec.attach else LaunchedCarlaServer(spec)


WORLDS: dict[str, Callable[[ServerSpec], SimServer]] = {"carla": _carla}


def make_server(spec: ServerSpec) -> SimServer:
    """The server for `spec.world`; raises `ServerError` naming the known worlds for an unknown one."""
    builder = WORLDS.get(spec.world)
    if builder is None:
        raise ServerError(f"servers.world={spec.world!r} is unknown; choose one of: {', '.join(sorted(WORLDS))}")
    return builder(spec)

"""Registry of world kinds the evaluation harness can run routes in.

`make_server(spec)` builds the `SimServer` for `spec.world`: `carla` (launched or attached CARLA servers) or
`lite` (the CPU lite world: no server process; each job runs its own SUMO simulation through
`carla_tools.lite.evaluator`, the leaderboard evaluator's command line). Selectable with `servers.world=<name>`.
"""

from __future__ import annotations

from collections.abc import Callable

from carla_tools.server import (
    AttachedCarlaServer,
    Endpoint,
    LaunchedCarlaServer,
    ServerError,
    ServerSpec,
    SimServer,
)

# the evaluator a job runs for each world (None: the leaderboard's, through bench2drive's attach launcher)
LITE_EVALUATOR = ["-m", "carla_tools.lite.evaluator"]


def _carla(spec: ServerSpec) -> SimServer:
    return AttachedCarlaServer(spec) if spec.attach else LaunchedCarlaServer(spec)


class LiteSlot:
    """A slot for lite-world jobs: nothing to start or stop; each job process owns its simulation."""

    def __init__(self, spec: ServerSpec) -> None:
        self.name = spec.name
        self.spec = spec

    @property
    def restartable(self) -> bool:
        return True

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def restart(self) -> None:
        return None

    def alive(self) -> bool:
        return True

    def healthy(self) -> bool:
        return True

    def endpoint(self) -> Endpoint:
        return Endpoint(host="127.0.0.1", port=0, tm_port=0, gpu=None)

    def progress_marker(self) -> int | None:
        return None  # the watchdog follows the job's log and files instead

    def describe(self) -> str:
        return f"{self.name}: lite world (CPU, one SUMO simulation per job)"


WORLDS: dict[str, Callable[[ServerSpec], SimServer]] = {"carla": _carla, "lite": LiteSlot}


def make_server(spec: ServerSpec) -> SimServer:
    """The server for `spec.world`; raises `ServerError` naming the known worlds for an unknown one."""
    builder = WORLDS.get(spec.world)
    if builder is None:
        raise ServerError(f"servers.world={spec.world!r} is unknown; choose one of: {', '.join(sorted(WORLDS))}")
    return builder(spec)

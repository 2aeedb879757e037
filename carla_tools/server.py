"""Simulator server processes: launch a CARLA 0.9.15 server or attach to a running one.

`SimServer` is the interface the evaluation harness drives; it is world-agnostic so another world (e.g. the
CPU `lite` world) can be registered in `carla_tools.worlds` under its own name. Two CARLA implementations:

- `LaunchedCarlaServer` starts `CarlaUE4.sh -RenderOffScreen -nosound -carla-rpc-port=P
  -carla-streaming-port=S
  -graphicsadapter=G` in a new session (its own process group), on ports chosen free by `carla_tools.ports`,
  waits until the CARLA client gets an answer, detects a crash (process exited) or hang (probe unanswered),
  and
  restarts. It only ever signals the process group it created — never processes found by name.
- `AttachedCarlaServer` uses a server someone else runs at host:rpc_port:tm_port[:gpu] (the GPU the agent of
  its jobs should use). It is probed and waited for (e.g. while a container restarts it), never signalled.

Times are seconds; ports are TCP ports.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from carla_tools import probe
from carla_tools.ports import ServerPorts, pick_server_ports, release_ports
from carla_tools.procs import stop_recorded_group, terminate_group, write_group_file


class ServerError(RuntimeError):
    """A server could not be started, attached or became unusable. The message names the server."""


@dataclass(frozen=True)
class Endpoint:
    """Where a job finds its world: RPC host/port, Traffic Manager port, and the GPU index (or None)."""

    host: str
    port: int
    tm_port: int
    gpu: int | None


@dataclass
class ServerSpec:
    """Everything needed to build one server, picklable (it travels to Ray actors).

    `launch_command` is the executable (and leading arguments) that plays `CarlaUE4.sh`; empty means
    `<carla_root>/CarlaUE4.sh`. `attach` = "host:rpc_port:tm_port[:gpu]" attaches instead of launching.
    """

    name: str
    world: str = "carla"
    gpu: int | None = 0
    carla_root: str = ""
    launch_command: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    attach: str = ""
    host: str = "127.0.0.1"
    rpc_base: int = 2000
    tm_base: int = 8000
    port_stride: int = 3
    ready_timeout_s: float = 300.0
    probe_timeout_s: float = 10.0
    stop_timeout_s: float = 15.0
    probe: str = "carla"  # "carla" (real client version call) or "tcp"
    log_dir: str = ""
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment for the server


class SimServer(Protocol):
    """What the harness needs from a world server (CARLA or another world)."""

    name: str

    @property
    def restartable(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...

    def alive(self) -> bool: ...

    def healthy(self) -> bool: ...

    def endpoint(self) -> Endpoint: ...

    def progress_marker(self) -> int | None: ...

    def describe(self) -> str: ...


def _probe(kind: str, host: str, port: int, timeout_s: float) -> str | None:
    if kind == "carla":
        return probe.carla_version(host, port, timeout_s)
    if kind == "tcp":
        return probe.tcp_ready(host, port, timeout_s)
    raise ServerError(f"unknown probe kind {kind!r}; expected 'carla' or 'tcp'")


class LaunchedCarlaServer:
    """A CARLA server process this harness started (and alone may stop)."""

    def __init__(self, spec: ServerSpec) -> None:
        self.name = spec.name
        self.spec = spec
        self.ports: ServerPorts | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None
        self.starts = 0

    @property
    def restartable(self) -> bool:
        return True

    def command(self, ports: ServerPorts) -> list[str]:
        """The server command line for `ports` (the flags Bench2Drive's launcher passes, plus streaming)."""
        spec = self.spec
        exe = list(spec.launch_command) or [str(Path(spec.carla_root) / "CarlaUE4.sh")]
        flags = [
            "-RenderOffScreen",
            "-nosound",
            f"-carla-rpc-port={ports.rpc}",
            f"-carla-streaming-port={ports.streaming}",
        ]
        if spec.gpu is not None:
            flags.append(f"-graphicsadapter={spec.gpu}")
        return [*exe, *flags, *spec.extra_args]

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise ServerError(f"{self.name}: already running (pid {self._proc.pid})")
        if not self.spec.launch_command:
            script = Path(self.spec.carla_root) / "CarlaUE4.sh"
            if not script.is_file():
                raise ServerError(f"{self.name}: {script} not found (set CARLA_ROOT or servers.carla_root)")
        # A server left running by an earlier harness killed without cleanup (same name, same folder).
        stop_recorded_group(self._group_file(), self.spec.stop_timeout_s)
        self.ports = pick_server_ports(self.spec.rpc_base, self.spec.tm_base, self.spec.port_stride)
        cmd = self.command(self.ports)
        log_path = self._log_path()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            # A new session makes the server (and every child CarlaUE4.sh spawns) its own process group, which
            # `stop` can signal as a whole without touching anything else.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.spec.env},
            )
        self._pgid = self._proc.pid
        write_group_file(self._group_file(), self._proc)
        self.starts += 1
        self._wait_ready()

    def _log_path(self) -> Path:
        base = Path(self.spec.log_dir) if self.spec.log_dir else Path.cwd()
        return base / f"{self.name}.log"

    def _group_file(self) -> Path:
        return self._log_path().with_suffix(".pid.json")

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.ports is not None
        port = self.ports.rpc
        deadline = time.monotonic() + self.spec.ready_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                self.stop()  # whatever it spawned may still run in its group
                raise ServerError(f"{self.name}: exited with code {code} while starting; see {self._log_path()}")
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise ServerError(f"{self.name}: no answer on port {port} within {self.spec.ready_timeout_s:g} s")
            if _probe(self.spec.probe, "127.0.0.1", port, min(self.spec.probe_timeout_s, left)) is not None:
                return
            time.sleep(min(0.2, max(left, 0.0)))

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def healthy(self) -> bool:
        if not self.alive() or self.ports is None:
            return False
        return _probe(self.spec.probe, "127.0.0.1", self.ports.rpc, self.spec.probe_timeout_s) is not None

    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def stop(self) -> None:
        """Terminate this server's process group: SIGTERM, then SIGKILL after `stop_timeout_s`."""
        proc, pgid = self._proc, self._pgid
        if proc is None or pgid is None:
            return
        try:
            terminate_group(proc, self.spec.stop_timeout_s)  # refuses our own group and init
        except RuntimeError as exc:
            raise ServerError(f"{self.name}: {exc}") from None
        self._proc = None
        self._pgid = None
        self._group_file().unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        if self.ports is not None:
            release_ports(self.ports)
            self.ports = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def endpoint(self) -> Endpoint:
        if self.ports is None:
            raise ServerError(f"{self.name}: not started")
        return Endpoint("127.0.0.1", self.ports.rpc, self.ports.traffic_manager, self.spec.gpu)

    def progress_marker(self) -> int | None:
        if self.ports is None or self.spec.probe != "carla":
            return None
        return probe.carla_frame("127.0.0.1", self.ports.rpc, self.spec.probe_timeout_s)

    def describe(self) -> str:
        port = self.ports.rpc if self.ports else "-"
        return f"{self.name} (gpu {self.spec.gpu}, port {port})"


class AttachedCarlaServer:
    """A CARLA server run by someone else at host:rpc_port, with its Traffic Manager port."""

    def __init__(self, spec: ServerSpec) -> None:
        self.name = spec.name
        self.spec = spec
        parts = spec.attach.split(":")
        if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts[1:]):
            raise ServerError(f"{spec.name}: attach address {spec.attach!r} is not host:rpc_port:tm_port[:gpu]")
        self.host, self.port, self.tm_port = parts[0], int(parts[1]), int(parts[2])
        self.gpu = int(parts[3]) if len(parts) == 4 else spec.gpu

    @property
    def restartable(self) -> bool:
        return False

    def start(self) -> None:
        deadline = time.monotonic() + self.spec.ready_timeout_s
        while _probe(self.spec.probe, self.host, self.port, self.spec.probe_timeout_s) is None:
            if time.monotonic() >= deadline:
                raise ServerError(f"{self.name}: nothing answers at {self.host}:{self.port}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Nothing to do: the harness did not start this server and never signals it."""

    def restart(self) -> None:
        self.start()

    def alive(self) -> bool:
        return self.healthy()

    def healthy(self) -> bool:
        return _probe(self.spec.probe, self.host, self.port, self.spec.probe_timeout_s) is not None

    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, self.tm_port, self.gpu)

    def progress_marker(self) -> int | None:
        if self.spec.probe != "carla":
            return None
        return probe.carla_frame(self.host, self.port, self.spec.probe_timeout_s)

    def describe(self) -> str:
        return f"{self.name} (attached {self.host}:{self.port})"

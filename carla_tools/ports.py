"""Free-port selection for simulator servers.

A CARLA 0.9.15 server listens on its RPC port P (`-carla-rpc-port`), its streaming port S
(`-carla-streaming-port`, default P+1) and, in 0.9.14+, a secondary (multi-GPU) port (default P+2); the
leaderboard's Traffic Manager listens on its own port T (`--traffic-manager-port`). A port counts as free when
this process can bind it on every interface, which also fails when another process listens on it only on
localhost. Ports handed out by this process are remembered so that two servers started at nearly the same time
never get the same ports even before either has bound them.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

_RESERVED: set[int] = set()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ServerPorts:
    """The ports one CARLA server and its Traffic Manager use."""

    rpc: int
    streaming: int
    secondary: int
    traffic_manager: int

    def all(self) -> tuple[int, ...]:
        return (self.rpc, self.streaming, self.secondary, self.traffic_manager)


def port_is_free(port: int) -> bool:
    """True when `port` can be bound for TCP on all interfaces right now (IPv4)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def port_is_listening(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds (something is listening there)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def pick_server_ports(rpc_base: int = 2000, tm_base: int = 8000, stride: int = 3, tries: int = 500) -> ServerPorts:
    """Reserve the first free (RPC, streaming, secondary) triple at rpc_base + k·stride and a free TM port.

    Raises `RuntimeError` naming the searched range when none is free. Call `release_ports` when the server is
    gone for good (a restarted server may keep or re-pick its ports).
    """
    with _LOCK:
        rpc_ports: tuple[int, int, int] | None = None
        for k in range(tries):
            p = rpc_base + k * stride
            trio = (p, p + 1, p + 2)
            if all(q not in _RESERVED and port_is_free(q) for q in trio):
                rpc_ports = trio
                break
        if rpc_ports is None:
            raise RuntimeError(f"no free CARLA port triple in {rpc_base}..{rpc_base + tries * stride}")
        tm: int | None = None
        for k in range(tries):
            q = tm_base + k
            if q not in _RESERVED and q not in rpc_ports and port_is_free(q):
                tm = q
                break
        if tm is None:
            raise RuntimeError(f"no free Traffic Manager port in {tm_base}..{tm_base + tries}")
        ports = ServerPorts(rpc_ports[0], rpc_ports[1], rpc_ports[2], tm)
        _RESERVED.update(ports.all())
        return ports


def release_ports(ports: ServerPorts) -> None:
    """Forget a reservation made by `pick_server_ports`."""
    with _LOCK:
        _RESERVED.difference_update(ports.all())

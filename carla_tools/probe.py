"""Readiness and progress probes through the real CARLA client (`carla` package, imported lazily).

A CARLA server is *ready* when its RPC port answers the client's `version` call within the timeout; it is
*making progress* when the world's frame number advances. Both open a fresh `carla.Client` (cheap: one TCP
connection) so a hung server costs at most the timeout.
"""

from __future__ import annotations

import socket


def carla_version(host: str, port: int, timeout_s: float) -> str | None:
    """The server's version string, or None when nothing answers within `timeout_s` seconds."""
    # A closed port makes the carla client wait for its whole timeout; a plain connect fails at once.
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, 2.0)):
            pass
    except OSError:
        return None
    import carla

    try:
        client = carla.Client(host, port, worker_threads=1)
        client.set_timeout(timeout_s)
        return str(client.get_server_version())
    except RuntimeError:
        return None


def carla_frame(host: str, port: int, timeout_s: float) -> int | None:
    """The current world frame number, or None when the server does not answer in time."""
    if carla_version(host, port, timeout_s) is None:
        return None
    import carla

    try:
        client = carla.Client(host, port, worker_threads=1)
        client.set_timeout(timeout_s)
        return int(client.get_world().get_snapshot().frame)
    except RuntimeError:
        return None


def tcp_ready(host: str, port: int, timeout_s: float) -> str | None:
    """Readiness for worlds without a CARLA RPC endpoint: the port accepts a connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return "tcp"
    except OSError:
        return None

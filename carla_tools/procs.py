"""Terminating a process group this program created (never processes found by name).

Children are started with `start_new_session=True`, so each leads its own process group whose id is its pid;
signalling that group reaches everything it spawned and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time


def wait_group_gone(pgid: int, proc: subprocess.Popen[bytes], wait_s: float) -> bool:
    """Wait up to `wait_s` s for every process of group `pgid` to exit, reaping our direct child `proc`."""
    deadline = time.monotonic() + wait_s
    while True:
        proc.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def terminate_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the group led by `proc`, SIGKILL it after `grace_s` s, and reap `proc`."""
    pgid = proc.pid
    if pgid <= 1 or pgid == os.getpgrp():
        raise RuntimeError(f"refusing to signal process group {pgid}")
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if wait_group_gone(pgid, proc, wait_s):
            break
    proc.wait()

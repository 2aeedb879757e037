"""Terminating a process group this program created (never processes found by name).

Children are started with `start_new_session=True`, so each leads its own process group whose id is its pid;
signalling that group reaches everything it spawned and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _live_members(pgid: int) -> bool | None:
    """Whether group `pgid` has a member that is not a zombie (None when /proc cannot tell)."""
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return None
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


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
        # Orphaned members that already exited stay as zombies until init reaps them: they count as gone.
        if _live_members(pgid) is False:
            return True
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

"""Terminating process groups this program created (never processes found by name).

Children are started with `start_new_session=True`, so each leads its own process group whose id is its pid;
signalling that group reaches everything it spawned and nothing else. A *group file* records the pid and
kernel start time so that a later run can stop a group left behind by a run that was killed (SIGKILL, power
loss) — and only that group: a recycled pid has a different start time and is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from drive_jepa.atomic import write_text_atomic


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2], starttime [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def start_time(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks since boot, or None when it does not exist (or no /proc)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _live_members(pgid: int) -> bool | None:
    """Whether group `pgid` has a member that is not a zombie (None when /proc cannot tell)."""
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        return None
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def wait_group_gone(pgid: int, proc: subprocess.Popen[bytes] | None, wait_s: float) -> bool:
    """Wait up to `wait_s` s for every process of group `pgid` to exit, reaping our direct child `proc`."""
    deadline = time.monotonic() + wait_s
    while True:
        if proc is not None:
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


def _signal_group(pgid: int, proc: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    if pgid <= 1 or pgid == os.getpgrp():
        raise RuntimeError(f"refusing to signal process group {pgid}")
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if wait_group_gone(pgid, proc, wait_s):
            break


def terminate_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the group led by `proc`, SIGKILL it after `grace_s` s, and reap `proc`."""
    _signal_group(proc.pid, proc, grace_s)
    proc.wait()


def write_group_file(path: Path, proc: subprocess.Popen[bytes]) -> None:
    """Record `proc` (a group leader started with start_new_session=True) in `path`."""
    record = {"pid": proc.pid, "start_time": start_time(proc.pid), "args": proc.args}
    write_text_atomic(path, json.dumps(record, default=str))


def stop_recorded_group(path: Path, grace_s: float = 5.0) -> bool:
    """Stop the group recorded in `path` if its leader still runs with the recorded start time; remove the
    file. Returns True when a left-over group was stopped."""
    try:
        info = json.loads(path.read_text())
        pid, recorded = int(info["pid"]), info.get("start_time")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    stopped = False
    if recorded is not None and start_time(pid) == recorded:
        fields = _stat_fields(pid)
        if fields and int(fields[2]) == pid:  # still the leader of its own group
            _signal_group(pid, None, grace_s)
            stopped = True
    path.unlink(missing_ok=True)
    return stopped

"""Reading a leaderboard checkpoint (results format A, see fixtures/bench2drive/README.md) defensively.

The leaderboard rewrites its checkpoint in place (not atomically), so a process killed mid-write can leave a
truncated file: that reads as "no records", never as an error that stops the harness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CheckpointRead:
    """What a checkpoint file says. `error` explains an unreadable file; records keep the file's order."""

    entry_status: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    progress: tuple[int, int] | None = None
    error: str | None = None


def read_checkpoint(path: Path) -> CheckpointRead:
    """Parse `path`; a missing, empty, truncated or malformed file gives an empty read with `error` set."""
    if not path.is_file():
        return CheckpointRead(error=f"{path}: no checkpoint written")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return CheckpointRead(error=f"{path}: unreadable checkpoint ({exc.__class__.__name__}: {exc})")
    if not isinstance(data, dict) or not isinstance(data.get("_checkpoint"), dict):
        return CheckpointRead(error=f"{path}: no '_checkpoint' object")
    ckpt = data["_checkpoint"]
    raw = ckpt.get("records", [])
    records = (
        [r for r in raw if isinstance(r, dict) and "route_id" in r and "status" in r] if isinstance(raw, list) else []
    )
    prog = ckpt.get("progress")
    progress = (int(prog[0]), int(prog[1])) if isinstance(prog, list) and len(prog) == 2 else None
    status = data.get("entry_status")
    return CheckpointRead(entry_status=status if isinstance(status, str) else None, records=records, progress=progress)


def route_number(route_id: str) -> str:
    """`RouteScenario_<id>_rep<k>` -> `<id>` (how Bench2Drive's tools read a record's route)."""
    parts = route_id.split("_")
    return parts[1] if len(parts) > 1 else route_id

"""The training runs' `metrics.jsonl` (one JSON object per logged step, each with its integer `step`), shared by
planner training and V-JEPA pretraining."""

from __future__ import annotations

import json
from pathlib import Path

from drive_jepa.atomic import write_text_atomic


def truncate_metrics(path: Path, upto_step: int) -> None:
    """Keep only the records logged at steps <= `upto_step`, atomically: a run resumed from the checkpoint of
    that step logs the later steps again, so nothing is counted twice. A line cut short by a crash (or without
    an integer `step`) is dropped. A missing file is left missing."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["step"]) <= upto_step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    write_text_atomic(path, "".join(ln + "\n" for ln in keep))

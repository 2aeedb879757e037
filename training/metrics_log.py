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


class StepProgress:
    """One line on stderr at most every `every_s` seconds (and at the last step) while a run trains:
    `train: step 300/1000 (30 %) · loss 2.31 · 0.74 s/step · ETA 8m37s`. Times count from the first step this
    process ran, so a resumed run's ETA is its own."""

    def __init__(self, name: str, start: int, total: int, every_s: float = 10.0, enabled: bool = True) -> None:
        import time

        self.name, self.start, self.total, self.every_s, self.enabled = name, start, total, every_s, enabled
        self.t0 = time.monotonic()
        self.last = self.t0

    def due(self, step: int) -> bool:
        """Whether `__call__(step)` would print now (to skip computing its figures otherwise)."""
        import time

        return self.enabled and (time.monotonic() - self.last >= self.every_s or step >= self.total)

    def __call__(self, step: int, loss: float | None = None) -> str | None:
        """Report `step` (steps done so far); returns the line when one was printed."""
        import sys
        import time

        now = time.monotonic()
        if not self.due(step):
            return None
        self.last = now
        done = max(0, step - self.start)
        rate = (now - self.t0) / done if done else float("nan")
        left = max(0, self.total - step) * rate if done else float("nan")
        eta = "?" if left != left else f"{int(left // 60)}m{int(left % 60):02d}s"
        loss_text = "" if loss is None else f" · loss {loss:.4g}"
        line = (
            f"{self.name}: step {step}/{self.total} ({100 * step / max(1, self.total):.0f} %){loss_text} · "
            f"{rate:.2f} s/step · ETA {eta}"
        )
        print(line, file=sys.stderr, flush=True)
        return line

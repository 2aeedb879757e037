"""Live progress: a tqdm bar over route repetitions (ETA), done/failed/retried, running DS, server states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench2drive.harness.job import AttemptResult
from bench2drive.harness.scheduler import Scheduler


class Progress:
    def __init__(self, enabled: bool, running_ds: Callable[[], float | None]) -> None:
        self.enabled = enabled
        self.running_ds = running_ds
        self.bar: Any = None

    def __call__(self, sched: Scheduler, result: AttemptResult | None) -> None:
        s = sched.summary
        if self.bar is None:
            if not self.enabled:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=s.total, initial=s.done_before, unit="route", dynamic_ncols=True)
        if result is not None and result.outcome in ("finished", "agent_crash"):
            self.bar.update(1)
        ds = self.running_ds() if result is not None else None
        eta = sched.eta_s()
        eta_text = "" if eta is None else f"eta~{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m "
        servers = " ".join(
            f"{n}:{v.state}" + (f"(r{v.restarts})" if v.restarts else "") for n, v in sched.servers.items()
        )
        self.bar.set_postfix_str(
            f"ok={s.finished} agent_crash={s.agent_crash} setup_failed={s.setup_failed} failed={s.failed} "
            f"retried={s.retried} "
            f"DS={'n/a' if ds is None else f'{ds:.2f}'} {eta_text}| {servers}",
            refresh=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

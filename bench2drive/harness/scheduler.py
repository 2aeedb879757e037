"""The dynamic queue: every pending route repetition in one priority queue (longest expected first), handed
to whichever server is free; infrastructure failures go back into the queue until their retry budget is spent.

The scheduler is the only writer of the record store, so results from threads or Ray actors can never be
recorded twice; a route already `done` in the store is never queued (resume).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bench2drive.harness.executor import Executor
from bench2drive.harness.job import AttemptResult, JobSpec
from bench2drive.harness.outcome import Outcome
from bench2drive.harness.store import RecordStore


@dataclass
class RunSummary:
    """Counts over this invocation (`done_before` = routes already done when it started)."""

    total: int = 0
    done_before: int = 0
    finished: int = 0
    agent_crash: int = 0
    failed: int = 0
    retried: int = 0
    left: int = 0
    servers_down: list[str] = field(default_factory=list)


@dataclass
class ServerView:
    """What the progress display shows per server."""

    state: str = "idle"
    restarts: int = 0


class Scheduler:
    def __init__(
        self,
        executor: Executor,
        store: RecordStore,
        max_attempts: int = 3,
        on_event: Callable[[Scheduler, AttemptResult | None], None] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.executor = executor
        self.store = store
        self.max_attempts = max(1, max_attempts)
        self.on_event = on_event
        self.poll_s = poll_s
        self.servers = {name: ServerView() for name in executor.names}
        self.summary = RunSummary()
        self.expected_left: dict[str, float] = {}  # key -> expected duration of routes not concluded
        self._walls = 0.0  # wall seconds of concluded attempts ...
        self._expected_done = 0.0  # ... and what was expected for them

    def eta_s(self) -> float | None:
        """Wall seconds left: expected work left, calibrated by actual/expected so far, over live servers."""
        live = sum(1 for v in self.servers.values() if v.state != "down")
        if not live or self._expected_done <= 0:
            return None
        return sum(self.expected_left.values()) * (self._walls / self._expected_done) / live

    def run(self, jobs: Sequence[JobSpec]) -> RunSummary:
        s = self.summary
        s.total = len(jobs)
        todo = [j for j in jobs if not self.store.is_done(j.key)]
        s.done_before = s.total - len(todo)
        self.expected_left = {j.key: j.expected_s for j in todo}
        seq = itertools.count()
        queue: list[tuple[float, int, JobSpec]] = [(-j.expected_s, next(seq), j) for j in todo]
        heapq.heapify(queue)
        tries: Counter[str] = Counter()
        idle = list(self.executor.names)
        running: dict[str, JobSpec] = {}
        if self.on_event:
            self.on_event(self, None)
        while queue or running:
            while idle and queue:
                name = idle.pop(0)
                _, _, job = heapq.heappop(queue)
                job = replace(job, attempt=self.store.next_attempt(job.key))
                running[name] = job
                self.servers[name].state = f"{job.key} a{job.attempt}"
                self.executor.submit(name, job)
            if not running:
                break  # every server is down
            for res in self.executor.wait(self.poll_s):
                job = running.pop(res.server)
                view = self.servers[res.server]
                view.restarts += res.server_restarts
                outcome = Outcome(res.outcome)
                if outcome is Outcome.SERVER_DOWN:
                    view.state = "down"
                    s.servers_down.append(res.server)
                    self.store.add_attempt(res)
                    heapq.heappush(queue, (-job.expected_s, next(seq), job))  # not the route's fault
                else:
                    view.state = "idle"
                    idle.append(res.server)
                    tries[job.key] += 1
                    give_up = outcome.infrastructure and tries[job.key] >= self.max_attempts
                    self.store.add_attempt(res, give_up=give_up)
                    if outcome.final or give_up:
                        self.expected_left.pop(job.key, None)
                        if outcome.final:
                            self._walls += res.wall_s
                            self._expected_done += job.expected_s
                    if outcome is Outcome.FINISHED:
                        s.finished += 1
                    elif outcome is Outcome.AGENT_CRASH:
                        s.agent_crash += 1
                    elif give_up:
                        s.failed += 1
                    else:
                        s.retried += 1
                        heapq.heappush(queue, (-job.expected_s, next(seq), job))
                if self.on_event:
                    self.on_event(self, res)
        s.left = len(queue) + len(running)
        return s

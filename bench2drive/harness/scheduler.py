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
    setup_failed: int = 0  # the agent never drove (outcome agent_setup): the route stays failed
    servers_down: list[str] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early (every first route failed at agent setup the same way)


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
        setup_stop_after: int = 3,
        rerun_outcomes: Sequence[str] = (),
    ) -> None:
        """`setup_stop_after`: stop when this many first concluded attempts (or all, if fewer routes) all failed
        at agent setup with the same reason; `rerun_outcomes`: done routes whose deciding outcome is one of these
        (e.g. agent_crash after a fix) are run again."""
        self.setup_stop_after = setup_stop_after
        self.rerun_outcomes = tuple(rerun_outcomes)
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
        for j in jobs:
            if self.store.is_done(j.key) and self.store.outcome(j.key) in self.rerun_outcomes:
                self.store.reopen(j.key)
        todo = [j for j in jobs if not self.store.is_done(j.key)]
        setup_reasons: list[str] = []  # of this run's first concluded attempts, while all are setup failures
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
                    give_up = (outcome.infrastructure and tries[job.key] >= self.max_attempts) or (
                        outcome is Outcome.AGENT_SETUP
                    )
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
                    elif outcome is Outcome.AGENT_SETUP:
                        s.setup_failed += 1
                    elif give_up:
                        s.failed += 1
                    else:
                        s.retried += 1
                        heapq.heappush(queue, (-job.expected_s, next(seq), job))
                    if outcome.final or outcome is Outcome.AGENT_SETUP:
                        setup_reasons.append(res.reason if outcome is Outcome.AGENT_SETUP else "")
                        first = setup_reasons[: self.setup_stop_after]
                        need = min(self.setup_stop_after, len(todo))
                        if (
                            not s.stopped
                            and self.setup_stop_after > 0
                            and len(first) == need
                            and all(r and r == first[0] for r in first)
                        ):
                            s.stopped = (
                                f"the first {need} route(s) all failed at agent setup: {first[0]}; fix the agent "
                                "or its config and rerun the same command"
                            )
                            queue.clear()  # the routes still running finish; nothing new starts
                if self.on_event:
                    self.on_event(self, res)
        if s.stopped:  # the routes never started (or left pending) by the early stop
            s.left = sum(1 for j in todo if self.store.state(j.key) not in ("done", "failed"))
        else:
            s.left = len(queue) + len(running)
        return s

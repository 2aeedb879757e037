"""One server and the jobs it runs, one at a time (lives in a thread or in a Ray actor).

Before a job the worker makes sure its server answers (starting it the first time, restarting it when it
crashed, hangs, or the previous attempt was an infrastructure failure). A server that cannot be brought up
after `max_restarts` consecutive tries is given up: the job comes back as SERVER_DOWN without having run, and
the scheduler gives the job to another server.
"""

from __future__ import annotations

import contextlib
import threading
import time

from bench2drive.harness.job import AttemptResult, JobSettings, JobSpec, run_attempt
from bench2drive.harness.outcome import Outcome
from carla_tools.server import ServerError, ServerSpec, SimServer
from carla_tools.worlds import make_server


class ServerWorker:
    def __init__(
        self,
        spec: ServerSpec,
        settings: JobSettings,
        max_restarts: int = 3,
        restart_after_failure: bool = True,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.max_restarts = max_restarts
        self.restart_after_failure = restart_after_failure
        self.server: SimServer = make_server(spec)
        self._started = False
        self._needs_restart = False
        self._stop = threading.Event()
        self.restarts = 0
        self.down_reason = ""

    @property
    def name(self) -> str:
        return self.spec.name

    def _ensure_server(self) -> str:
        """'' when the server is usable, else why not (after up to max_restarts tries)."""
        if self.down_reason:
            return self.down_reason
        if self._started and not self._needs_restart and self.server.healthy():
            return ""
        errors = []
        for _ in range(max(1, self.max_restarts)):
            if self._stop.is_set():
                return "harness shutting down"
            try:
                if self._started:
                    self.restarts += 1
                    self.server.restart()
                else:
                    self.server.start()
                    self._started = True
                self._needs_restart = False
                return ""
            except ServerError as exc:
                errors.append(str(exc))
                self._started = True  # the next try is a restart (stop whatever is left, start again)
                time.sleep(0.1)
        self.down_reason = f"server gave up after {len(errors)} tries: {errors[-1]}"
        return self.down_reason

    def run(self, job: JobSpec) -> AttemptResult:
        """Run one attempt of `job` on this worker's server."""
        restarts_before = self.restarts
        problem = self._ensure_server()
        if problem:
            return AttemptResult(
                key=job.key,
                route=job.route,
                repetition=job.repetition,
                attempt=job.attempt,
                server=self.name,
                outcome=Outcome.SERVER_DOWN.value,
                reason=problem,
                started_at=time.time(),
                server_restarts=self.restarts - restarts_before,
            )
        try:
            result = run_attempt(job, self.settings, self.server, self._stop)
        finally:
            if self._stop.is_set():  # a server (re)started while shutdown was requested must not outlive us
                with contextlib.suppress(ServerError):
                    self.server.stop()
        result.server_restarts = self.restarts - restarts_before
        if Outcome(result.outcome).infrastructure and self.server.restartable and self.restart_after_failure:
            self._needs_restart = True
        return result

    def describe(self) -> str:
        return self.server.describe()

    def shutdown(self) -> None:
        """Stop the running job (if any) and the server this worker started."""
        self._stop.set()
        with contextlib.suppress(ServerError):
            self.server.stop()

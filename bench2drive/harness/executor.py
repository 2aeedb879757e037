"""Where workers run: threads in this process (`LocalExecutor`) or one Ray actor per server (`RayExecutor`).

Both give the scheduler the same interface: `submit(worker_name, job)`, `wait(timeout_s) -> [AttemptResult]`
(results of jobs finished since the last call) and `shutdown()`. Ray uses its public API only: `ray.init`
(a local instance, or `address=` an existing cluster), `ray.remote` actors with `max_concurrency=2` (so that
`shutdown` can run while a job is in flight), `ray.wait` and `ray.get`.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from typing import Any, Protocol

from bench2drive.harness.job import AttemptResult, JobSettings, JobSpec
from bench2drive.harness.outcome import Outcome
from bench2drive.harness.worker import ServerWorker
from carla_tools.server import ServerSpec


def worker_failure(name: str, job: JobSpec, exc: BaseException) -> AttemptResult:
    """The result reported when a worker itself failed (a bug, a full disk, a dead Ray actor): the job never
    produced an outcome, the server is treated as down and the job goes to another server."""
    return AttemptResult(
        key=job.key,
        route=job.route,
        repetition=job.repetition,
        attempt=job.attempt,
        server=name,
        outcome=Outcome.SERVER_DOWN.value,
        reason=f"worker failed: {type(exc).__name__}: {exc}"[:500],
        started_at=time.time(),
    )


class Executor(Protocol):
    names: list[str]

    def submit(self, name: str, job: JobSpec) -> None: ...

    def wait(self, timeout_s: float) -> list[AttemptResult]: ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """One thread per server in this process."""

    def __init__(
        self, specs: list[ServerSpec], settings: JobSettings, max_restarts: int, restart_after_failure: bool
    ) -> None:
        self.workers = {s.name: ServerWorker(s, settings, max_restarts, restart_after_failure) for s in specs}
        self.names = list(self.workers)
        self._pool = cf.ThreadPoolExecutor(max_workers=max(1, len(specs)), thread_name_prefix="server")
        self._futures: dict[cf.Future[AttemptResult], tuple[str, JobSpec]] = {}

    def submit(self, name: str, job: JobSpec) -> None:
        self._futures[self._pool.submit(self.workers[name].run, job)] = (name, job)

    def wait(self, timeout_s: float) -> list[AttemptResult]:
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        results = []
        for fut in done:
            name, job = self._futures.pop(fut)
            exc = fut.exception()
            results.append(worker_failure(name, job, exc) if exc is not None else fut.result())
        return results

    def shutdown(self) -> None:
        for worker in self.workers.values():
            worker.shutdown()
        self._pool.shutdown(wait=True)
        for worker in self.workers.values():  # in case a start raced with the first stop
            worker.shutdown()


class RayExecutor:
    """One Ray actor per server; a local Ray instance unless `address` names an existing cluster.

    With `gpus_per_server > 0` each actor asks Ray for that share of a GPU and launches its server on the
    GPU Ray
    assigned (`ray.get_gpu_ids()`), which is how servers spread over the machines of a cluster.
    """

    def __init__(
        self,
        specs: list[ServerSpec],
        settings: JobSettings,
        max_restarts: int,
        restart_after_failure: bool,
        address: str = "",
        gpus_per_server: float = 0.0,
        num_cpus: int | None = None,
    ) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus or max(2, len(specs)), include_dashboard=False, log_to_driver=False)
        actor_cls = ray.remote(_RayWorker).options(max_concurrency=2, num_cpus=0, num_gpus=gpus_per_server or None)
        self.actors: dict[str, Any] = {
            s.name: actor_cls.remote(s, settings, max_restarts, restart_after_failure, gpus_per_server > 0)
            for s in specs
        }
        self.names = list(self.actors)
        self._refs: dict[Any, tuple[str, JobSpec]] = {}

    def submit(self, name: str, job: JobSpec) -> None:
        self._refs[self.actors[name].run.remote(job)] = (name, job)

    def wait(self, timeout_s: float) -> list[AttemptResult]:
        if not self._refs:
            return []
        done, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        results = []
        for ref in done:
            name, job = self._refs.pop(ref)
            try:
                results.append(self._ray.get(ref))
            except self._ray.exceptions.RayError as exc:  # the actor died or raised
                results.append(worker_failure(name, job, exc))
        return results

    def shutdown(self) -> None:
        ray = self._ray
        try:
            ray.get([a.shutdown.remote() for a in self.actors.values()], timeout=60)
            if self._refs:  # let in-flight jobs see the stop and clean up before the actors go
                ray.wait(list(self._refs), num_returns=len(self._refs), timeout=60)
        finally:
            for actor in self.actors.values():
                ray.kill(actor)


class _RayWorker:
    """The Ray actor body: a `ServerWorker`, on the GPU Ray assigned when asked to use it."""

    def __init__(
        self,
        spec: ServerSpec,
        settings: JobSettings,
        max_restarts: int,
        restart_after_failure: bool,
        use_ray_gpu: bool,
    ) -> None:
        if use_ray_gpu:
            import ray

            ids = ray.get_gpu_ids()
            if ids:
                spec.gpu = int(ids[0])
        self.worker = ServerWorker(spec, settings, max_restarts, restart_after_failure)

    def run(self, job: JobSpec) -> AttemptResult:
        return self.worker.run(job)

    def shutdown(self) -> None:
        self.worker.shutdown()

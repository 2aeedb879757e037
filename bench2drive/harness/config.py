"""The typed config of `drive-jepa eval` (Hydra structured config `eval`; fields are `key=value` overrides).

Empty paths mean "from the environment": `bench2drive_root` <- $BENCH2DRIVE_ROOT, `servers.carla_root`
<- $CARLA_ROOT, `routes` <- `$BENCH2DRIVE_ROOT/leaderboard/data/bench2drive220.xml`. Times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drive_jepa.config import register


@dataclass
class SelectConfig:
    """Which routes (AND across fields, OR within one): ids, towns, first-scenario types, abilities."""

    route_ids: list[str] = field(default_factory=list)
    towns: list[str] = field(default_factory=list)
    scenario_types: list[str] = field(default_factory=list)
    abilities: list[str] = field(default_factory=list)


@dataclass
class ServersConfig:
    """Simulator servers: launched (one per GPU × servers_per_gpu) or attached ("host:rpc_port:tm_port")."""

    world: str = "carla"  # the kind of world (carla_tools.worlds.WORLDS)
    carla_root: str = ""
    gpus: list[int] = field(default_factory=lambda: [0])
    servers_per_gpu: int = 1
    attach: list[str] = field(default_factory=list)
    launch_command: list[str] = field(default_factory=list)  # replaces <carla_root>/CarlaUE4.sh (tests, wrappers)
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)  # added to the servers' environment
    rpc_base_port: int = 2000
    tm_base_port: int = 8000
    port_stride: int = 3
    ready_timeout_s: float = 300.0
    probe_timeout_s: float = 10.0
    stop_timeout_s: float = 15.0
    probe: str = "carla"
    max_restarts: int = 3  # consecutive failed (re)starts before a server is given up
    restart_after_failure: bool = True  # restart a launched server after a crash/timeout attempt


@dataclass
class EvaluatorConfig:
    """How each route's leaderboard process is run (Bench2Drive's leaderboard_evaluator.py)."""

    python: str = ""  # interpreter for the jobs; empty = this one
    launcher: list[str] = field(default_factory=list)  # empty = bench2drive/harness/leaderboard_attach.py
    client_timeout_s: float = 600.0  # --timeout
    tm_seed: int = 0  # --traffic-manager-seed
    debug: int = 0  # --debug
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # appended to every job's command (e.g. --lite-vehicles=20)


@dataclass
class WatchdogConfig:
    no_progress_s: float = 900.0  # kill a job when log/checkpoint/agent files/world frame do not change
    route_timeout_s: float = 14400.0  # hard wall-time limit per attempt
    poll_s: float = 1.0
    frame_probe_s: float = 30.0  # how often the world frame is read (0 = never)
    kill_grace_s: float = 10.0  # SIGTERM -> SIGKILL delay


@dataclass
class RayConfig:
    enabled: bool = True  # False = threads in this process
    address: str = ""  # empty = a local Ray instance; else an existing cluster ("auto", "ray://host:10001")
    gpus_per_server: float = 0.0  # > 0: let Ray place servers on GPUs (clusters); servers.gpus then unused


@dataclass
class EvalConfig:
    out: str = "runs/eval"
    routes: str = ""
    bench2drive_root: str = ""
    agent: str = ""
    agent_config: str = ""
    track: str = "SENSORS"
    repetitions: int = 1
    record: bool = False  # CARLA recorder log per route (--record)
    max_attempts: int = 3  # attempts per route per invocation for infrastructure failures
    # done routes whose outcome is one of these run again (e.g. [agent_crash] after fixing the agent: --retry)
    retry: list[str] = field(default_factory=list)
    # stop when the first N concluded routes of a run all failed at agent setup with the same reason (0 = never)
    setup_stop_after: int = 3
    durations: list[str] = field(default_factory=list)  # CSVs of earlier runs' per-route durations
    progress: bool = True
    # an --out that holds a run of another agent (file or agent-config content) is refused; with new_run the old
    # run's files move to <out>/previous/<time>/ and a fresh run starts there
    new_run: bool = False
    # before the first route, load the agent once the way the evaluator will (bench2drive.harness.preflight)
    preflight: bool = True
    select: SelectConfig = field(default_factory=SelectConfig)
    servers: ServersConfig = field(default_factory=ServersConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    ray: RayConfig = field(default_factory=RayConfig)


register("eval", EvalConfig)

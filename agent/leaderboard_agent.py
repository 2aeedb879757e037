"""Drive-JEPA as a Bench2Drive / CARLA leaderboard agent.

Use it as Bench2Drive's `--agent`:

    leaderboard_evaluator.py --agent $DRIVE_JEPA/agent/leaderboard_agent.py --agent-config run/agent.yaml ...

`agent.yaml` is an `AgentConfig` (print the defaults with `drive-jepa agent-config --cfg`); Bench2Drive's
evaluator appends `+<save_name>` to the path, which names the folder of this route's `metric_info.json`. The class
derives from the leaderboard's `AutonomousAgent` when the leaderboard is importable, otherwise from a stand-in with
the same surface (so the lite world and the tests drive the very same class).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from agent.baselines import RouteFollowModel
from agent.carla_world import carla_world_observer
from agent.control import Control
from agent.model_api import PlanModel
from agent.policy import DrivingPolicy, Observation, PolicyConfig, StepInfo
from agent.recording import SUFFIX, RecordingConfig, RecordingWriter, step_fields
from agent.selection import ArgmaxSelector, MomentumConfig, MomentumSelector, Selector
from agent.sensors import leaderboard_sensors
from drive_jepa import config as config_lib
from drive_jepa.atomic import write_json_atomic

log = logging.getLogger(__name__)

try:  # the real base class when Bench2Drive's leaderboard is on PYTHONPATH
    from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track

    LEADERBOARD_AVAILABLE = True
except ImportError:
    LEADERBOARD_AVAILABLE = False

    class Track(Enum):  # type: ignore[no-redef]
        SENSORS = "SENSORS"
        MAP = "MAP"

    class AutonomousAgent:  # type: ignore[no-redef]
        """Stand-in with the leaderboard base class's public surface (no hero lookup, no downsampling)."""

        def __init__(self, carla_host: str = "localhost", carla_port: int = 2000, debug: bool = False) -> None:
            self.track = Track.SENSORS
            self._global_plan: list[Any] | None = None
            self._global_plan_world_coord: list[Any] | None = None
            self.hero_actor: Any = None

        def set_global_plan(self, global_plan_gps: list[Any], global_plan_world_coord: list[Any]) -> None:
            self._global_plan = list(global_plan_gps)
            self._global_plan_world_coord = list(global_plan_world_coord)


def get_entry_point() -> str:
    return "DriveJEPAAgent"


# The Drive-JEPA lite checkpoint shipped in the repository (docs/learn.md, its model card README.md beside it):
# what `model=drive_jepa_lite`, the default, drives
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "drive_jepa_lite"
MODELS = ("drive_jepa_lite", "checkpoint", "route_follow")


@dataclass
class AgentConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # "drive_jepa_lite" (the shipped trained checkpoint, SHIPPED_CHECKPOINT), "checkpoint" (a `drive-jepa train`
    # folder named by `checkpoint`) or "route_follow" (the weight-free baseline: follows the route, sees nothing)
    model: str = "drive_jepa_lite"
    checkpoint: str | None = None  # a `drive-jepa train` checkpoint folder when model=checkpoint
    device: str = "auto"  # auto | cpu | cuda (bf16 autocast on CUDA)
    threads: int = 0  # torch CPU threads of the model (0 = torch's default); 1 when routes run in parallel per core
    # proposal selection: "momentum" (S ← (w_s·S + w_c·S_c)/(w_s + w_c) against the previous plan), "argmax", or
    # "auto" = momentum for checkpoint models (scores in [0, 1]), argmax for route_follow (its scores are costs)
    selection: str = "auto"
    momentum_score_weight: float = 7.0
    momentum_comfort_weight: float = 1.0
    # Where metric_info.json goes (<save_path>/<save_name>/). Bench2Drive's scripts export SAVE_PATH; it is used
    # only when this is unset, so the evaluator's documented convention keeps working.
    save_path: str | None = None
    write_metric_info: bool = True
    metric_info_flush_every: int = 200  # steps between atomic rewrites (a crash loses at most this many)
    # Debug recordings (docs/replays.md): one `.djr` file per route, written at every model step. The file goes to
    # `<record_dir>/<save_name>.djr`, or `<save_path>/<save_name>/replay.djr` when record_dir is unset.
    record: bool = False
    record_dir: str | None = None
    record_options: RecordingConfig = field(default_factory=RecordingConfig)
    # With record=true, also store the world around the ego where the world gives it (the lite world's actors and
    # lights within 60 m; in CARLA the leaderboard process's, from CarlaDataProvider); never an input of the policy
    record_world: bool = True


config_lib.register("agent", AgentConfig)


def load_agent_config(path: str | Path | None, overrides: list[str] | None = None) -> AgentConfig:
    """The agent config file `path` (None: the defaults). A relative `checkpoint` inside it is relative to the
    file's folder: the evaluator runs in $BENCH2DRIVE_ROOT, not where the config was written."""
    cfg = config_lib.compose("agent", AgentConfig, overrides or [], Path(path) if path else None)
    if path and cfg.checkpoint and not Path(cfg.checkpoint).expanduser().is_absolute():
        cfg.checkpoint = str((Path(path).resolve().parent / Path(cfg.checkpoint).expanduser()).resolve())
    return cfg


def check_sensors(sensors: list[dict[str, Any]]) -> None:
    """The sensor list as the leaderboard validates it: unique ids, known types, a positive camera image."""
    known = {
        "sensor.camera.rgb",
        "sensor.other.gnss",
        "sensor.other.imu",
        "sensor.speedometer",
        "sensor.lidar.ray_cast",
    }
    ids = [s.get("id") for s in sensors]
    if len(set(ids)) != len(ids):
        raise ValueError(f"sensors: duplicate ids in {ids}")
    for s in sensors:
        if s.get("type") not in known:
            raise ValueError(f"sensors: {s.get('id')!r} has unknown type {s.get('type')!r}")
        if s["type"] == "sensor.camera.rgb" and not (
            int(s["width"]) > 0 and int(s["height"]) > 0 and 0 < s["fov"] < 180
        ):
            raise ValueError(
                f"sensors: camera {s['id']!r} {s['width']}x{s['height']} fov {s['fov']}: not a valid image"
            )


def build_model(cfg: AgentConfig) -> PlanModel:
    if cfg.model == "route_follow":
        return RouteFollowModel()
    if cfg.model in ("checkpoint", "drive_jepa_lite"):
        if cfg.model == "checkpoint" and not cfg.checkpoint:
            raise ValueError("agent config: model=checkpoint needs `checkpoint` (a drive-jepa train folder)")
        if cfg.model == "drive_jepa_lite" and cfg.checkpoint:
            raise ValueError(
                f"agent config: checkpoint={cfg.checkpoint} is used only with model=checkpoint "
                "(model=drive_jepa_lite drives the shipped checkpoint)"
            )
        from agent.checkpoint_model import CheckpointPlanModel

        if cfg.threads > 0:
            import torch

            torch.set_num_threads(cfg.threads)
        path = cfg.checkpoint if cfg.model == "checkpoint" and cfg.checkpoint else str(SHIPPED_CHECKPOINT)
        model = CheckpointPlanModel.load(path, device=cfg.device, rig=cfg.policy.rig)
        # the pixels reach the model as agent.deploy decided for this checkpoint and rig (crop, size, JPEG), at
        # the frame spacing it was trained with
        cfg.policy.image = model.image
        cfg.policy.history_offsets = model.frame_offsets
        return model
    raise ValueError(f"agent config: unknown model {cfg.model!r} (expected one of {', '.join(MODELS)})")


def build_selector(cfg: AgentConfig) -> Selector:
    kind = cfg.selection
    if kind == "auto":
        kind = "argmax" if cfg.model == "route_follow" else "momentum"
    if kind == "argmax":
        return ArgmaxSelector()
    if kind == "momentum":
        return MomentumSelector(
            MomentumConfig(
                previous_weight=cfg.momentum_score_weight,
                comfort_weight=cfg.momentum_comfort_weight,
                max_gap_s=cfg.policy.max_gap_s,
            )
        )
    raise ValueError(f"agent config: unknown selection {cfg.selection!r} (expected auto, argmax or momentum)")


def parse_input_data(input_data: dict[str, Any], timestamp: float, cfg: PolicyConfig) -> Observation:
    """The leaderboard's `{sensor_id: (frame, data)}` → Observation. Missing or malformed entries become None."""

    def data(key: str) -> Any:
        item = input_data.get(key)
        if item is None:
            return None
        return item[1] if isinstance(item, tuple | list) and len(item) == 2 else item

    cam = data(cfg.rig.camera.id)
    gnss = data(cfg.rig.gnss_id)
    imu = data(cfg.rig.imu_id)
    speed_raw = data(cfg.rig.speed_id)
    speed = None
    if isinstance(speed_raw, dict):
        speed = speed_raw.get("speed")
    elif speed_raw is not None:
        speed = speed_raw
    try:
        speed = None if speed is None else float(speed)
    except (TypeError, ValueError):
        speed = None
    return Observation(
        timestamp=float(timestamp),
        camera_bgra=cam if isinstance(cam, np.ndarray) else None,
        gnss=None if gnss is None else np.asarray(gnss, dtype=np.float64),
        imu=None if imu is None else np.asarray(imu, dtype=np.float64),
        speed=speed,
    )


def to_vehicle_control(control: Control) -> Any:
    """Control → carla.VehicleControl when the client is importable, else the Control itself (same fields)."""
    throttle = float(np.clip(control.throttle if math.isfinite(control.throttle) else 0.0, 0.0, 1.0))
    steer = float(np.clip(control.steer if math.isfinite(control.steer) else 0.0, -1.0, 1.0))
    brake = float(np.clip(control.brake if math.isfinite(control.brake) else 1.0, 0.0, 1.0))
    try:
        import carla
    except ImportError:
        return Control(throttle, steer, brake, control.reason)
    return carla.VehicleControl(throttle=throttle, steer=steer, brake=brake, hand_brake=False, reverse=False)


class DriveJEPAAgent(AutonomousAgent):
    """Leaderboard agent: a thin adapter over `DrivingPolicy`."""

    def setup(self, path_to_conf_file: str) -> None:
        self.track = Track.SENSORS
        parts = str(path_to_conf_file or "").split("+")
        conf = parts[0] or None
        self.save_name: str | None = parts[-1] if len(parts) > 1 else None
        self.cfg = load_agent_config(conf)
        model = build_model(self.cfg)  # may adapt cfg.policy.image / history_offsets to a checkpoint
        self.policy = DrivingPolicy(self.cfg.policy, model, build_selector(self.cfg))
        self.step_count = 0
        self._plan_changes: list[float] = []
        self.last_info: StepInfo | None = None
        self.metric_info: dict[str, Any] = {}
        self.recorder: RecordingWriter | None = None
        self._record_failed = False
        self._pending_events: list[tuple[float, str, str, dict[str, Any]]] = []
        self._world_observer: Callable[[], dict[str, np.ndarray]] | None = None
        save_root = self.cfg.save_path or os.environ.get("SAVE_PATH")
        self.save_dir = Path(save_root) / self.save_name if save_root and self.save_name else None
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
        # Bench2Drive's evaluator calls set_global_plan before setup: apply a plan that is already there
        if getattr(self, "_global_plan", None):
            self.policy.set_global_plan(self._global_plan, self._global_plan_world_coord or [])

    @classmethod
    def preflight(cls, path_to_conf_file: str) -> str:
        """What `drive-jepa eval` checks once before the first route, in a process like the evaluator's: the config
        loads, the model (checkpoint) builds, the sensors are valid. Raises on the first problem; writes nothing."""
        conf = str(path_to_conf_file or "").split("+")[0] or None
        cfg = load_agent_config(conf)
        model = build_model(cfg)
        build_selector(cfg)
        sensors = leaderboard_sensors(cfg.policy.rig)
        check_sensors(sensors)
        names = {
            "checkpoint": f"checkpoint {cfg.checkpoint}",
            "drive_jepa_lite": f"drive_jepa_lite ({SHIPPED_CHECKPOINT})",
        }
        what = names.get(cfg.model, cfg.model)
        return f"agent ok: {what} ({type(model).__name__}), {len(sensors)} sensors"

    def sensors(self) -> list[dict[str, Any]]:
        cfg = getattr(self, "cfg", None) or load_agent_config(None)
        return leaderboard_sensors(cfg.policy.rig)

    def set_global_plan(self, global_plan_gps: list[Any], global_plan_world_coord: list[Any]) -> None:
        super().set_global_plan(global_plan_gps, global_plan_world_coord)
        if hasattr(self, "policy"):
            self.policy.set_global_plan(self._global_plan or [], self._global_plan_world_coord or [])

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        obs = parse_input_data(input_data, timestamp, self.cfg.policy)
        control, info = self.policy.step(obs)
        self.last_info = info
        if info.plan_change_m is not None:
            self._plan_changes.append(info.plan_change_m)
        for w in info.warnings:
            log.warning("t=%.2f %s", timestamp, w)
        vehicle_control = to_vehicle_control(control)
        if self.cfg.record and info.model_ran:
            self._record_step(info, obs, vehicle_control)
        self._record_metric_info()
        self.step_count += 1
        return vehicle_control

    def episode_stats(self) -> dict[str, Any]:
        """Per-route figures of the policy (the lite runner stores them in the record's `meta.agent_stats`):
        model steps and the mean / 95th-percentile frame-to-frame plan change (m)."""
        pc = np.asarray(self._plan_changes, dtype=np.float64)
        return {
            "plan_changes": int(pc.size),
            "mean_plan_change_m": round(float(pc.mean()), 4) if pc.size else None,
            "p95_plan_change_m": round(float(np.percentile(pc, 95)), 4) if pc.size else None,
        }

    # ---------------------------------------------------------------- recording
    def recording_path(self) -> Path | None:
        """Where this route's recording goes (None: no folder known, see AgentConfig.record_dir)."""
        name = self.save_name or "route"
        if self.cfg.record_dir:
            return Path(self.cfg.record_dir) / f"{name}{SUFFIX}"
        if self.save_dir is not None:
            return self.save_dir / f"replay{SUFFIX}"
        return None

    def _open_recorder(self) -> RecordingWriter | None:
        path = self.recording_path()
        if path is None:
            log.warning("record=true but neither record_dir nor a save path is set: not recording")
            self._record_failed = True
            return None
        route = self.policy.route
        meta = {
            "save_name": self.save_name,
            "config_yaml": config_lib.to_yaml(self.cfg),  # recomposable with load_agent_config
            "camera": dataclasses.asdict(self.cfg.policy.rig.camera),
            "rear_axle_to_center": self.cfg.policy.localization.rear_axle_to_center,
            "route": {"world": route.points, "options": route.options},  # WORLD (right-handed) x, y; RoadOption
        }
        writer = RecordingWriter(RecordingWriter.unique_path(path), meta, self.cfg.record_options)
        log.info("recording this route to %s", writer.path)
        for t, kind, message, extra in self._pending_events:
            writer.event(t, kind, message, **extra)
        self._pending_events.clear()
        return writer

    def _record_step(self, info: StepInfo, obs: Observation, control: Any) -> None:
        if self._record_failed:
            return
        try:  # a recording is a by-product: never fail the route for it
            if self.recorder is None:
                self.recorder = self._open_recorder()
                if self.recorder is None:
                    return
            header, arrays = step_fields(info, control)
            arrays.update(self._world_arrays())
            header["tick"] = self.step_count
            self.recorder.step(header, arrays, obs.camera_bgra)
        except Exception as exc:
            log.warning("recording failed, recording stops: %s", exc)
            self._record_failed = True

    def set_world_observer(self, observer: Callable[[], dict[str, np.ndarray]] | None) -> None:
        """Where recordings read the world around the ego (the lite world's `world_view`, or in CARLA the
        leaderboard process's actors): called once per recorded step, only while recording, and never given to
        the policy. Its arrays are stored as `world/<name>` (agent.recording.WORLD_ARRAYS)."""
        self._world_observer = observer

    def _world_arrays(self) -> dict[str, np.ndarray]:
        if not self.cfg.record_world:
            return {}
        obs = getattr(self, "_world_observer", None)
        if obs is None and not getattr(self, "_carla_world_tried", False):
            self._carla_world_tried = True  # in a leaderboard process: CarlaDataProvider's world (agent.carla_world)
            obs = self._world_observer = carla_world_observer()
        if obs is None:
            return {}
        try:
            return {f"world/{k}": v for k, v in obs().items()}
        except Exception as exc:  # the world is a by-product of a by-product: the steps keep recording
            log.warning("recording the world around the ego failed, it stops: %s", exc)
            self._world_observer = None
            return {}

    def record_event(self, kind: str, message: str = "", timestamp: float | None = None, **extra: Any) -> None:
        """Store an event (e.g. an infraction the evaluator or the lite world reports) in the recording."""
        if not self.cfg.record or self._record_failed:
            return
        t = timestamp if timestamp is not None else (self.last_info.timestamp if self.last_info else 0.0)
        if self.recorder is None:  # before the first model step opened the file: written when it opens
            self._pending_events.append((t, kind, message, extra))
            return
        try:
            self.recorder.event(t, kind, message, **extra)
        except Exception as exc:
            log.warning("recording an event failed: %s", exc)

    def _record_metric_info(self) -> None:
        if not (self.cfg.write_metric_info and self.save_dir is not None):
            return
        getter = getattr(self, "get_metric_info", None)
        if getter is None or getattr(self, "hero_actor", None) is None:
            return
        try:
            self.metric_info[str(self.step_count)] = getter()
        except Exception as exc:  # the comfort metric is a by-product: never fail the route for it
            log.warning("get_metric_info failed: %s", exc)
            return
        if self.step_count % self.cfg.metric_info_flush_every == 0:
            self.flush_metric_info()

    def flush_metric_info(self) -> None:
        """Write `<save_dir>/metric_info.json` atomically, in the layout Bench2Drive's comfort tool reads (nothing
        when `setup()` did not get that far)."""
        save_dir: Path | None = getattr(self, "save_dir", None)
        if save_dir is None or not getattr(self, "metric_info", None):
            return
        write_json_atomic(save_dir / "metric_info.json", self.metric_info, indent=4)

    def destroy(self) -> None:
        self.flush_metric_info()
        recorder = getattr(self, "recorder", None)
        if recorder is not None:
            last_info = getattr(self, "last_info", None)
            last = last_info.timestamp if last_info else None
            recorder.close({"ticks": getattr(self, "step_count", 0), "last_t": last})
            self.recorder = None
        if hasattr(self, "policy"):
            self.policy.reset()

"""The CARLA-independent policy core: sensor frames + route → plan + control, holding all per-route state.

One `step` per simulator tick (20 Hz): prepare the camera frame (exactly as in training) into the frame history,
localize (GNSS + compass + speed), update the route target and command, run the model every `model_period_s`
(reusing and re-timing the last plan in between), select a proposal (momentum-aware selectors keep their state
here across ticks), and turn the plan into a control. `step` never raises and never returns NaN: on bad input it
brakes, logs the reason, and keeps going.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.control import Control, ControlConfig, Controller
from agent.localization import EgoState, LocalizationConfig, Localizer, plan_to_arrays
from agent.model_api import ModelInputs, ModelOutputs, PlanModel
from agent.preprocess import (
    FrameHistory,
    ImageInputConfig,
    ImageInputError,
    normalize_video,
    prepare_frame,
)
from agent.preprocess import (
    check_frame as bgra_to_rgb_check,
)
from agent.route import RouteConfig, RoutePlanner, RouteState
from agent.selection import ArgmaxSelector, Selection, Selector
from agent.sensors import SensorRigConfig
from drive_jepa import frames as F

log = logging.getLogger(__name__)


@dataclass
class PolicyConfig:
    rig: SensorRigConfig = field(default_factory=SensorRigConfig)
    image: ImageInputConfig = field(default_factory=ImageInputConfig)
    history_offsets: tuple[float, ...] = (-0.5, 0.0)  # the frame spacing the model was trained with (s)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    route: RouteConfig = field(default_factory=RouteConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    model_period_s: float = 0.1  # run the model at 10 Hz; the plan is reused between runs
    sim_dt: float = 0.05  # the leaderboard's fixed_delta_seconds
    max_gap_s: float = 1.0  # a longer gap between ticks resets selection state and controllers


@dataclass
class Observation:
    """One tick of sensor data, already unpacked from the leaderboard's `input_data`."""

    timestamp: float
    camera_bgra: np.ndarray | None = None  # (H, W, 4) uint8
    gnss: np.ndarray | None = None  # (3,) lat, lon, alt
    imu: np.ndarray | None = None  # (7,) acc xyz, gyro xyz, compass
    speed: float | None = None  # m/s


@dataclass
class StepInfo:
    timestamp: float
    ego: EgoState | None = None
    route: RouteState | None = None
    model_ran: bool = False
    inputs: ModelInputs | None = None  # what the model was given (set when model_ran); recordings keep its scalars
    outputs: ModelOutputs | None = None
    selection: Selection | None = None
    plan: np.ndarray | None = None  # (T, 3) the selected plan in the CURRENT EGO_REAR_AXLE frame
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # mean distance (m) between the newly selected plan and the previous one re-timed to now, over the poses
    # (set when the model ran and a previous plan existed): how much the choice jumps frame to frame
    plan_change_m: float | None = None


class DrivingPolicy:
    def __init__(self, cfg: PolicyConfig, model: PlanModel, selector: Selector | None = None) -> None:
        self.cfg = cfg
        cfg.image.validate()
        self.model = model
        self.selector: Selector = selector or ArgmaxSelector()
        self.localizer = Localizer(cfg.localization)
        self.route = RoutePlanner(cfg.route)
        self.controller = Controller(cfg.control, cfg.sim_dt)
        self.history = FrameHistory(offsets=tuple(cfg.history_offsets), prepare=self._prepare)
        self._plan_world: np.ndarray | None = None  # (T+1, 3) WORLD, origin pose first
        self._plan_time: float | None = None
        self._plan_dt = 0.5
        self._last_model_t: float | None = None
        self._last_t: float | None = None
        self._last_ego: EgoState | None = None
        self._prev_speed: float | None = None

    # ---------------------------------------------------------------- route
    def set_global_plan(self, gps_plan: list[Any], world_plan: list[Any]) -> None:
        gps, xy_carla, options = plan_to_arrays(gps_plan, world_plan)
        self.localizer.set_reference(gps, xy_carla)
        self.route.set_route(F.carla_points_to_world(xy_carla), options)
        self.reset()

    def reset(self) -> None:
        """Start of a route (or after a long gap): forget plans, momentum state and controller memory."""
        self.selector.reset()
        self.controller.reset()
        self.history.reset()
        self.localizer.reset()
        self._plan_world = None
        self._plan_time = None
        self._last_model_t = None
        self._last_t = None
        self._prev_speed = None

    # ---------------------------------------------------------------- tick
    def step(self, obs: Observation) -> tuple[Control, StepInfo]:
        info = StepInfo(timestamp=obs.timestamp)
        try:
            return self._step(obs, info), info
        except Exception as exc:  # never let the agent crash the route: brake and say why
            log.exception("policy step failed at t=%.2f", obs.timestamp)
            info.warnings.append(f"policy error: {type(exc).__name__}: {exc}")
            return Control.emergency(f"policy error: {exc}"), info

    def _step(self, obs: Observation, info: StepInfo) -> Control:
        t = float(obs.timestamp)
        if self._last_t is not None and (t - self._last_t > self.cfg.max_gap_s or t < self._last_t):
            info.warnings.append(f"time gap {t - self._last_t:.2f} s: state reset")
            keep_ref = self.localizer.reference
            self.reset()
            self.localizer.reference = keep_ref
        self._last_t = t

        t0 = time.perf_counter()
        if obs.camera_bgra is not None:
            try:  # validate now (cheap), prepare lazily when the frame is selected for the model
                bgra_to_rgb_check(obs.camera_bgra, (self.cfg.image.source_height, self.cfg.image.source_width))
                self.history.push(t, obs.camera_bgra.copy())
            except ImageInputError as exc:
                info.warnings.append(f"camera: {exc}")
        else:
            info.warnings.append("camera: no frame")
        info.timings_ms["preprocess"] = 1e3 * (time.perf_counter() - t0)

        ego = self._localize(obs, info)
        if ego is None:
            return Control.emergency("; ".join(info.warnings) or "not localized")
        info.ego = ego
        route = self.route.update(ego.rear_axle)
        info.route = route

        due = self._last_model_t is None or t - self._last_model_t >= self.cfg.model_period_s - 1e-6
        if due and self.history.times:
            t1 = time.perf_counter()
            frames = self.history.select()
            info.timings_ms["prepare"] = 1e3 * (time.perf_counter() - t1)
            t1 = time.perf_counter()
            inputs = ModelInputs(
                video=normalize_video(frames, self.cfg.image),
                command=route.command_onehot,
                speed=ego.speed,
                acceleration=self._acceleration(obs),
                target_point=route.target_ego.astype(np.float32),
            )
            outputs = self.model.plan(inputs)
            info.timings_ms["model"] = 1e3 * (time.perf_counter() - t1)
            selection = self.selector.choose(outputs, ego.rear_axle, t)
            chosen = np.asarray(outputs.proposals[selection.index], dtype=np.float64)
            previous = self._current_plan(t, ego)
            if previous is not None and previous.shape == chosen.shape and np.all(np.isfinite(chosen)):
                info.plan_change_m = float(np.hypot(*(chosen[:, :2] - previous[:, :2]).T).mean())
            if np.all(np.isfinite(chosen)):
                origin = np.zeros((1, 3))
                self._plan_world = F.to_global(np.concatenate([origin, chosen], 0), ego.rear_axle)
                self._plan_time, self._plan_dt = t, outputs.dt
            else:
                info.warnings.append("model returned a non-finite plan: previous plan kept")
            self._last_model_t = t
            info.model_ran, info.inputs, info.outputs, info.selection = True, inputs, outputs, selection

        plan = self._current_plan(t, ego)
        info.plan = plan
        control = self.controller.step(plan, ego.speed)
        info.timings_ms["total"] = 1e3 * (time.perf_counter() - t0)
        return control

    # ---------------------------------------------------------------- helpers
    def _prepare(self, bgra: np.ndarray) -> np.ndarray:
        return prepare_frame(bgra, self.cfg.image)

    def _localize(self, obs: Observation, info: StepInfo) -> EgoState | None:
        imu = None if obs.imu is None else np.asarray(obs.imu, dtype=np.float64).ravel()
        compass = float(imu[6]) if imu is not None and imu.size >= 7 else math.nan
        gyro_z = float(imu[5]) if imu is not None and imu.size >= 7 else 0.0
        speed = math.nan if obs.speed is None else float(obs.speed)
        if obs.gnss is None:
            info.warnings.append("gnss: no reading")
            return self._last_ego
        try:
            ego = self.localizer.update(obs.timestamp, np.asarray(obs.gnss, dtype=np.float64), compass, speed, gyro_z)
        except Exception as exc:
            info.warnings.append(f"localization: {exc}")
            return self._last_ego
        if not math.isfinite(speed):
            info.warnings.append("speedometer: not finite, using the filtered speed")
        if not math.isfinite(compass):
            info.warnings.append("compass: NaN, heading kept from the filter")
        self._last_ego = ego
        return ego

    def _acceleration(self, obs: Observation) -> np.ndarray:
        if obs.imu is None:
            return np.zeros(2, dtype=np.float32)
        imu = np.asarray(obs.imu, dtype=np.float64).ravel()
        if imu.size < 2 or not np.all(np.isfinite(imu[:2])):
            return np.zeros(2, dtype=np.float32)
        # IMU accelerometer is in CARLA's left-handed sensor axes (y right): ego y (left) = −acc_y
        return np.array([imu[0], -imu[1]], dtype=np.float32)

    def _current_plan(self, t: float, ego: EgoState) -> np.ndarray | None:
        if self._plan_world is None or self._plan_time is None:
            return None
        n = self._plan_world.shape[0] - 1
        t_src = np.arange(n + 1) * self._plan_dt
        elapsed = t - self._plan_time
        t_dst = elapsed + (np.arange(n) + 1) * self._plan_dt
        world = F.interp_poses(t_src, self._plan_world, t_dst)
        return F.to_local(world, ego.rear_axle)

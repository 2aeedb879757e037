"""The leaderboard agent interface in the lite world.

Agents are Python files with `get_entry_point()` naming the agent class, used exactly as the leaderboard does:
`cls(host, port, debug)`, `setup(path_to_conf_file)`, `sensors()`, `set_global_plan(gps_route, world_route)`
with the dense 1 m route, then `run_step(input_data, timestamp)` every tick, finally `destroy()`.

`AutonomousAgent` here mirrors the leaderboard's base class without needing a CARLA server: `set_global_plan`
downsamples the dense plan like the leaderboard's (`downsample_route(route, 50)`), so agents deriving from it
see the same `_global_plan` / `_global_plan_world_coord`. An agent may also implement `set_lite_world(view)`
to get privileged access (the expert does); the runner calls it after `setup`.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from carla_tools.lite.route import downsample_route
from carla_tools.lite.vehicle import VehicleControl


class Track(Enum):
    SENSORS = "SENSORS"
    MAP = "MAP"


class AutonomousAgent:
    """Lite-world twin of `leaderboard.autoagents.autonomous_agent.AutonomousAgent`."""

    def __init__(self, carla_host: str = "localhost", carla_port: int = 2000, debug: bool = False) -> None:
        self.track = Track.SENSORS
        self._global_plan: list[Any] | None = None
        self._global_plan_world_coord: list[Any] | None = None
        self.wallclock_t0 = None

    def setup(self, path_to_conf_file: str) -> None:
        pass

    def sensors(self) -> list[dict[str, Any]]:
        return []

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        return make_control()

    def destroy(self) -> None:
        pass

    def set_global_plan(self, global_plan_gps: list[Any], global_plan_world_coord: list[Any]) -> None:
        pos = np.array([[t.location.x, t.location.y] for t, _ in global_plan_world_coord])
        opts = np.array([int(o) for _, o in global_plan_world_coord])
        ids = downsample_route(pos, opts, 50.0)
        self._global_plan_world_coord = [(global_plan_world_coord[x][0], global_plan_world_coord[x][1]) for x in ids]
        self._global_plan = [global_plan_gps[x] for x in ids]
        self._plan_gps_HACK = global_plan_gps


def make_control(throttle: float = 0.0, steer: float = 0.0, brake: float = 0.0) -> Any:
    """A `carla.VehicleControl` when the client is installed, else the lite `VehicleControl`."""
    try:
        import carla

        return carla.VehicleControl(throttle=float(throttle), steer=float(steer), brake=float(brake))
    except ImportError:
        return VehicleControl(throttle=throttle, steer=steer, brake=brake)


class AgentLoadError(RuntimeError):
    pass


def load_agent_class(path: str | Path) -> type:
    """Import an agent file and return the class named by its `get_entry_point()`."""
    path = Path(path)
    if not path.is_file():
        raise AgentLoadError(f"{path}: agent file not found")
    name = f"lite_agent_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"{path}: cannot import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, "get_entry_point"):
        raise AgentLoadError(f"{path}: no get_entry_point() (the leaderboard's agent-module contract)")
    cls = getattr(module, module.get_entry_point(), None)
    if not inspect.isclass(cls):
        raise AgentLoadError(f"{path}: get_entry_point() names {module.get_entry_point()!r}, not a class there")
    return cls


def instantiate(cls: type) -> Any:
    """Construct like the leaderboard (`cls(host, port, debug)`), or without arguments if it takes none."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    return cls("localhost", 2000, False) if len(params) >= 2 else cls()

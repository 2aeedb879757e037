"""The lite world: a CPU closed-loop stand-in for CARLA on the real CARLA town maps (docs/lite_world.md).

SUMO (libsumo) runs the towns' road networks with background traffic and traffic lights; the ego is a
kinematic bicycle driven by the agent's VehicleControl; sensors come in the leaderboard's formats; results are
written in Bench2Drive's checkpoint format. It is not a replacement for CARLA.

Imports stay lazy: `from carla_tools.lite import run_route, run_routes, LiteConfig`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LiteConfig", "run_route", "run_routes"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from carla_tools.lite import runner

        return getattr(runner, name)
    raise AttributeError(name)

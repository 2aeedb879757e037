"""Bench2Drive's scenarios staged in the lite world: a registry keyed by Bench2Drive's type names (the Python
class names of scenario_runner), one module per scenario family, and the engine that runs them per route.

Families: `obstacles` (Accident, ParkedObstacle, ConstructionObstacle, HazardAtSideLane and their TwoWays
variants), `crossing` (pedestrians crossing), `cut_in` (ParkingCutIn, StaticCutIn, ParkingExit), `junction`
(adversaries and flows at junctions, merges), `route_events` (no-actor types, HardBreakRoute, ControlLoss,
YieldToEmergencyVehicle). Behaviour reference and what the lite versions simplify: docs/lite_world.md.
"""

from carla_tools.lite.scenarios.engine import REGISTRY, ScenarioEngine, known_types, register

__all__ = ["REGISTRY", "ScenarioEngine", "known_types", "register"]

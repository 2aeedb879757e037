"""The world around the ego from CARLA's own value types (agent.carla_world): CARLA's left-handed frame and degrees
become WORLD, blueprints become kinds, the radius holds. Runs with the real `carla` client package, no server."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.carla_world import CarlaActorState, CarlaLightState, carla_world_observer, kind_of, world_arrays
from agent.recording import WORLD_ARRAYS, WORLD_KINDS

carla = pytest.importorskip("carla", reason="the CARLA 0.9.15 client (`carla`) is not importable")
pytestmark = pytest.mark.carla


def _actor(i: int, type_id: str, x: float, y: float, yaw: float, v: tuple[float, float, float] = (0, 0, 0)):
    t = carla.Transform(carla.Location(x=x, y=y, z=0.5), carla.Rotation(yaw=yaw))
    return CarlaActorState(i, type_id, t, carla.Vector3D(2.4, 1.0, 0.8), carla.Vector3D(*v))


def test_carla_actors_and_lights_become_world_arrays() -> None:
    actors = [
        _actor(1, "vehicle.lincoln.mkz_2020", 110.0, 20.0, 90.0, (0.0, 5.0, 0.0)),  # CARLA +y = WORLD −y
        _actor(2, "walker.pedestrian.0001", 100.0, 10.0, 0.0),
        _actor(3, "vehicle.bh.crossbike", 90.0, 0.0, 180.0),
        _actor(4, "vehicle.ford.ambulance", 100.0, -30.0, -90.0),
        _actor(5, "static.prop.trafficcone01", 105.0, 0.0, 0.0),
        _actor(6, "vehicle.audi.tt", 200.0, 0.0, 0.0),  # 100 m away: left out
    ]
    stop = carla.Transform(carla.Location(x=100.0, y=-20.0, z=0.0), carla.Rotation(yaw=90.0))
    lights = [CarlaLightState(stop, "Red", 3.5, True, 31), CarlaLightState(stop, "Green", 3.5, False, 32)]
    out = world_arrays((100.0, 0.0), actors, lights)
    assert set(out) == set(WORLD_ARRAYS)
    assert out["actor_ids"].tolist() == [1, 2, 3, 4, 5]
    assert [WORLD_KINDS[k] for k in out["actor_kind"]] == ["vehicle", "pedestrian", "bicycle", "emergency", "prop"]
    car = out["actor_boxes"][0]
    np.testing.assert_allclose(car[:3], [110.0, -20.0, -math.pi / 2], atol=1e-5)  # CARLA yaw 90° = WORLD −π/2
    np.testing.assert_allclose(car[3:], [4.8, 2.0, 5.0], atol=1e-5)  # length, width, speed
    np.testing.assert_allclose(out["lights"][:, :2], [[100.0, 20.0], [100.0, 20.0]])
    assert out["lights"][:, 3].tolist() == [0.0, 2.0] and out["light_governs_ego"].tolist() == [True, False]
    assert out["light_ids"].tolist() == [31, 32]
    assert kind_of("walker.pedestrian.0040") == WORLD_KINDS.index("pedestrian")


def test_no_leaderboard_process_no_carla_observer() -> None:
    """Outside a leaderboard process (scenario_runner not importable) there is no CARLA world to read."""
    try:
        import srunner  # noqa: F401
    except ImportError:
        assert carla_world_observer() is None
    else:
        assert carla_world_observer() is not None

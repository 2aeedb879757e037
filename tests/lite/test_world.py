"""Ego dynamics, sensors in the leaderboard's formats, and the route criteria on a real town."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from carla_tools.lite.criteria import RouteCriteria
from carla_tools.lite.route import build_dense_route, route_light_links
from carla_tools.lite.runner import truncate_route
from carla_tools.lite.sensors import SensorSpecError, parse_sensors
from carla_tools.lite.town import load_town
from carla_tools.lite.traffic import Actors
from carla_tools.lite.vehicle import BicycleModel, EgoState, VehicleControl, as_control
from carla_tools.lite.world import LiteWorld
from drive_jepa import frames
from drive_jepa.routes import load_routes
from tests.conftest import fixtures_dir

RIG = [
    {"type": "sensor.camera.rgb", "x": 0.8, "y": 0.0, "z": 1.6, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
     "width": 320, "height": 180, "fov": 70, "id": "CAM_FRONT"},
    {"type": "sensor.other.imu", "x": -1.4, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
     "sensor_tick": 0.05, "id": "IMU"},
    {"type": "sensor.other.gnss", "x": -1.4, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
     "sensor_tick": 0.01, "id": "GPS"},
    {"type": "sensor.speedometer", "reading_frequency": 20, "id": "SPEED"},
]  # fmt: skip


def _route(rid: str = "28111"):  # Town04 T_Junction, 87 m through a signalled junction
    routes = load_routes(fixtures_dir("bench2drive", "routes", "bench2drive220.xml"))
    return next(r for r in routes if r.id == rid)


@pytest.fixture
def world():
    route = _route()
    town = load_town(route.town)
    with LiteWorld(town, build_dense_route(route, town), seed=3, num_vehicles=10) as w:
        yield w


def test_bicycle_limits() -> None:
    m = BicycleModel()
    s = EgoState(0.0, 0.0, 0.0)
    for _ in range(100):  # 5 s full throttle
        s = m.step(s, VehicleControl(throttle=1.0), 0.05)
    assert 10.0 < s.speed < 20.0 and abs(s.y) < 1e-9
    v0 = s.speed
    n = 0
    while s.speed > 0 and n < 200:
        s = m.step(s, VehicleControl(brake=1.0), 0.05)
        n += 1
    assert s.speed == 0.0 and v0 / 9.0 < n * 0.05 < v0 / 6.0  # ~8 m/s² braking, never reverses
    s = EgoState(0.0, 0.0, 0.0, speed=5.0)
    for _ in range(20):
        s = m.step(s, VehicleControl(throttle=0.3, steer=0.5), 0.05)
    assert s.heading < -0.3 and s.y < 0  # CARLA steer > 0 turns right (clockwise)
    s = EgoState(0.0, 0.0, 0.0)
    for _ in range(40):
        s = m.step(s, VehicleControl(throttle=1.0, reverse=True), 0.05)
    assert s.speed < -2.0 and s.x < 0


def test_as_control_accepts_dataclass_and_clips() -> None:
    c = as_control(VehicleControl(throttle=2.0, steer=-3.0, brake=float("nan")))
    assert (c.throttle, c.steer, c.brake) == (1.0, -1.0, 0.0)
    with pytest.raises(TypeError, match="throttle"):
        as_control(object())


@pytest.mark.carla
def test_as_control_accepts_carla_vehicle_control() -> None:
    import carla

    c = as_control(carla.VehicleControl(throttle=0.5, steer=0.25, brake=0.0, hand_brake=True, reverse=True))
    assert c.throttle == 0.5 and c.steer == 0.25 and c.hand_brake and c.reverse


def test_sensor_specs_are_validated() -> None:
    specs = parse_sensors(RIG)
    assert [s.id for s in specs] == ["CAM_FRONT", "IMU", "GPS", "SPEED"]
    with pytest.raises(SensorSpecError, match="lidar"):
        parse_sensors([{"type": "sensor.lidar.ray_cast", "id": "LIDAR"}])
    with pytest.raises(SensorSpecError, match="fov"):
        parse_sensors([{"type": "sensor.camera.rgb", "id": "c", "width": 10, "height": 10}])


def test_sensor_formats(world: LiteWorld) -> None:
    for _ in range(10):
        world.step(VehicleControl(throttle=0.6))
    data = world.read_sensors(parse_sensors(RIG))
    frame, img = data["CAM_FRONT"]
    assert frame == world.frame and img.shape == (180, 320, 4) and img.dtype == np.uint8
    assert np.all(img[..., 3] == 255)
    assert tuple(img[0, 160, :3]) == (235, 206, 160)  # sky (BGR) at the top
    assert tuple(img[-1, 160, :3]) == (88, 88, 88)  # road right in front of the ego
    _, gnss = data["GPS"]
    assert gnss.shape == (3,) and gnss.dtype == np.float64
    pose = world.ego_pose
    gps_xy = world.town.geo.gnss_to_carla(gnss[:2])
    mount = frames.points_to_global(np.array([-1.4, 0.0]), pose)
    np.testing.assert_allclose(gps_xy, [mount[0], -mount[1]], atol=1e-6)
    _, imu = data["IMU"]
    assert imu.shape == (7,)
    assert abs(frames.wrap_angle(frames.compass_to_heading(imu[6]) - pose[2])) < 1e-9
    assert imu[0] > 0.5 and abs(imu[2] - 9.81) < 1e-9  # accelerating forward, gravity on z
    _, speed = data["SPEED"]
    assert set(speed) == {"speed"} and speed["speed"] == pytest.approx(world.ego.speed) and speed["speed"] > 1.0


def _teleport(world: LiteWorld, centre_xy: np.ndarray, heading: float, speed: float) -> None:
    rear = frames.center_to_rear_axle(np.array([*centre_xy, heading]), world.ego.geometry.rear_axle_to_center)
    world.ego = replace(world.ego, x=float(rear[0]), y=float(rear[1]), heading=heading, speed=speed)


def test_collision_with_vehicle_is_counted_once(world: LiteWorld) -> None:
    crit = RouteCriteria(world)
    world.ego = replace(world.ego, speed=3.0)
    pose = world.ego_pose
    ahead = pose[:2] + 3.0 * np.array([math.cos(pose[2]), math.sin(pose[2])])
    world._actors = Actors(np.array([77]), ahead[None], np.array([pose[2]]), np.zeros(1), np.array([4.6]),
                           np.array([1.9]))  # fmt: skip
    crit.update(world)
    crit.update(world)
    msgs = crit.infractions["collisions_vehicle"]
    assert (
        len(msgs) == 1 and msgs[0].startswith("Agent collided against object with type=vehicle.") and "id=77" in msgs[0]
    )
    assert crit.penalty() == pytest.approx(0.6)


def test_red_light_run_is_detected(world: LiteWorld) -> None:
    (_, k), *_ = route_light_links(world.route, world.town)
    link = world.town.tl_links[k]
    crit = RouteCriteria(world)
    world._light_states = {t: "r" * 64 for t in world._light_states}
    u = np.array([math.cos(link.stop_heading), math.sin(link.stop_heading)])
    for along in (-25.0, -12.0, -6.0, 1.0, 2.5, 4.0, 5.5):  # approaches, then the tail crosses the stop line
        _teleport(world, link.stop_xy + along * u, link.stop_heading, 5.0)
        crit.update(world)
        assert len(crit.red_encounters) == (along >= -12.0)  # met once the front is within 15 m of the line
    msgs = crit.infractions["red_light"]
    assert len(msgs) == 1 and msgs[0].startswith("Agent ran a red light ") and " at (x=" in msgs[0]
    assert crit.penalty() == pytest.approx(0.7)


def test_green_light_is_not_an_infraction(world: LiteWorld) -> None:
    (_, k), *_ = route_light_links(world.route, world.town)
    link = world.town.tl_links[k]
    crit = RouteCriteria(world)
    world._light_states = {t: "G" * 64 for t in world._light_states}
    u = np.array([math.cos(link.stop_heading), math.sin(link.stop_heading)])
    for along in (-12.0, -6.0, 1.0, 2.5, 4.0, 5.5):
        _teleport(world, link.stop_xy + along * u, link.stop_heading, 5.0)
        crit.update(world)
    assert crit.infractions["red_light"] == [] and not crit.red_encounters


def test_route_deviation_and_blocked_end_the_route(world: LiteWorld) -> None:
    crit = RouteCriteria(world)
    pose = world.ego_pose
    _teleport(world, pose[:2] + np.array([0.0, 40.0]), float(pose[2]), 1.0)
    crit.update(world)
    assert crit.done and crit.failure == "Agent deviated from the route"
    assert crit.infractions["route_dev"][0].startswith("Agent deviated from the route at (x=")

    crit = RouteCriteria(world)
    _teleport(world, pose[:2], float(pose[2]), 0.0)
    crit.update(world)
    world.time += 60.5
    crit.update(world)
    assert crit.done and crit.failure == "Agent got blocked"
    assert crit.infractions["vehicle_blocked"][0].startswith("Agent got blocked at (x=")


def test_outside_lanes_measured_in_metres_and_percent() -> None:
    route = truncate_route(_route(), 30.0)
    town = load_town(route.town)
    with LiteWorld(town, build_dense_route(route, town), seed=0, num_vehicles=0) as w:
        crit = RouteCriteria(w)
        dense = w.route
        for k in range(0, 21):  # on the route for 10 m, then 4 m to its left (opposite lane / off road) for 10 m
            h = dense.heading[k]
            left = np.array([-math.sin(h), math.cos(h)])
            _teleport(
                w,
                dense.world_xy[k] + (4.0 if k > 10 else 0.0) * left + 0.1 * np.array([math.cos(h), math.sin(h)]),
                float(h),
                5.0,
            )
            crit.update(w)
        msg = crit.infractions["outside_route_lanes"]
        assert len(msg) == 1 and msg[0].startswith("Agent went outside its route lanes for about ")
        assert "% of the completed route)" in msg[0]
        metres = float(msg[0].split(" ")[8])
        assert 9.0 <= metres <= 11.0
        assert crit.penalty() == pytest.approx(1 - metres / 20.0, abs=0.06)

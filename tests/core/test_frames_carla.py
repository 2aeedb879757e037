"""frames vs the real CARLA 0.9.15 client types (skipped when the `carla` package is not importable)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drive_jepa import frames as F

pytestmark = pytest.mark.carla

deg = st.floats(-179.9, 179.9, allow_nan=False)
coord = st.floats(-500, 500, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(coord, coord, coord, deg, deg, deg)
def test_transform_matrix_matches_carla(x, y, z, p, yaw, r):
    carla = pytest.importorskip("carla")
    tf = carla.Transform(carla.Location(x, y, z), carla.Rotation(pitch=p, yaw=yaw, roll=r))
    ours = F.carla_transform_matrix(np.array([x, y, z]), np.array([p, yaw, r]))
    theirs = np.array(tf.get_matrix())
    assert np.allclose(ours, theirs, atol=1e-3 + 1e-5 * max(abs(x), abs(y), abs(z)))  # carla uses float32
    fwd = tf.get_forward_vector()
    assert np.allclose(ours[:3, 0], [fwd.x, fwd.y, fwd.z], atol=1e-5)
    right = tf.get_right_vector()
    assert np.allclose(ours[:3, 1], [right.x, right.y, right.z], atol=1e-5)
    up = tf.get_up_vector()
    assert np.allclose(ours[:3, 2], [up.x, up.y, up.z], atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(coord, coord, deg, st.tuples(coord, coord, coord))
def test_transform_point_matches_carla(x, y, yaw, pt):
    carla = pytest.importorskip("carla")
    tf = carla.Transform(carla.Location(x, y, 0.5), carla.Rotation(yaw=yaw))
    loc = carla.Location(*pt)
    tf.transform(loc)  # in place, child -> parent
    ours = F.transform_points(F.carla_transform_matrix(np.array([x, y, 0.5]), np.array([0.0, yaw, 0.0])), np.array(pt))
    assert np.allclose(ours, [loc.x, loc.y, loc.z], atol=1e-2)
    # and in 2D through the right-handed world: the ego-frame point (pt.x, -pt.y) maps to the same place
    world = F.points_to_global(np.array([pt[0], -pt[1]]), F.carla_to_world(np.array([x, y, yaw])))
    assert np.allclose(F.world_points_to_carla(world), [loc.x, loc.y], atol=1e-2)


def test_inverse_transform_matches_carla():
    carla = pytest.importorskip("carla")
    tf = carla.Transform(carla.Location(3, -4, 1), carla.Rotation(pitch=5, yaw=-30, roll=2))
    ours = np.linalg.inv(F.carla_transform_matrix(np.array([3, -4, 1.0]), np.array([5, -30, 2.0])))
    assert np.allclose(ours, np.array(tf.get_inverse_matrix()), atol=1e-5)


def test_camera_mount_matches_carla_sensor_transform():
    carla = pytest.importorskip("carla")
    mount = F.CameraMount(x=0.8, y=0.3, z=1.6, pitch=-5.0, yaw=10.0, roll=0.0)
    sensor_tf = carla.Transform(carla.Location(0.8, 0.3, 1.6), carla.Rotation(pitch=-5.0, yaw=10.0, roll=0.0))
    # a point 20 m along the camera's forward axis (vehicle frame, CARLA axes)
    fwd = sensor_tf.get_forward_vector()
    p_carla = np.array([0.8 + 20 * fwd.x, 0.3 + 20 * fwd.y, 1.6 + 20 * fwd.z])
    p_ego = F.carla_points_to_world(p_carla)  # CARLA vehicle axes -> right-handed ego axes (flip y)
    cam = F.transform_points(mount.ego_to_camera(), p_ego)
    assert np.allclose(cam, [0, 0, 20.0], atol=1e-4)


def test_vehicle_control_and_location_types_roundtrip_through_world():
    carla = pytest.importorskip("carla")
    loc = carla.Location(x=12.5, y=-7.25, z=0.0)
    w = F.carla_points_to_world(np.array([loc.x, loc.y]))
    assert np.allclose(F.world_points_to_carla(w), [loc.x, loc.y])
    rot = carla.Rotation(yaw=45.0)
    fwd = rot.get_forward_vector()
    heading = F.carla_to_world(np.array([0, 0, rot.yaw]))[2]
    # the world heading points along the forward vector once y is flipped
    assert np.allclose([math.cos(heading), math.sin(heading)], [fwd.x, -fwd.y], atol=1e-6)

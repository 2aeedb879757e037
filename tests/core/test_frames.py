"""Property-based tests for every conversion in drive_jepa.frames (numpy and torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from drive_jepa import frames as F

coord = st.floats(-5000, 5000, allow_nan=False, allow_infinity=False)
angle = st.floats(-math.pi, math.pi - 1e-9, allow_nan=False)
deg = st.floats(-179.999, 179.999, allow_nan=False)
pose = st.tuples(coord, coord, angle).map(np.array)
poses = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(3)), elements=st.floats(-1000, 1000)).map(
    lambda a: np.concatenate([a[:, :2], F.wrap_angle(a[:, 2:] / 100)], -1)
)


def ang_close(a, b, atol=1e-9):
    """Angles equal on the circle (−π and π are the same heading)."""
    d = F.wrap_angle(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return bool(np.all(np.minimum(np.abs(d), 2 * math.pi - np.abs(d)) < atol))


@given(coord, coord, deg)
def test_carla_world_round_trip(x, y, yaw):
    p = np.array([x, y, yaw])
    w = F.carla_to_world(p)
    assert w[1] == -y
    assert abs(F.wrap_angle(w[2] + math.radians(yaw))) < 1e-12
    back = F.world_to_carla(w)
    assert np.allclose(back[:2], p[:2])
    assert abs(((back[2] - yaw) + 180) % 360 - 180) < 1e-9


def test_carla_yaw_is_clockwise():
    # CARLA yaw +90° faces +y_carla = south; in the right-handed world that is heading −π/2.
    assert np.allclose(F.carla_to_world(np.array([0.0, 0.0, 90.0]))[2], -math.pi / 2)


@settings(max_examples=200)
@given(pose, pose)
def test_se2_inverse_and_local_global(a, b):
    ident = F.se2_compose(a, F.se2_inverse(a))
    assert np.allclose(ident[:2], 0, atol=1e-6) and abs(ident[2]) < 1e-9
    local = F.to_local(b, a)
    assert np.allclose(F.to_global(local, a)[:2], b[:2], atol=1e-6)
    assert ang_close(F.to_global(local, a)[2], b[2])
    pts_local = F.points_to_local(b[:2], a)
    assert np.allclose(pts_local, local[:2], atol=1e-6)
    assert np.allclose(F.points_to_global(pts_local, a), b[:2], atol=1e-6)


@given(poses, pose)
def test_batched_numpy_matches_torch(ps, origin):
    n = F.to_local(ps, origin)
    t = F.to_local(torch.from_numpy(ps), torch.from_numpy(origin))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    assert np.allclose(t.numpy(), n)


def test_to_local_known_case():
    # ego at (10, 5) facing north (+π/2): a point 3 m north of it is 3 m straight ahead.
    local = F.to_local(np.array([10.0, 8.0, math.pi / 2]), np.array([10.0, 5.0, math.pi / 2]))
    assert np.allclose(local, [3.0, 0.0, 0.0])
    # a point 2 m east of it is 2 m to its right (y negative in the left-positive ego frame)
    assert np.allclose(F.points_to_local(np.array([12.0, 5.0]), np.array([10.0, 5.0, math.pi / 2])), [0.0, -2.0])


@given(pose, st.floats(0.1, 3.0))
def test_rear_axle_round_trip(p, d):
    r = F.center_to_rear_axle(p, d)
    assert np.isclose(np.hypot(*(p[:2] - r[:2])), d)
    assert np.allclose(F.rear_axle_to_center(r, d), p, atol=1e-6)


def test_rear_axle_is_behind():
    r = F.center_to_rear_axle(np.array([0.0, 0.0, 0.0]), F.PACIFICA.rear_axle_to_center)
    assert np.allclose(r, [-1.461, 0, 0])


@given(st.floats(-10, 10))
def test_compass_to_heading(c):
    h = F.compass_to_heading(np.array(c))
    assert abs(F.wrap_angle(h - (math.pi / 2 - c))) < 1e-9
    yaw = F.compass_to_carla_yaw(np.array(c))
    # CARLA yaw (rad) = compass − π/2
    assert abs(F.wrap_angle(math.radians(float(yaw)) - (c - math.pi / 2))) < 1e-9


def test_compass_cardinal_directions_and_nan():
    # compass 0 = north = CARLA −y → CARLA yaw −90°, world heading +π/2
    assert np.isclose(F.compass_to_carla_yaw(np.array(0.0)), -90.0)
    assert np.isclose(F.compass_to_heading(np.array(0.0)), math.pi / 2)
    # compass π/2 = east = CARLA +x → yaw 0
    assert np.isclose(F.compass_to_carla_yaw(np.array(math.pi / 2)), 0.0)
    out = F.compass_to_heading(np.array([0.0, np.nan, np.inf]), fallback=1.25)
    assert np.allclose(out, [math.pi / 2, 1.25, 1.25])
    t = F.compass_to_heading(torch.tensor([np.nan, 0.0]), fallback=0.5)
    assert torch.allclose(t, torch.tensor([0.5, math.pi / 2]))
    assert np.isnan(F.compass_to_heading(np.array(np.nan)))


georef = st.builds(F.GeoReference, st.floats(-60, 60), st.floats(-170, 170))


def leaderboard_location_to_gps(lat_ref, lon_ref, x, y):
    """The leaderboard's formula, transcribed from the conventions note, as the independent oracle."""
    r = 6378137.0
    scale = math.cos(lat_ref * math.pi / 180.0)
    mx = scale * lon_ref * math.pi * r / 180.0 + x
    my = scale * r * math.log(math.tan((90.0 + lat_ref) * math.pi / 360.0)) - y
    lon = mx * 180.0 / (math.pi * r * scale)
    lat = 360.0 * math.atan(math.exp(my / (r * scale))) / math.pi - 90.0
    return lat, lon


@settings(max_examples=200)
@given(georef, coord, coord)
def test_gnss_matches_leaderboard_and_inverts(ref, x, y):
    lat, lon = F.GeoReference.carla_to_gnss(ref, np.array([x, y]))
    exp_lat, exp_lon = leaderboard_location_to_gps(ref.lat0, ref.lon0, x, y)
    assert math.isclose(lat, exp_lat, abs_tol=1e-12) and math.isclose(lon, exp_lon, abs_tol=1e-12)
    back = ref.gnss_to_carla(np.array([lat, lon, 0.0]))
    assert np.allclose(back, [x, y], atol=1e-4)  # float64 round trip through degrees: < 0.1 mm


@settings(max_examples=50)
@given(georef, arrays(np.float64, (6, 2), elements=st.floats(-3000, 3000)))
def test_georeference_recovered_from_route_pairs(ref, xy):
    gps = ref.carla_to_gnss(xy)
    rec = F.GeoReference.from_route_pairs(gps, xy)
    assert abs(rec.lat0 - ref.lat0) < 1e-7 and abs(rec.lon0 - ref.lon0) < 1e-7
    assert np.allclose(rec.gnss_to_carla(gps), xy, atol=1e-3)


def test_georeference_from_opendrive_header():
    hdr = "<header><geoReference><![CDATA[+proj=tmerc +lat_0=49.0 +lon_0=8.0 +k=1]]></geoReference></header>"
    assert F.GeoReference.from_opendrive(hdr) == F.GeoReference(49.0, 8.0)
    assert F.GeoReference.from_opendrive("<header/>") == F.GeoReference(42.0, 2.0)


def test_gnss_torch_matches_numpy():
    ref = F.GeoReference(42.0, 2.0)
    xy = np.array([[10.0, -20.0], [300.5, 120.25]])
    assert np.allclose(ref.carla_to_gnss(torch.from_numpy(xy)).numpy(), ref.carla_to_gnss(xy), atol=1e-12)


@given(deg, deg, deg)
def test_rotation_matrix_is_orthonormal_and_forward_vector(p, y, r):
    m = F.carla_rotation_matrix(np.array(p), np.array(y), np.array(r))
    assert np.allclose(m @ m.T, np.eye(3), atol=1e-9)
    # a proper rotation (det +1) in CARLA's left-handed axes
    assert np.isclose(np.linalg.det(m), 1.0)
    fp, fy = math.radians(p), math.radians(y)
    fwd = [math.cos(fy) * math.cos(fp), math.sin(fy) * math.cos(fp), math.sin(fp)]
    assert np.allclose(m[:, 0], fwd, atol=1e-9)


def test_camera_mount_projects_forward_point_on_axis():
    cam = F.CameraMount()  # Bench2Drive front camera: x 0.80, z 1.60
    m = cam.ego_to_camera()
    # a point 10.8 m ahead at camera height lands on the optical axis, 10 m deep
    assert np.allclose(F.transform_points(m, np.array([10.8, 0.0, 1.6])), [0, 0, 10.0])
    # a point to the LEFT of the car (ego +y) has negative camera x; one above has negative camera y
    p = F.transform_points(m, np.array([10.8, 2.0, 3.6]))
    assert p[0] < 0 and p[1] < 0 and np.isclose(p[2], 10.0)
    # a camera yawed 90° right in CARLA (yaw +90) looks at ego −y
    right = F.CameraMount(yaw=90.0).ego_to_camera()
    assert np.allclose(F.transform_points(right, np.array([0.8, -5.0, 1.6])), [0, 0, 5.0])
    # pitch up (CARLA pitch +10) moves a level far point below the image centre (camera y > 0)
    up = F.CameraMount(pitch=10.0).ego_to_camera()
    assert F.transform_points(up, np.array([50.0, 0.0, 1.6]))[1] > 0


def test_interp_poses_heading_on_circle():
    t = np.array([0.0, 1.0])
    p = np.array([[0.0, 0.0, math.pi - 0.1], [2.0, 0.0, -math.pi + 0.1]])
    out = F.interp_poses(t, p, np.array([0.5]))
    assert np.allclose(out[0, :2], [1.0, 0.0])
    assert np.isclose(abs(out[0, 2]), math.pi)  # crosses ±π, not through 0
    tt = F.interp_poses(t, torch.from_numpy(p), np.array([0.5]))
    assert np.allclose(tt.numpy(), out)


@settings(max_examples=50)
@given(arrays(np.float64, (3, 8, 3), elements=st.floats(-50, 50)))
def test_trajectory_resample_round_trip(raw):
    raw[..., 2] = F.wrap_angle(raw[..., 2] / 20)
    traj = F.Trajectory(F.Frame.EGO_REAR_AXLE, raw, dt=0.5)
    fine = traj.resample(0.1, 40)
    assert fine.poses.shape == (3, 40, 3)
    coarse = fine.resample(0.5, 8)
    assert np.allclose(coarse.poses[..., :2], raw[..., :2], atol=1e-9)
    assert np.allclose(F.wrap_angle(coarse.poses[..., 2] - raw[..., 2]), 0, atol=1e-9)
    # the 0.1 s samples between 0 and 0.5 s interpolate from the origin (identity pose)
    assert np.allclose(fine.poses[:, 4, :2], raw[:, 0, :2], atol=1e-9)
    assert np.allclose(fine.poses[:, 1, :2], 0.4 * raw[:, 0, :2], atol=1e-9)


@given(poses, pose)
def test_trajectory_world_ego_round_trip(ps, origin):
    tr = F.Trajectory(F.Frame.WORLD, ps, dt=0.5)
    local = tr.to_local(origin, F.Frame.EGO_CENTER)
    back = local.to_world(origin)
    assert back.frame is F.Frame.WORLD
    assert np.allclose(back.poses[..., :2], ps[..., :2], atol=1e-6)


@given(poses, st.floats(0.5, 2.0))
def test_trajectory_change_origin_round_trip_and_consistency(ps, d):
    geo = F.VehicleGeometry(4.0, 2.0, d, 2.8)
    tr = F.Trajectory(F.Frame.EGO_REAR_AXLE, ps, dt=0.5)
    c = tr.change_origin(geo)
    assert c.frame is F.Frame.EGO_CENTER
    assert np.allclose(c.change_origin(geo).poses, ps, atol=1e-6)
    # the same physical motion: world pose of rear axle at t, via both frames, agrees
    world_centre = np.array([3.0, -2.0, 0.7])
    world_rear = F.center_to_rear_axle(world_centre, d)
    via_rear = F.to_global(ps, world_rear)
    via_centre = F.center_to_rear_axle(F.to_global(c.poses, world_centre), d)
    assert np.allclose(via_rear[..., :2], via_centre[..., :2], atol=1e-6)


def test_trajectory_rejects_bad_frames_and_shapes():
    with pytest.raises(F.FrameError):
        F.Trajectory(F.Frame.CARLA_WORLD, np.zeros((8, 3)), 0.5)
    with pytest.raises(F.FrameError):
        F.Trajectory(F.Frame.WORLD, np.zeros((8, 2)), 0.5)
    with pytest.raises(F.FrameError):
        F.Trajectory(F.Frame.EGO_CENTER, np.zeros((8, 3)), 0.5).to_local(np.zeros(3), F.Frame.EGO_CENTER)


def test_ego_pose_from_carla():
    # CARLA actor at (10, 20) with yaw 90° (facing south): world pose (10, −20, −π/2); rear axle 1 m north
    p = F.ego_pose_from_carla(np.array([10.0, 20.0]), np.array(90.0), F.VehicleGeometry(4, 2, 1.0, 2.8))
    assert np.allclose(p, [10.0, -19.0, -math.pi / 2])


def test_quaternion_yaw_matches_pyquaternion_formula():
    # pure yaw rotations: q = (cos h/2, 0, 0, sin h/2), also unnormalised and batched
    h = np.linspace(-3.1, 3.1, 7)
    q = np.stack([np.cos(h / 2), 0 * h, 0 * h, np.sin(h / 2)], -1)
    np.testing.assert_allclose(F.quaternion_yaw(q), h, atol=1e-12)
    np.testing.assert_allclose(F.quaternion_yaw(3.0 * q), h, atol=1e-12)
    # a real nuPlan-like pose: yaw 0.7 rad with small pitch/roll stays close to 0.7
    yaw, pitch, roll = 0.7, 0.02, -0.03
    cy, sy, cp, sp = np.cos(yaw / 2), np.sin(yaw / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    q2 = np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                   cr * cp * sy - sr * sp * cy])  # fmt: skip
    assert F.quaternion_yaw(q2) == pytest.approx(0.7, abs=2e-3)
    t = F.quaternion_yaw(torch.tensor(q))
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), h)


def test_carla_pose_from_inverse_matrix():
    m = F.carla_transform_matrix(np.array([10.0, -4.0, 0.5]), np.array([0.0, 30.0, 0.0]))
    pose = F.carla_pose_from_inverse_matrix(np.linalg.inv(m))
    np.testing.assert_allclose(pose, [10.0, -4.0, 30.0], atol=1e-9)


def test_arc_poses_by_hand_numpy_and_torch():
    import math

    import torch

    from drive_jepa.frames import arc_poses

    t = np.array([1.0, 2.0])
    straight = arc_poses(np.array(10.0), np.array(0.0), np.array(-2.0), t)
    assert np.allclose(straight, [[9.0, 0.0, 0.0], [16.0, 0.0, 0.0]])
    stop = arc_poses(np.array(2.0), np.array(0.0), np.array(-2.0), np.array([1.0, 2.0, 3.0]))
    assert np.allclose(stop[:, 0], [1.0, 1.0, 1.0])  # stops at s = 1 m and stays
    # a quarter circle of radius 10 m: s = 5π at t = 1 with v = 5π
    quarter = arc_poses(torch.tensor([5 * math.pi]), torch.tensor([0.1]), torch.tensor([0.0]), torch.tensor([1.0]))
    assert torch.allclose(quarter[0, 0], torch.tensor([10.0, 10.0, math.pi / 2]), atol=1e-5)

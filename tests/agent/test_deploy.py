"""NAVSIM → CARLA deployment adaptation (`agent.deploy`): the crop, the camera, and "the same 3D point lands on
the same token in both camera setups".

Token grid: 16×16-pixel patches of the 512×256 model input → 16 rows × 32 columns. Tolerance: with matched
intrinsics the only differences left are the mounts (NAVSIM nominal CAM_F0 1.70 m ahead of the rear axle, 1.50 m
up; Bench2Drive's camera 0.80 + 1.39 = 2.19 m ahead, 1.60 m up) and the crop rounding (< 0.2 px). A point at
distance d, height z, lateral y moves by about fy·((1.6 − z)/(d − 2.19) − (1.5 − z)/(d − 1.70)) rows and
fx·y·(1/(d − 2.19) − 1/(d − 1.70)) columns: under 3 px (< 1/5 token) beyond 40 m, so far points keep their token
(except within 3 px of a token border, where any sub-token shift can flip it); near the car (8–15 m) the ground
moves down by 4–15 px, a token row for some points — the mount-height/position parallax the planner's per-sample
projection accounts for.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.camera import carla_front_camera, navsim_cam_f0
from agent.deploy import deployment, deployment_camera, deployment_image_config, model_input_size
from agent.preprocess import normalize_video, prepare_frame
from agent.sensors import FrontCameraConfig, SensorRigConfig
from drive_jepa.frames import LINCOLN_MKZ_2020

PATCH = 16
NAVSIM_META = {"data": "navsim", "data_camera": "navsim_cam_f0", "camera": navsim_cam_f0().to_dict()}
B2D_META = {
    "data": "bench2drive",
    "data_camera": "carla_front",
    "camera": carla_front_camera(LINCOLN_MKZ_2020).to_dict(),
}
FAR_TOL_PX = 3.0


def _grid(distances: np.ndarray, laterals: np.ndarray, heights: np.ndarray) -> np.ndarray:
    d, y, z = np.meshgrid(distances, laterals, heights, indexing="ij")
    return np.stack([d, y, z], -1).reshape(-1, 3)


def _pixels(camera: object, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uv, depth = camera.project(pts)  # type: ignore[attr-defined]
    inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < 512) & (uv[:, 1] >= 0) & (uv[:, 1] < 256)
    return uv, inside


def _tokens(uv: np.ndarray) -> np.ndarray:
    return (uv[:, 1] // PATCH).astype(int) * 32 + (uv[:, 0] // PATCH).astype(int)


def test_navsim_checkpoint_gets_navsim_intrinsics_from_the_carla_crop() -> None:
    d = deployment(NAVSIM_META)
    assert d.strategy == "match_navsim_intrinsics" and d.trained_on == "navsim_cam_f0" and not d.notes
    img = d.image
    assert (img.crop_top, img.crop_bottom, img.crop_left, img.crop_right) == (57, 814, 90, 1510)
    assert (img.out_width, img.out_height, img.jpeg_quality) == (512, 256, None)
    nav, carla = navsim_cam_f0().intrinsics, d.camera.intrinsics
    for a, b in ((nav.fx, carla.fx), (nav.fy, carla.fy), (nav.cx, carla.cx), (nav.cy, carla.cy)):
        assert abs(a - b) < 0.2
    np.testing.assert_array_equal(deployment_camera(NAVSIM_META).projection_matrix(), d.camera.projection_matrix())
    assert deployment_image_config(NAVSIM_META) == img
    # the camera is the real CARLA mount at the rear axle: its optical centre is 0.80 + 1.39 m ahead, 1.60 m up
    centre = -d.camera.ego_to_camera[:3, :3].T @ d.camera.ego_to_camera[:3, 3]
    np.testing.assert_allclose(centre, [2.19, 0.0, 1.60], atol=1e-9)


def test_far_points_land_on_the_same_token_in_both_setups() -> None:
    nav = navsim_cam_f0()
    carla = deployment_camera(NAVSIM_META)
    pts = _grid(np.linspace(40, 200, 33), np.linspace(-20, 20, 41), np.linspace(0, 3, 7))
    uv_n, in_n = _pixels(nav, pts)
    uv_c, in_c = _pixels(carla, pts)
    both = in_n & in_c
    assert both.sum() > 5000
    err = np.abs(uv_n - uv_c)[both].max()
    assert err < FAR_TOL_PX
    # points whose NAVSIM pixel is more than the tolerance away from a token border keep their token exactly
    frac = np.mod(uv_n[both], PATCH)
    clear = ((frac > FAR_TOL_PX) & (frac < PATCH - FAR_TOL_PX)).all(-1)
    assert clear.mean() > 0.4
    np.testing.assert_array_equal(_tokens(uv_n[both][clear]), _tokens(uv_c[both][clear]))
    # directions at infinity (the horizon, distant buildings) depend on intrinsics only: same token, < 0.2 px
    inf = _grid(np.array([1e6]), np.linspace(-4e5, 4e5, 9), np.linspace(-1e5, 1e5, 5))
    uv_n, _ = _pixels(nav, inf)
    uv_c, _ = _pixels(carla, inf)
    assert np.abs(uv_n - uv_c).max() < 0.2


def test_near_ground_points_shift_by_the_mount_parallax() -> None:
    nav = navsim_cam_f0()
    carla = deployment_camera(NAVSIM_META)
    d = np.linspace(8, 15, 15)
    pts = np.stack([d, np.zeros_like(d), np.zeros_like(d)], -1)
    uv_n, _ = _pixels(nav, pts)
    uv_c, _ = _pixels(carla, pts)
    fy = nav.intrinsics.fy
    expected = fy * (1.60 / (d - 2.19) - 1.50 / (d - 1.70))  # CARLA's camera sits higher and further forward
    np.testing.assert_allclose(uv_c[:, 1] - uv_n[:, 1], expected, atol=0.5)
    assert (expected > 4).all() and expected.max() > PATCH * 0.9
    assert (_tokens(uv_n) != _tokens(uv_c)).any()  # near points may change token row: why the projection is an input


def test_without_adaptation_far_points_drift_across_tokens() -> None:
    nav = navsim_cam_f0()
    naive = carla_front_camera(LINCOLN_MKZ_2020)  # the Bench2Drive crop (rows 50:850, 70° FOV) as is
    pts = _grid(np.linspace(40, 200, 33), np.linspace(-20, 20, 41), np.linspace(0, 3, 7))
    uv_n, in_n = _pixels(nav, pts)
    uv_a, in_a = _pixels(deployment_camera(NAVSIM_META), pts)
    uv_b, in_b = _pixels(naive, pts)
    both = in_n & in_a & in_b
    assert np.abs(uv_n - uv_b)[both].max() > 5 * np.abs(uv_n - uv_a)[both].max()
    assert (_tokens(uv_n[both]) != _tokens(uv_b[both])).mean() > 0.2


def test_carla_trained_checkpoint_keeps_its_training_pipeline() -> None:
    d = deployment(B2D_META)
    assert d.strategy == "same_rig" and d.image.jpeg_quality == 20
    assert (d.image.crop_top, d.image.crop_bottom, d.image.crop_left, d.image.crop_right) == (50, 850, 0, 1600)
    np.testing.assert_allclose(d.camera.projection_matrix(), carla_front_camera(LINCOLN_MKZ_2020).projection_matrix())
    # a recorded training pipeline wins
    meta = {**B2D_META, "data_image": {**d.image.__dict__, "crop_top": 40, "crop_bottom": 840, "jpeg_quality": 30}}
    img = deployment_image_config(meta)
    assert (img.crop_top, img.crop_bottom, img.jpeg_quality) == (40, 840, 30)


def test_narrow_rig_is_clipped_with_a_note_and_stays_consistent() -> None:
    rig = SensorRigConfig(camera=FrontCameraConfig(fov=50.0))
    d = deployment(NAVSIM_META, rig)
    assert d.notes and "narrower" in d.notes[0]
    assert (d.image.crop_left, d.image.crop_right) == (0, 1600)
    # the camera still describes the prepared frame: a point seen at raw pixel (u, v) lands at the scaled position
    full = carla_front_camera(LINCOLN_MKZ_2020, rig.camera.mount(), (1600, 900), 50.0, model_input=False)
    p = np.array([[30.0, 3.0, 1.0]])
    u, v = full.project(p)[0][0]
    u2, v2 = d.camera.project(p)[0][0]
    sx = 512 / (d.image.crop_right - d.image.crop_left)
    sy = 256 / (d.image.crop_bottom - d.image.crop_top)
    assert u2 == pytest.approx((u - d.image.crop_left) * sx) and v2 == pytest.approx((v - d.image.crop_top) * sy)


def test_a_carla_frame_becomes_the_model_input() -> None:
    img = deployment_image_config(NAVSIM_META)
    bgra = np.random.default_rng(0).integers(0, 255, (900, 1600, 4), dtype=np.uint8)
    frame = prepare_frame(bgra, img)
    assert frame.shape == (256, 512, 3)
    np.testing.assert_array_equal(frame, prepare_frame(bgra, img))  # deterministic
    video = normalize_video([frame, frame], img)
    assert video.shape == (3, 2, 256, 512) and np.isfinite(video).all()


def test_bad_metadata_is_one_clear_line() -> None:
    with pytest.raises(ValueError, match="unknown training camera"):
        deployment({"camera": {"name": "fisheye", "intrinsics": {"width": 512, "height": 256}}})
    with pytest.raises(ValueError, match=r"no camera\.intrinsics"):
        model_input_size({"data_camera": "navsim_cam_f0"})

"""Camera model: intrinsics from FOV/matrices, crop + resize, projection of known 3D points, grid_sample coords."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agent.camera import (
    CARLA_CROP,
    NAVSIM_CROP,
    CameraModel,
    Crop,
    Intrinsics,
    carla_front_camera,
    navsim_cam_f0,
    normalized_grid,
    preprocess_image,
)
from drive_jepa.frames import LINCOLN_MKZ_2020, CameraMount, Frame


def test_fov_intrinsics_match_carla_formula():
    k = Intrinsics.from_fov(1600, 900, 70.0)
    assert k.fx == pytest.approx(800.0 / math.tan(math.radians(35.0)))
    assert (k.cx, k.cy) == (800.0, 450.0)


def test_crop_and_resize_of_intrinsics_by_hand():
    k = Intrinsics(1545.0, 1545.0, 960.0, 560.0, 1920, 1080).crop(28, 28).resize(512, 256)
    assert (k.width, k.height) == (512, 256)
    assert k.fx == pytest.approx(1545.0 * 512 / 1920)
    assert k.fy == pytest.approx(1545.0 * 256 / 1024)
    assert k.cx == pytest.approx(256.0)
    assert k.cy == pytest.approx((560.0 - 28.0) * 0.25)  # 133: the nuPlan principal point is 20 px below centre


def test_carla_front_projects_known_points():
    cam = carla_front_camera(LINCOLN_MKZ_2020)
    assert cam.frame is Frame.EGO_REAR_AXLE
    d = LINCOLN_MKZ_2020.rear_axle_to_center
    # camera at x = 0.8 ahead of the box centre = 0.8 + d ahead of the rear axle, 1.6 m up
    ahead = np.array([0.8 + d + 20.0, 0.0, 1.6])
    uv, z = cam.project(ahead)
    assert z == pytest.approx(20.0)
    assert uv == pytest.approx([256.0, 128.0])  # optical axis hits the model-input centre
    # a point on the left FOV edge (35° to the left) lands on column 0, 5 m below the axis lands lower by f·5/20
    edge = np.array([0.8 + d + 10.0, 10.0 * math.tan(math.radians(35.0)), 1.6 - 2.5])
    uv, _ = cam.project(edge)
    f_full = 800.0 / math.tan(math.radians(35.0))
    v_full = 450.0 + f_full * 2.5 / 10.0
    assert uv[0] == pytest.approx(0.0, abs=1e-9)
    assert uv[1] == pytest.approx((v_full - CARLA_CROP.top) * 256 / 800)
    # the same via CARLA's own mount convention, EGO_CENTER → camera, before the crop
    raw = CameraModel("raw", Intrinsics.from_fov(1600, 900, 70.0), CameraMount().ego_to_camera(), Frame.EGO_CENTER)
    uv_raw, _ = raw.project(edge - np.array([d, 0.0, 0.0]))
    assert uv_raw == pytest.approx([0.0, v_full])


def test_navsim_projection_through_crop_and_resize_matches_a_rendered_marker():
    cam_full = navsim_cam_f0(model_input=False)
    cam = navsim_cam_f0()
    point = np.array([25.0, 3.0, 0.0])  # on the ground, 3 m to the left
    uv_full, _ = cam_full.project(point)
    # by hand: camera at (1.7, 0, 1.5) looking forward; x_cv = -y, y_cv = -(z - 1.5), z_cv = x - 1.7
    x_cv, y_cv, z_cv = -3.0, 1.5, 25.0 - 1.7
    assert uv_full == pytest.approx([1545.0 * x_cv / z_cv + 960.0, 1545.0 * y_cv / z_cv + 560.0])
    uv, _ = cam.project(point)
    assert uv == pytest.approx([uv_full[0] * 512 / 1920, (uv_full[1] - 28) * 256 / 1024])
    # render a bright 16×16 marker there in a raw image, preprocess it like the datasets do, find it again
    img = np.zeros((1080, 1920), np.float32)
    u0, v0 = int(uv_full[0]), int(uv_full[1])
    img[v0 - 8 : v0 + 8, u0 - 8 : u0 + 8] = 1.0
    small = preprocess_image(img, NAVSIM_CROP, 512, 256)
    ys, xs = np.nonzero(small > 0.2)
    w = small[ys, xs]
    centre = np.array([(xs + 0.5) @ w / w.sum(), (ys + 0.5) @ w / w.sum()])
    assert centre == pytest.approx(uv, abs=0.75)


def test_navsim_sensor2lidar_calibration_is_used():
    rot = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # OpenCV axes → ego (fwd, left, up)
    cam = navsim_cam_f0(rot, np.array([1.5, 0.2, 1.8]))
    uv, z = cam.project(np.array([11.5, 0.2, 1.8]))
    assert z == pytest.approx(10.0)
    assert uv == pytest.approx([256.0, (560.0 - 28.0) / 4])


def test_centre_and_rear_axle_frames_agree():
    cam = carla_front_camera(LINCOLN_MKZ_2020)
    centre = cam.in_frame(Frame.EGO_CENTER, LINCOLN_MKZ_2020)
    p = np.array([[12.0, -1.0, 0.5], [30.0, 4.0, 0.0]])
    shifted = p - np.array([LINCOLN_MKZ_2020.rear_axle_to_center, 0.0, 0.0])
    assert centre.project(shifted)[0] == pytest.approx(cam.project(p)[0])
    assert CameraModel.from_dict(cam.to_dict()).project(p)[0] == pytest.approx(cam.project(p)[0])


def test_normalized_grid_samples_the_projected_pixel():
    cam = navsim_cam_f0()
    pts = torch.tensor([[25.0, 3.0, 0.0], [15.0, -2.0, 1.0], [-5.0, 0.0, 0.0], [3.0, 30.0, 0.0]], dtype=torch.float64)
    grid, valid = cam.project_normalized(pts)
    assert valid.tolist() == [True, True, False, False]  # behind the camera / outside the image
    uv, _ = cam.project(pts)
    # a feature map whose channels are the pixel-centre coordinates: bilinear sampling returns (u, v) exactly
    h, w = 256, 512
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    fmap = torch.stack([xs, ys]).double()[None]
    out = F.grid_sample(fmap, grid[None, None], align_corners=False)[0, :, 0].T
    assert torch.allclose(out[:2], uv[:2], atol=1e-6)
    # numpy path and batched projection matrices agree with the torch path
    g_np, v_np = normalized_grid(pts.numpy(), np.stack([cam.projection_matrix()] * 4), 256, 512)
    assert np.allclose(g_np[:2], grid[:2].numpy()) and v_np.tolist() == valid.tolist()


def test_bad_inputs_fail_with_one_clear_line():
    with pytest.raises(ValueError, match="3x3"):
        Intrinsics.from_matrix(np.eye(4), 10, 10)
    with pytest.raises(ValueError, match="leaves nothing"):
        Intrinsics.from_fov(100, 50, 90).crop(30, 30)
    with pytest.raises(ValueError, match="leaves nothing"):
        preprocess_image(np.zeros((10, 10)), Crop(top=5, bottom=5), 4, 4)

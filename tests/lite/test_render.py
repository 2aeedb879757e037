"""Pinhole rendering: horizon, projected box positions and near-plane clipping."""

from __future__ import annotations

import math

import numpy as np

from carla_tools.lite.render import NEAR, CameraSpec, Renderer, clip_near
from carla_tools.lite.town import load_town
from drive_jepa.frames import CameraMount


def test_clip_near_keeps_the_visible_part() -> None:
    quad = np.array([[[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, 3.0], [-1.0, 0.0, 3.0]]])
    out, ok = clip_near(quad)
    assert ok[0] and out.shape == (1, 8, 3)
    assert np.all(out[0, :, 2] >= NEAR - 1e-9) and math.isclose(out[0, :, 2].min(), NEAR)
    behind = quad.copy()
    behind[..., 2] = -2.0
    assert not clip_near(behind)[1][0]


def test_box_ahead_projects_where_the_pinhole_model_says() -> None:
    town = load_town("Town01")
    r = Renderer(town)
    w, h, fov = 400, 300, 90.0
    cam = CameraSpec("c", CameraMount(0.0, 0.0, 1.6, 0.0, 0.0, 0.0), w, h, fov)
    f = w / (2 * math.tan(math.radians(fov) / 2))
    ego = np.array([-5000.0, -5000.0, 0.3])  # far from every road: only sky, terrain and the box
    d = 20.0
    u = np.array([math.cos(ego[2]), math.sin(ego[2])])
    xy = (ego[:2] + (d + 2.3) * u)[None]  # rear face of a 4.6 m box at 20 m
    img = r.render(cam, ego, (xy, np.array([ego[2]]), np.array([4.6]), np.array([1.9]), np.array([7])), [])
    assert img.shape == (h, w, 4) and img.dtype == np.uint8
    colour = img[int(h / 2 + f * 0.8 / d), w // 2, :3]  # 0.8 m below the camera on the rear face
    assert tuple(colour) not in {(235, 206, 160), (70, 105, 80)}
    # horizon at the principal point for a level camera: sky just above, terrain just below
    assert tuple(img[h // 2 - 3, 5, :3]) == (235, 206, 160) and tuple(img[h // 2 + 3, 5, :3]) == (70, 105, 80)
    # the box's bottom edge (ground contact, 1.6 m below the camera) and its half width
    rows = np.nonzero(np.any(img[:, :, :3] != img[h // 2 + 3, 5, :3], axis=-1)[:, w // 2])[0]
    bottom = rows[rows > h // 2].max()
    assert abs(bottom - (h / 2 + f * 1.6 / d)) <= 2
    cols = np.nonzero(np.any(img[int(h / 2 + f * 0.8 / d), :, :3] != img[h // 2 + 3, 5, :3], axis=-1))[0]
    assert abs((cols.max() - cols.min() + 1) - f * 1.9 / d) <= 3

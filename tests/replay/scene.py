"""A procedurally drawn street scene (sky, buildings with windows, trees, textured asphalt, lane marks).

Not a rendering of anything: a stand-in with roughly the texture of a CARLA front image, so recording sizes and
renderings are measured on something busier than a flat test pattern. Deterministic for a given seed and shift.
"""

from __future__ import annotations

import cv2
import numpy as np


def street_scene(width: int = 1600, height: int = 900, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    """uint8 (height, width, 4) BGRA; `shift` (pixels) slides the roadside to mimic forward motion."""
    rng = np.random.default_rng(seed)
    h, w = height, width
    img = np.zeros((h, w, 3), np.float32)
    horizon = int(0.48 * h)
    sky = np.linspace(235, 170, horizon)[:, None, None] * np.array([1.0, 0.85, 0.6])[None, None]  # BGR
    img[:horizon] = sky
    img[horizon:] = (70, 75, 80)
    # buildings: blocks of varying height with window grids
    x = -(shift % 400)
    k = 0
    while x < w:
        bw = int(rng.integers(w // 12, w // 5))
        bh = int(rng.integers(h // 8, horizon - h // 20))
        colour = rng.uniform(60, 200, 3)
        x0, x1 = int(max(x, 0)), int(min(x + bw, w))
        if x1 > x0:
            img[horizon - bh : horizon, x0:x1] = colour
            for wy in range(horizon - bh + 8, horizon - 10, max(h // 40, 6)):
                for wx in range(int(x) + 6, int(x) + bw - 6, max(w // 80, 6)):
                    if 0 <= wx < w - 4:
                        img[wy : wy + max(h // 90, 3), wx : wx + max(w // 200, 3)] = colour * 0.4
        x += bw + int(rng.integers(4, w // 30))
        k += 1
    # trees
    for _ in range(12):
        cx, cy, r = (
            int(rng.integers(0, w)),
            int(rng.integers(horizon - h // 6, horizon)),
            int(rng.integers(h // 30, h // 10)),
        )
        cv2.circle(img, (cx, cy), r, tuple(float(v) for v in rng.uniform([20, 80, 20], [60, 140, 60])), -1)
    # road: a trapezoid with lane marks
    road = np.array([[int(0.05 * w), h], [int(0.95 * w), h], [int(0.55 * w), horizon], [int(0.45 * w), horizon]])
    cv2.fillPoly(img, [road], (85, 85, 88))
    for i in range(8):
        y0 = horizon + int((h - horizon) * ((i + (shift / 50) % 1) / 8) ** 1.5)
        y1 = horizon + int((h - horizon) * ((i + 0.4 + (shift / 50) % 1) / 8) ** 1.5)
        cv2.line(img, (w // 2, y0), (w // 2, min(y1, h - 1)), (220, 220, 220), max(1, (y1 - horizon) * w // (60 * h)))
    img += rng.normal(0.0, 7.0, img.shape).astype(np.float32)  # sensor noise / asphalt texture
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = np.clip(img, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out

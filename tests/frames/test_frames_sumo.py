"""SUMO ↔ CARLA/WORLD conversions and the compass inverse in `drive_jepa.frames`."""

from __future__ import annotations

import math

import numpy as np

from drive_jepa import frames


def test_sumo_carla_round_trip_and_axes() -> None:
    off = frames.SumoNetOffset(0.06, 328.61)  # Town01's netOffset
    carla = np.array([[100.0, 50.0], [-3.0, 200.0]])
    sumo = off.carla_to_sumo(carla)
    # SUMO x = x + dx; SUMO y = −y_carla + dy (CARLA's y points south, SUMO's north)
    np.testing.assert_allclose(sumo, [[100.06, 278.61], [-2.94, 128.61]])
    np.testing.assert_allclose(off.sumo_to_carla(sumo), carla)
    np.testing.assert_allclose(off.sumo_to_world(sumo), frames.carla_points_to_world(carla))


def test_sumo_angle_matches_carla_yaw() -> None:
    # SUMO 0° = north; CARLA yaw −90° = north (−y); WORLD heading π/2 = north
    angles = np.array([0.0, 90.0, 180.0, 270.0])
    heading = frames.sumo_angle_to_heading(angles)
    np.testing.assert_allclose(np.cos(heading), [0, 1, 0, -1], atol=1e-12)
    np.testing.assert_allclose(np.sin(heading), [1, 0, -1, 0], atol=1e-12)
    yaw = frames.world_to_carla(np.stack([np.zeros(4), np.zeros(4), heading], -1))[:, 2]
    np.testing.assert_allclose(np.cos(np.radians(yaw)), np.cos(np.radians(angles - 90.0)), atol=1e-12)
    np.testing.assert_allclose(frames.heading_to_sumo_angle(heading), angles, atol=1e-9)


def test_heading_to_compass_inverts_compass_to_heading() -> None:
    h = np.linspace(-math.pi, math.pi, 13)
    c = frames.heading_to_compass(h)
    assert np.all((c >= 0) & (c < 2 * math.pi))
    np.testing.assert_allclose(frames.wrap_angle(frames.compass_to_heading(c) - h), 0, atol=1e-12)
    assert math.isclose(float(frames.heading_to_compass(math.pi / 2)), 0.0, abs_tol=1e-12)  # north

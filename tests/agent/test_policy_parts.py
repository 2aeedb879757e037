"""Unit tests of the policy's parts: preprocessing, frame history, localization, route, control, re-timing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agent.control import Control, ControlConfig, Controller, point_along
from agent.localization import LocalizationConfig, Localizer
from agent.model_api import ModelInputs, ModelOutputs
from agent.policy import DrivingPolicy, Observation, PolicyConfig
from agent.preprocess import (
    FrameHistory,
    ImageInputConfig,
    ImageInputError,
    bgra_to_rgb,
    normalize_video,
    prepare_frame,
)
from agent.route import LANEFOLLOW, LEFT, RouteConfig, RoutePlanner, navsim_command
from drive_jepa import frames as F


def test_bgra_to_rgb_channel_order_and_errors():
    img = np.zeros((4, 6, 4), np.uint8)
    img[..., 0], img[..., 1], img[..., 2], img[..., 3] = 10, 20, 30, 255  # B, G, R, A
    assert bgra_to_rgb(img)[0, 0].tolist() == [30, 20, 10]
    with pytest.raises(ImageInputError, match="BGRA"):
        bgra_to_rgb(np.zeros((4, 6), np.uint8))
    with pytest.raises(ImageInputError, match="uint8"):
        bgra_to_rgb(np.zeros((4, 6, 4), np.float32))
    with pytest.raises(ImageInputError, match="expected 1600×900"):
        bgra_to_rgb(img, (900, 1600))


def test_prepare_frame_crop_resize_normalize():
    cfg = ImageInputConfig(jpeg_quality=None)
    img = np.zeros((900, 1600, 4), np.uint8)
    img[:50, :, 2] = 255  # red band above the crop: must not appear
    img[50:450, :, 1] = 255  # green top half of the crop
    out = prepare_frame(img, cfg)
    assert out.shape == (256, 512, 3)
    assert out[0, 0].tolist() == [0, 255, 0] and out[-1, -1].tolist() == [0, 0, 0]
    video = normalize_video([out, out], cfg)
    assert video.shape == (3, 2, 256, 512) and video.dtype == np.float32
    assert np.isclose(video[1, 0, 0, 0], (1.0 - 0.456) / 0.224, atol=1e-5)


def test_jpeg_round_trip_is_applied_like_training():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (900, 1600, 4), dtype=np.uint8)
    raw = prepare_frame(img, ImageInputConfig(jpeg_quality=None))
    q20 = prepare_frame(img, ImageInputConfig(jpeg_quality=20))
    assert np.abs(raw.astype(int) - q20.astype(int)).mean() > 1.0  # quality 20 visibly changes the input


def test_frame_history_returns_trained_spacing_and_prepares_lazily():
    calls = []
    hist = FrameHistory(offsets=(-0.5, 0.0), prepare=lambda f: calls.append(int(f[0])) or f * 0 + int(f[0]) + 1000)
    for i in range(30):  # 20 Hz
        hist.push(i * 0.05, np.array([i]))
    old, new = hist.select()
    assert int(new[0]) == 1029 and int(old[0]) == 1019  # t = 1.45 s and 0.95 s
    assert sorted(calls) == [19, 29]
    hist.select()
    assert len(calls) == 2  # cached
    assert hist.complete()
    short = FrameHistory()
    short.push(0.0, np.array([0]))
    short.push(0.05, np.array([1]))
    assert not short.complete() and int(short.select()[0][0]) == 0  # the oldest frame stands in


def test_localizer_inverts_gnss_and_moves_antenna_to_rear_axle():
    ref = F.GeoReference(42.0, 2.0)
    loc = Localizer(LocalizationConfig(filter="none"))
    pts = np.array([[0.0, 0.0], [100.0, 50.0], [-30.0, 200.0]])
    loc.set_reference(ref.carla_to_gnss(pts), pts)
    # vehicle centre at CARLA (10, 20) facing CARLA yaw 90° (south): antenna 1.4 m behind = (10, 18.6)
    gnss = np.append(ref.carla_to_gnss(np.array([10.0, 18.6])), 0.0)
    compass = math.radians(90.0) + math.pi / 2  # yaw 90° → compass π
    state = loc.update(0.0, gnss, compass, 3.0)
    assert np.allclose(state.center, [10.0, -20.0, -math.pi / 2], atol=1e-3)
    assert np.allclose(state.rear_axle[:2], [10.0, -20.0 + F.LINCOLN_MKZ_2020.rear_axle_to_center], atol=1e-3)


def test_ekf_reduces_gnss_noise():
    ref = F.GeoReference(42.0, 2.0)
    pts = np.array([[0.0, 0.0], [500.0, 0.0]])
    rng = np.random.default_rng(1)
    errs = {}
    for mode in ("none", "ekf"):
        loc = Localizer(LocalizationConfig(filter=mode, antenna_x=0.0))
        loc.set_reference(ref.carla_to_gnss(pts), pts)
        e = []
        for k in range(200):
            x = 5.0 * k * 0.05
            noisy = ref.carla_to_gnss(np.array([x, 0.0])) + rng.normal(0, 5e-6, 2)
            s = loc.update(k * 0.05, np.append(noisy, 0.0), math.pi / 2, 5.0)
            if k > 20:
                e.append(np.hypot(s.center[0] - x, s.center[1]))
        errs[mode] = float(np.mean(e))
    assert errs["ekf"] < 0.6 * errs["none"], errs


def test_route_command_announces_turn_before_the_junction():
    rp = RoutePlanner(RouteConfig(command_lookahead_m=20.0))
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [30.0, 0.0], [40.0, 0.0], [40.0, 10.0], [40.0, 30.0]])
    rp.set_route(pts, np.array([LANEFOLLOW, LANEFOLLOW, LANEFOLLOW, LEFT, LANEFOLLOW, LANEFOLLOW]))
    far = rp.update(np.array([0.0, 0.0, 0.0]))
    assert far.command == LANEFOLLOW and far.command_onehot.tolist() == [0, 1, 0, 0]
    near = rp.update(np.array([25.0, 0.0, 0.0]))
    assert near.command == LEFT and near.command_onehot.tolist() == [1, 0, 0, 0]
    assert near.target_ego[0] > 0  # target ahead
    after = rp.update(np.array([40.0, 12.0, math.pi / 2]))
    assert after.command == LANEFOLLOW
    assert navsim_command(-1).tolist() == [0, 0, 0, 1]


def test_controller_steers_toward_the_plan_and_brakes_for_stop():
    ctl = Controller(ControlConfig())
    left = np.array([[2.0, 0.5, 0.2], [4.0, 1.5, 0.4], [6.0, 3.0, 0.5], [8.0, 5.0, 0.6]] * 2)
    c = ctl.step(left, 4.0)
    assert c.steer < 0 and c.brake == 0.0 and c.throttle > 0  # CARLA steer < 0 = left
    stop = np.zeros((8, 3))
    c = ctl.step(stop, 3.0)
    assert c.brake == 1.0 and c.throttle == 0.0
    assert ctl.step(np.full((8, 3), np.nan), 3.0).brake == 1.0
    assert ctl.step(left, float("nan")).reason == "speed reading is not finite"
    assert np.allclose(point_along(np.array([[3.0, 0.0], [3.0, 4.0]]), 5.0), [3.0, 2.0])


def test_controller_creeps_after_being_stuck():
    cfg = ControlConfig(creep_after_s=1.0, creep_duration_s=0.5)
    ctl = Controller(cfg, dt=0.05)
    stop = np.zeros((8, 3))
    outs = [ctl.step(stop, 0.0) for _ in range(40)]
    assert outs[0].brake == 1.0
    creeping = [o for o in outs if o.reason == "creeping to unblock"]
    assert creeping and all(o.throttle >= cfg.creep_throttle and o.brake == 0.0 for o in creeping)


class _Straight:
    """A plan model that always proposes driving straight at 5 m/s (three proposals, the middle one best)."""

    def plan(self, inputs: ModelInputs) -> ModelOutputs:
        t = (np.arange(8) + 1) * 0.5
        straight = np.stack([5 * t, 0 * t, 0 * t], -1)
        shift = np.array([0.0, 1.0, 0.0])
        props = np.stack([straight + shift, straight, straight - shift])
        return ModelOutputs(props, np.array([0.1, 0.9, 0.2]))


def _straight_route_policy(model: object, model_period_s: float) -> tuple[DrivingPolicy, F.GeoReference]:
    """A policy on a 64×36 camera, on a straight 200 m route along CARLA x, with its geo-reference."""
    cfg = PolicyConfig(model_period_s=model_period_s)
    cfg.image = ImageInputConfig(
        source_width=64, source_height=36, crop_top=2, crop_bottom=34, crop_right=64, out_width=32, out_height=16
    )
    cfg.rig.camera.width, cfg.rig.camera.height = 64, 36
    pol = DrivingPolicy(cfg, model)  # type: ignore[arg-type]
    ref = F.GeoReference(42.0, 2.0)
    pts = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]])
    gps = ref.carla_to_gnss(pts)
    pol.set_global_plan([({"lat": a, "lon": b, "z": 0}, 4) for a, b in gps], [((x, y, 0.0), 4) for x, y in pts])
    return pol, ref


def test_policy_reuses_and_retimes_the_plan_between_model_runs():
    pol, ref = _straight_route_policy(_Straight(), 0.5)
    img = np.zeros((36, 64, 4), np.uint8)
    ran = []
    for k in range(6):
        x = 0.25 * k  # the ego moves 0.25 m per tick
        g = np.append(ref.carla_to_gnss(np.array([x - 1.4, 0.0])), 0.0)
        control, info = pol.step(Observation(k * 0.05, img, g, np.array([0, 0, 9.8, 0, 0, 0, math.pi / 2]), 5.0))
        ran.append(info.model_ran)
        assert info.plan is not None and np.all(np.isfinite(info.plan))
    assert ran == [True, False, False, False, False, False]
    # after 0.25 s and 1.25 m of motion the reused plan's first pose is still +2.5 m ahead of the ego (5 m/s · 0.5 s)
    assert np.isclose(info.plan[0, 0], 2.5, atol=0.3) and abs(info.plan[0, 1]) < 0.2
    assert info.selection is None  # no model run on this tick
    assert isinstance(control, Control) and control.brake == 0.0


class _Alternating:
    """Proposals straight at 5 m/s and shifted 1 m left; the best one alternates on every call."""

    def __init__(self) -> None:
        self.calls = 0

    def plan(self, inputs: ModelInputs) -> ModelOutputs:
        t = (np.arange(8) + 1) * 0.5
        straight = np.stack([5 * t, 0 * t, 0 * t], -1)
        self.calls += 1
        scores = np.array([0.9, 0.1]) if self.calls % 2 else np.array([0.1, 0.9])
        return ModelOutputs(np.stack([straight, straight + np.array([0.0, 1.0, 0.0])]), scores)


@pytest.mark.parametrize(("model", "expect"), [(_Straight, 0.0), (_Alternating, 1.0)])
def test_policy_measures_the_frame_to_frame_plan_change(model: type, expect: float) -> None:
    pol, ref = _straight_route_policy(model(), 0.1)
    img = np.zeros((36, 64, 4), np.uint8)
    changes = []
    for k in range(8):
        g = np.append(ref.carla_to_gnss(np.array([0.25 * k - 1.4, 0.0])), 0.0)
        _, info = pol.step(Observation(k * 0.05, img, g, np.array([0, 0, 9.8, 0, 0, 0, math.pi / 2]), 5.0))
        if info.model_ran and k > 0:
            assert info.plan_change_m is not None
            changes.append(info.plan_change_m)
        elif k == 0:
            assert info.plan_change_m is None  # no previous plan yet
    assert len(changes) == 3
    # the straight model's re-timed plan matches its new plan up to the plan's tail (held at the last pose)
    assert np.allclose(changes, expect, atol=0.35)

"""`drive-jepa collect`: training clips from the lite world in Bench2Drive's layout, away from the evaluation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from carla_tools.lite.collect import (
    EVAL_ROUTES,
    GENERATED_ROUTES,
    TRAINING_ROUTES,
    CollectJob,
    NoiseConfig,
    check_routes,
    clip_name,
    collect_one,
)
from drive_jepa.routes import load_routes
from training.data.bench2drive_reader import Bench2DriveReader, read_anno

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_generated_routes_keep_away_from_the_evaluation_routes() -> None:
    evaluation = load_routes(EVAL_ROUTES)
    generated = [r for path in TRAINING_ROUTES for r in load_routes(path)]
    assert len(generated) >= 170 and len({r.id for r in generated}) == len(generated)
    assert check_routes(generated, evaluation, 50.0) == []
    eval_ids = {r.id for r in evaluation}
    assert not eval_ids & {r.id for r in generated}
    # and the check does catch both kinds of contact
    same = check_routes([evaluation[0]], evaluation)
    assert same and "evaluation route id" in same[0]
    near = replace(generated[0], id="999999", town=evaluation[0].town,
                   waypoints=evaluation[0].waypoints.copy())  # fmt: skip
    problems = check_routes([near], evaluation)
    assert problems and "evaluation trigger point" in problems[0]


def test_collect_refuses_routes_near_the_evaluation(tmp_path: Path) -> None:
    from carla_tools.lite.collect import main

    rc = main([str(EVAL_ROUTES), "--out", str(tmp_path / "d"), "--limit", "1", "--no-progress"])
    assert rc == 2
    assert not (tmp_path / "d" / "clips").exists()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collect")
    route = load_routes(GENERATED_ROUTES)[0]
    # a burst every ~2 s so that a short clip has some
    job = CollectJob(str(GENERATED_ROUTES), route.id, 0, str(out), NoiseConfig(rate_hz=0.5), num_vehicles=10,
                     max_route_m=90.0)  # fmt: skip
    summary = collect_one(job)
    assert summary["clip"] == clip_name(route, 0)
    assert collect_one(job)["skipped"] is True  # finished clips are never redone
    return out / "clips" / summary["clip"]


def test_clip_is_read_by_the_bench2drive_reader(clip: Path) -> None:
    meta = json.loads((clip / "meta.json").read_text())
    assert meta["frames"] > 50 and meta["status"]
    annos = sorted((clip / "anno").glob("*.json.gz"))
    images = sorted((clip / "camera" / "rgb_front").glob("*.jpg"))
    assert len(annos) == meta["frames"]
    assert {int(p.stem) % 5 for p in images} == {0}  # 2 Hz images, the reader's sampling
    anno = read_anno(annos[20])
    classes = {b["class"] for b in anno["bounding_boxes"]}
    assert anno["bounding_boxes"][0]["class"] == "ego_vehicle"
    assert "vehicle" in classes or "traffic_sign" in classes or "walker" in classes
    reader = Bench2DriveReader(clip.parent, stride=5)
    assert len(reader) > 0
    s = reader[0]
    assert s.trajectory.shape == (8, 3) and np.isfinite(s.trajectory).all()
    assert s.target_valid and float(s.command.sum()) == 1.0
    # the ego's box matches the anno's x, y (CARLA), and the label starts near the ego
    assert abs(float(s.trajectory[0, 1])) < 1.5
    snap = reader.snapshot(0)
    assert snap.town == meta["town"]


def test_samples_never_hold_perturbed_driving_in_their_future(clip: Path) -> None:
    noisy = json.loads((clip / "expert_noise.json").read_text())["frames"]
    assert noisy, "the test clip should have noise bursts"
    reader = Bench2DriveReader(clip.parent, stride=5)
    for _, f in reader.index:
        assert not any(f <= n <= f + 40 for n in noisy)
    # without the noise file the same clip gives more samples
    (clip / "expert_noise.json").rename(clip / "noise.bak")
    try:
        assert len(Bench2DriveReader(clip.parent, stride=5)) > len(reader)
    finally:
        (clip / "noise.bak").rename(clip / "expert_noise.json")


def test_clip_becomes_scorer_scenes(clip: Path) -> None:
    from training.scoring.from_snapshot import LogConverter, read_bench2drive_clip

    log = read_bench2drive_clip(clip)
    conv = LogConverter(log)
    idx = conv.scene_indices()
    assert idx
    scene = conv.scene_dict(idx[0])
    assert len(scene["map"]["lanes"]) > 0


def test_noise_is_deterministic_per_seed() -> None:
    from carla_tools.lite.collect import NoisyExpert

    a = NoisyExpert(NoiseConfig(), seed=3)
    b = NoisyExpert(NoiseConfig(), seed=3)
    assert [a._rng.random() for _ in range(5)] == [b._rng.random() for _ in range(5)]
    with pytest.raises(ValueError, match="noise settings"):
        NoiseConfig(steer_min=0.5, steer_max=0.1).validate()


def test_converted_clips_are_not_read_again(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.scoring import from_snapshot as fs

    cfg = fs.SceneConfig(every_s=2.0)
    paths, errors = fs.convert_logs("bench2drive", clip.parent, tmp_path / "scenes", None, cfg)
    assert paths and not errors
    assert (tmp_path / "scenes" / clip.name / fs.CONVERTED_MARKER).is_file()

    def fail(*_: object, **__: object) -> None:
        raise AssertionError("a converted clip was read again")

    monkeypatch.setattr(fs, "read_bench2drive_clip", fail)
    again, errors = fs.convert_logs("bench2drive", clip.parent, tmp_path / "scenes", None, cfg)
    assert again == paths and not errors


def test_annotation_frames_match_the_world(tmp_path: Path) -> None:
    """CARLA-frame annotation fields read back (by the Bench2Drive reader's own conversions) to the lite world's
    WORLD-frame state: ego pose, actors, the route target and the traffic lights' trigger volumes."""
    import math

    from agent.localization import plan_to_arrays
    from agent.route import RouteConfig, RoutePlanner
    from carla_tools.lite.collect import anno_record
    from carla_tools.lite.route import build_dense_route, global_plan
    from carla_tools.lite.town import load_town
    from carla_tools.lite.vehicle import VehicleControl
    from carla_tools.lite.world import LiteWorld
    from drive_jepa import frames as F
    from training.data.bench2drive_reader import ego_carla_pose, world_snapshot

    route = next(r for r in load_routes(EVAL_ROUTES) if r.id == "27529")  # PedestrianCrossing, Town04
    town = load_town(route.town)
    dense = build_dense_route(route, town)
    planner = RoutePlanner(RouteConfig())
    _, xy, opts = plan_to_arrays(*global_plan(dense, town))
    planner.set_route(F.carla_points_to_world(xy), opts)
    with LiteWorld(town, dense, seed=0, num_vehicles=20, scenarios=route.scenarios, route_id=route.id) as w:
        for _ in range(40):
            w.step(VehicleControl(throttle=0.5))
        state = planner.update(F.center_to_rear_axle(w.ego_pose, 1.39))
        anno = anno_record(w, state)
        snap = world_snapshot(anno, tmp_path / "x.json.gz", f"Clip_{route.town}", 0)
        pose = F.carla_to_world(ego_carla_pose(anno, tmp_path / "x.json.gz"))
        assert np.allclose(pose[:2], w.ego_pose[:2], atol=1e-6)
        assert math.isclose(float(F.wrap_angle(pose[2] - w.ego_pose[2])), 0.0, abs_tol=1e-6)
        assert math.isclose(anno["speed"], w.ego.speed)
        assert snap.route_target is not None and np.allclose(snap.route_target, state.target_world, atol=1e-6)
        a = w.actors
        near = {int(i): k for k, i in enumerate(a.ids) if np.hypot(*(a.xy[k] - w.ego_pose[:2])) <= 60.0}
        got = {int(x.id): x for x in snap.actors}
        assert got and set(got) <= set(near)
        for aid, act in got.items():
            k = near[aid]
            assert np.allclose([act.box.x, act.box.y], a.xy[k], atol=1e-6)
            assert math.isclose(float(F.wrap_angle(act.box.heading - a.heading[k])), 0.0, abs_tol=1e-6)
            assert math.isclose(act.box.length, a.length[k], rel_tol=1e-9)
        assert snap.traffic_lights
        for tl in snap.traffic_lights:  # the trigger box is centred on a stop line, along its lane
            d = [np.hypot(tl.trigger.x - lv.stop_xy[0], tl.trigger.y - lv.stop_xy[1]) for lv in w.lights()]
            k = int(np.argmin(d))
            assert d[k] < 1e-6
            assert math.isclose(float(F.wrap_angle(tl.trigger.heading - w.lights()[k].heading)), 0.0, abs_tol=1e-6)


def test_the_pipeline_collects_on_the_shipped_training_routes() -> None:
    from training.pipeline import DEFAULT_ROUTES

    assert tuple(DEFAULT_ROUTES) == TRAINING_ROUTES and all(p.is_file() for p in TRAINING_ROUTES)

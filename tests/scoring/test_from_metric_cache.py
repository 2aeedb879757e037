"""navsim metric cache → scorer Scene (`training.scoring.from_metric_cache`).

Without navsim: the array → Scene step is checked against the scorer oracle — a fixture scene taken apart into the
arrays a metric cache yields (objects present per 0.1 s step, red lights per step, drivable polygons by layer)
and rebuilt scores the fixture candidates exactly like the original scene on every v2 sub-score that does not
need the previous frame. With navsim (`navsim` marker): the object readers against navsim's own classes.
"""

from __future__ import annotations

import lzma
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import fixtures_dir
from training.scoring.from_metric_cache import (
    MetricCacheArrays,
    ego_state_array,
    link_previous,
    load_metric_cache,
    metric_cache_files,
    sample_states,
    scene_from_arrays,
    simulate_logged_plan,
)
from training.scoring.scene import LAYERS, OBJECT_TYPES, Scene, SceneFormatError, load_scene_json
from training.scoring.scorer import PDMScorer

SUBSCORES = ("no_at_fault_collisions", "drivable_area_compliance", "driving_direction_compliance",
             "traffic_light_compliance", "time_to_collision_within_bound", "lane_keeping", "ego_progress")  # fmt: skip


def _as_cache_arrays(scene: Scene) -> MetricCacheArrays:
    """What a metric cache holds for this scene, as arrays (objects only where present in the v2 observation)."""
    dm, ag, tl = scene.map.drivable, scene.agents, scene.traffic_lights
    states = ag.states[:, :41].numpy().copy()
    states[~ag.present_v2[:, :41].numpy()] = np.nan
    ref = scene.reference
    return MetricCacheArrays(
        token=scene.scene_id,
        log_name="log",
        t0_us=scene.t0_us,
        initial_state=scene.history.initial_state.numpy(),
        past_states=scene.history.past_states.numpy(),
        comfort_states=scene.history.comfort_states.numpy(),
        drivable_ids=list(dm.ids),
        drivable_layers=[LAYERS[int(c)] for c in dm.layer],
        drivable_rings=[dm.ring(i) for i in range(len(dm))],
        route_lane_ids=list(scene.route.lane_ids),
        centerline=scene.route.centerline.numpy(),
        red_light_lane_ids=list(tl.lane_ids),
        red_light_rings=[tl.polygons.ring(i) for i in range(len(tl.lane_ids))],
        red_light_is_red=tl.is_red[:, :41].numpy(),
        track_tokens=list(ag.tokens),
        track_types=[OBJECT_TYPES[int(c)] for c in ag.type_code],
        track_length=ag.length.numpy(),
        track_width=ag.width.numpy(),
        track_states=states,
        dropped_tokens=[t for t, d in zip(ag.tokens, ag.dropped_v2.tolist(), strict=True) if d],
        human_poses_8=scene.human_poses_8.numpy(),
        reference_states=None if ref is None else ref.reference_states.numpy(),
        previous_state=None if scene.previous is None else scene.previous.state.numpy(),
        previous_plan_8=None if scene.previous is None else scene.previous.plan_poses_8.numpy(),
    )


@pytest.mark.parametrize("scene_id", ["scene_00", "scene_06", "scene_11"])
def test_rebuilt_scene_scores_like_the_oracle_scene(scene_id: str) -> None:
    root = fixtures_dir("navsim_scorer")
    scene = load_scene_json(root / f"{scene_id}.json.gz")
    rebuilt = scene_from_arrays(_as_cache_arrays(scene))
    assert rebuilt.meta["source"] == "navsim_metric_cache"
    assert scene.previous is not None and rebuilt.previous is not None
    plans = torch.from_numpy(np.load(root / f"{scene_id}_candidates.npz")["poses_8"][:48])
    want = PDMScorer(scene).score(plans, 0.5, version=2)
    got = PDMScorer(rebuilt).score(plans, 0.5, version=2)
    # EC: the previous plan simulated here (the fixture stores NAVSIM's simulation of it)
    for key in (*SUBSCORES, "extended_comfort", "epdms"):
        np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), atol=1e-9, err_msg=key)
    assert len(rebuilt.traffic_lights.lane_ids) == len(scene.traffic_lights.lane_ids)


@pytest.mark.parametrize("scene_id", ["scene_03", "scene_12", "scene_18"])
def test_previous_plan_simulation_matches_navsim(scene_id: str) -> None:
    """The previous frame's logged plan simulated from its state = NAVSIM's `ego_simulated_states` of that token
    (the fixture's previous_frame.simulated_states): what two-frame Extended Comfort compares against."""
    scene = load_scene_json(fixtures_dir("navsim_scorer") / f"{scene_id}.json.gz")
    prev = scene.previous
    assert prev is not None and prev.simulated_states is not None
    sim = simulate_logged_plan(prev.state.numpy(), prev.plan_poses_8.numpy(), scene.ego)
    assert sim.shape == (41, 11)
    np.testing.assert_allclose(sim, prev.simulated_states.numpy(), atol=1e-6)


def _arrays(log: str, t_s: float, kind: str = "ORIGINAL") -> MetricCacheArrays:
    arrays = _as_cache_arrays(load_scene_json(fixtures_dir("navsim_scorer") / "scene_00.json.gz"))
    arrays.log_name, arrays.t0_us, arrays.scene_type = log, int(t_s * 1e6), kind
    arrays.initial_state = arrays.initial_state.copy()
    arrays.initial_state[0] = t_s  # marks the frame
    arrays.previous_state = arrays.previous_plan_8 = None
    return arrays


def test_previous_frames_are_linked_as_navsim_pairs_tokens() -> None:
    """navsim's `infer_start_adjacent_mapping`: ORIGINAL frames of one log, sorted by time, gap ≤ 0.55 s."""
    a, b, c = _arrays("log1", 10.0), _arrays("log1", 10.5), _arrays("log1", 11.5)  # c: 1 s after b
    d = _arrays("log2", 11.0)  # another log, 0.5 s after b
    s = _arrays("log1", 11.0, "SYNTHETIC")  # synthetic frames take no part
    assert link_previous([c, s, b, d, a]) == 1
    assert b.previous_state is not None and b.previous_state[0] == 10.0
    assert b.previous_plan_8 is not None and np.array_equal(b.previous_plan_8, a.human_poses_8)
    assert a.previous_state is None and c.previous_state is None and d.previous_state is None
    assert s.previous_state is None


def test_cache_folders_navsim_layout_and_index(tmp_path: Path) -> None:
    for tok in ("t2", "t1"):
        f = tmp_path / "log_a" / "unknown" / tok / "metric_cache.pkl"
        f.parent.mkdir(parents=True)
        f.write_bytes(b"")
    assert [p.parent.name for p in metric_cache_files(tmp_path)] == ["t1", "t2"]
    (tmp_path / "metadata").mkdir()
    csv = tmp_path / "metadata" / "cache_metadata_node_0.csv"
    csv.write_text(f"file_name\n{tmp_path / 'log_a/unknown/t2/metric_cache.pkl'}\n")
    assert [p.parent.name for p in metric_cache_files(tmp_path)] == ["t2"]  # navsim's index wins
    csv.write_text("file_name\n/nowhere/log/unknown/t9/metric_cache.pkl\n")
    with pytest.raises(SceneFormatError, match=r"cache_metadata_node_0.csv:2: lists /nowhere/.*does not exist"):
        metric_cache_files(tmp_path)
    with pytest.raises(SceneFormatError, match="not a folder of navsim metric caches"):
        metric_cache_files(tmp_path / "missing")


def test_state_sampling_interpolates_and_clamps() -> None:
    t = np.array([0, 1_000_000, 2_000_000])
    s = np.zeros((3, 11))
    s[:, 0] = [0.0, 10.0, 20.0]
    s[:, 2] = [3.0, -3.0, -2.9]  # crosses ±π: interpolation goes the short way
    out = sample_states(t, s, np.array([-500_000, 500_000, 1_500_000]))
    np.testing.assert_allclose(out[:, 0], [0.0, 5.0, 15.0])
    assert abs(abs(out[1, 2]) - np.pi) < 0.15


def test_bad_arrays_and_files_are_one_clear_line(tmp_path: Path) -> None:
    root = fixtures_dir("navsim_scorer")
    arrays = _as_cache_arrays(load_scene_json(root / "scene_00.json.gz"))
    arrays.drivable_layers[0] = "WALKWAY"
    with pytest.raises(SceneFormatError, match="unknown map layer 'WALKWAY'"):
        scene_from_arrays(arrays)
    arrays = _as_cache_arrays(load_scene_json(root / "scene_00.json.gz"))
    arrays.past_states = arrays.past_states[:2]
    with pytest.raises(SceneFormatError, match="past_states"):
        scene_from_arrays(arrays)


@pytest.mark.navsim
def test_readers_match_navsim_classes(tmp_path: Path) -> None:
    from navsim.planning.simulation.planner.pdm_planner.utils.pdm_array_representation import (
        ego_state_to_state_array,
    )
    from nuplan.common.actor_state.ego_state import EgoState
    from nuplan.common.actor_state.state_representation import StateSE2, StateVector2D, TimePoint
    from nuplan.common.actor_state.vehicle_parameters import get_pacifica_parameters

    ego = EgoState.build_from_rear_axle(
        rear_axle_pose=StateSE2(10.0, 20.0, 0.3),
        rear_axle_velocity_2d=StateVector2D(5.0, 0.1),
        rear_axle_acceleration_2d=StateVector2D(0.5, -0.2),
        tire_steering_angle=0.05,
        time_point=TimePoint(1_000_000),
        vehicle_parameters=get_pacifica_parameters(),
        is_in_auto_mode=True,
        angular_vel=0.1,
        angular_accel=0.01,
        tire_steering_rate=0.02,
    )
    np.testing.assert_allclose(ego_state_array(ego), ego_state_to_state_array(ego))
    bad = tmp_path / "metric_cache.pkl"
    bad.write_bytes(lzma.compress(b"not a pickle"))
    with pytest.raises(SceneFormatError, match="not a readable navsim metric cache"):
        load_metric_cache(bad)
    good = tmp_path / "tok" / "metric_cache.pkl"
    good.parent.mkdir()
    good.write_bytes(lzma.compress(pickle.dumps({"ego_state": ego})))
    assert load_metric_cache(good)["ego_state"].rear_axle.x == pytest.approx(10.0)


def test_teachers_on_a_broken_cache_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without navsim: the command says navsim is needed; with it: the broken file is named. Exit 2 either way."""
    from training.scoring import teachers

    bad = tmp_path / "caches" / "log" / "unknown" / "tok" / "metric_cache.pkl"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not lzma")
    rc = teachers.main(["--source", "navsim-cache", "--scenes", str(tmp_path / "caches"), "--out", str(tmp_path / "t"),
                        "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert (
        "needs navsim and nuplan-devkit installed" in err[0] or f"{bad}: not a readable navsim metric cache" in err[0]
    )
    assert bad.read_bytes() == b"not lzma"

"""Our checkpoint inside navsim's own evaluation, end to end: navsim's `run_pdm_score_one_stage.py` (its Hydra config,
scene loader, agent input, metric-cache loader, `pdm_score`, two-frame aggregation and CSV) runs
`agent.navsim_agent.DriveJepaAgent` through the shipped agent YAML (`agent/navsim_config/agent/drive_jepa.yaml`) on
a synthetic navsim log with real metric caches, and navsim's sub-scores of the agent's trajectories equal our
scorer's on the same caches. Needs navsim + nuplan-devkit (`navsim` marker; docs/datasets.md builds the
environment)."""

from __future__ import annotations

import csv
import lzma
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drive_jepa.cli import main as cli_main
from tests.training.synth_data import straight_north, write_navsim_log
from training.scoring.vocab import SHIPPED

pytestmark = pytest.mark.navsim

REPO = Path(__file__).resolve().parents[2]
SPLIT = "test"
LOG = "2021.05.12.22.00.38_veh-35_01008_01518"
FRAMES = 15  # 4 history + 10 future frames per scene: two scenes, 0.5 s apart (EC pairs them)
SUBSCORES = ("no_at_fault_collisions", "drivable_area_compliance", "driving_direction_compliance",
             "traffic_light_compliance", "ego_progress", "time_to_collision_within_bound", "lane_keeping",
             "history_comfort")  # fmt: skip


def _train_tiny(tmp: Path) -> Path:
    root = tmp / "train_data"
    write_navsim_log(root, "mini", LOG, straight_north(14), image_size=(64, 36))
    out = tmp / "run"
    args = ["train", "--tiny", "data=navsim", f"data.root={root}", "data.split=mini",
            f"vocabulary={SHIPPED['navsim_8192']}", f"out={out}", "steps=1", "batch_size=1",
            "data.image.source_width=64", "data.image.source_height=36", "data.image.crop_top=2",
            "data.image.crop_bottom=34", "data.image.crop_right=64"]  # fmt: skip
    assert cli_main(args) == 0
    return out


def _ego(x: float, y: float, h: float, v: float, t_us: int):  # type: ignore[no-untyped-def]
    from nuplan.common.actor_state.ego_state import EgoState
    from nuplan.common.actor_state.state_representation import StateSE2, StateVector2D, TimePoint
    from nuplan.common.actor_state.vehicle_parameters import get_pacifica_parameters

    return EgoState.build_from_rear_axle(
        rear_axle_pose=StateSE2(x, y, h), rear_axle_velocity_2d=StateVector2D(v, 0.0),
        rear_axle_acceleration_2d=StateVector2D(0.0, 0.0), tire_steering_angle=0.0, time_point=TimePoint(t_us),
        vehicle_parameters=get_pacifica_parameters(), is_in_auto_mode=True,
    )  # fmt: skip


def _write_caches(root: Path, log_frames: list[dict], tokens: list[int]) -> None:
    """navsim metric caches of a straight northbound road for the frames at `tokens` (indices into the log): one
    lane + roadblock, no other road users, PDM-Closed = keep the speed, human = the logged future."""
    from navsim.common.dataclasses import Trajectory
    from navsim.common.enums import SceneFrameType
    from navsim.planning.metric_caching.metric_cache import MetricCache
    from navsim.planning.simulation.planner.pdm_planner.observation.pdm_observation import PDMObservation
    from navsim.planning.simulation.planner.pdm_planner.observation.pdm_occupancy_map import PDMDrivableMap
    from navsim.planning.simulation.planner.pdm_planner.utils.pdm_path import PDMPath
    from nuplan.common.actor_state.state_representation import StateSE2, TimePoint
    from nuplan.common.actor_state.tracked_objects import TrackedObjects
    from nuplan.common.maps.maps_datatypes import SemanticMapLayer
    from nuplan.planning.simulation.observation.observation_type import DetectionsTracks
    from nuplan.planning.simulation.trajectory.interpolated_trajectory import InterpolatedTrajectory
    from nuplan.planning.simulation.trajectory.trajectory_sampling import TrajectorySampling
    from nuplan.planning.training.experiments.cache_metadata_entry import CacheMetadataEntry, save_cache_metadata
    from shapely.geometry import Polygon

    x0 = float(log_frames[0]["ego2global_translation"][0])
    y_lo, y_hi = float(log_frames[0]["ego2global_translation"][1]) - 60.0, 500.0
    lane = Polygon([(x0 - 1.8, y_lo), (x0 + 1.8, y_lo), (x0 + 1.8, y_hi), (x0 - 1.8, y_hi)])
    block = Polygon([(x0 - 3.6, y_lo), (x0 + 3.6, y_lo), (x0 + 3.6, y_hi), (x0 - 3.6, y_hi)])
    drivable = PDMDrivableMap(["lane1", "rb1"], [SemanticMapLayer.LANE, SemanticMapLayer.ROADBLOCK], [lane, block])
    centerline = PDMPath([StateSE2(x0, y, math.pi / 2) for y in np.arange(y_lo, y_hi, 1.0)])
    ps = TrajectorySampling(num_poses=40, interval_length=0.1)
    entries = []
    for i in tokens:
        f = log_frames[i]
        x, y, _ = f["ego2global_translation"]
        v = float(f["ego_dynamic_state"][0])
        t0 = int(f["timestamp"])
        ego = _ego(x, y, math.pi / 2, v, t0)
        pdm = InterpolatedTrajectory([_ego(x, y + v * k * 0.1, math.pi / 2, v, t0 + k * 100_000) for k in range(41)])
        past = InterpolatedTrajectory(
            [_ego(x, y - v * k * 0.5, math.pi / 2, v, t0 - k * 500_000) for k in (3, 2, 1, 0)]
        )
        human = Trajectory(np.array([[v * 0.5 * k, 0.0, 0.0] for k in range(1, 9)]))
        obs = PDMObservation(ps, ps, 100, observation_sample_res=1, extend_observation_for_ttc=False)
        obs.update_detections_tracks(
            [DetectionsTracks(TrackedObjects([])) for _ in range(41)], [[] for _ in range(41)], {}, True
        )
        cache = MetricCache(
            file_path=None, log_name=LOG, timepoint=TimePoint(t0), scene_type=SceneFrameType.ORIGINAL,
            trajectory=pdm, human_trajectory=human, past_human_trajectory=past, ego_state=ego, observation=obs,
            centerline=centerline, route_lane_ids=["lane1"], drivable_area_map=drivable, past_detections_tracks=[],
            current_tracked_objects=[DetectionsTracks(TrackedObjects([]))],
            future_tracked_objects=[DetectionsTracks(TrackedObjects([])) for _ in range(40)], map_parameters=None,
        )  # fmt: skip
        path = root / LOG / "unknown" / f["token"] / "metric_cache.pkl"
        path.parent.mkdir(parents=True)
        path.write_bytes(lzma.compress(pickle.dumps(cache)))
        entries.append(CacheMetadataEntry(file_name=path))
    save_cache_metadata(entries, root, 0)


def test_navsim_run_pdm_score_evaluates_our_checkpoint(tmp_path: Path) -> None:
    import navsim

    run = _train_tiny(tmp_path)
    data = tmp_path / "openscene"
    write_navsim_log(data, SPLIT, LOG, straight_north(FRAMES))  # full-size 1920×1080 CAM_F0 frames
    with open(data / "navsim_logs" / SPLIT / f"{LOG}.pkl", "rb") as fh:
        frames = pickle.load(fh)
    scene_tokens = [3, 4]  # the current frame (history index 3) of the two 14-frame windows
    cache_root = tmp_path / "metric_cache"
    _write_caches(cache_root, frames, scene_tokens)

    script = Path(navsim.__file__).parent / "planning/script/run_pdm_score_one_stage.py"
    exp = tmp_path / "exp"
    overrides = [
        f"hydra.searchpath=[pkg://navsim.planning.script.config.common,file://{REPO / 'agent/navsim_config'}]",
        "agent=drive_jepa", f"agent.checkpoint={run}",
        "train_test_split=navtest", f"train_test_split.data_split={SPLIT}",
        f"train_test_split.scene_filter.log_names=[{LOG}]", "train_test_split.scene_filter.tokens=null",
        "worker=sequential", "experiment_name=drive_jepa",
        f"metric_cache_path={cache_root}",
    ]  # fmt: skip
    env = {**os.environ, "OPENSCENE_DATA_ROOT": str(data), "NAVSIM_EXP_ROOT": str(exp), "NUPLAN_MAP_VERSION": "",
           "NUPLAN_MAPS_ROOT": str(tmp_path / "maps"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run([sys.executable, str(script), *overrides], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted(exp.glob("drive_jepa/*/*.csv"))
    assert len(results) == 1, proc.stderr[-3000:]
    with open(results[0], newline="") as fh:
        rows = {r["token"]: r for r in csv.DictReader(fh)}
    tokens = [frames[i]["token"] for i in scene_tokens]
    assert set(rows) == {*tokens, "average_all_frames"}
    for tok in tokens:
        assert rows[tok]["valid"] == "True", tok
        assert 0.0 <= float(rows[tok]["score"]) <= 1.0
    # navsim paired the two frames (0.5 s apart) for two-frame Extended Comfort: the later one has EC
    assert rows[tokens[1]]["two_frame_extended_comfort"] in ("0.0", "1.0")
    assert rows[tokens[0]]["two_frame_extended_comfort"] == ""

    # the same trajectories scored by our scorer on the same caches: navsim's sub-scores
    from navsim.common.dataclasses import SceneFilter
    from navsim.common.dataloader import SceneLoader

    from agent.navsim_agent import DriveJepaAgent
    from training.scoring.from_metric_cache import scene_from_metric_cache
    from training.scoring.scorer import PDMScorer

    agent = DriveJepaAgent(str(run))
    agent.initialize()
    loader = SceneLoader(
        data_path=data / "navsim_logs" / SPLIT, original_sensor_path=data / "sensor_blobs" / SPLIT,
        scene_filter=SceneFilter(num_history_frames=4, num_future_frames=10, frame_interval=1, log_names=[LOG]),
        sensor_config=agent.get_sensor_config(),
    )  # fmt: skip
    assert sorted(loader.tokens) == sorted(tokens)
    for tok in tokens:
        poses = agent.compute_trajectory(loader.get_agent_input_from_token(tok)).poses
        scene = scene_from_metric_cache(cache_root / LOG / "unknown" / tok / "metric_cache.pkl")
        ours = PDMScorer(scene).score(torch.from_numpy(np.asarray(poses, np.float64))[None], 0.5, version=2)
        for k in SUBSCORES:
            assert float(ours[k][0]) == pytest.approx(float(rows[tok][k]), abs=1e-6), (tok, k)

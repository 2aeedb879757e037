"""The navsim agent's features (`agent.navsim_agent`) equal the training features for the same NAVSIM data, and
(with navsim installed) navsim's own agent interface runs a trained checkpoint."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from agent.navsim_agent import navsim_features, navsim_image_config
from drive_jepa.cli import main as cli_main
from tests.training.synth_data import CAM_F0_ROTATION, CAM_F0_TRANSLATION, straight_north, write_navsim_log
from training.data.config import NavsimDataConfig
from training.data.dataset import DrivingDataset
from training.scoring.vocab import SHIPPED

SPLIT = "mini"
LOG = "2021.05.12.22.00.38_veh-35_01008_01518"


def _frames(root: Path) -> list[dict[str, object]]:
    with open(root / "navsim_logs" / SPLIT / f"{LOG}.pkl", "rb") as f:
        frames: list[dict[str, object]] = pickle.load(f)  # the test's own file
    return frames


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_agent_features_equal_training_features(tmp_path: Path) -> None:
    root = tmp_path / "navsim"
    write_navsim_log(root, SPLIT, LOG, straight_north(14))  # full-size 1920×1080 CAM_F0 frames, calibrated
    sample = DrivingDataset(NavsimDataConfig(root=str(root), split=SPLIT))[0]
    frames = _frames(root)
    # what navsim's AgentInput holds for this scene: frames 0..3, current = 3; the agent uses 2 and 3
    cams = [frames[i]["cams"]["CAM_F0"] for i in (2, 3)]  # type: ignore[index]
    images = [_rgb(root / "sensor_blobs" / SPLIT / c["data_path"]) for c in cams]
    dyn = np.asarray(frames[3]["ego_dynamic_state"], np.float32)
    meta = {"data_camera": "navsim_cam_f0", "camera": {"intrinsics": {"width": 512, "height": 256}}}
    image = navsim_image_config(meta)
    feats = navsim_features(images, np.asarray(frames[3]["driving_command"]), dyn[:2], dyn[2:], image,
                            cams[1]["sensor2lidar_rotation"], cams[1]["sensor2lidar_translation"])  # fmt: skip
    torch.testing.assert_close(feats.video, sample.video, atol=1e-6, rtol=0)
    torch.testing.assert_close(feats.status, sample.status)
    torch.testing.assert_close(feats.projection, sample.projection, atol=1e-4, rtol=1e-6)
    np.testing.assert_allclose(cams[1]["sensor2lidar_rotation"], CAM_F0_ROTATION)
    np.testing.assert_allclose(cams[1]["sensor2lidar_translation"], CAM_F0_TRANSLATION)
    # without calibration: the nominal CAM_F0, differing from the calibrated projection
    nominal = navsim_features(images, np.eye(4)[1], dyn[:2], dyn[2:], image)
    assert not torch.allclose(nominal.projection, feats.projection)
    with pytest.raises(ValueError, match=r"CAM_F0 frame 0: expected \(1080, 1920, 3\)"):
        navsim_features([images[0][:100]], np.eye(4)[1], dyn[:2], dyn[2:], image)


def test_image_config_follows_the_checkpoint() -> None:
    meta = {"data_camera": "navsim_cam_f0", "camera": {"intrinsics": {"width": 64, "height": 32}},
            "data_image": {"source_width": 64, "source_height": 36, "crop_top": 2, "crop_bottom": 34,
                           "crop_left": 0, "crop_right": 64}}  # fmt: skip
    img = navsim_image_config(meta)
    assert (img.crop_top, img.crop_bottom, img.crop_left, img.crop_right) == (60, 1020, 0, 1920)
    assert (img.out_width, img.out_height, img.jpeg_quality) == (64, 32, None)
    default = navsim_image_config({"camera": {"intrinsics": {"width": 512, "height": 256}}})
    assert (default.crop_top, default.crop_bottom) == (28, 1052)


@pytest.mark.navsim
def test_navsim_agent_runs_a_trained_checkpoint(tmp_path: Path) -> None:
    from navsim.common.dataclasses import AgentInput, Camera, Cameras, EgoStatus, Lidar, Trajectory

    from agent.navsim_agent import DriveJepaAgent

    root = tmp_path / "navsim"
    write_navsim_log(root, SPLIT, LOG, straight_north(14), image_size=(64, 36))
    out = tmp_path / "run"
    vocab = SHIPPED["navsim_8192"]
    args = ["train", "--tiny", "data=navsim", f"data.root={root}", f"data.split={SPLIT}", f"vocabulary={vocab}",
            f"out={out}", "steps=1", "batch_size=1", "data.image.source_width=64", "data.image.source_height=36",
            "data.image.crop_top=2", "data.image.crop_bottom=34", "data.image.crop_right=64"]  # fmt: skip
    assert cli_main(args) == 0
    agent = DriveJepaAgent(str(out))
    agent.initialize()
    assert agent.get_sensor_config().cam_f0 == [2, 3]
    rng = np.random.default_rng(0)

    def cams() -> Cameras:
        f0 = Camera(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8), CAM_F0_ROTATION, CAM_F0_TRANSLATION,
                    np.eye(3), np.zeros(5))  # fmt: skip
        return Cameras(f0, *[Camera() for _ in range(7)])

    status = EgoStatus(np.zeros(3), np.array([5.0, 0.0]), np.zeros(2), np.array([0, 1, 0, 0]))
    agent_input = AgentInput([status] * 4, [cams() for _ in range(4)], [Lidar()] * 4)
    traj = agent.compute_trajectory(agent_input)
    assert isinstance(traj, Trajectory) and traj.poses.shape == (8, 3) and np.isfinite(traj.poses).all()
    assert agent.metadata["data"] == "navsim" and agent.metadata["data_camera"] == "navsim_cam_f0"

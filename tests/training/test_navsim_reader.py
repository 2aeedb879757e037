"""NAVSIM reader on a synthetic `navsim_logs` + `sensor_blobs` tree written by the test itself."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.training.synth_data import straight_north, write_navsim_log
from training.data.navsim_reader import NavsimReader, SceneFilter, load_log_pickle, load_scene_filter
from training.data.sample import DataLayoutError

SPLIT = "mini"
LOG = "2021.05.12.22.00.38_veh-35_01008_01518"


@pytest.fixture()
def navsim_root(tmp_path: Path) -> Path:
    write_navsim_log(tmp_path, SPLIT, LOG, straight_north(20), image_size=(64, 36))
    return tmp_path


def test_straight_north_trajectory_and_ego_status(navsim_root: Path) -> None:
    reader = NavsimReader(navsim_root, SPLIT, SceneFilter(frame_interval=1))
    # 20 frames, windows of 14 frames every frame: starts 0..6 -> 7 scenes; current frame = start + 3
    assert len(reader) == 7
    assert reader.tokens()[0].endswith("tok0003")
    s = reader[0]
    np.testing.assert_allclose(s.trajectory[:, 0], 2.5 * np.arange(1, 9), atol=1e-9)
    np.testing.assert_allclose(s.trajectory[:, 1:], 0.0, atol=1e-9)
    assert s.trajectory.shape == (8, 3) and s.trajectory.dtype == np.float32
    np.testing.assert_allclose(s.velocity, [5.0, 0.0])
    np.testing.assert_allclose(s.acceleration, [0.25, -0.1])
    assert s.speed == pytest.approx(5.0)
    np.testing.assert_array_equal(s.command, [0, 1, 0, 0])
    assert s.ego_pose_world[2] == pytest.approx(math.pi / 2)
    assert s.timestamp == pytest.approx(1_600_000_000 + 1.5)
    # history: t − 0.5 s is the previous frame's CAM_F0 image, t the current one
    assert s.image_paths[0].endswith("tok0002.jpg") and s.image_paths[1].endswith("tok0003.jpg")
    assert all(Path(p).is_file() for p in s.image_paths)
    assert not s.target_valid


def test_turning_trajectory_heading_in_rear_axle_frame(tmp_path: Path) -> None:
    # constant-radius left turn: x = R sin(wt), y = R(1 − cos(wt)), heading = wt, starting east at the origin
    r, w = 20.0, 0.2
    t = np.arange(16) * 0.5
    poses = np.stack([r * np.sin(w * t), r * (1 - np.cos(w * t)), w * t], -1)
    # rotate+translate the whole log so the world frame differs from the ego frame
    c, s_ = math.cos(1.0), math.sin(1.0)
    world = np.stack([10 + c * poses[:, 0] - s_ * poses[:, 1], -5 + s_ * poses[:, 0] + c * poses[:, 1],
                      poses[:, 2] + 1.0], -1)  # fmt: skip
    write_navsim_log(tmp_path, SPLIT, LOG, world, image_size=(32, 18))
    sample = NavsimReader(tmp_path, SPLIT, SceneFilter(frame_interval=1))[0]
    # current frame 3 at t=1.5: relative poses are the turn from angle w·1.5
    dt = 0.5 * np.arange(1, 9)
    expect_x = r * np.sin(w * dt)
    expect_y = r * (1 - np.cos(w * dt))
    np.testing.assert_allclose(sample.trajectory[:, 0], expect_x, atol=1e-4)
    np.testing.assert_allclose(sample.trajectory[:, 1], expect_y, atol=1e-4)
    np.testing.assert_allclose(sample.trajectory[:, 2], w * dt, atol=1e-5)


def test_scene_filter_like_navsim(tmp_path: Path) -> None:
    tokens = write_navsim_log(tmp_path, SPLIT, LOG, straight_north(30), image_size=(32, 18), no_route=(3,))
    write_navsim_log(tmp_path, SPLIT, "other_log_000001", straight_north(30), image_size=(32, 18))
    # navsim default: non-overlapping windows (interval = 14): starts 0, 14 -> current 3 (no route), 17
    reader = NavsimReader(tmp_path, SPLIT, SceneFilter(log_names=[LOG]))
    assert reader.tokens() == [tokens[17]]
    reader = NavsimReader(tmp_path, SPLIT, SceneFilter(log_names=[LOG], has_route=False))
    assert reader.tokens() == [tokens[3], tokens[17]]
    reader = NavsimReader(tmp_path, SPLIT, SceneFilter(frame_interval=1, tokens=[tokens[5], tokens[9]]))
    assert reader.tokens() == [tokens[5], tokens[9]]
    reader = NavsimReader(tmp_path, SPLIT, SceneFilter(frame_interval=1, max_scenes=3))
    assert len(reader) == 3


def test_scene_filter_yaml_and_split_yaml(tmp_path: Path) -> None:
    tts = tmp_path / "train_test_split"
    (tts / "scene_filter").mkdir(parents=True)
    (tts / "scene_filter" / "navmini.yaml").write_text(
        "_target_: navsim.common.dataclasses.SceneFilter\n_convert_: 'all'\nnum_history_frames: 4\n"
        "num_future_frames: 10\nframe_interval: 1\nhas_route: true\nmax_scenes: null\n"
        f"log_names:\n  - '{LOG}'\ntokens:\n  - 'abc'\n  - 'def'\n"
    )
    (tts / "navmini.yaml").write_text("defaults:\n  - scene_filter: navmini\n\ndata_split: mini\n")
    sf, split = load_scene_filter(tts / "navmini.yaml")
    assert split == "mini" and sf.frame_interval == 1 and sf.log_names == [LOG] and sf.tokens == ["abc", "def"]
    sf2, split2 = load_scene_filter(tts / "scene_filter" / "navmini.yaml")
    assert sf2 == sf and split2 is None
    (tts / "bad.yaml").write_text("log_names: notalist\n")
    with pytest.raises(DataLayoutError, match=r"bad.yaml.*log_names"):
        load_scene_filter(tts / "bad.yaml")


def test_bad_layouts_are_one_line_errors(tmp_path: Path, navsim_root: Path) -> None:
    with pytest.raises(DataLayoutError, match=r"navsim_logs/trainval.*folder not found") as e:
        NavsimReader(navsim_root, "trainval")
    assert "\n" not in str(e.value)
    empty = tmp_path / "empty"
    (empty / "navsim_logs" / SPLIT).mkdir(parents=True)
    (empty / "sensor_blobs" / SPLIT).mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=r"no \*.pkl logs"):
        NavsimReader(empty, SPLIT)
    (empty / "navsim_logs" / SPLIT / "x.pkl").write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(DataLayoutError, match=r"x.pkl: expected a list of frame dicts"):
        NavsimReader(empty, SPLIT)
    (empty / "navsim_logs" / SPLIT / "x.pkl").write_bytes(pickle.dumps([{"token": "a"}]))
    with pytest.raises(DataLayoutError, match=r"x.pkl: frame 0 has no `timestamp`"):
        NavsimReader(empty, SPLIT)
    (empty / "navsim_logs" / SPLIT / "x.pkl").write_bytes(pickle.dumps([{"token": "a", "timestamp": "soon"}]))
    with pytest.raises(DataLayoutError, match=r"x.pkl: frame 0 `timestamp` is not numeric"):
        NavsimReader(empty, SPLIT)
    # a missing camera image names the file
    img = next((navsim_root / "sensor_blobs" / SPLIT / LOG / "CAM_F0").glob("*tok0003.jpg"))
    img.unlink()
    with pytest.raises(DataLayoutError, match=r"tok0003.jpg: camera image not found"):
        NavsimReader(navsim_root, SPLIT, SceneFilter(frame_interval=1))[0]


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_pickle_reader_refuses_code(tmp_path: Path) -> None:
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps([{"token": _Evil()}]))
    with pytest.raises(DataLayoutError, match=r"refusing to load builtins.print"):
        load_log_pickle(p)

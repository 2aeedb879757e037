"""Bench2Drive reader and world snapshot on a synthetic clip written in Bench2Drive's exact layout."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from drive_jepa.frames import LINCOLN_MKZ_2020
from tests.training.synth_data import write_b2d_clip
from training.data.bench2drive_reader import Bench2DriveReader, read_anno
from training.data.sample import DataLayoutError
from training.data.world_snapshot import load_snapshot, save_snapshot

SCENARIO = "ParkingExit"
CLIP = "Town12_Route922_Weather12"


def north_carla(n: int, speed: float = 5.0) -> np.ndarray:
    """CARLA poses driving north (CARLA −y, yaw −90°) at `speed`, 10 Hz."""
    t = np.arange(n) / 10.0
    return np.stack([np.full(n, 100.0), 200.0 - speed * t, np.full(n, -90.0)], -1)


@pytest.fixture()
def b2d_root(tmp_path: Path) -> Path:
    speeds: list[float | None] = [5.0] * 60
    speeds[10] = None  # the speedometer's None (docs/anno.md)
    write_b2d_clip(tmp_path, SCENARIO, CLIP, north_carla(60), speeds=speeds, target_offset=(0.0, -30.0))
    return tmp_path


def test_straight_north_sample(b2d_root: Path) -> None:
    reader = Bench2DriveReader(b2d_root)
    # frames 0..59; current frames multiple of 5 with 0.5 s history and 4 s future: 5, 10, 15
    assert reader.tokens() == [f"{SCENARIO}/{CLIP}/{f:05d}" for f in (5, 10, 15)]
    s = reader[1]
    np.testing.assert_allclose(s.trajectory[:, 0], 2.5 * np.arange(1, 9), atol=1e-5)
    np.testing.assert_allclose(s.trajectory[:, 1:], 0.0, atol=1e-5)
    assert s.speed == pytest.approx(5.0)  # speedometer None -> the ego box's speed
    np.testing.assert_allclose(s.velocity, [5.0, 0.0])
    np.testing.assert_allclose(s.acceleration, [0.5, -0.2], atol=1e-6)  # IMU y right -> ego y left
    np.testing.assert_array_equal(s.command, [0, 1, 0, 0])  # LANEFOLLOW -> straight
    # target 30 m ahead of the box centre = 30 + rear_axle_to_center ahead of the rear axle
    assert s.target_valid
    np.testing.assert_allclose(s.target_point, [30.0 + LINCOLN_MKZ_2020.rear_axle_to_center, 0.0], atol=1e-4)
    # WORLD pose of the rear axle: CARLA (100, 200 − 5·1.0) -> WORLD (100, −195), heading north, axle 1.39 m south
    np.testing.assert_allclose(
        s.ego_pose_world, [100.0, -195.0 - LINCOLN_MKZ_2020.rear_axle_to_center, math.pi / 2], atol=1e-9
    )
    assert s.image_paths[0].endswith("camera/rgb_front/00005.jpg")
    assert s.image_paths[1].endswith("camera/rgb_front/00010.jpg")
    assert s.timestamp == pytest.approx(1.0)


def test_left_turn_heading(tmp_path: Path) -> None:
    # CARLA yaw decreasing = turning left (counter-clockwise in WORLD); circle of radius 15 m at 5 m/s
    n, r, v = 60, 15.0, 5.0
    t = np.arange(n) / 10.0
    w = v / r
    # WORLD: start at origin heading east, turn left; CARLA: y flipped, yaw = −heading in degrees
    wx, wy, wh = r * np.sin(w * t), r * (1 - np.cos(w * t)), w * t
    write_b2d_clip(tmp_path, SCENARIO, CLIP, np.stack([wx, -wy, -np.degrees(wh)], -1))
    s = Bench2DriveReader(tmp_path)[0]  # current frame 5 (t = 0.5)
    d = LINCOLN_MKZ_2020.rear_axle_to_center
    tau = 0.5 * np.arange(1, 9)
    # rear axle of a vehicle whose centre moves on the circle: express in the current rear-axle frame
    cx, cy, ch = r * np.sin(w * tau), r * (1 - np.cos(w * tau)), w * tau  # centre in the current centre frame
    rx, ry = cx - d * np.cos(ch) + d, cy - d * np.sin(ch)
    np.testing.assert_allclose(s.trajectory[:, 0], rx, atol=1e-4)
    np.testing.assert_allclose(s.trajectory[:, 1], ry, atol=1e-4)
    np.testing.assert_allclose(s.trajectory[:, 2], ch, atol=1e-6)
    assert (s.trajectory[2:, 1] > 0).all()  # left is +y (the rear axle first swings out by a few cm)


def test_world_snapshot(b2d_root: Path, tmp_path: Path) -> None:
    reader = Bench2DriveReader(b2d_root)
    snap = reader.snapshot(1)  # frame 10
    assert snap.town == "Town12" and snap.frame == 10 and snap.command == 4
    assert snap.ego.box.length == pytest.approx(4.88) and snap.ego.box.heading == pytest.approx(math.pi / 2)
    assert snap.route_target == pytest.approx((100.0, -195.0 + 30.0))
    by_id = {a.id: a for a in snap.actors}
    dyn, static, walker = by_id["200"], by_id["300"], by_id["400"]
    assert (dyn.box.x, dyn.box.y) == pytest.approx((120.0, -195.0))
    assert dyn.box.heading == pytest.approx(math.pi / 2) and dyn.speed == 3.0 and not dyn.is_static
    assert dyn.box.length == pytest.approx(4.4) and dyn.box.width == pytest.approx(2.0)
    assert static.is_static and static.speed == 0.0 and static.box.heading == pytest.approx(-math.pi / 2)
    assert walker.kind == "walker" and walker.speed == pytest.approx(1.0)  # 0.1 m per 0.1 s frame
    (light,) = snap.traffic_lights
    assert light.state == "red" and light.affects_ego and (light.x, light.y) == pytest.approx((40.0, 0.0))
    # trigger yaw 0 relative to the light's yaw 90° -> CARLA 90° -> WORLD −π/2; location y flipped
    assert light.trigger.heading == pytest.approx(-math.pi / 2)
    assert (light.trigger.x, light.trigger.y) == pytest.approx((38.0, -2.0))
    assert light.trigger.length == pytest.approx(2.0) and light.trigger.width == pytest.approx(6.0)
    path = save_snapshot(snap, tmp_path / "snap" / "x.json.gz")
    assert load_snapshot(path) == snap


def test_bad_layout_errors(tmp_path: Path, b2d_root: Path) -> None:
    with pytest.raises(DataLayoutError, match=r"nowhere: Bench2Drive root folder not found"):
        Bench2DriveReader(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError, match=r"no clip folders with anno"):
        Bench2DriveReader(tmp_path / "empty")
    with pytest.raises(DataLayoutError, match=r"missing/anno: folder not found"):
        Bench2DriveReader(b2d_root, clips=["missing"])
    clip = b2d_root / SCENARIO / CLIP
    bad = clip / "anno" / "00015.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataLayoutError, match=r"00015.json.gz: not a gzip JSON annotation"):
        read_anno(bad)
    with gzip.open(bad, "wt") as f:
        f.write('{"x": null, "y": null, "theta": null, "bounding_boxes": []}')
    reader = Bench2DriveReader(b2d_root)
    with pytest.raises(DataLayoutError, match=r"00015.json.gz: no finite ego pose"):
        reader[0]  # frame 5 needs frame 15 in its future
    with gzip.open(bad, "wt") as f:
        f.write('{"bounding_boxes": [{"class": "ego_vehicle", "location": 3}]}')
    with pytest.raises(DataLayoutError, match=r"00015.json.gz: malformed ego pose fields"):
        Bench2DriveReader(b2d_root)[0]


def test_missing_images_drop_samples_and_missing_camera_folder_errors(tmp_path: Path) -> None:
    write_b2d_clip(tmp_path, SCENARIO, CLIP, north_carla(60), image_every=10)
    # only frames 0, 10, 20, ... have images: current 10 needs 5 (missing) -> no sample has both frames
    assert len(Bench2DriveReader(tmp_path)) == 0
    assert (
        len(Bench2DriveReader(tmp_path, history_offsets=(-1.0, 0.0), stride=10)) == 1
    )  # frame 10 (20 lacks 4 s of future)
    for f in (tmp_path / SCENARIO / CLIP / "camera" / "rgb_front").iterdir():
        f.unlink()
    (tmp_path / SCENARIO / CLIP / "camera" / "rgb_front").rmdir()
    with pytest.raises(DataLayoutError, match=r"camera/rgb_front: folder not found"):
        Bench2DriveReader(tmp_path)


def test_clip_discovery_flat_nested_self_and_exclude(tmp_path: Path) -> None:
    poses = north_carla(50)
    write_b2d_clip(tmp_path, "", "Accident_Town05_Route218_Weather10", poses)  # flat release naming
    write_b2d_clip(tmp_path, "ParkingExit", "Town12_Route922_Weather12", poses)  # nested (docs/anno.md)
    reader = Bench2DriveReader(tmp_path)
    assert [c.name for c in reader.clip_list] == ["Accident_Town05_Route218_Weather10",
                                                  "ParkingExit/Town12_Route922_Weather12"]  # fmt: skip
    only = Bench2DriveReader(tmp_path, exclude=["Town12_Route922_Weather12"])
    assert [c.name for c in only.clip_list] == ["Accident_Town05_Route218_Weather10"]
    itself = Bench2DriveReader(tmp_path / "ParkingExit" / "Town12_Route922_Weather12")
    assert [c.name for c in itself.clip_list] == ["Town12_Route922_Weather12"] and len(itself) == len(only)
    assert itself.snapshot(0).town == "Town12"

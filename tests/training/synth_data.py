"""Tiny synthetic datasets written in NAVSIM's and Bench2Drive's exact on-disk layouts (for the reader tests).

NAVSIM: `navsim_logs/<split>/<log>.pkl` (a pickled list of frame dicts with numpy arrays, as OpenScene ships them)
and `sensor_blobs/<split>/<log>/CAM_F0/<token>.jpg` (1920×1080). Bench2Drive: `<Scenario>/<clip>/anno/00000.json.gz`
and `camera/rgb_front/00000.jpg` (1600×900, JPEG quality 20), fields as `tools/data_collect.py` writes them.
"""

from __future__ import annotations

import gzip
import json
import math
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def _jpeg(path: Path, w: int, h: int, value: int, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 0] = value % 256
    img[: h // 2, :, 1] = 200
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    path.write_bytes(buf.tobytes())


# a forward-looking camera: OpenCV x right → lidar −y, y down → −z, z forward → +x
CAM_F0_ROTATION = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
CAM_F0_TRANSLATION = np.array([1.55, 0.05, 1.58])


OTHER_CAMERAS = ("CAM_L0", "CAM_L1", "CAM_L2", "CAM_R0", "CAM_R1", "CAM_R2", "CAM_B0")


def _cam_entry(data_path: str, calibration: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"data_path": data_path, "cam_intrinsic": np.eye(3), "distortion": np.zeros(5)}
    if calibration:
        entry["sensor2lidar_rotation"] = CAM_F0_ROTATION.copy()
        entry["sensor2lidar_translation"] = CAM_F0_TRANSLATION.copy()
    return entry


def _yaw_quaternion(h: float) -> np.ndarray:
    return np.array([math.cos(h / 2), 0.0, 0.0, math.sin(h / 2)])


def write_navsim_log(
    root: Path,
    split: str,
    log: str,
    poses: np.ndarray,
    speed: float = 5.0,
    image_size: tuple[int, int] = (1920, 1080),
    no_route: tuple[int, ...] = (),
    command: int = 1,
    calibration: bool = True,
) -> list[str]:
    """Write one log whose rear axle follows `poses` (N, 3) WORLD at 2 Hz. Returns the frame tokens.

    With `calibration` CAM_F0 carries a forward-looking `sensor2lidar_rotation` (OpenCV camera axes → lidar axes)
    and `sensor2lidar_translation` CAM_F0_TRANSLATION; without it the two keys are absent."""
    frames: list[dict[str, Any]] = []
    tokens = []
    for i, (x, y, h) in enumerate(poses):
        token = f"{log[-6:]}tok{i:04d}"
        tokens.append(token)
        data_path = f"{log}/CAM_F0/{token}.jpg"
        _jpeg(root / "sensor_blobs" / split / data_path, *image_size, value=i * 10)
        onehot = np.zeros(4, np.int64)
        onehot[command] = 1
        frames.append(
            {
                "token": token,
                "frame_idx": i,
                "timestamp": 1_600_000_000_000_000 + 500_000 * i,
                "log_name": log,
                "scene_token": f"scene{i // 14}",
                "map_location": "us-nv-las-vegas-strip",
                "roadblock_ids": [] if i in no_route else ["rb1"],
                "traffic_lights": [],
                "ego2global_translation": np.array([x, y, 0.0]),
                "ego2global_rotation": _yaw_quaternion(h),
                "ego_dynamic_state": [speed, 0.0, 0.25, -0.1],
                "driving_command": onehot,
                "lidar_path": f"{log}/MergedPointCloud/{token}.pcd",
                # OpenScene logs list all eight cameras; only CAM_F0's image is written (the others are never read)
                "cams": {
                    "CAM_F0": _cam_entry(data_path, calibration),
                    **{c: _cam_entry(f"{log}/{c}/{token}.jpg", True) for c in OTHER_CAMERAS},
                },
                "anns": {
                    "gt_boxes": np.zeros((0, 7)),
                    "gt_names": [],
                    "gt_velocity_3d": np.zeros((0, 3)),
                    "instance_tokens": [],
                    "track_tokens": [],
                },
            }
        )
    logs_dir = root / "navsim_logs" / split
    logs_dir.mkdir(parents=True, exist_ok=True)
    with open(logs_dir / f"{log}.pkl", "wb") as f:
        pickle.dump(frames, f)
    return tokens


def straight_north(n: int, speed: float = 5.0, dt: float = 0.5, x0: float = 100.0, y0: float = 200.0) -> np.ndarray:
    """WORLD poses driving north (heading π/2) at `speed`."""
    t = np.arange(n) * dt
    return np.stack([np.full(n, x0), y0 + speed * t, np.full(n, math.pi / 2)], -1)


def _box(
    cls: str, actor_id: str, loc: list[float], yaw_deg: float, extent: list[float], **extra: Any
) -> dict[str, Any]:
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    world2actor = np.linalg.inv(
        np.array([[c, -s, 0.0, loc[0]], [s, c, 0.0, loc[1]], [0.0, 0.0, 1.0, loc[2]], [0.0, 0.0, 0.0, 1.0]])
    )
    key = {"ego_vehicle": "world2ego", "vehicle": "world2vehicle", "walker": "world2ped"}.get(cls)
    box = {
        "class": cls,
        "id": actor_id,
        "location": loc,
        "rotation": [0.0, 0.0, yaw_deg],  # Bench2Drive stores (pitch, roll, yaw)
        "center": [loc[0], loc[1], loc[2] + extent[2]],
        "extent": extent,
        "type_id": "vehicle.lincoln.mkz_2020" if cls != "walker" else "walker.pedestrian.0001",
        "distance": 0.0,
    }
    if key:
        box[key] = world2actor.tolist()
    box.update(extra)
    return box


def write_b2d_clip(
    root: Path,
    scenario: str,
    clip: str,
    carla_poses: np.ndarray,
    speeds: list[float | None] | None = None,
    command_near: int = 4,
    target_offset: tuple[float, float] = (30.0, 0.0),
    image_every: int = 1,
) -> Path:
    """Write a clip whose ego box centre follows `carla_poses` (N, 3) = CARLA (x, y, yaw°) at 10 Hz.

    The target (`x/y_command_near`) is `target_offset` metres from the ego centre in CARLA world axes. Each frame
    also has one dynamic vehicle, one static vehicle, one walker (speed 0, as CARLA reports) walking +1 m/s in
    CARLA x, and a red traffic light whose trigger-volume rotation is stored relative to the light.
    """
    clip_dir = root / scenario / clip
    (clip_dir / "anno").mkdir(parents=True, exist_ok=True)
    for i, (x, y, yaw) in enumerate(carla_poses):
        speed = None if speeds is None else speeds[i]
        boxes = [
            _box("ego_vehicle", "100", [float(x), float(y), 0.0], float(yaw), [2.44, 1.05, 0.75], speed=5.0),
            _box(
                "vehicle",
                "200",
                [float(x) + 20.0, float(y), 0.0],
                float(yaw),
                [2.2, 1.0, 0.8],
                state="dynamic",
                speed=3.0,
            ),
            _box("vehicle", "300", [50.0, 60.0, 0.0], 90.0, [2.0, 0.9, 0.7], state="static", speed=0.0),
            _box("walker", "400", [10.0 + 0.1 * i, 5.0, 0.0], 0.0, [0.3, 0.3, 0.9], speed=0.0),
            {
                "class": "traffic_light",
                "id": "500",
                "location": [40.0, 0.0, 5.0],
                "rotation": [0.0, 0.0, 90.0],
                "center": [40.0, 0.0, 5.0],
                "extent": [0.5, 0.5, 1.5],
                "state": 0,  # carla.TrafficLightState.Red
                "affects_ego": True,
                "trigger_volume_location": [38.0, 2.0, 0.0],
                "trigger_volume_rotation": [0.0, 0.0, 0.0],
                "trigger_volume_extent": [1.0, 3.0, 1.0],
                "distance": 30.0,
            },
        ]
        anno = {
            "x": float(x),
            "y": float(y),
            "theta": math.radians(float(yaw)) + math.pi / 2,  # IMU compass: CARLA yaw = compass − π/2
            "speed": speed,
            "throttle": 0.5,
            "steer": 0.0,
            "brake": 0.0,
            "reverse": False,
            "x_command_near": float(x) + target_offset[0],
            "y_command_near": float(y) + target_offset[1],
            "command_near": command_near,
            "x_command_far": float(x) + 80.0,
            "y_command_far": float(y),
            "command_far": 4,
            "should_brake": 0,
            "only_ap_brake": False,
            "x_target": float(x) + target_offset[0],
            "y_target": float(y) + target_offset[1],
            "next_command": 4,
            "weather": {},
            "acceleration": [0.5, 0.2, 9.81],
            "angular_velocity": [0.0, 0.0, 0.0],
            "bounding_boxes": boxes,
            "sensors": {},
        }
        with gzip.open(clip_dir / "anno" / f"{i:05d}.json.gz", "wt", encoding="utf-8") as f:
            json.dump(anno, f)
        if i % image_every == 0:
            _jpeg(clip_dir / "camera" / "rgb_front" / f"{i:05d}.jpg", 1600, 900, value=i, quality=20)
    return clip_dir

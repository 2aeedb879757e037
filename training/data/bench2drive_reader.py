"""Bench2Drive training-data reader: per-clip folders → the same `DrivingSample`s as NAVSIM, plus world snapshots.

Layout (Bench2Drive `docs/anno.md`; the released archives name clips `<Scenario>_Town<id>_Route<id>_Weather<id>`,
the doc nests them as `<Scenario>/Town<id>_weather<id>_route<id>`; any folder holding `anno/` is a clip)::

    <root>/[<Scenario>/]<clip>/anno/00000.json.gz            # one gzip JSON per frame, 10 Hz
    <root>/[<Scenario>/]<clip>/camera/rgb_front/00000.jpg    # 1600×900, JPEG quality 20

Facts used (from `tools/data_collect.py` in Bench2Drive, which writes these files, and Bench2DriveZoo's
`prepare_B2D.py` / `gen_tcp_data.py`, which read them):

* frames are saved at 10 Hz (`frame_rate = 10.0`; `gen_tcp_data.py` takes every 5th frame for 2 Hz);
* everything is in CARLA's left-handed world: `x`, `y`, `x_command_near`, `y_command_near`, box `location`/`center`
  (metres), `rotation` = **(pitch, roll, yaw)** in degrees; `theta` is the IMU compass (rad; CARLA yaw =
  compass − π/2, NaN/None happens); `speed` is the speedometer (may be None); `acceleration` is the IMU's (x fwd,
  y right, z up, incl. gravity);
* the ego's box (`class == 'ego_vehicle'`, the first box) holds the actor transform: `location` is CARLA's actor
  location (the box centre for vehicles), `world2ego` its inverse matrix. We take the ego pose from it (exact),
  falling back to `x`, `y`, `theta` only when the box is missing;
* `extent` is half of length/width/height; static vehicles' `rotation`/`location` are wrong (CARLA bug) so their
  box is `center` + `extent` with the heading of inv(`world2vehicle`); trigger-volume rotations are relative to
  the parent actor (traffic light / stop sign), so the parent's yaw is added; pedestrians' `speed` is always 0,
  so walker speeds are finite differences of their centres between consecutive frames.

Targets: the future trajectory is the ego rear axle's poses at 0.5, 1.0, … 4.0 s (frames +5, +10, …) in the
EGO_REAR_AXLE frame of the current frame, with the rear axle `LINCOLN_MKZ_2020.rear_axle_to_center` behind the
box centre; the command is `command_near` (RoadOption) as NAVSIM's one-hot; the target point is
(`x_command_near`, `y_command_near`) in EGO_REAR_AXLE.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.route import navsim_command
from drive_jepa import frames as F
from training.data.sample import DataLayoutError, DrivingSample
from training.data.world_snapshot import Actor, Box, EgoSnapshot, StopSign, TrafficLight, WorldSnapshot

B2D_FPS = 10.0
CAMERA = "rgb_front"
_FRAME_RE = re.compile(r"^(\d+)\.json\.gz$")
_TOWN_RE = re.compile(r"(Town\d+(?:HD)?)", re.IGNORECASE)
# carla.TrafficLightState values as they land in JSON (Boost.Python enums are ints): Red 0, Yellow 1, Green 2,
# Off 3, Unknown 4.
_POSE_CACHE_SIZE = 20_000  # ego poses kept per reader (~1 MB)
_LIGHT_STATE = {0: "red", 1: "yellow", 2: "green", 3: "off", 4: "unknown"}


def read_anno(path: Path) -> dict[str, Any]:
    """One `anno/<frame>.json.gz` as a dict; DataLayoutError naming the file otherwise."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataLayoutError(f"{path}: not a gzip JSON annotation ({exc})") from None
    if not isinstance(data, dict):
        raise DataLayoutError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _num(value: Any, default: float = math.nan) -> float:
    """A JSON number or None/garbage → float (None → default)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _ego_box(anno: dict[str, Any]) -> dict[str, Any] | None:
    for box in anno.get("bounding_boxes") or []:
        if isinstance(box, dict) and box.get("class") == "ego_vehicle":
            return box
    return None


def ego_carla_pose(anno: dict[str, Any], path: Path) -> np.ndarray:
    """CARLA_WORLD (x, y, yaw°) of the ego's box centre (actor location) in one annotation."""
    try:
        return _ego_carla_pose(anno, path)
    except (TypeError, ValueError, IndexError, KeyError, np.linalg.LinAlgError) as exc:
        if isinstance(exc, DataLayoutError):
            raise
        raise DataLayoutError(f"{path}: malformed ego pose fields ({type(exc).__name__}: {exc})") from None


def _ego_carla_pose(anno: dict[str, Any], path: Path) -> np.ndarray:
    box = _ego_box(anno)
    if box is not None and "location" in box:
        x, y = _num(box["location"][0]), _num(box["location"][1])
        rot = box.get("rotation") or []
        yaw = _num(rot[2]) if len(rot) >= 3 else math.nan
        if not math.isfinite(yaw) and box.get("world2ego") is not None:
            yaw = float(F.carla_pose_from_inverse_matrix(np.asarray(box["world2ego"], np.float64))[2])
    else:
        x, y, yaw = _num(anno.get("x")), _num(anno.get("y")), math.nan
    if not math.isfinite(yaw):
        yaw = float(F.compass_to_carla_yaw(np.asarray(_num(anno.get("theta")))))
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(yaw)):
        raise DataLayoutError(f"{path}: no finite ego pose (ego box location/rotation, or x, y, theta)")
    return np.array([x, y, yaw])


def _vec(value: Any, n: int) -> np.ndarray:
    out = np.array([_num(v, 0.0) for v in (value or [])][:n], dtype=np.float64)
    return np.concatenate([out, np.zeros(n - len(out))])


@dataclass
class _Clip:
    name: str  # relative to root
    path: Path
    frames: np.ndarray  # sorted frame numbers with an annotation
    images: set[int]


@dataclass
class Bench2DriveReader:
    """Samples from Bench2Drive clip folders under `root`.

    clips: clip folders relative to root (None: every folder with an `anno/` up to two levels down).
    exclude: clips to leave out, by folder name or path relative to root (e.g. a validation list).
    stride: take every `stride`-th frame as a current frame (5 → 2 Hz like NAVSIM; 1 → every 10 Hz frame).
    history_offsets: camera frames relative to now (s), oldest first; num_poses at `dt` seconds.
    """

    root: Path
    clips: Sequence[str] | None = None
    exclude: Sequence[str] = ()
    stride: int = 5
    history_offsets: Sequence[float] = (-0.5, 0.0)
    num_poses: int = 8
    dt: float = 0.5
    fps: float = B2D_FPS
    camera: str = CAMERA
    geometry: F.VehicleGeometry = F.LINCOLN_MKZ_2020
    trigger_rotation_relative: bool = True  # docs/anno.md: trigger-volume rotation is relative to the parent
    clip_list: list[_Clip] = field(default_factory=list, init=False, repr=False)
    # (clip index, current frame number) per sample
    index: list[tuple[int, int]] = field(default_factory=list, init=False, repr=False)
    _pose_cache: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise DataLayoutError(f"{self.root}: Bench2Drive root folder not found")
        self._step = self._frames_for(self.dt)
        self._hist = [self._frames_for(-o) for o in self.history_offsets]
        names = list(self.clips) if self.clips is not None else self._discover()
        drop = set(self.exclude)
        names = [n for n in names if n not in drop and Path(n).name not in drop]
        if not names:
            raise DataLayoutError(f"{self.root}: no clip folders with anno/*.json.gz (Bench2Drive layout)")
        for name in names:
            self._add_clip(name)

    def _frames_for(self, seconds: float) -> int:
        n = round(seconds * self.fps)
        if not math.isclose(n / self.fps, seconds, abs_tol=1e-6):
            raise ValueError(f"{seconds} s is not a whole number of frames at {self.fps} Hz")
        return n

    def _discover(self) -> list[str]:
        found = [p.parent for pattern in ("anno", "*/anno", "*/*/anno") for p in self.root.glob(pattern) if p.is_dir()]
        return sorted(str(p.relative_to(self.root)) for p in found)

    def _add_clip(self, name: str) -> None:
        path = self.root / name
        anno_dir = path / "anno"
        if not anno_dir.is_dir():
            raise DataLayoutError(f"{anno_dir}: folder not found (clip layout: <clip>/anno/<frame>.json.gz)")
        frames = sorted(int(m.group(1)) for f in anno_dir.iterdir() if (m := _FRAME_RE.match(f.name)))
        cam_dir = path / "camera" / self.camera
        if not cam_dir.is_dir():
            raise DataLayoutError(f"{cam_dir}: folder not found (clip layout: <clip>/camera/{self.camera}/<frame>.jpg)")
        images = {int(f.stem) for f in cam_dir.glob("*.jpg") if f.stem.isdigit()}
        clip = _Clip(name if name != "." else path.name, path, np.asarray(frames, np.int64), images)
        ci = len(self.clip_list)
        self.clip_list.append(clip)
        have = set(frames)
        noisy = _noisy_frames(path)
        for f in frames:
            if f % self.stride:
                continue
            need = [f - h for h in self._hist]
            future = [f + k * self._step for k in range(1, self.num_poses + 1)]
            if len(noisy) and np.searchsorted(noisy, future[-1], "right") > np.searchsorted(noisy, f, "left"):
                continue  # the label would hold perturbed (noise-injected) driving, not the expert's own
            if all(n in have for n in future) and all(n in have and n in images for n in need):
                self.index.append((ci, f))

    def __len__(self) -> int:
        return len(self.index)

    def _anno_path(self, clip: _Clip, frame: int) -> Path:
        return clip.path / "anno" / f"{frame:05d}.json.gz"

    def tokens(self) -> list[str]:
        return [f"{self.clip_list[ci].name}/{f:05d}" for ci, f in self.index]

    def __getitem__(self, i: int) -> DrivingSample:
        ci, cur = self.index[i]
        clip = self.clip_list[ci]
        cur_path = self._anno_path(clip, cur)
        anno = read_anno(cur_path)
        future = [cur + k * self._step for k in range(1, self.num_poses + 1)]
        carla = np.stack([ego_carla_pose(anno, cur_path)] + [self._pose(clip, f) for f in future])
        rear = F.center_to_rear_axle(F.carla_to_world(carla), self.geometry.rear_axle_to_center)  # WORLD
        origin = rear[0]
        traj = F.Trajectory(F.Frame.WORLD, rear[1:], self.dt, self.dt).to_local(origin, F.Frame.EGO_REAR_AXLE).poses
        box = _ego_box(anno)
        speed = _num(anno.get("speed"))
        if not math.isfinite(speed):  # the speedometer reads None at times (docs/anno.md)
            speed = _num(box.get("speed"), 0.0) if box is not None else 0.0
        acc = _vec(anno.get("acceleration"), 2) * np.array([1.0, -1.0])  # IMU (x fwd, y right) → ego (x fwd, y left)
        target_carla = np.array([_num(anno.get("x_command_near")), _num(anno.get("y_command_near"))])
        valid = bool(np.isfinite(target_carla).all())
        target = F.points_to_local(F.carla_points_to_world(target_carla), origin) if valid else np.zeros(2, np.float64)
        command = int(_num(anno.get("command_near"), -1.0))
        paths = tuple(str(clip.path / "camera" / self.camera / f"{cur - h:05d}.jpg") for h in self._hist)
        return DrivingSample(
            token=f"{clip.name}/{cur:05d}",
            source="bench2drive",
            log=clip.name,
            image_paths=paths,
            command=navsim_command(command),
            speed=float(speed),
            velocity=np.array([speed, 0.0], np.float32),
            acceleration=acc.astype(np.float32),
            target_point=np.asarray(target, np.float32),
            target_valid=valid,
            trajectory=np.asarray(traj, np.float32),
            ego_pose_world=np.asarray(origin, np.float64),
            timestamp=cur / self.fps,
        )

    def _pose(self, clip: _Clip, frame: int) -> np.ndarray:
        """Ego CARLA pose of one frame; memoized (with stride 5 every frame is another sample's future 8 times)."""
        key = (clip.name, frame)
        pose = self._pose_cache.get(key)
        if pose is None:
            path = self._anno_path(clip, frame)
            pose = ego_carla_pose(read_anno(path), path)
            if len(self._pose_cache) >= _POSE_CACHE_SIZE:
                self._pose_cache.pop(next(iter(self._pose_cache)))
            self._pose_cache[key] = pose
        return pose

    # ----------------------------------------------------------------------------------------------------------
    # world snapshot

    def snapshot(self, i: int) -> WorldSnapshot:
        """The world at sample i's current frame (see `training.data.world_snapshot` for the format)."""
        ci, cur = self.index[i]
        clip = self.clip_list[ci]
        path = self._anno_path(clip, cur)
        anno = read_anno(path)
        prev_path = self._anno_path(clip, cur - 1)
        prev = read_anno(prev_path) if prev_path.is_file() else None
        return world_snapshot(anno, path, clip.name, cur, self.fps, self.geometry, prev, self.trigger_rotation_relative)


NOISE_FILE = "expert_noise.json"  # written by `drive-jepa collect` (carla_tools/lite/collect.py)


def _noisy_frames(clip: Path) -> np.ndarray:
    """Sorted frame numbers whose executed control was perturbed (`<clip>/expert_noise.json`, written by data
    collection with noise injection); empty for Bench2Drive's own clips, which have no such file."""
    path = clip / NOISE_FILE
    if not path.is_file():
        return np.zeros(0, np.int64)
    try:
        frames = json.loads(path.read_text())["frames"]
        return np.unique(np.asarray(frames, np.int64))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataLayoutError(f'{path}: expected {{"frames": [int, ...]}} ({type(exc).__name__}: {exc})') from None


def _boxes_world(centers: np.ndarray, yaws_deg: np.ndarray, extents: np.ndarray) -> list[Box]:
    """CARLA centres (N, 3), yaws (N,) and half extents (N, 3) → WORLD `Box`es (full sizes)."""
    if len(centers) == 0:
        return []
    pose = F.carla_to_world(np.stack([centers[:, 0], centers[:, 1], yaws_deg], -1))
    return [
        Box(float(p[0]), float(p[1]), float(c[2]), float(p[2]), 2 * float(e[0]), 2 * float(e[1]), 2 * float(e[2]))
        for p, c, e in zip(pose, centers, extents, strict=True)
    ]


def _actor_yaw(box: dict[str, Any]) -> float:
    """CARLA yaw° of an actor: from its world→actor matrix when stored (static vehicles: the only right one)."""
    for key in ("world2vehicle", "world2ped", "world2sign", "world2ego"):
        if box.get(key) is not None:
            return float(F.carla_pose_from_inverse_matrix(np.asarray(box[key], np.float64))[2])
    rot = box.get("rotation") or [0.0, 0.0, 0.0]
    return _num(rot[2], 0.0)


def _light_state(value: Any) -> str:
    if isinstance(value, str):
        s = value.split(".")[-1].lower()
        return s if s in _LIGHT_STATE.values() else "unknown"
    return _LIGHT_STATE.get(int(_num(value, 4.0)), "unknown")


def world_snapshot(
    anno: dict[str, Any],
    path: Path,
    clip: str,
    frame: int,
    fps: float = B2D_FPS,
    geometry: F.VehicleGeometry = F.LINCOLN_MKZ_2020,
    prev: dict[str, Any] | None = None,
    trigger_rotation_relative: bool = True,
) -> WorldSnapshot:
    """Build the neutral snapshot of one Bench2Drive annotation (`prev`: the previous frame, for walker speeds)."""
    boxes = [b for b in anno.get("bounding_boxes") or [] if isinstance(b, dict)]
    ego_pose = ego_carla_pose(anno, path)
    ego_world = F.carla_to_world(ego_pose)
    rear = F.center_to_rear_axle(ego_world, geometry.rear_axle_to_center)
    ego_raw = _ego_box(anno) or {}
    ego_center = np.asarray(ego_raw.get("center") or [ego_pose[0], ego_pose[1], 0.0], np.float64)
    ego_ext = np.asarray(ego_raw.get("extent") or [geometry.length / 2, geometry.width / 2, 0.8], np.float64)
    ego_box = _boxes_world(ego_center[None], ego_pose[2:3], ego_ext[None])[0]
    speed = _num(anno.get("speed"))
    if not math.isfinite(speed):
        speed = _num(ego_raw.get("speed"), 0.0)
    acc = _vec(anno.get("acceleration"), 2)

    prev_centers: dict[str, np.ndarray] = {}
    for b in (prev or {}).get("bounding_boxes") or []:
        if isinstance(b, dict) and b.get("class") == "walker" and b.get("center") is not None:
            prev_centers[str(b.get("id"))] = np.asarray(b["center"], np.float64)

    actor_rows: list[tuple[dict[str, Any], str]] = []
    lights: list[dict[str, Any]] = []
    stops: list[dict[str, Any]] = []
    for b in boxes:
        cls = b.get("class")
        if cls == "vehicle" or cls == "walker":
            actor_rows.append((b, str(cls)))
        elif cls == "traffic_light":
            lights.append(b)
        elif cls == "traffic_sign":
            if "stop" in str(b.get("type_id", "")) and b.get("trigger_volume_location") is not None:
                stops.append(b)
            elif b.get("trigger_volume_location") is None and "static" in str(b.get("type_id", "")):
                actor_rows.append((b, "static_object"))  # cones, warning signs, debris: obstacles

    def arr(rows: list[dict[str, Any]], key: str, n: int = 3) -> np.ndarray:
        return np.array([_vec(r.get(key), n) for r in rows]).reshape(len(rows), n)

    actors = []
    raw = [r for r, _ in actor_rows]
    centers = arr(raw, "center")
    abox = _boxes_world(centers, np.array([_actor_yaw(r) for r in raw]), arr(raw, "extent"))
    for (r, kind), c, bx in zip(actor_rows, centers, abox, strict=True):
        static = r.get("state") == "static" or kind == "static_object"
        aid = str(r.get("id"))
        if static:
            v = 0.0
        elif kind == "walker":  # CARLA reports 0 for pedestrians: finite difference of the centre instead
            p = prev_centers.get(aid)
            v = float(np.hypot(*(c[:2] - p[:2])) * fps) if p is not None else 0.0
        else:
            v = _num(r.get("speed"), 0.0)
        actors.append(Actor(aid, kind, str(r.get("type_id", "")), bx, v, static))

    def triggers(rows: list[dict[str, Any]]) -> list[Box]:
        yaw = arr(rows, "trigger_volume_rotation")[:, 2]
        if trigger_rotation_relative:
            yaw = yaw + arr(rows, "rotation")[:, 2]
        return _boxes_world(arr(rows, "trigger_volume_location"), yaw, arr(rows, "trigger_volume_extent"))

    light_pos = F.carla_points_to_world(arr(lights, "center")[:, :2]) if lights else np.zeros((0, 2))
    traffic_lights = [
        TrafficLight(
            str(r.get("id")),
            _light_state(r.get("state")),
            float(p[0]),
            float(p[1]),
            t,
            bool(r.get("affects_ego", False)),
        )
        for r, p, t in zip(lights, light_pos, triggers(lights), strict=True)
    ]
    stop_signs = [
        StopSign(str(r.get("id")), t, bool(r.get("affects_ego", False)))
        for r, t in zip(stops, triggers(stops), strict=True)
    ]
    target = np.array([_num(anno.get("x_command_near")), _num(anno.get("y_command_near"))])
    route_target = None
    if np.isfinite(target).all():
        tw = F.carla_points_to_world(target)
        route_target = (float(tw[0]), float(tw[1]))
    town = _TOWN_RE.search(clip)
    return WorldSnapshot(
        source="bench2drive",
        clip=clip,
        frame=frame,
        time_s=frame / fps,
        town=town.group(1) if town else "",
        ego=EgoSnapshot(
            rear_axle=(float(rear[0]), float(rear[1]), float(rear[2])),
            box=ego_box,
            speed=float(speed),
            acceleration=(float(acc[0]), float(-acc[1])),
            rear_axle_to_center=geometry.rear_axle_to_center,
        ),
        actors=actors,
        traffic_lights=traffic_lights,
        stop_signs=stop_signs,
        route_target=route_target,
        command=int(_num(anno.get("command_near"), -1.0)),
    )

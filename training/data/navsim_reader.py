"""NAVSIM / OpenScene reader that needs neither navsim nor nuplan-devkit.

On-disk layout (NAVSIM `docs/install.md`)::

    <root>/navsim_logs/<split>/<log_name>.pkl          # one pickle per log: a list of frame dicts, 2 Hz
    <root>/sensor_blobs/<split>/<log_name>/CAM_F0/<...>.jpg

Each frame dict holds (the keys navsim's `navsim/common/dataclasses.py` reads): `token`, `timestamp` (µs),
`log_name`, `roadblock_ids`, `ego2global_translation` (3,), `ego2global_rotation` (w, x, y, z quaternion),
`ego_dynamic_state` (vx, vy, ax, ay in the ego frame), `driving_command` (one-hot of 4: left, straight, right,
unknown), `cams` {`CAM_F0`: {`data_path` relative to `sensor_blobs/<split>`, `sensor2lidar_rotation` (3, 3),
`sensor2lidar_translation` (3,), ...}} (the calibration is optional here; without it the nominal CAM_F0 is used).

Frames and facts:

* `ego2global` is the **rear axle** (nuPlan convention): navsim builds the ego state with
  `EgoState.build_from_rear_axle(StateSE2(*ego_pose), rear_axle_velocity_2d=ego_velocity, ...)`
  (`navsim/planning/scenario_builder/navsim_scenario_utils.py`, `ego_status_to_ego_state`), and
  `Scene.get_future_trajectory` documents its output as "local coordinates (ie. ego rear-axle)". The heading is
  `Quaternion(*ego2global_rotation).yaw_pitch_roll[0]` (`drive_jepa.frames.quaternion_yaw`).
* Scenes are windows of `num_history_frames + num_future_frames` consecutive frames taken every `frame_interval`
  frames of a log; the scene token is the token of frame `num_history_frames − 1` (the current frame); windows
  shorter than that are dropped, and with `has_route` so are scenes whose current frame has no roadblock ids —
  exactly navsim's `filter_scenes` (`navsim/common/dataloader.py`), so token sets match navsim's.
* The future trajectory is the next `num_poses` frames' poses relative to the current one (navsim's
  `get_future_trajectory(num_trajectory_frames=8)`, 0.5 s apart).

Pickles are read with an allow-list unpickler (builtins and numpy arrays only), so a crafted file cannot run code.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drive_jepa import frames as F
from training.data.sample import DataLayoutError, DrivingSample

NAVSIM_DT = 0.5  # seconds between frames in navsim_logs (2 Hz)
CAMERA = "CAM_F0"

# (module, name) the unpickler may resolve: containers and numpy arrays/scalars, nothing that executes code.
_PICKLE_ALLOWED = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only dicts, lists and numpy arrays allowed)")


def load_log_pickle(path: Path) -> list[dict[str, Any]]:
    """Read one `navsim_logs/<split>/<log>.pkl`: a list of frame dicts. Raises DataLayoutError on anything else."""
    try:
        data = _SafeUnpickler(io.BytesIO(path.read_bytes())).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise DataLayoutError(f"{path}: not a readable navsim log pickle ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(f, dict) for f in data):
        raise DataLayoutError(f"{path}: expected a list of frame dicts, got {type(data).__name__}")
    return data


@dataclass
class SceneFilter:
    """navsim's `SceneFilter` fields that select scenes from logs (its YAML files load into this).

    `log_names` / `tokens`: None keeps all. `max_scenes`: stop after this many scenes (in log-file order).
    """

    num_history_frames: int = 4
    num_future_frames: int = 10
    frame_interval: int | None = None  # None: num_history_frames + num_future_frames (non-overlapping)
    has_route: bool = True
    max_scenes: int | None = None
    log_names: list[str] | None = None
    tokens: list[str] | None = None

    @property
    def num_frames(self) -> int:
        return self.num_history_frames + self.num_future_frames

    @property
    def interval(self) -> int:
        return self.frame_interval if self.frame_interval is not None else self.num_frames


_FILTER_KEYS = {"num_history_frames", "num_future_frames", "frame_interval", "has_route", "max_scenes", "log_names",
                "tokens"}  # fmt: skip


def load_scene_filter(path: Path) -> tuple[SceneFilter, str | None]:
    """Read a navsim scene-filter YAML (`.../train_test_split/scene_filter/<name>.yaml`) or a train/test split YAML
    (`.../train_test_split/<name>.yaml` with `defaults: [scene_filter: <name>]` and `data_split`).

    Returns the filter and the split's `data_split` (the `navsim_logs/<split>` folder) when the file names one.
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataLayoutError(f"{path}: cannot read scene filter YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise DataLayoutError(f"{path}: expected a mapping of SceneFilter fields")
    data_split = raw.get("data_split")
    for item in raw.get("defaults") or []:
        if isinstance(item, dict) and "scene_filter" in item:
            sub = path.parent / "scene_filter" / f"{item['scene_filter']}.yaml"
            scene_filter, _ = load_scene_filter(sub)
            return scene_filter, data_split
    kwargs = {k: v for k, v in raw.items() if k in _FILTER_KEYS}
    for key in ("log_names", "tokens"):
        if kwargs.get(key) is not None and not isinstance(kwargs[key], list):
            raise DataLayoutError(f"{path}: `{key}` must be a list, got {type(kwargs[key]).__name__}")
    return SceneFilter(**kwargs), data_split


@dataclass
class _Log:
    """One log as compact arrays (built once per log; the raw frame dicts are dropped)."""

    name: str
    tokens: list[str]
    timestamps_us: np.ndarray  # (N,) int64
    poses: np.ndarray  # (N, 3) WORLD rear-axle (x, y, heading)
    dynamics: np.ndarray  # (N, 4) vx, vy, ax, ay (ego frame)
    commands: np.ndarray  # (N, 4)
    camera_paths: list[str]  # relative to sensor_blobs/<split>
    has_route: np.ndarray  # (N,) bool
    cam_rotation: np.ndarray  # (N, 3, 3) CAM_F0 sensor2lidar rotation (NaN where the frame has none)
    cam_translation: np.ndarray  # (N, 3) CAM_F0 sensor2lidar translation (NaN where the frame has none)


def _frame_field(path: Path, i: int, frame: dict[str, Any], key: str) -> Any:
    if key not in frame:
        raise DataLayoutError(f"{path}: frame {i} has no `{key}` (keys: {', '.join(sorted(map(str, frame))[:12])})")
    return frame[key]


def _array(path: Path, i: int, frame: dict[str, Any], key: str, size: int) -> np.ndarray:
    raw = _frame_field(path, i, frame, key)
    try:
        value = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataLayoutError(f"{path}: frame {i} `{key}` is not numeric") from None
    if value.shape[0] < size:
        raise DataLayoutError(f"{path}: frame {i} `{key}` has {value.shape[0]} values, expected {size}")
    return value[:size]


def _parse_log(path: Path, frames: list[dict[str, Any]], camera: str) -> _Log:
    n = len(frames)
    trans = np.zeros((n, 3))
    quats = np.zeros((n, 4))
    dyn = np.zeros((n, 4))
    cmd = np.zeros((n, 4))
    ts = np.zeros(n, dtype=np.int64)
    tokens, cams, route = [], [], np.zeros(n, dtype=bool)
    cam_rot = np.full((n, 3, 3), np.nan)
    cam_trans = np.full((n, 3), np.nan)
    for i, fr in enumerate(frames):
        tokens.append(str(_frame_field(path, i, fr, "token")))
        ts[i] = _array(path, i, fr, "timestamp", 1)[0]
        trans[i] = _array(path, i, fr, "ego2global_translation", 3)
        quats[i] = _array(path, i, fr, "ego2global_rotation", 4)
        dyn[i] = _array(path, i, fr, "ego_dynamic_state", 4)
        cmd[i] = _array(path, i, fr, "driving_command", 4)
        route[i] = len(fr.get("roadblock_ids") or []) > 0
        cam = _frame_field(path, i, fr, "cams")
        entry = cam.get(camera) if isinstance(cam, dict) else None
        if not isinstance(entry, dict) or "data_path" not in entry:
            raise DataLayoutError(f"{path}: frame {i} has no cams['{camera}']['data_path']")
        cams.append(str(entry["data_path"]))
        if entry.get("sensor2lidar_rotation") is not None and entry.get("sensor2lidar_translation") is not None:
            try:
                cam_rot[i] = np.asarray(entry["sensor2lidar_rotation"], np.float64).reshape(3, 3)
                cam_trans[i] = np.asarray(entry["sensor2lidar_translation"], np.float64).reshape(3)
            except (TypeError, ValueError):
                raise DataLayoutError(
                    f"{path}: frame {i} cams['{camera}'] sensor2lidar_rotation/translation must be 3×3 and (3,)"
                ) from None
    poses = np.concatenate([trans[:, :2], F.quaternion_yaw(quats)[:, None]], -1)
    return _Log(
        path.stem, tokens, ts, poses, dyn.astype(np.float32), cmd.astype(np.float32), cams, route, cam_rot, cam_trans
    )


@dataclass
class NavsimReader:
    """Samples from `<root>/navsim_logs/<split>` + `<root>/sensor_blobs/<split>`, selected like navsim's scene loader.

    history_offsets: camera frames relative to now in seconds, oldest first (multiples of 0.5 s).
    num_poses: future trajectory length at 0.5 s (navsim: 8 = 4 s).
    """

    root: Path
    split: str = "trainval"
    scene_filter: SceneFilter = field(default_factory=SceneFilter)
    history_offsets: Sequence[float] = (-0.5, 0.0)
    num_poses: int = 8
    camera: str = CAMERA
    check_images: bool = True

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.logs_dir = self.root / "navsim_logs" / self.split
        self.blobs_dir = self.root / "sensor_blobs" / self.split
        for d, what in ((self.logs_dir, "navsim_logs/<split>/*.pkl"), (self.blobs_dir, "sensor_blobs/<split>/")):
            if not d.is_dir():
                raise DataLayoutError(f"{d}: folder not found (NAVSIM layout: <root>/{what}, split {self.split!r})")
        steps = [round(-o / NAVSIM_DT) for o in self.history_offsets]
        if any(
            not math.isclose(-s * NAVSIM_DT, o, abs_tol=1e-6) for s, o in zip(steps, self.history_offsets, strict=True)
        ):
            raise ValueError(f"history_offsets {list(self.history_offsets)} must be multiples of −{NAVSIM_DT} s")
        self._history_steps = steps
        sf = self.scene_filter
        if max(steps) > sf.num_history_frames - 1:
            raise ValueError(
                f"history offsets reach {max(steps)} frames back; the filter keeps {sf.num_history_frames}"
            )
        if self.num_poses > sf.num_future_frames:
            raise ValueError(f"num_poses {self.num_poses} > the filter's num_future_frames {sf.num_future_frames}")
        self.logs: list[_Log] = []
        self.index: list[tuple[int, int]] = []  # (log index, current frame index)
        self._build_index()

    def _log_files(self) -> list[Path]:
        files = sorted(self.logs_dir.glob("*.pkl"))
        if not files:
            raise DataLayoutError(f"{self.logs_dir}: no *.pkl logs (expected navsim_logs/{self.split}/<log_name>.pkl)")
        if self.scene_filter.log_names is not None:
            wanted = set(self.scene_filter.log_names)
            files = [f for f in files if f.stem in wanted]
        return files

    def _build_index(self) -> None:
        sf = self.scene_filter
        tokens = set(sf.tokens) if sf.tokens is not None else None
        for path in self._log_files():
            log = _parse_log(path, load_log_pickle(path), self.camera)
            li = len(self.logs)
            kept = False
            for start in range(0, len(log.tokens), sf.interval):
                if start + sf.num_frames > len(log.tokens):
                    continue
                cur = start + sf.num_history_frames - 1
                if sf.has_route and not log.has_route[cur]:
                    continue
                if tokens is not None and log.tokens[cur] not in tokens:
                    continue
                self.index.append((li, cur))
                kept = True
                if sf.max_scenes is not None and len(self.index) >= sf.max_scenes:
                    break
            if kept:
                self.logs.append(log)
            if sf.max_scenes is not None and len(self.index) >= sf.max_scenes:
                break

    def __len__(self) -> int:
        return len(self.index)

    def tokens(self) -> list[str]:
        return [self.logs[li].tokens[cur] for li, cur in self.index]

    def __getitem__(self, i: int) -> DrivingSample:
        li, cur = self.index[i]
        log = self.logs[li]
        origin = log.poses[cur]
        future = F.Trajectory(F.Frame.WORLD, log.poses[cur + 1 : cur + 1 + self.num_poses], NAVSIM_DT, NAVSIM_DT)
        traj = future.to_local(origin, F.Frame.EGO_REAR_AXLE).poses
        paths = []
        for s in self._history_steps:
            p = self.blobs_dir / log.camera_paths[cur - s]
            if self.check_images and not p.is_file():
                raise DataLayoutError(f"{p}: camera image not found (expected sensor_blobs/{self.split}/<data_path>)")
            paths.append(str(p))
        vel, acc = log.dynamics[cur, :2], log.dynamics[cur, 2:]
        calibrated = bool(np.isfinite(log.cam_rotation[cur]).all() and np.isfinite(log.cam_translation[cur]).all())
        return DrivingSample(
            token=log.tokens[cur],
            source="navsim",
            log=log.name,
            image_paths=tuple(paths),
            command=log.commands[cur].copy(),
            speed=float(np.hypot(vel[0], vel[1])),
            velocity=vel.copy(),
            acceleration=acc.copy(),
            target_point=np.zeros(2, np.float32),
            target_valid=False,
            trajectory=np.asarray(traj, np.float32),
            ego_pose_world=origin.copy(),
            timestamp=float(log.timestamps_us[cur]) / 1e6,
            camera_rotation=log.cam_rotation[cur].copy() if calibrated else None,
            camera_translation=log.cam_translation[cur].copy() if calibrated else None,
        )

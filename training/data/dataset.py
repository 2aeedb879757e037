"""Drive-JEPA training features and targets over either reader, with a resumable, parallel feature cache.

Features (front-only Drive-JEPA): the front camera at t − 0.5 s and t, each through `agent.preprocess` (the one
image pipeline shared with the agent: optional JPEG round trip, crop, resize), normalized with ImageNet mean/std
into `video` (3, 2, H, W) float32; `command` (4,), `speed`, `velocity` (2,), `acceleration` (2,) in the ego frame,
`target_point` (2,) EGO_REAR_AXLE (+ `target_valid`). Targets: `trajectory` (8, 3) EGO_REAR_AXLE at 0.5 s steps;
optional `teacher_indices` (vocabulary indices from a teacher index file, padded with −1 to `max_teachers`).

Cache: one `.npz` per sample under `<cache_dir>/<source>-<config hash>/`, holding the prepared uint8 frames (the
expensive part: JPEG decode + crop + resize) and the numeric arrays; normalization happens at load time. Entries
are written atomically (temp file + rename), existing entries are skipped, so an interrupted `drive-jepa
cache-data` resumes where it stopped; work is spread over DataLoader worker processes. Bench2Drive entries also
get the world snapshot (`<token>.world.json.gz`, see `training.data.world_snapshot`).

Teacher index file (written by `drive-jepa teachers`): JSON `{token: [vocab index, ...]}` or NPZ with `tokens`
(N,) str and `indices` (N, K) int, rows padded with −1.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from agent.camera import CameraModel, carla_front_camera, model_input_camera, navsim_cam_f0
from agent.preprocess import ImageInputConfig, normalize_video, prepare_frame
from drive_jepa.atomic import atomic_file, write_text_atomic
from drive_jepa.frames import LINCOLN_MKZ_2020
from training.data.bench2drive_reader import Bench2DriveReader
from training.data.config import (
    Bench2DriveDataConfig,
    DataConfig,
    LoggedDataConfig,
    NavsimDataConfig,
)
from training.data.navsim_reader import NavsimReader, SceneFilter, load_scene_filter
from training.data.sample import DataLayoutError, DrivingSample
from training.data.world_snapshot import save_snapshot

CACHE_VERSION = 2  # 2: + per-sample camera calibration (cam_rotation, cam_translation, cam_valid)


Reader = NavsimReader | Bench2DriveReader


def make_reader(cfg: LoggedDataConfig) -> Reader:
    """The reader a data config describes."""
    offsets = tuple(cfg.history_offsets)
    if isinstance(cfg, NavsimDataConfig):
        split = cfg.split
        scene_filter = SceneFilter()
        if cfg.scene_filter:
            scene_filter, data_split = load_scene_filter(Path(cfg.scene_filter))
            split = data_split or split
        return NavsimReader(Path(cfg.root), split, scene_filter, offsets, cfg.num_poses)
    if isinstance(cfg, Bench2DriveDataConfig):
        return Bench2DriveReader(
            Path(cfg.root),
            cfg.clips,
            exclude=cfg.exclude,
            stride=cfg.stride,
            history_offsets=offsets,
            num_poses=cfg.num_poses,
            fps=cfg.fps,
            trigger_rotation_relative=cfg.trigger_rotation_relative,
        )
    raise TypeError(f"unknown data config {type(cfg).__name__}")


# ----------------------------------------------------------------------------------------------------------------
# features


def load_rgb(path: str) -> np.ndarray:
    """A dataset JPEG as uint8 RGB (H, W, 3); DataLayoutError naming the file when unreadable."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataLayoutError(f"{path}: cannot read image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def sample_arrays(sample: DrivingSample, image: ImageInputConfig) -> dict[str, np.ndarray]:
    """The cacheable features of one sample: prepared uint8 frames (T, H, W, 3) and numeric arrays."""
    frames = []
    for p in sample.image_paths:
        rgb = load_rgb(p)
        if rgb.shape[:2] != (image.source_height, image.source_width):
            raise DataLayoutError(
                f"{p}: image is {rgb.shape[1]}×{rgb.shape[0]}, the data config expects "
                f"{image.source_width}×{image.source_height} (data.image.source_width/height)"
            )
        frames.append(prepare_frame(rgb, image, bgra=False))
    return {
        "frames": np.stack(frames, 0),
        "command": sample.command.astype(np.float32),
        "speed": np.asarray(sample.speed, np.float32),
        "velocity": sample.velocity.astype(np.float32),
        "acceleration": sample.acceleration.astype(np.float32),
        "target_point": sample.target_point.astype(np.float32),
        "target_valid": np.asarray(sample.target_valid, np.bool_),
        "trajectory": sample.trajectory.astype(np.float32),
        "ego_pose_world": sample.ego_pose_world.astype(np.float64),
        "token": np.asarray(sample.token),
        "cam_valid": np.asarray(sample.camera_rotation is not None, np.bool_),
        "cam_rotation": np.zeros((3, 3))
        if sample.camera_rotation is None
        else sample.camera_rotation.astype(np.float64),
        "cam_translation": (
            np.zeros(3) if sample.camera_translation is None else sample.camera_translation.astype(np.float64)
        ),
    }


def sample_camera(
    cfg: LoggedDataConfig, rotation: np.ndarray | None = None, translation: np.ndarray | None = None
) -> CameraModel:
    """The model-input camera (EGO_REAR_AXLE → pixels of the prepared frames) of one sample.

    NAVSIM: CAM_F0 with the sample's `sensor2lidar_rotation/translation` when given, else the nominal CAM_F0;
    Bench2Drive: the CARLA front camera of the Bench2Drive rig on the Lincoln MKZ 2020 (rear axle 1.39 m behind
    the box centre). Either way followed by `cfg.image`'s source size, crop box and output size."""
    if isinstance(cfg, NavsimDataConfig):
        full = navsim_cam_f0(rotation, translation, model_input=False)
    elif isinstance(cfg, Bench2DriveDataConfig):
        full = carla_front_camera(LINCOLN_MKZ_2020, model_input=False)
    else:
        raise TypeError(f"unknown data config {type(cfg).__name__}")
    return model_input_camera(full, cfg.image)


@dataclass
class TrainingSample:
    """One model input/target pair (a batch when the tensors carry a leading batch dimension).

    video (3, T, H, W) float32 ImageNet-normalized, T frames oldest first; command (4,); speed (); velocity (2,);
    acceleration (2,); target_point (2,) EGO_REAR_AXLE; target_valid (); trajectory (P, 3) EGO_REAR_AXLE at
    0.5 s; teacher_indices (K,) int64 padded with −1; num_teachers (); token: the sample's id.
    projection (3, 4) float32: EGO_REAR_AXLE points (z = 0 on the ground) → pixels of `video` (`sample_camera`).
    status (8,) = command, velocity, acceleration (the planner's ego-status input, NAVSIM's EgoStatus order).
    """

    video: torch.Tensor
    command: torch.Tensor
    speed: torch.Tensor
    velocity: torch.Tensor
    acceleration: torch.Tensor
    target_point: torch.Tensor
    target_valid: torch.Tensor
    trajectory: torch.Tensor
    teacher_indices: torch.Tensor
    num_teachers: torch.Tensor
    status: torch.Tensor
    projection: torch.Tensor
    token: str | list[str]
    score_rows: torch.Tensor | None = None  # (C,) vocabulary rows with offline sub-score labels, −1 = none
    score_labels: torch.Tensor | None = None  # (C, K) their sub-scores (agent.planner.config.EPDMS_SUBSCORES order)


def collate(samples: Sequence[TrainingSample]) -> TrainingSample:
    """Stack samples into a batch (tokens become a list)."""
    tensors = {
        name: torch.stack([getattr(s, name) for s in samples])
        for name in TrainingSample.__dataclass_fields__
        if name != "token" and all(getattr(s, name) is not None for s in samples)
    }
    return TrainingSample(**tensors, token=[str(s.token) for s in samples])


def load_teacher_index(path: Path) -> dict[str, np.ndarray]:
    """{token: int64 vocabulary indices} from `drive-jepa teachers`' `teachers.jsonl` (scene_id = token; the file
    or its folder), or a JSON / NPZ teacher index (see module docstring)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".jsonl":  # `drive-jepa teachers` output: teachers.jsonl (or its folder)
        from training.scoring.teachers import INDEX_NAME, read_index

        index = path / INDEX_NAME if path.is_dir() else path
        try:
            rows = read_index(index)
        except (OSError, ValueError) as exc:
            raise DataLayoutError(f"{index}: cannot read teacher index ({exc})") from None
        if not rows and not index.exists():
            raise DataLayoutError(f"{index}: teacher index not found")
        return {str(r["scene_id"]): np.asarray(r["teachers"], np.int64).reshape(-1) for r in rows}
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                tokens, idx = z["tokens"], z["indices"]
            if idx.ndim != 2 or len(tokens) != len(idx):
                raise DataLayoutError(f"{path}: `indices` must be (N, K) for N `tokens`, got {idx.shape}")
            return {str(t): row[row >= 0].astype(np.int64) for t, row in zip(tokens, idx, strict=True)}
        raw = json.loads(path.read_text())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataLayoutError):
            raise
        raise DataLayoutError(f"{path}: cannot read teacher index ({exc})") from None
    if not isinstance(raw, dict):
        raise DataLayoutError(f"{path}: teacher index JSON must map token -> list of vocabulary indices")
    return {str(k): np.asarray(v, np.int64).reshape(-1) for k, v in raw.items()}


def load_score_labels(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{token: (rows (C,) int64, sub-scores (C, K) float32)} from the `labels` of a `drive-jepa teachers` index
    (lines without labels are left out); sub-scores are reordered to `EPDMS_SUBSCORES`."""
    from agent.planner.config import EPDMS_SUBSCORES
    from training.scoring.teachers import INDEX_NAME, read_index

    path = Path(path)
    index = path / INDEX_NAME if path.is_dir() else path
    if index.suffix != ".jsonl":
        return {}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for r in read_index(index):
        lab = r.get("labels")
        if not lab:
            continue
        try:
            col = [list(lab["names"]).index(n) for n in EPDMS_SUBSCORES]
            subs = np.asarray(lab["subscores"], np.float32).reshape(len(lab["rows"]), -1)[:, col]
        except (KeyError, ValueError) as exc:
            raise DataLayoutError(f"{index}: scene {r.get('scene_id')}: malformed `labels` ({exc})") from None
        out[str(r["scene_id"])] = (np.asarray(lab["rows"], np.int64), subs)
    return out


def _cache_key(cfg: LoggedDataConfig) -> str:
    """Folder name of a config's cache: everything that changes a token's cached arrays, hashed. Which tokens are
    selected (scene filter, clips, stride) does not change an entry, so differently filtered runs share a cache."""
    d = asdict(cfg)
    for k in ("cache_dir", "teacher_index", "max_teachers", "snapshots", "scene_filter", "clips", "exclude", "stride"):
        d.pop(k, None)
    d["root"] = str(Path(cfg.root).resolve())
    d["version"] = CACHE_VERSION
    source = "navsim" if isinstance(cfg, NavsimDataConfig) else "bench2drive"
    digest = hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{source}-{digest}"


def _entry_name(token: str) -> str:
    return token.replace("/", "__")


class DrivingDataset(torch.utils.data.Dataset[TrainingSample]):
    """Training samples for a data config (NAVSIM or Bench2Drive), read from the cache when an entry exists."""

    def __init__(self, cfg: LoggedDataConfig, reader: Reader | None = None) -> None:
        cfg.image.validate()
        self.cfg = cfg
        self.reader = reader if reader is not None else make_reader(cfg)
        self.tokens = self.reader.tokens()
        self.cache = Path(cfg.cache_dir) / _cache_key(cfg) if cfg.cache_dir else None
        self.teachers = load_teacher_index(Path(cfg.teacher_index)) if cfg.teacher_index else None
        self.labels = load_score_labels(Path(cfg.teacher_index)) if cfg.teacher_index else {}
        self.label_rows = max((len(r) for r, _ in self.labels.values()), default=0)
        self._nominal: CameraModel | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def entry_path(self, i: int) -> Path | None:
        return None if self.cache is None else self.cache / f"{_entry_name(self.tokens[i])}.npz"

    def snapshot_path(self, i: int) -> Path | None:
        """Where sample i's world snapshot is cached (Bench2Drive with `snapshots`; None otherwise)."""
        cfg = self.cfg
        if self.cache is None or not (isinstance(cfg, Bench2DriveDataConfig) and cfg.snapshots):
            return None
        return self.cache / f"{_entry_name(self.tokens[i])}.world.json.gz"

    def is_cached(self, i: int) -> bool:
        paths = [self.entry_path(i), self.snapshot_path(i)]
        return self.cache is not None and all(p.is_file() for p in paths if p is not None)

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """The sample's cached arrays, or computed from the raw data when not cached."""
        path = self.entry_path(i)
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        return sample_arrays(self.reader[i], self.cfg.image)

    def camera_of(self, a: dict[str, np.ndarray]) -> CameraModel:
        """The model-input camera of a sample's arrays (its calibration when recorded)."""
        if bool(a["cam_valid"]):
            return sample_camera(self.cfg, a["cam_rotation"], a["cam_translation"])
        if self._nominal is None:
            self._nominal = sample_camera(self.cfg)
        return self._nominal

    def __getitem__(self, i: int) -> TrainingSample:
        a = self.arrays(i)
        token = str(a["token"])
        frames = [f for f in a["frames"]]
        video = normalize_video(frames, self.cfg.image)
        k = self.cfg.max_teachers
        teach = np.full(k, -1, np.int64)
        found = self.teachers.get(token, np.zeros(0, np.int64))[:k] if self.teachers is not None else np.zeros(0)
        teach[: len(found)] = found

        def t(x: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x), dtype=dtype)

        return TrainingSample(
            video=torch.from_numpy(video),
            command=t(a["command"]),
            speed=t(a["speed"]),
            velocity=t(a["velocity"]),
            acceleration=t(a["acceleration"]),
            target_point=t(a["target_point"]),
            target_valid=t(a["target_valid"], torch.bool),
            trajectory=t(a["trajectory"]),
            teacher_indices=torch.from_numpy(teach),
            num_teachers=torch.tensor(len(found), dtype=torch.int64),
            status=t(np.concatenate([a["command"], a["velocity"], a["acceleration"]])),
            projection=t(self.camera_of(a).projection_matrix()),
            token=token,
            **self._score_label_fields(token),
        )

    def _score_label_fields(self, token: str) -> dict[str, torch.Tensor]:
        """score_rows / score_labels of a token, padded to the index's row count (−1 rows: no label)."""
        if not self.label_rows:
            return {}
        from agent.planner.config import EPDMS_SUBSCORES

        rows = torch.full((self.label_rows,), -1, dtype=torch.int64)
        labels = torch.zeros((self.label_rows, len(EPDMS_SUBSCORES)), dtype=torch.float32)
        found = self.labels.get(token)
        if found is not None:
            rows[: len(found[0])] = torch.from_numpy(found[0])
            labels[: len(found[0])] = torch.from_numpy(found[1])
        return {"score_rows": rows, "score_labels": labels}


# ----------------------------------------------------------------------------------------------------------------
# caching


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


class _CacheJobs(torch.utils.data.Dataset[tuple[str, str]]):
    """Each item computes and writes one missing cache entry; returns (token, '' or the error line)."""

    def __init__(self, ds: DrivingDataset, todo: list[int]) -> None:
        self.ds, self.todo = ds, todo

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, j: int) -> tuple[str, str]:
        i = self.todo[j]
        ds = self.ds
        token = ds.tokens[i]
        path = ds.entry_path(i)
        assert path is not None
        try:
            if not path.is_file():
                _write_npz_atomic(path, sample_arrays(ds.reader[i], ds.cfg.image))
            snap = ds.snapshot_path(i)
            if snap is not None and not snap.is_file() and isinstance(ds.reader, Bench2DriveReader):
                save_snapshot(ds.reader.snapshot(i), snap)
        except (DataLayoutError, ValueError, OSError) as exc:
            return token, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return token, ""


@dataclass
class CacheReport:
    folder: str
    total: int
    skipped: int
    written: int
    failed: list[tuple[str, str]]


def _identity(x: Any) -> Any:
    return x


def cache_dataset(cfg: DataConfig, workers: int = 2, limit: int = 0, progress: bool = True) -> CacheReport:
    """Write every missing cache entry of `cfg` (resumable; existing entries are skipped)."""
    if not isinstance(cfg, LoggedDataConfig):
        raise ValueError(f"data={cfg.kind} is generated on the fly: nothing to cache (use data=navsim|bench2drive)")
    if not cfg.cache_dir:
        raise ValueError("data.cache_dir is empty: set data.cache_dir=PATH to cache features")
    ds = DrivingDataset(cfg)
    assert ds.cache is not None
    ds.cache.mkdir(parents=True, exist_ok=True)
    manifest = ds.cache / "config.json"
    if not manifest.is_file():
        write_text_atomic(
            manifest, json.dumps({"cache_version": CACHE_VERSION, "data": asdict(cfg)}, indent=2, default=str)
        )
    n = len(ds) if limit <= 0 else min(limit, len(ds))
    todo = [i for i in range(n) if not ds.is_cached(i)]
    loader = torch.utils.data.DataLoader(
        _CacheJobs(ds, todo), batch_size=None, num_workers=max(0, workers), collate_fn=_identity
    )
    failed: list[tuple[str, str]] = []
    it: Any = loader
    if progress:
        from tqdm import tqdm

        it = tqdm(loader, total=len(todo), desc=f"caching {ds.cache.name}", unit="sample")
    for token, err in it:
        if err:
            failed.append((token, err))
    return CacheReport(str(ds.cache), n, n - len(todo), len(todo) - len(failed), failed)

"""The planner batch format and synthetic datasets.

`PlannerSample` is the contract every planner dataset produces (the NAVSIM and Bench2Drive datasets plug in by
producing it):

* video (3, T=2, H, W) float32, ImageNet-normalised RGB, frames oldest → newest (t − 0.5 s, t);
* status (8,): driving command one-hot (left, straight, right, unknown), velocity (vx, vy) m/s and acceleration
  (ax, ay) m/s² of the rear axle in EGO_REAR_AXLE;
* trajectory (8, 3): the human future at 0.5 … 4.0 s, EGO_REAR_AXLE (x, y, heading);
* teacher_indices (M,) int64: rows of the vocabulary usable as teachers (simulator score ≥ 0.95), −1 = padding;
* projection (3, 4) or None: EGO_REAR_AXLE (z = 0 on the ground) → model-input pixels, from `agent.camera`
  (per-sample calibration); None = the model's default camera;
* score_candidates (C,) int64 / score_labels (C, K): optional offline sub-score labels of vocabulary rows.

The recorded datasets (`data=navsim|bench2drive`, `training.data.dataset.DrivingDataset`) plug in through ONE
adapter, `planner_sample` / `DrivingPlannerDataset`: `TrainingSample` → `PlannerSample` (status, trajectory, teacher
indices without padding, the per-sample model-input camera projection).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from agent.camera import CameraModel, Crop, camera_by_name
from agent.preprocess import IMAGENET_MEAN, IMAGENET_STD
from drive_jepa.frames import arc_poses

if TYPE_CHECKING:
    from training.data.dataset import DrivingDataset, TrainingSample

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PlannerSample:
    video: Tensor
    status: Tensor
    trajectory: Tensor
    teacher_indices: Tensor
    projection: Tensor | None = None
    score_candidates: Tensor | None = None
    score_labels: Tensor | None = None
    token: str = ""
    score_mask: Tensor | None = None  # (C,) bool: which candidates carry a label (None: all)
    target_point: Tensor | None = None  # (2,) EGO_REAR_AXLE route target, metres (None: the dataset has none)


@dataclass
class PlannerBatch:
    """Stacked `PlannerSample`s: video (B, 3, 2, H, W), status (B, 8), trajectory (B, 8, 3), teacher_indices (B, M)
    padded with −1, projection (B, 3, 4) or None, score_candidates (B, C) / score_labels (B, C, K) or None."""

    video: Tensor
    status: Tensor
    trajectory: Tensor
    teacher_indices: Tensor
    projection: Tensor | None
    score_candidates: Tensor | None
    score_labels: Tensor | None
    tokens: list[str]
    score_mask: Tensor | None = None  # (B,) samples whose candidates carry labels (None: all that have them)
    target_point: Tensor | None = None  # (B, 2) EGO_REAR_AXLE route targets (None: not every sample has one)

    def to(self, device: torch.device | str) -> PlannerBatch:
        def mv(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return PlannerBatch(
            self.video.to(device, non_blocking=True),
            self.status.to(device),
            self.trajectory.to(device),
            self.teacher_indices.to(device),
            mv(self.projection),
            mv(self.score_candidates),
            mv(self.score_labels),
            self.tokens,
            mv(self.score_mask),
            mv(self.target_point),
        )


def collate(samples: list[PlannerSample]) -> PlannerBatch:
    if not samples:
        raise ValueError("collate: empty batch")
    m = max(int(s.teacher_indices.numel()) for s in samples)
    teachers = torch.full((len(samples), m), -1, dtype=torch.long)
    for i, s in enumerate(samples):
        teachers[i, : s.teacher_indices.numel()] = s.teacher_indices
    with_proj = [s.projection is not None for s in samples]
    if any(with_proj) and not all(with_proj):
        raise ValueError("collate: some samples carry a camera projection and some do not")
    projection = torch.stack([s.projection for s in samples if s.projection is not None]) if all(with_proj) else None
    cands = labels = None
    if all(s.score_candidates is not None and s.score_labels is not None for s in samples):
        shapes = {tuple(s.score_labels.shape) for s in samples if s.score_labels is not None}
        if len(shapes) != 1:
            raise ValueError(f"collate: score_labels must have one shape (C, K) per batch, got {sorted(shapes)}")
        cands = torch.stack([s.score_candidates for s in samples if s.score_candidates is not None])
        labels = torch.stack([s.score_labels for s in samples if s.score_labels is not None])
    mask = None
    if cands is not None and any(s.score_mask is not None for s in samples):
        per = [s.score_mask if s.score_mask is not None else torch.ones(cands.shape[1], dtype=torch.bool)
               for s in samples]  # fmt: skip
        mask = torch.stack(per).all(1)  # a sample trains the scorer only when all its candidates are labelled
    return PlannerBatch(
        torch.stack([s.video for s in samples]),
        torch.stack([s.status for s in samples]),
        torch.stack([s.trajectory for s in samples]),
        teachers,
        projection,
        cands,
        labels,
        [s.token for s in samples],
        mask,
        torch.stack([s.target_point for s in samples if s.target_point is not None])
        if all(s.target_point is not None for s in samples)
        else None,
    )


# --------------------------------------------------------------------------------------------------------------
# vocabulary


def resolve_path(path: str) -> Path:
    """Absolute paths as given; relative ones against the working directory, else (configs written for the
    project's layout) against the project root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return PROJECT_ROOT / p


def load_vocabulary(path: str, poses: int = 8, dt: float = 0.5) -> tuple[Tensor, str]:
    """The (V, 40, 3) vocabulary at 0.1 s → (V, poses, 3) at `dt` (rows 4, 9, … for 0.5 s) and its file's SHA-256."""
    from training.scoring.vocab import SHIPPED

    file = SHIPPED[path] if path in SHIPPED else resolve_path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"vocabulary {file}: not found (set `vocabulary=` to a (V, 40, 3) .npy or to navsim_8192, the shipped one)"
        )
    raw = file.read_bytes()
    arr = np.load(file)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"vocabulary {file}: expected (V, T, 3) poses, got shape {arr.shape}")
    step = round(dt / 0.1)
    sub = arr[:, step - 1 :: step][:, :poses]
    if sub.shape[1] != poses:
        raise ValueError(f"vocabulary {file}: {arr.shape[1]} poses at 0.1 s do not give {poses} at {dt} s")
    return torch.from_numpy(np.ascontiguousarray(sub, dtype=np.float32)), hashlib.sha256(raw).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# synthetic scenes: the future path is painted on the ground and rendered through the camera model


def render_paths(paths: Tensor, camera: CameraModel, height: int, width: int, sigma_px: float = 1.5) -> Tensor:
    """Paint ground paths (P, T, 3) as Gaussian blobs seen by `camera` → (height, width) image in [0, 1]."""
    dense_t = torch.linspace(0.0, 1.0, 24)
    # densify along each path (linear between poses, from the ego origin)
    pts = torch.cat([torch.zeros(paths.shape[0], 1, 3), paths], 1)[..., :2]  # (P, T+1, 2)
    seg = pts[:, 1:] - pts[:, :-1]
    dense = (pts[:, :-1, None] + seg[:, :, None] * dense_t[None, None, :, None]).reshape(-1, 2)
    xyz = torch.cat([dense, torch.zeros(dense.shape[0], 1)], -1).double()
    uv, z = camera.project(xyz)
    keep = z > 0.5
    uv = uv[keep].float()
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    img = torch.zeros(height, width)
    for chunk in uv.split(256):
        d2 = (xs[None] - chunk[:, 0, None, None]) ** 2 + (ys[None] - chunk[:, 1, None, None]) ** 2
        img = torch.maximum(img, torch.exp(-d2 / (2 * sigma_px**2)).amax(0))
    return img


def make_video(image: Tensor, noise: Tensor) -> Tensor:
    """(H, W) intensity + (3, 2, H, W) noise → ImageNet-normalised (3, 2, H, W) clip (both frames show the scene)."""
    rgb = image[None, None].expand(3, 2, *image.shape) * 0.8 + 0.1 + noise
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None, None]
    return (rgb - mean) / std


def nearest_vocabulary_rows(vocabulary: Tensor, trajectory: Tensor, k: int) -> Tensor:
    """Indices (k,) of the vocabulary rows closest (mean L1 over x, y) to `trajectory` (T, 3)."""
    d = (vocabulary[..., :2] - trajectory[None, :, :2]).abs().mean((-1, -2))
    return torch.topk(d, k, largest=False).indices


def model_camera(name: str, height: int, width: int) -> CameraModel:
    return camera_by_name(name).for_model_input(Crop(), width, height)


class SyntheticPlannerDataset(Dataset[PlannerSample]):
    """Arcs with random speed, curvature and acceleration; the path is painted on the ground in the image.

    Teachers are the `teachers` vocabulary rows nearest to the human path; `score_fn` is an analytic stand-in for
    the simulator scorer (see `synthetic_scores`). Deterministic per (seed, index).
    """

    def __init__(
        self,
        size: int,
        height: int,
        width: int,
        vocabulary: Tensor,
        camera: str = "navsim_cam_f0",
        teachers: int = 8,
        seed: int = 0,
        dt: float = 0.5,
        poses: int = 8,
    ) -> None:
        self.size, self.height, self.width, self.seed = size, height, width, seed
        self.vocabulary = vocabulary
        self.teachers = teachers
        self.camera = model_camera(camera, height, width)
        self.times = dt * torch.arange(1, poses + 1)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> PlannerSample:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        speed = torch.rand(1, generator=g) * 7 + 5
        curvature = (torch.rand(1, generator=g) - 0.5) * 0.06
        accel = (torch.rand(1, generator=g) - 0.5) * 2
        traj = arc_poses(speed, curvature, accel, self.times)[0]
        img = render_paths(traj[None], self.camera, self.height, self.width)
        video = make_video(img, 0.05 * torch.randn(3, 2, self.height, self.width, generator=g))
        cmd = 0 if curvature.item() > 0.015 else 2 if curvature.item() < -0.015 else 1
        status = torch.zeros(8)
        status[cmd] = 1.0
        status[4], status[6] = speed.item(), accel.item()
        teachers = (
            nearest_vocabulary_rows(self.vocabulary, traj, self.teachers)
            if self.teachers
            else torch.zeros(0, dtype=torch.long)
        )
        return PlannerSample(video, status, traj, teachers, token=f"synthetic-{self.seed}-{index}")


def synthetic_scores(proposals: Tensor, batch: PlannerBatch, names: list[str]) -> Tensor:
    """Analytic stand-in sub-scores (B, N, K) of proposals against the batch's human path (not a simulator):
    "ep" = progress ratio (final x / human final x, clipped to [0, 1]); every other name = 1 if the proposal's
    mean distance to the human path is < 1 m (≈ stays on the painted route) else 0."""
    human = batch.trajectory[:, None]
    close = ((proposals[..., :2] - human[..., :2]).norm(dim=-1).mean(-1) < 1.0).to(proposals.dtype)
    cols = []
    for n in names:
        if n == "ep":
            ratio = proposals[..., -1, 0] / human[..., -1, 0].clamp(min=1e-3)
            cols.append(ratio.clamp(0.0, 1.0))
        else:
            cols.append(close)
    return torch.stack(cols, -1)


class ForkDataset(Dataset[PlannerSample]):
    """Two-mode scenes: a fork whose left and right branches are both safe and both painted; the human takes the
    left one with probability `human_left` (default 1: the logs only ever show one of two safe choices).
    Branches are the vocabulary rows nearest to a left and a right arc; teachers are the `teachers`
    rows nearest to each branch (both modes), so MTD shows the planner both, while the human shows one."""

    def __init__(
        self,
        size: int,
        height: int,
        width: int,
        vocabulary: Tensor,
        camera: str = "navsim_cam_f0",
        teachers: int = 4,
        seed: int = 0,
        speed: float = 8.0,
        curvature: float = 0.015,
        dt: float = 0.5,
        poses: int = 8,
        human_left: float = 1.0,
    ) -> None:
        self.size, self.seed, self.human_left = size, seed, human_left
        times = dt * torch.arange(1, poses + 1)
        arcs = arc_poses(torch.tensor([speed, speed]), torch.tensor([curvature, -curvature]), torch.zeros(2), times)
        rows = torch.stack([nearest_vocabulary_rows(vocabulary, a, 1)[0] for a in arcs])
        self.branch_rows = rows
        self.branches = vocabulary[rows]  # (2, T, 3): left, right
        near = [nearest_vocabulary_rows(vocabulary, b, teachers) for b in self.branches] if teachers else []
        self.teacher_rows = torch.cat(near) if near else torch.zeros(0, dtype=torch.long)
        cam = model_camera(camera, height, width)
        self.image = render_paths(self.branches, cam, height, width)
        self.height, self.width = height, width
        self.status = torch.zeros(8)
        self.status[3] = 1.0  # command "unknown": nothing tells the modes apart
        self.status[4] = speed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> PlannerSample:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        mode = 0 if float(torch.rand(1, generator=g)) < self.human_left else 1
        video = make_video(self.image, 0.05 * torch.randn(3, 2, self.height, self.width, generator=g))
        return PlannerSample(
            video,
            self.status.clone(),
            self.branches[mode].clone(),
            self.teacher_rows.clone(),
            token=f"fork-{self.seed}-{index}-{'LR'[mode]}",
        )


# --------------------------------------------------------------------------------------------------------------
# recorded datasets (NAVSIM, Bench2Drive) → the planner contract


def planner_sample(sample: TrainingSample) -> PlannerSample:
    """The one `TrainingSample` → `PlannerSample` adapter. status = (command one-hot, vx, vy, ax, ay) exactly as
    `TrainingSample.status`; trajectory EGO_REAR_AXLE at 0.5 s; the −1 padding of `teacher_indices` is dropped
    (collate re-pads per batch); projection = the sample's model-input camera (per-sample calibration)."""
    n = int(sample.num_teachers)
    rows, labels = sample.score_rows, sample.score_labels
    return PlannerSample(
        video=sample.video,
        status=sample.status,
        trajectory=sample.trajectory,
        teacher_indices=sample.teacher_indices[:n].clone(),
        projection=sample.projection,
        score_candidates=None if rows is None else rows.clamp(min=0),
        score_labels=labels,
        token=str(sample.token),
        score_mask=None if rows is None else rows >= 0,
        target_point=sample.target_point,
    )


class DrivingPlannerDataset(Dataset[PlannerSample]):
    """A `DrivingDataset` (cache-backed when `data.cache_dir` is set) seen through `planner_sample`.

    Checks once that the data produce what the model expects: frame size (image_height × image_width) and
    the number of future poses."""

    def __init__(self, dataset: DrivingDataset, image_height: int, image_width: int, num_poses: int) -> None:
        img = dataset.cfg.image
        if (img.out_height, img.out_width) != (image_height, image_width):
            raise ValueError(
                f"data.image is {img.out_width}×{img.out_height} but the model takes {image_width}×{image_height} "
                "(set data.image.out_width/out_height or model.image_width/height)"
            )
        if dataset.cfg.num_poses != num_poses:
            raise ValueError(f"data.num_poses={dataset.cfg.num_poses} but model.num_poses={num_poses}")
        if len(dataset) == 0:
            raise ValueError(f"data={dataset.cfg.kind} under {dataset.cfg.root}: no samples selected")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> PlannerSample:
        return planner_sample(self.dataset[index])


def is_standing(speed: float, trajectory: np.ndarray, max_speed: float = 0.5, max_travel_m: float = 1.0) -> bool:
    """A sample whose ego stands (below `max_speed`) and travels less than `max_travel_m` within its label."""
    return bool(speed < max_speed and float(np.hypot(*np.asarray(trajectory)[-1, :2])) < max_travel_m)


def is_start(speed: float, trajectory: np.ndarray, max_speed: float = 0.5, max_travel_m: float = 1.0) -> bool:
    """A sample whose ego stands (below `max_speed`) and then drives off (at least `max_travel_m` in its label)."""
    return bool(speed < max_speed and float(np.hypot(*np.asarray(trajectory)[-1, :2])) >= max_travel_m)


def standing_subset(
    ds: DrivingPlannerDataset, keep: float, seed: int = 0, start_repeat: int = 1
) -> Subset[PlannerSample]:
    """`ds` with only a `keep` fraction of its standing samples (`is_standing`), drawn with a seeded generator, and
    each start sample (`is_start`: standing, then driving off) `start_repeat` times; every other sample stays once.
    Reads only the speed and the label (cache entry fields, or the reader's sample)."""
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"standing_keep={keep}: expected a fraction in [0, 1]")
    if start_repeat < 1:
        raise ValueError(f"start_repeat={start_repeat}: expected an integer ≥ 1")
    inner = ds.dataset
    standing = np.zeros(len(inner), bool)
    start = np.zeros(len(inner), bool)
    for i in range(len(inner)):
        path = inner.entry_path(i)
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                speed, traj = float(z["speed"]), z["trajectory"]
        else:
            smp = inner.reader[i]
            speed, traj = smp.speed, smp.trajectory
        standing[i], start[i] = is_standing(speed, traj), is_start(speed, traj)
    rng = np.random.default_rng(seed)
    drop = standing & (rng.random(len(inner)) >= keep)
    kept = [int(i) for i in np.flatnonzero(~drop)]
    kept += [int(i) for i in np.flatnonzero(start)] * (start_repeat - 1)
    print(f"data: {int(standing.sum())} of {len(inner)} samples stand still; {int(standing.sum() - drop.sum())} "
          f"of them kept (standing_keep={keep}); {int(start.sum())} start samples × {start_repeat}; "
          f"{len(kept)} samples in all", flush=True)  # fmt: skip
    return Subset(ds, sorted(kept))

"""Front-camera video clips for V-JEPA pretraining, sampled by time from three kinds of sources.

* `navsim`: NAVSIM / OpenScene logs. `navsim_logs/<split>/<log>.pkl` is a list of frame dicts (in time
  order) with `timestamp` (microseconds) and `cams["CAM_F0"]["data_path"]`, a path relative to the
  `sensor_blobs/<split>` root (facts from navsim `navsim/common/dataloader.py`, `dataclasses.py`). Frames are
  sorted by timestamp. The pickles are read with a restricted unpickler that only admits plain containers and
  numpy arrays.
* `bench2drive`: Bench2Drive-style clip folders `<root>/**/camera/rgb_front/<frame>.jpg` (or .png); the frame
  number is the file stem and the time is `frame / fps` (the dataset is recorded at 10 Hz).
* `video`: any folder of video files (mp4, mkv, avi, mov, webm), decoded with PyAV (`pip install
  drive-jepa[video]`); times are the presentation timestamps of the video stream.
* `synthetic`: no files; smooth random textures panning sideways, generated from (seed, index). For
  throughput benchmarks (no data-loading cost) and smoke runs, not for real pretraining.

A clip is `num_frames` frames spaced `frame_interval_s` apart (Drive-JEPA front-only: 2 frames, t - 0.5 s
and t), each the recorded frame nearest to its target time (within half an interval). Each frame is cropped
(`crop_top` / `crop_bottom` source rows; the Drive-JEPA NAVSIM setting removes 28 and 28 of 1080), resized
to `width` x `height` (INTER_AREA), scaled to [0, 1] and normalized with ImageNet mean/std. A sample is a
float32 tensor (3, T, H, W), RGB.

Sampling is a pure function of (seed, index): the sequence is drawn with probability proportional to its
usable duration, then a start time uniformly; the same index always gives the same clip, on any worker or
rank.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.encoder.preprocess import frames_to_clip

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
KINDS = ("navsim", "bench2drive", "video", "synthetic")


class VideoDataError(ValueError):
    """Bad or missing driving-video data; the message names the file and what was expected."""


@dataclass
class VideoDataConfig:
    """Where the clips come from and how they are cut."""

    kind: str = "bench2drive"  # navsim | bench2drive | video | synthetic (no files: benchmarks, smoke runs)
    root: str = ""  # navsim: sensor_blobs/<split>; bench2drive: dataset root; video: folder of videos
    navsim_logs: str = ""  # navsim only: navsim_logs/<split>
    fps: float = 10.0  # bench2drive only: frame rate of the numbered frames
    num_frames: int = 2
    frame_interval_s: float = 0.5
    height: int = 256
    width: int = 512
    crop_top: int = 28  # source rows removed at the top before resizing
    crop_bottom: int = 28  # source rows removed at the bottom
    # DataLoader worker processes; -1 = from the cores there are (`auto_workers`: none on ≤ 2 cores, where a
    # worker only competes with the training process — 8 workers made a 2-core pretrain 3× slower than 0)
    workers: int = -1
    fast_jpeg_decode: bool = True  # decode JPEGs at 1/2, 1/4 or 1/8 scale when that still covers height x width


@dataclass
class FrameSequence:
    """One continuous recording: ascending frame times (s) and either image files or a video file."""

    name: str
    times: np.ndarray  # float64 seconds, ascending
    images: list[Path] = field(default_factory=list)
    video: Path | None = None
    pts: np.ndarray | None = None  # video only: stream pts of each frame, aligned with `times`

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0


# --------------------------------------------------------------------------------------------------- sources


class _SafeUnpickler(pickle.Unpickler):
    """Admits only plain containers and numpy arrays/scalars (what NAVSIM log pickles hold)."""

    _ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("collections", "OrderedDict"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _load_log(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as f:
            frames = _SafeUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise VideoDataError(f"{path}: not a readable NAVSIM log pickle ({exc})") from None
    if not isinstance(frames, list):
        raise VideoDataError(f"{path}: expected a list of frame dicts, found {type(frames).__name__}")
    return frames


def navsim_sequences(sensor_blobs: Path, logs: Path, camera: str = "CAM_F0") -> list[FrameSequence]:
    """One sequence per NAVSIM log, frames sorted by timestamp."""
    if not logs.is_dir():
        raise VideoDataError(f"{logs}: navsim_logs folder not found")
    out = []
    for log in sorted(logs.glob("*.pkl")):
        stamps, paths = [], []
        for i, frame in enumerate(_load_log(log)):
            try:
                stamps.append(int(frame["timestamp"]))
                paths.append(sensor_blobs / frame["cams"][camera]["data_path"])
            except (KeyError, TypeError):
                raise VideoDataError(f"{log}: frame {i} lacks 'timestamp' or cams[{camera!r}]['data_path']") from None
        if not stamps:
            continue
        order = np.argsort(np.asarray(stamps), kind="stable")
        times = np.asarray(stamps, dtype=np.float64)[order] * 1e-6
        out.append(FrameSequence(log.stem, times, [paths[i] for i in order]))
    return out


def bench2drive_sequences(root: Path, fps: float = 10.0) -> list[FrameSequence]:
    """One sequence per `camera/rgb_front` folder under `root`; time = frame number / fps."""
    out = []
    for folder in sorted(p for p in root.rglob("rgb_front") if p.is_dir() and p.parent.name == "camera"):
        files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        try:
            numbered = sorted((int(p.stem), p) for p in files)
        except ValueError:
            bad = next(p for p in files if not p.stem.isdigit())
            raise VideoDataError(f"{bad}: expected a frame-number file name like 00042.jpg") from None
        if numbered:
            times = np.asarray([n for n, _ in numbered], dtype=np.float64) / fps
            out.append(FrameSequence(str(folder.parent.parent.relative_to(root)), times, [p for _, p in numbered]))
    return out


def video_sequences(root: Path) -> list[FrameSequence]:
    """One sequence per video file under `root` (frame times from the stream's packets, no decoding)."""
    import av

    out = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                pts = sorted(int(pk.pts) for pk in container.demux(stream) if pk.pts is not None)
                base = float(stream.time_base) if stream.time_base is not None else 0.0
        except (av.FFmpegError, IndexError) as exc:
            raise VideoDataError(f"{path}: not a readable video ({exc})") from None
        if pts and base > 0:
            arr = np.asarray(pts, dtype=np.int64)
            out.append(FrameSequence(str(path.relative_to(root)), arr * base, video=path, pts=arr))
    return out


def build_sequences(cfg: VideoDataConfig) -> list[FrameSequence]:
    """The sequences named by `cfg`; raises VideoDataError when there are none."""
    root = Path(cfg.root).expanduser()
    if cfg.kind not in KINDS:
        raise VideoDataError(f"data.kind {cfg.kind!r}: expected one of {', '.join(KINDS)}")
    if not root.is_dir():
        raise VideoDataError(f"data.root {root}: folder not found")
    if cfg.kind == "synthetic":
        raise VideoDataError("data.kind 'synthetic' has no sequences (use build_dataset)")
    if cfg.kind == "navsim":
        seqs = navsim_sequences(root, Path(cfg.navsim_logs).expanduser())
    elif cfg.kind == "bench2drive":
        seqs = bench2drive_sequences(root, cfg.fps)
    else:
        seqs = video_sequences(root)
    span = (cfg.num_frames - 1) * cfg.frame_interval_s
    seqs = [s for s in seqs if s.duration >= span]
    if not seqs:
        raise VideoDataError(f"{root}: no {cfg.kind} sequence of at least {span:.2f} s found")
    return seqs


# --------------------------------------------------------------------------------------------------- frames


JPEG_REDUCTIONS = (8, 4, 2)  # libjpeg can decode directly at 1/2, 1/4, 1/8 scale (DCT scaling): much faster


def decode_reduction(path: Path, height: int, width: int, cfg: VideoDataConfig) -> int:
    """The largest JPEG decode reduction that still leaves at least the model resolution after the crop."""
    if not cfg.fast_jpeg_decode or path.suffix.lower() not in (".jpg", ".jpeg"):
        return 1
    for r in JPEG_REDUCTIONS:
        if (height - cfg.crop_top - cfg.crop_bottom) // r >= cfg.height and width // r >= cfg.width:
            return r
    return 1


def worker_init(_: int) -> None:
    """DataLoader worker setup: one OpenCV thread per worker (workers already run in parallel; the DataLoader
    itself limits torch to one thread)."""
    import cv2

    cv2.setNumThreads(1)


def _read_image(path: Path, reduce: int = 1) -> np.ndarray:
    import cv2

    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }
    bgr = cv2.imread(str(path), flags[reduce])
    if bgr is None:
        raise VideoDataError(f"{path}: unreadable image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _read_video_frames(path: Path, pts: Sequence[int]) -> list[np.ndarray]:
    """RGB frames with exactly these stream pts (ascending), decoding forward from the keyframe before."""
    import av

    wanted = sorted(set(pts))
    found: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(wanted[0], stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            if frame.pts in wanted:
                found[frame.pts] = frame.to_ndarray(format="rgb24")
            if frame.pts >= wanted[-1]:
                break
    missing = [p for p in wanted if p not in found]
    if missing:
        raise VideoDataError(f"{path}: could not decode frames with pts {missing[:3]}")
    return [found[p] for p in pts]


def preprocess(frames: Sequence[np.ndarray], cfg: VideoDataConfig, reduce: int = 1) -> torch.Tensor:
    """RGB uint8 frames -> normalized (3, T, height, width) with `cfg`'s crop (agent's `frames_to_clip`)."""
    try:
        return frames_to_clip(frames, cfg.height, cfg.width, cfg.crop_top, cfg.crop_bottom, reduce)
    except ValueError as exc:
        raise VideoDataError(str(exc)) from None


# --------------------------------------------------------------------------------------------------- dataset


class DrivingClips(torch.utils.data.Dataset[torch.Tensor]):
    """Clips (3, T, H, W) drawn deterministically from (seed, index); any index >= 0 is valid."""

    def __init__(self, sequences: list[FrameSequence], cfg: VideoDataConfig, seed: int, length: int) -> None:
        self.sequences = sequences
        self.cfg = cfg
        self.seed = seed
        self.length = length
        self.span = (cfg.num_frames - 1) * cfg.frame_interval_s
        usable = np.asarray([s.duration - self.span for s in sequences], dtype=np.float64) + 1e-3
        self._reduction: dict[int, int] = {}  # sequence -> JPEG decode reduction (see decode_reduction)
        self.weights = usable / usable.sum()

    def __len__(self) -> int:
        return self.length

    def frame_indices(self, index: int) -> tuple[int, np.ndarray]:
        """(sequence number, frame numbers of the clip) for `index`."""
        rng = np.random.default_rng([self.seed, index])
        tol = 0.5 * self.cfg.frame_interval_s + 1e-6
        for _ in range(32):
            s = int(rng.choice(len(self.sequences), p=self.weights))
            seq = self.sequences[s]
            start = seq.times[0] + rng.uniform(0.0, max(seq.duration - self.span, 0.0))
            targets = start + self.cfg.frame_interval_s * np.arange(self.cfg.num_frames)
            right = np.clip(np.searchsorted(seq.times, targets), 1, len(seq.times) - 1)
            left = right - 1
            nearest = np.where(np.abs(seq.times[left] - targets) <= np.abs(seq.times[right] - targets), left, right)
            if len(seq.times) == 1:
                nearest = np.zeros_like(nearest)
            if np.all(np.abs(seq.times[nearest] - targets) <= tol):
                return s, nearest
        raise VideoDataError(f"index {index}: no clip without a frame gap found in 32 draws")

    def __getitem__(self, index: int) -> torch.Tensor:
        s, frames = self.frame_indices(index)
        seq = self.sequences[s]
        if seq.video is not None:
            assert seq.pts is not None
            images = _read_video_frames(seq.video, [int(seq.pts[i]) for i in frames])
            return preprocess(images, self.cfg)
        reduce = self._reduction.get(s)
        if reduce is None:  # once per sequence (all its frames have one size): full decode of one frame
            first = _read_image(seq.images[frames[0]])
            reduce = decode_reduction(seq.images[frames[0]], first.shape[0], first.shape[1], self.cfg)
            self._reduction[s] = reduce
        images = [_read_image(seq.images[i], reduce) for i in frames]
        return preprocess(images, self.cfg, reduce)


class SyntheticClips(torch.utils.data.Dataset[torch.Tensor]):
    """Deterministic synthetic clips (3, T, H, W): a smooth random texture panning by a random speed."""

    def __init__(self, cfg: VideoDataConfig, seed: int, length: int) -> None:
        self.cfg = cfg
        self.seed = seed
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        c = self.cfg
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))
        coarse = torch.randn(1, 3, max(2, c.height // 16), max(2, c.width // 8), generator=g)
        wide = torch.nn.functional.interpolate(coarse, size=(c.height, 2 * c.width), mode="bicubic")[0]
        speed = int(torch.randint(1, max(2, c.width // 16), (1,), generator=g))
        frames = [wide[:, :, t * speed : t * speed + c.width] for t in range(c.num_frames)]
        return torch.stack(frames, dim=1).contiguous()


def build_dataset(cfg: VideoDataConfig, seed: int, length: int) -> torch.utils.data.Dataset[torch.Tensor]:
    """The clip dataset named by `cfg` (`DrivingClips` over its sequences, or `SyntheticClips`)."""
    if cfg.kind == "synthetic":
        return SyntheticClips(cfg, seed, length)
    return DrivingClips(build_sequences(cfg), cfg, seed, length)


def auto_workers(requested: int, cores: int | None = None) -> int:
    """DataLoader workers for `requested` (−1 = auto: 0 on ≤ 2 cores, else cores − 1, at most 8)."""
    import os

    if requested >= 0:
        return requested
    n = (
        cores
        if cores is not None
        else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )
    return 0 if n <= 2 else min(8, n - 1)

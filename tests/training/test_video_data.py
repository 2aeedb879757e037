"""Driving-video clips from tiny on-the-fly datasets of each kind (NAVSIM logs, Bench2Drive, videos)."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from agent.encoder.preprocess import IMAGENET_MEAN, IMAGENET_STD
from training.data.video import (
    DrivingClips,
    VideoDataConfig,
    VideoDataError,
    build_dataset,
    build_sequences,
    decode_reduction,
    preprocess,
)

H, W = 40, 72  # source frames; crop 4 + 4 rows, resize to 16 x 32


def _frame(level: int) -> np.ndarray:
    """RGB frame whose red channel encodes `level`; rows 0..3 and the last 4 are pure green (cropped away)."""
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[:, :, 0] = level
    img[:, :, 2] = 255 - level
    img[:4] = (0, 255, 0)
    img[-4:] = (0, 255, 0)
    return img


def _write_image(path: Path, level: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), _frame(level)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])


def _cfg(kind: str, root: Path, **kw: object) -> VideoDataConfig:
    base: dict[str, object] = dict(
        kind=kind, root=str(root), height=16, width=32, crop_top=4, crop_bottom=4, num_frames=2
    )
    base.update(kw)
    return VideoDataConfig(**base)  # type: ignore[arg-type]


def _levels(clip: torch.Tensor) -> list[int]:
    """Decode each frame's red level back from the normalized clip; also checks the crop removed the green."""
    red = clip[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    green = clip[1] * IMAGENET_STD[1] + IMAGENET_MEAN[1]
    assert float(green.abs().max()) < 0.25  # green border rows were cropped (JPEG chroma bleeds a little)
    return [round(float(red[t].mean()) * 255 / 10) * 10 for t in range(clip.shape[1])]


def test_bench2drive_folders(tmp_path: Path) -> None:
    for r, route in enumerate(["Accident/Town03_Rep0_route1", "Merge/Town12_Rep0_route7"]):
        for i in range(12):  # 10 Hz, level = 10 * frame (+ 120 for the second route)
            _write_image(tmp_path / route / "camera" / "rgb_front" / f"{i:05d}.jpg", 10 * i + 120 * r)
    cfg = _cfg("bench2drive", tmp_path, frame_interval_s=0.5, fps=10.0)
    seqs = build_sequences(cfg)
    assert [s.name for s in seqs] == ["Accident/Town03_Rep0_route1", "Merge/Town12_Rep0_route7"]
    assert np.allclose(seqs[0].times, np.arange(12) / 10.0)
    ds = DrivingClips(seqs, cfg, seed=3, length=100)
    for index in range(20):
        clip = ds[index]
        assert clip.shape == (3, 2, 16, 32) and clip.dtype == torch.float32
        a, b = _levels(clip)
        assert b - a == 50  # frames 0.5 s apart = 5 frames at 10 Hz
    assert torch.equal(ds[7], DrivingClips(seqs, cfg, seed=3, length=100)[7])  # deterministic
    assert not torch.equal(ds[7], DrivingClips(seqs, cfg, seed=4, length=100)[7])


def test_bench2drive_bad_file_name(tmp_path: Path) -> None:
    _write_image(tmp_path / "r" / "camera" / "rgb_front" / "first.jpg", 0)
    with pytest.raises(VideoDataError, match=r"first\.jpg: expected a frame-number"):
        build_sequences(_cfg("bench2drive", tmp_path))


def test_navsim_logs_sorted_by_time(tmp_path: Path) -> None:
    blobs, logs = tmp_path / "sensor_blobs" / "mini", tmp_path / "navsim_logs" / "mini"
    logs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(8):  # 2 Hz; file names are random tokens, so only the log gives the time order
        rel = f"2021.06.09.log/CAM_F0/{rng.integers(1 << 60):016x}.jpg"
        _write_image(blobs / rel, 20 * i)
        cams = {"CAM_F0": {"data_path": rel, "cam_intrinsic": np.eye(3)}}
        frames.append({"token": f"t{i}", "timestamp": 1_623_000_000_000_000 + 500_000 * i, "cams": cams})
    shuffled = [frames[i] for i in rng.permutation(8)]
    (logs / "2021.06.09.log.pkl").write_bytes(pickle.dumps(shuffled))
    cfg = _cfg("navsim", blobs, navsim_logs=str(logs), frame_interval_s=0.5)
    (seq,) = build_sequences(cfg)
    assert np.allclose(np.diff(seq.times), 0.5)
    ds = DrivingClips([seq], cfg, seed=0, length=10)
    for index in range(8):
        a, b = _levels(ds[index])
        assert b - a == 20  # consecutive 2 Hz frames


def test_navsim_log_with_foreign_objects_is_refused(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "evil.pkl").write_bytes(pickle.dumps([{"timestamp": 0, "cams": {}, "x": Path("/")}]))
    with pytest.raises(VideoDataError, match=r"evil\.pkl: not a readable NAVSIM log pickle"):
        build_sequences(_cfg("navsim", tmp_path, navsim_logs=str(logs)))


def test_video_files(tmp_path: Path) -> None:
    import av

    path = tmp_path / "drive" / "front.mp4"
    path.parent.mkdir()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"qscale": "1"}
        for i in range(25):  # 2.5 s at 10 fps, level = 10 * frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(10 * i), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cfg = _cfg("video", tmp_path, frame_interval_s=0.3, num_frames=3)
    (seq,) = build_sequences(cfg)
    assert len(seq.times) == 25 and np.allclose(np.diff(seq.times), 0.1)
    with av.open(str(path)) as container:  # ground truth: every frame, decoded sequentially
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    single = torch.stack([preprocess([f], cfg)[:, 0] for f in decoded])  # (25, 3, 16, 32)
    ds = DrivingClips([seq], cfg, seed=1, length=10)
    starts = set()
    for index in range(6):
        clip = ds[index]  # decoded after a seek: must equal frames k, k + 3, k + 6 of the sequential decode
        (k,) = [i for i in range(25) if torch.equal(single[i], clip[:, 0])]
        assert torch.equal(clip[:, 1], single[k + 3]) and torch.equal(clip[:, 2], single[k + 6])
        starts.add(k)
    assert len(starts) > 2


def test_no_data_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VideoDataError, match="no bench2drive sequence"):
        build_sequences(_cfg("bench2drive", tmp_path))
    with pytest.raises(VideoDataError, match=r"data\.kind 'kitti'"):
        build_sequences(_cfg("kitti", tmp_path))


def test_synthetic_clips_are_deterministic_and_move(tmp_path: Path) -> None:
    cfg = _cfg("synthetic", tmp_path, num_frames=4)
    ds = build_dataset(cfg, seed=0, length=4)
    clip = ds[1]
    assert clip.shape == (3, 4, 16, 32) and torch.equal(clip, build_dataset(cfg, seed=0, length=4)[1])
    assert not torch.equal(clip[:, 0], clip[:, 1])  # the texture pans
    assert not torch.equal(clip, ds[2])


def test_fast_jpeg_decode_matches_full_decode(tmp_path: Path) -> None:
    cfg = _cfg("bench2drive", tmp_path, height=64, width=128, crop_top=8, crop_bottom=8)
    navsim = _cfg("navsim", tmp_path, height=256, width=512, crop_top=28, crop_bottom=28)
    assert decode_reduction(Path("a.jpg"), 1080, 1920, navsim) == 2  # NAVSIM CAM_F0 -> 512 x 256
    assert decode_reduction(Path("a.jpg"), 900, 1600, navsim) == 2  # Bench2Drive front camera
    assert decode_reduction(Path("a.png"), 1080, 1920, navsim) == 1  # only JPEG has DCT scaling
    rng = np.random.default_rng(1)
    texture = cv2.resize(rng.integers(0, 256, (20, 40, 3)).astype(np.uint8), (400, 200), interpolation=cv2.INTER_CUBIC)
    folder = tmp_path / "route" / "camera" / "rgb_front"
    folder.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), np.roll(texture, 5 * i, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 95])
    seqs = build_sequences(cfg)
    fast = DrivingClips(seqs, cfg, seed=0, length=4)
    exact = DrivingClips(seqs, VideoDataConfig(**{**cfg.__dict__, "fast_jpeg_decode": False}), seed=0, length=4)
    a, b = fast[0], exact[0]
    assert fast._reduction == {0: 2} and exact._reduction == {0: 1}
    assert a.shape == b.shape and float((a - b).abs().mean()) < 0.05

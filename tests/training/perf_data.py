"""Data-pipeline timings on synthetic data: NAVSIM index, features, cache, cached load; Bench2Drive sample/snapshot.

Usage: .venv/bin/python -m tests.training.perf_data /tmp/perf_root   (the folder must not exist)
NAVSIM frames are textured 1920×1080 JPEGs (~0.57 MB, decode cost close to real CAM_F0 frames); Bench2Drive
annotations are the small synthetic ones (5 boxes; real files hold dozens), so its figures are a lower bound.
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from tests.training import synth_data
from training.data.bench2drive_reader import Bench2DriveReader
from training.data.dataset import DrivingDataset, NavsimDataConfig, cache_dataset, sample_arrays
from training.data.navsim_reader import NavsimReader, SceneFilter

_rng = np.random.default_rng(0)


def _textured_jpeg(path: Path, w: int, h: int, value: int, quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    small = _rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    _, buf = cv2.imencode(".jpg", cv2.resize(small, (w, h)), [cv2.IMWRITE_JPEG_QUALITY, quality])
    path.write_bytes(buf.tobytes())


def main(root: Path, frames: int = 60) -> None:
    synth_data._jpeg = _textured_jpeg  # type: ignore[assignment]
    synth_data.write_navsim_log(root, "mini", "logA_000001", synth_data.straight_north(frames))
    # index build of a 2000-frame log (the reader parses poses/commands; images are only opened per sample)
    with open(root / "navsim_logs/mini/logA_000001.pkl", "rb") as f:
        log = pickle.load(f)
    big = [dict(fr, token=f"t{i}") for i, fr in enumerate((log * (2000 // frames + 1))[:2000])]
    (root / "navsim_logs/big").mkdir(parents=True)
    (root / "sensor_blobs/big").mkdir(parents=True)
    with open(root / "navsim_logs/big/logB.pkl", "wb") as f:
        pickle.dump(big, f)
    t = time.perf_counter()
    reader = NavsimReader(root, "big", SceneFilter(frame_interval=1))
    print(f"navsim index, 2000-frame log: {(time.perf_counter() - t) * 1e3:.0f} ms ({len(reader)} scenes)")

    (root / "f.yaml").write_text("frame_interval: 1\n")
    cfg = NavsimDataConfig(root=str(root), split="mini", scene_filter=str(root / "f.yaml"))
    ds = DrivingDataset(cfg)
    t = time.perf_counter()
    for i in range(len(ds)):
        sample_arrays(ds.reader[i], cfg.image)
    print(f"features 2×1920×1080 → 2×512×256: {(time.perf_counter() - t) / len(ds) * 1e3:.1f} ms/sample")
    for workers in (0, 2):
        cfg.cache_dir = str(root / f"cache{workers}")
        t = time.perf_counter()
        rep = cache_dataset(cfg, workers=workers, progress=False)
        dt = time.perf_counter() - t
        print(f"cache-data workers={workers}: {rep.written} samples in {dt:.2f} s = {rep.written / dt:.1f} samples/s")
    cached = DrivingDataset(cfg)
    t = time.perf_counter()
    for i in range(len(cached)):
        cached[i]
    print(f"cached __getitem__ (npz load + normalize): {(time.perf_counter() - t) / len(cached) * 1e3:.1f} ms")
    size = np.mean([p.stat().st_size for p in Path(str(cached.cache)).glob("*.npz")]) / 2**20
    print(f"cache entry: {size:.2f} MiB")

    n = 400
    tt = np.arange(n) / 10.0
    poses = np.stack([np.full(n, 100.0), 200.0 - 5.0 * tt, np.full(n, -90.0)], -1)
    synth_data.write_b2d_clip(root / "b2d", "S", "Town01_Route1_Weather1", poses)
    b2d = Bench2DriveReader(root / "b2d", stride=1)
    t0 = time.perf_counter()
    for i in range(len(b2d)):
        b2d[i]
    t1 = time.perf_counter()
    for i in range(len(b2d)):
        b2d.snapshot(i)
    t2 = time.perf_counter()
    print(f"bench2drive ({len(b2d)} samples): sample {(t1 - t0) / len(b2d) * 1e3:.2f} ms, "
          f"snapshot {(t2 - t1) / len(b2d) * 1e3:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Features/targets, teacher indices, the resumable parallel cache and `drive-jepa cache-data` on synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agent.preprocess import ImageInputConfig
from drive_jepa import config as config_lib
from drive_jepa.cli import main as cli_main
from tests.training.synth_data import straight_north, write_b2d_clip, write_navsim_log
from training.data.cli_cache import CacheDataConfig
from training.data.dataset import (
    Bench2DriveDataConfig,
    DrivingDataset,
    NavsimDataConfig,
    cache_dataset,
    collate,
    load_teacher_index,
)
from training.data.sample import DataLayoutError
from training.data.world_snapshot import load_snapshot

SPLIT = "mini"
LOG = "2021.05.12.22.00.38_veh-35_01008_01518"
SMALL = ImageInputConfig(source_width=64, source_height=36, crop_top=2, crop_bottom=34, crop_right=64,
                         out_width=32, out_height=16, jpeg_quality=None)  # fmt: skip


def _navsim(tmp_path: Path, n: int = 16, size: tuple[int, int] = (64, 36)) -> NavsimDataConfig:
    write_navsim_log(tmp_path / "navsim", SPLIT, LOG, straight_north(n), image_size=size)
    cfg = NavsimDataConfig(root=str(tmp_path / "navsim"), split=SPLIT, image=SMALL)
    return cfg


def _one_per_frame_filter(tmp_path: Path) -> str:
    p = tmp_path / "filter.yaml"
    p.write_text("num_history_frames: 4\nnum_future_frames: 10\nframe_interval: 1\nhas_route: true\n")
    return str(p)


def test_navsim_features_at_full_resolution(tmp_path: Path) -> None:
    write_navsim_log(tmp_path, SPLIT, LOG, straight_north(14))
    cfg = config_lib.compose("cache_data", CacheDataConfig, ["data=navsim", f"data.root={tmp_path}",
                             f"data.split={SPLIT}"]).data  # fmt: skip
    assert isinstance(cfg, NavsimDataConfig) and cfg.image.crop_top == 28 and cfg.image.crop_bottom == 1052
    ds = DrivingDataset(cfg)
    assert len(ds) == 1
    s = ds[0]
    assert s.video.shape == (3, 2, 256, 512) and s.video.dtype == torch.float32
    # synthetic frame i: blue = 10·i everywhere, green 200 in the top half (rows < 540 of 1080), red 0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for t, frame in enumerate((2, 3)):  # t − 0.5 s is frame 2, t is frame 3
        blue = float(s.video[2, t, 200, 100])
        assert blue == pytest.approx((10 * frame / 255 - mean[2]) / std[2], abs=0.05)
    assert float(s.video[1, 1, 10, 10]) == pytest.approx((200 / 255 - mean[1]) / std[1], abs=0.05)
    assert float(s.video[1, 1, 250, 10]) == pytest.approx((0 - mean[1]) / std[1], abs=0.05)
    assert float(s.video[0, 1, 10, 10]) == pytest.approx((0 - mean[0]) / std[0], abs=0.05)
    np.testing.assert_allclose(s.trajectory[:, 0].numpy(), 2.5 * np.arange(1, 9), atol=1e-5)
    assert s.command.tolist() == [0, 1, 0, 0] and float(s.speed) == pytest.approx(5.0)
    assert s.num_teachers == 0 and (s.teacher_indices == -1).all() and s.teacher_indices.shape == (256,)
    np.testing.assert_allclose(s.status.numpy(), [0, 1, 0, 0, 5.0, 0.0, 0.25, -0.1], atol=1e-6)


def test_teacher_index_json_and_npz(tmp_path: Path) -> None:
    cfg = _navsim(tmp_path)
    cfg.scene_filter = _one_per_frame_filter(tmp_path)
    cfg.max_teachers = 4
    tokens = DrivingDataset(cfg).tokens
    (tmp_path / "t.json").write_text(json.dumps({tokens[0]: [5, 7, 8191], tokens[1]: list(range(10))}))
    cfg.teacher_index = str(tmp_path / "t.json")
    ds = DrivingDataset(cfg)
    assert ds[0].teacher_indices.tolist() == [5, 7, 8191, -1] and int(ds[0].num_teachers) == 3
    assert ds[1].teacher_indices.tolist() == [0, 1, 2, 3] and int(ds[1].num_teachers) == 4
    assert int(ds[2].num_teachers) == 0
    np.savez(tmp_path / "t.npz", tokens=np.array(tokens[:2]), indices=np.array([[3, -1], [1, 2]]))
    got = load_teacher_index(tmp_path / "t.npz")
    assert got[tokens[0]].tolist() == [3] and got[tokens[1]].tolist() == [1, 2]
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataLayoutError, match=r"bad.json: teacher index JSON must map token"):
        load_teacher_index(tmp_path / "bad.json")
    batch = collate([ds[0], ds[1]])
    assert batch.video.shape == (2, 3, 2, 16, 32) and batch.trajectory.shape == (2, 8, 3)
    assert batch.token == tokens[:2] and batch.teacher_indices.shape == (2, 4)


def test_cache_is_resumable_parallel_and_matches_on_the_fly(tmp_path: Path) -> None:
    cfg = _navsim(tmp_path, n=18)
    cfg.scene_filter = _one_per_frame_filter(tmp_path)
    cfg.cache_dir = str(tmp_path / "cache")
    report = cache_dataset(cfg, workers=2, progress=False)
    assert (report.total, report.skipped, report.written, report.failed) == (5, 0, 5, [])
    folder = Path(report.folder)
    entries = sorted(folder.glob("*.npz"))
    assert len(entries) == 5 and not list(folder.glob(".*tmp")) and (folder / "config.json").is_file()
    # resume: nothing to do; a lost entry is rewritten, the others untouched
    mtimes = {p: p.stat().st_mtime_ns for p in entries}
    entries[2].unlink()
    again = cache_dataset(cfg, workers=0, progress=False)
    assert (again.skipped, again.written) == (4, 1)
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items() if p != entries[2])
    cached = DrivingDataset(cfg)
    fresh = DrivingDataset(NavsimDataConfig(**{**cfg.__dict__, "cache_dir": ""}))
    for i in range(5):
        a, b = cached[i], fresh[i]
        assert a.token == b.token
        assert torch.equal(a.video, b.video) and torch.equal(a.trajectory, b.trajectory)
    # another scene filter shares the cache (entries depend on the token only); another image config does not
    cfg.scene_filter = ""
    assert cache_dataset(cfg, workers=0, progress=False).folder == report.folder
    cfg.image = ImageInputConfig(**{**SMALL.__dict__, "out_width": 16, "out_height": 8})
    assert cache_dataset(cfg, workers=0, progress=False).folder != report.folder


def test_cache_reports_failures_without_losing_entries(tmp_path: Path) -> None:
    cfg = _navsim(tmp_path, n=18)
    cfg.scene_filter = _one_per_frame_filter(tmp_path)
    cfg.cache_dir = str(tmp_path / "cache")
    victim = next((tmp_path / "navsim" / "sensor_blobs" / SPLIT / LOG / "CAM_F0").glob("*tok0005.jpg"))
    victim.write_bytes(b"broken")  # used by the samples at frames 5 and 6
    report = cache_dataset(cfg, workers=0, progress=False)
    assert report.written == 3 and len(report.failed) == 2
    assert all("tok0005.jpg: cannot read image" in err for _, err in report.failed)
    cfg.image = ImageInputConfig(**{**SMALL.__dict__, "source_width": 128})
    with pytest.raises(DataLayoutError, match=r"is 64×36, the data config expects 128×36"):
        DrivingDataset(cfg)[0]


def test_cache_data_command_on_bench2drive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = np.arange(60) / 10.0
    poses = np.stack([np.full(60, 100.0), 200.0 - 5.0 * t, np.full(60, -90.0)], -1)
    write_b2d_clip(tmp_path / "b2d", "ParkingExit", "Town12_Route922_Weather12", poses)
    args = ["cache-data", "data=bench2drive", f"data.root={tmp_path / 'b2d'}", f"data.cache_dir={tmp_path / 'c'}",
            "workers=0", "data.image.out_width=64", "data.image.out_height=32"]  # fmt: skip
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "3 samples, 0 already cached, 3 written, 0 failed" in out
    (folder,) = (tmp_path / "c").iterdir()
    snaps = sorted(folder.glob("*.world.json.gz"))
    assert len(snaps) == 3 and load_snapshot(snaps[0]).town == "Town12"
    assert cli_main(args) == 0 and "3 already cached, 0 written" in capsys.readouterr().out
    snaps[1].unlink()  # a lost snapshot alone is redone
    assert cli_main(args) == 0 and "2 already cached, 1 written" in capsys.readouterr().out
    assert snaps[1].is_file()
    cfg = config_lib.compose("cache_data", CacheDataConfig, args[1:]).data
    assert isinstance(cfg, Bench2DriveDataConfig)
    s = DrivingDataset(cfg)[0]
    assert s.video.shape == (3, 2, 32, 64) and bool(s.target_valid)
    np.testing.assert_allclose(s.trajectory[:, 0].numpy(), 2.5 * np.arange(1, 9), atol=1e-4)
    assert cli_main(["cache-data", "data=bench2drive", f"data.root={tmp_path / 'nowhere'}", "data.cache_dir=x"]) == 2
    assert "Bench2Drive root folder not found" in capsys.readouterr().err


def test_training_dataloader_with_workers(tmp_path: Path) -> None:
    cfg = _navsim(tmp_path, n=18)
    cfg.scene_filter = _one_per_frame_filter(tmp_path)
    ds = DrivingDataset(cfg)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert [b.video.shape[0] for b in batches] == [2, 2, 1]
    assert batches[0].status.shape == (2, 8) and batches[0].trajectory.shape == (2, 8, 3)
    assert [t for b in batches for t in b.token] == ds.tokens

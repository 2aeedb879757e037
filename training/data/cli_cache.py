"""`drive-jepa cache-data`: write the training feature cache of a data config (resumable, parallel).

    drive-jepa cache-data data=navsim data.root=/data/navsim data.split=trainval \\
        data.scene_filter=/navsim/.../train_test_split/navtrain.yaml data.cache_dir=/cache workers=8
    drive-jepa cache-data data=bench2drive data.root=/data/Bench2Drive-base data.cache_dir=/cache
    drive-jepa cache-data data=navsim --cfg          # print the composed config

Existing entries are skipped, so re-running after an interruption continues; samples that fail (a missing or
unreadable file) are listed and the command exits 1 without deleting anything.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from drive_jepa import config as config_lib
from training.data.config import DataConfig
from training.data.dataset import cache_dataset


@dataclass
class CacheDataConfig:
    """workers: DataLoader worker processes (0 = in this process); limit: only the first N samples (0 = all)."""

    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"data": "navsim"}])
    data: DataConfig = MISSING
    workers: int = 2
    limit: int = 0


config_lib.register("cache_data", CacheDataConfig)


def _run(cfg: CacheDataConfig) -> int:
    from training.data.sample import DataLayoutError

    try:
        report = cache_dataset(cfg.data, workers=cfg.workers, limit=cfg.limit)
    except (DataLayoutError, ValueError) as exc:
        print(f"drive-jepa cache-data: {exc}", file=sys.stderr)
        return 2
    print(
        f"cache {report.folder}: {report.total} samples, {report.skipped} already cached, "
        f"{report.written} written, {len(report.failed)} failed"
    )
    for token, err in report.failed[:20]:
        print(f"  failed {token}: {err}", file=sys.stderr)
    if len(report.failed) > 20:
        print(f"  ... and {len(report.failed) - 20} more", file=sys.stderr)
    return 1 if report.failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa cache-data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_lib.add_config_arguments(parser)
    ns = parser.parse_args(argv)
    return config_lib.run_with_config("cache_data", CacheDataConfig, ns, _run)

"""`drive-jepa pretrain`: V-JEPA pretraining of the video encoder on driving video.

Examples:
  drive-jepa pretrain --cfg                                   # print the composed config
  drive-jepa pretrain data.kind=navsim data.root=$OPENSCENE/sensor_blobs/trainval \\
      data.navsim_logs=$OPENSCENE/navsim_logs/trainval model.init_checkpoint=vitl.pt run.out_dir=runs/pt
  torchrun --nproc_per_node 8 -m drive_jepa pretrain ...      # DDP, one process per GPU
  drive-jepa pretrain model=tiny data.root=DIR run.steps=50 run.batch_size=8 data.height=64 data.width=128

Re-running with the same run.out_dir resumes from latest.pt.
"""

from __future__ import annotations

import argparse
import json
import logging

from drive_jepa.config import add_config_arguments, run_with_config


def _run(cfg: object) -> int:
    import sys

    from agent.encoder import CheckpointError
    from training.data.video import VideoDataError
    from training.pretrain.config import PretrainConfig
    from training.pretrain.train import pretrain

    assert isinstance(cfg, PretrainConfig)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        summary = pretrain(cfg)
    except (CheckpointError, VideoDataError, ValueError) as exc:
        print(f"drive-jepa pretrain: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_arguments(parser)
    ns = parser.parse_args(argv)
    from training.pretrain.config import PretrainConfig, register_configs

    register_configs()
    return run_with_config("pretrain", PretrainConfig, ns, _run)

"""`drive-jepa bench scorer`: time the torch PDM scorer on all vocabulary rows of one scene.

Reference: NAVSIM's own scorer needs 50.8 s for 8192 vocabulary rows (40-pose form) on `scene_18`
(dense_traffic_a) on one core of the fixture machine (../shared/fixtures/navsim_scorer/README.md, section 9,
"batch" mode: conversion + one `simulate_proposals` + one `score_proposals`). Scene preparation is timed
separately, as it is not included in that figure either.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

REFERENCE_BATCH_S = 50.8  # NAVSIM batch mode, scene_18, 8192 rows, 1 core (fixture README section 9)
DEFAULT_SCENE = Path(__file__).resolve().parents[2].parent / "shared/fixtures/navsim_scorer/scene_18.json.gz"
DEFAULT_VOCAB = Path(__file__).resolve().parents[2].parent / "shared/fixtures/vocab/navsim_8192.npy"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa bench scorer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scene", type=Path, default=DEFAULT_SCENE, help="scene file (navsim_scorer_fixture JSON)")
    p.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB, help="(V, 40, 3) .npy vocabulary (0.1 s poses)")
    p.add_argument("--rows", type=int, default=0, help="score only the first ROWS rows (0 = all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument(
        "--default-malloc",
        action="store_true",
        help="keep glibc's default allocator thresholds (by default freed memory is kept for reuse, see "
        "training/scoring/malloc.py: ~4/5 fewer page faults per call)",
    )
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import numpy as np
    import torch

    from training.scoring.scene import load_scene_json
    from training.scoring.scorer import PDMScorer

    torch.set_num_threads(args.threads)
    malloc_tuned = False
    if not args.default_malloc:
        from training.scoring.malloc import keep_freed_memory

        malloc_tuned = keep_freed_memory()
    if not args.scene.is_file() or not args.vocab.is_file():
        print(f"bench scorer: need --scene ({args.scene}) and --vocab ({args.vocab}) files")
        return 2
    vocab = torch.from_numpy(np.load(args.vocab).astype(np.float64))
    if args.rows:
        vocab = vocab[: args.rows]
    scene = load_scene_json(args.scene)
    t0 = time.perf_counter()
    scorer = PDMScorer(scene, device=args.device)
    prep = time.perf_counter() - t0
    scorer.score(vocab[:16], 0.1)  # warm-up (caches, allocator)
    times, cpu = [], []
    for _ in range(args.repeats):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        out = scorer.score(vocab, 0.1)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    res = {
        "scene": scene.scene_id,
        "rows": len(vocab),
        "device": args.device,
        "threads": args.threads,
        "malloc_tuned": malloc_tuned,
        "prepare_s": round(prep, 3),
        "score_s": round(med, 3),
        "score_cpu_s": round(statistics.median(cpu), 3),
        "ms_per_row": round(1000 * med / len(vocab), 4),
        "speedup_vs_navsim_batch": round(REFERENCE_BATCH_S * len(vocab) / 8192 / med, 1),
        "epdms_mean": round(float(out["epdms"].mean()), 4),
        "rows_epdms_ge_0.95": int((out["epdms"] >= 0.95).sum()),
    }
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:26s} {v}")
    return 0

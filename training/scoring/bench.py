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
from typing import Any

from training.scoring.vocab import DEFAULT_VOCABULARY, SHIPPED

REFERENCE_BATCH_S = 50.8  # NAVSIM batch mode, scene_18, 8192 rows, 1 core (fixture README section 9)
DEFAULT_SCENE = Path(__file__).resolve().parents[2].parent / "shared/fixtures/navsim_scorer/scene_18.json.gz"
DEFAULT_VOCAB = SHIPPED[DEFAULT_VOCABULARY]
REF_TOOL = Path(__file__).resolve().parents[2].parent / "shared/tools/navsim_ref/ref_score.py"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa bench scorer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scene", type=Path, default=DEFAULT_SCENE,
        help="scene file (navsim_scorer_fixture JSON), or a navsim metric_cache.pkl (needs navsim; reading and "
        "converting it is timed as load_cache_s)",
    )  # fmt: skip
    p.add_argument(
        "--navsim-ref", type=Path, default=None, metavar="PYTHON",
        help="also time NAVSIM's own batch path in the same run: the python of a navsim reference venv "
        "(../shared/tools/navsim_ref/setup_venv.sh) runs ref_score.py on --navsim-scene, on one core "
        "(taskset -c 0, OMP_NUM_THREADS=1), and the measured speed-up is reported",
    )  # fmt: skip
    p.add_argument(
        "--navsim-scene", type=Path, default=None,
        help="fixture JSON scene for --navsim-ref (default: --scene when it is JSON; for a cache, the JSON scene "
        "the cache was made from)",
    )  # fmt: skip
    p.add_argument("--navsim-tool", type=Path, default=REF_TOOL, help="ref_score.py of the navsim reference tool")
    p.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB, help="(V, 40, 3) .npy vocabulary (0.1 s poses)")
    p.add_argument("--rows", type=int, default=0, help="score only the first ROWS rows (0 = all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument(
        "--sections",
        action="store_true",
        help="also time the scorer's stages (simulation, ego areas, collisions + TTC, EP, LK, comfort) in every "
        "timed call and report the median ms of each (adds ~1 %% overhead)",
    )
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
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"bench scorer: --device {args.device}: no CUDA GPU is available here (use --device cpu)")
        return 2
    if not args.scene.is_file() or not args.vocab.is_file():
        print(f"bench scorer: need --scene ({args.scene}) and --vocab ({args.vocab}) files")
        return 2
    ref_scene = args.navsim_scene or (None if args.scene.suffix == ".pkl" else args.scene)
    if args.navsim_ref is not None and (ref_scene is None or not args.navsim_tool.is_file()):
        print("bench scorer: --navsim-ref needs --navsim-scene (the JSON scene of the cache) and --navsim-tool")
        return 2
    vocab = torch.from_numpy(np.load(args.vocab).astype(np.float64))
    if args.rows:
        vocab = vocab[: args.rows]
    load_cache_s = first_read_s = None
    if args.scene.suffix == ".pkl":
        from training.scoring.from_metric_cache import scene_from_metric_cache

        t0 = time.perf_counter()
        scene = scene_from_metric_cache(args.scene)  # the first read also imports navsim's classes (once)
        first_read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scene = scene_from_metric_cache(args.scene)  # what every further cache of a run costs
        load_cache_s = time.perf_counter() - t0
    else:
        scene = load_scene_json(args.scene)
    t0 = time.perf_counter()
    scorer = PDMScorer(scene, device=args.device)
    prep = time.perf_counter() - t0
    scorer.score(vocab[:16], 0.1)  # warm-up (caches, allocator)
    sections = _SectionTimer() if args.sections else None
    times, cpu = [], []
    for _ in range(args.repeats):
        if sections is not None:
            sections.start_call()
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
    if load_cache_s is not None and first_read_s is not None:
        res["load_cache_s"] = round(load_cache_s, 3)
        res["first_read_with_imports_s"] = round(first_read_s, 3)
    if args.navsim_ref is not None:
        assert ref_scene is not None
        try:
            ref = navsim_reference(args.navsim_ref, args.navsim_tool, ref_scene, args.vocab, len(vocab))
        except (RuntimeError, OSError) as e:
            print(f"bench scorer: {e}")
            return 2
        ours = med + prep + (load_cache_s or 0.0)
        res["navsim_batch_s"] = ref["total_s"]
        res["measured_speedup"] = round(ref["total_s"] / med, 1)
        res["measured_speedup_incl_prepare"] = round(ref["total_s"] / ours, 1)
    if sections is not None:
        sections.restore()
        res["sections_ms"] = sections.medians_ms()
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            if isinstance(v, dict):
                for stage, ms in v.items():
                    print(f"  {stage:24s} {ms} ms")
            else:
                print(f"{k:26s} {v}")
    return 0


def navsim_reference(python: Path, tool: Path, scene: Path, vocab: Path, rows: int) -> dict[str, Any]:
    """NAVSIM's batch path (conversion + one simulate_proposals + one score_proposals) timed by the reference tool
    on one core; returns its JSON line."""
    import os
    import shutil
    import subprocess

    cmd = [str(python), str(tool), str(scene), "--rows", str(rows), "--vocab", str(vocab)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"navsim reference failed (exit {proc.returncode}): {tail}")
    return dict(json.loads(lines[-1]))


class _SectionTimer:
    """Wall time of the scorer's stages per `score` call, by wrapping the stage functions for the duration of
    the bench (restored afterwards). On CUDA the stages are not synchronised, so the split is approximate."""

    STAGES = (
        ("simulation", "training.scoring.scorer", "PDMScorer", "simulate_plans"),
        ("ego areas", "training.scoring.scorer", "PDMScorer", "_ego_areas"),
        ("collisions + TTC", "training.scoring.scorer", "PDMScorer", "_collisions_ttc"),
        ("EP projection", "training.scoring.scorer", None, "polyline_project"),
        ("LK", "training.scoring.geometry", "SegmentGrid", "farther_than_xy"),
        ("traffic lights", "training.scoring.scorer", "PDMScorer", "_tlc"),
        ("history comfort", "training.scoring.scorer", None, "history_comfort"),
        ("extended comfort", "training.scoring.scorer", None, "extended_comfort"),
        ("total", "training.scoring.scorer", "PDMScorer", "score"),
    )

    def __init__(self) -> None:
        import importlib

        self.calls: list[dict[str, float]] = []
        self._saved: list[tuple[object, str, object]] = []
        for label, module, cls, name in self.STAGES:
            owner = importlib.import_module(module)
            if cls is not None:
                owner = getattr(owner, cls)
            fn = getattr(owner, name)
            self._saved.append((owner, name, fn))
            setattr(owner, name, self._wrap(label, fn))

    def _wrap(self, label: str, fn: Any) -> Any:
        import functools

        @functools.wraps(fn)
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                if self.calls:
                    self.calls[-1][label] = self.calls[-1].get(label, 0.0) + time.perf_counter() - t0

        return timed

    def start_call(self) -> None:
        self.calls.append({})

    def restore(self) -> None:
        for owner, name, fn in self._saved:
            setattr(owner, name, fn)

    def medians_ms(self) -> dict[str, float]:
        labels = [label for label, *_ in self.STAGES]
        return {
            label: round(1000 * statistics.median(c.get(label, 0.0) for c in self.calls), 1)
            for label in labels
            if self.calls
        }

"""`drive-jepa teachers`: score a trajectory vocabulary on every scene of a dataset and keep the teachers.

Teachers of a scene (Drive-JEPA multimodal distillation) = vocabulary rows whose EPDMS (NAVSIM v2.2, human
filter on; PDMS with `--version 1`) is >= `--threshold` (default 0.95), sorted by score (descending, ties
by row
index), capped at `--cap` rows. The vocabulary is (V, 40, 3): ego rear-axle poses (x forward, y left, heading
CCW; metres, radians) at t = 0.1 ... 4.0 s.

Index file (`<out>/teachers.jsonl`, one JSON object per line, one line per scene, scenes in sorted file
order):

    {"scene_id": str, "file": str (relative to --scenes), "vocab_sha256": str, "version": 2, "threshold":
    0.95,
     "cap": 256, "num_rows": V, "num_pass": int (rows >= threshold before the cap),
     "teachers": [row, ...], "scores": [EPDMS, ...]}

Sources (`--source`): `scenes` (default), a folder of scene files; `carla-snapshots`, `*.jsonl` logs of
`carla_tools.snapshots.SnapshotLogger`; `bench2drive`, Bench2Drive clip folders. Logs are first converted to
scene files under `<out>/scenes/<log>/<frame>.json.gz` (training/scoring/from_snapshot.py; files already there
are kept) and the index's scene ids are `<log>/<frame>`. Logs or scenes that cannot be converted (a gap in the
frames, an unknown town) are reported one line each and skipped; the exit status is then 1.

Resumable: lines already present for the same vocabulary/threshold/cap/version are kept and their scenes
skipped;
a truncated last line (interrupted write) is dropped. Lines are appended and flushed one scene at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drive_jepa.atomic import atomic_file

INDEX_NAME = "teachers.jsonl"
SCENE_SUFFIXES = (".json.gz", ".json")


@dataclass(frozen=True)
class TeacherConfig:
    threshold: float = 0.95
    cap: int = 256
    batch: int = 4096
    version: int = 2
    device: str = "cpu"


def scene_files(root: Path) -> list[Path]:
    """Scene files under `root` (recursively), sorted by relative path; candidate/expected npz are ignored."""
    files = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(SCENE_SUFFIXES)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def select_teachers(scores: Any, threshold: float, cap: int) -> tuple[list[int], list[float], int]:
    """Scores (V,) torch tensor -> (rows, scores, number passing) in deterministic order."""
    import torch

    passing = torch.nonzero(scores >= threshold).squeeze(1)
    # sort by score descending; stable sort on ascending row index keeps ties in row order
    order = torch.sort(-scores[passing], stable=True).indices
    rows = passing[order][: cap if cap > 0 else None]
    return [int(r) for r in rows], [float(scores[r]) for r in rows], len(passing)


def score_scene(path: Path, vocab: Any, cfg: TeacherConfig) -> Any:
    """EPDMS (or PDMS) of every vocabulary row on one scene, batched -> (V,) float64 tensor."""
    import torch

    from training.scoring.scene import load_scene_json
    from training.scoring.scorer import PDMScorer

    scorer = PDMScorer(load_scene_json(path), device=cfg.device)
    key = "epdms" if cfg.version == 2 else "pdms"
    parts = [
        scorer.score(vocab[i : i + cfg.batch], 0.1, cfg.version)[key].cpu() for i in range(0, len(vocab), cfg.batch)
    ]
    return torch.cat(parts)


def read_index(path: Path) -> list[dict[str, Any]]:
    """Valid lines of an index file; a truncated last line is dropped."""
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i >= len(lines) - 2:  # last (possibly unterminated) line: interrupted write
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON line ({e})") from e
    return out


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    with atomic_file(path) as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def run(
    scenes: Path,
    vocab_path: Path,
    out: Path,
    cfg: TeacherConfig,
    progress: bool = True,
    scene_id_from_path: bool = False,
) -> Path:
    """Score every scene file under `scenes`; `scene_id_from_path`: scene id = relative path without the suffix
    (`<log>/<frame>`, the Bench2Drive sample token) instead of the file name stem."""
    import numpy as np
    import torch
    from tqdm import tqdm

    vocab_np = np.load(vocab_path)
    if vocab_np.ndim != 3 or vocab_np.shape[1:] != (40, 3):
        raise ValueError(f"{vocab_path}: expected a (V, 40, 3) vocabulary, got shape {vocab_np.shape}")
    vocab = torch.from_numpy(vocab_np.astype(np.float64))
    vhash = file_sha256(vocab_path)
    files = scene_files(scenes)
    if not files:
        raise ValueError(f"{scenes}: no scene files ({', '.join(SCENE_SUFFIXES)}) found")
    out.mkdir(parents=True, exist_ok=True)
    index = out / INDEX_NAME
    meta = {"vocab_sha256": vhash, "version": cfg.version, "threshold": cfg.threshold, "cap": cfg.cap}
    done = read_index(index)
    for r in done:
        for k, v in meta.items():
            if r.get(k) != v:
                raise ValueError(
                    f"{index}: existing line for {r.get('scene_id')} has {k}={r.get(k)!r}, this run {v!r}; "
                    "use another --out or the same settings"
                )
    _rewrite(index, done)  # drop a truncated tail before appending
    seen = {r["file"] for r in done}
    todo = [p for p in files if p.relative_to(scenes).as_posix() not in seen]
    with open(index, "a", encoding="utf-8") as f:
        for path in tqdm(todo, desc="teachers", unit="scene", disable=not progress):
            scores = score_scene(path, vocab, cfg)
            rows, vals, n_pass = select_teachers(scores, cfg.threshold, cfg.cap)
            rel = path.relative_to(scenes).as_posix()
            scene_id = rel.split(".")[0] if scene_id_from_path else path.name.split(".")[0]
            rec = {
                "scene_id": scene_id,
                "file": path.relative_to(scenes).as_posix(),
                **meta,
                "num_rows": len(vocab),
                "num_pass": n_pass,
                "teachers": rows,
                "scores": vals,
            }
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return index


def load_index(path: Path) -> dict[str, dict[str, Any]]:
    """Teacher index -> {scene_id: record}."""
    return {r["scene_id"]: r for r in read_index(path)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa teachers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--source",
        choices=("scenes", "carla-snapshots", "bench2drive"),
        default="scenes",
        help="what --scenes holds: scene files (default); carla_tools snapshot logs (*.jsonl); Bench2Drive clip "
        "folders (<clip>/anno/*.json.gz). Logs are converted first to OUT/scenes/<log>/<frame>.json.gz "
        "(kept between runs), scene id = <log>/<frame>",
    )
    p.add_argument("--scenes", type=Path, required=True, help="input dir (see --source)")
    p.add_argument("--maps", type=Path, default=None, help="CARLA town SUMO nets (default: the shipped lite maps)")
    p.add_argument("--town", default=None, help="town of snapshot logs that do not record it (e.g. Town01)")
    p.add_argument("--every", type=float, default=0.5, help="log sources: one scene every this many seconds")
    p.add_argument(
        "--reference",
        choices=("expert", "idm"),
        default="expert",
        help="log sources: EP reference in place of NAVSIM's PDM-Closed: the logged expert (default) or an IDM "
        "rollout along the route centreline at the speed limit (docs/scorer.md, 'Scenes from CARLA logs')",
    )
    p.add_argument("--vocab", type=Path, required=True, help="(V, 40, 3) .npy vocabulary")
    p.add_argument("--out", type=Path, required=True, help=f"output dir (writes {INDEX_NAME})")
    p.add_argument("--threshold", type=float, default=TeacherConfig.threshold)
    p.add_argument("--cap", type=int, default=TeacherConfig.cap, help="max teachers per scene (0 = no cap)")
    p.add_argument("--batch", type=int, default=TeacherConfig.batch, help="vocabulary rows per scorer batch")
    p.add_argument("--version", type=int, choices=(1, 2), default=2, help="2: EPDMS (default), 1: PDMS")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = TeacherConfig(
        threshold=args.threshold, cap=args.cap, batch=args.batch, version=args.version, device=args.device
    )
    errors: list[str] = []
    try:
        scenes, by_path = args.scenes, False
        if args.source != "scenes":
            from training.scoring.from_snapshot import SceneConfig, convert_logs

            scenes, by_path = args.out / "scenes", True
            paths = convert_logs(
                args.source,
                args.scenes,
                scenes,
                args.maps,
                SceneConfig(every_s=args.every, reference=args.reference),
                args.town,
            )
            if not paths:
                raise ValueError(f"{args.scenes}: logs too short for a scene (1.5 s history + 4 s future)")
        index = run(scenes, args.vocab, args.out, cfg, progress=not args.no_progress, scene_id_from_path=by_path)
    except (ValueError, OSError) as e:
        print(f"teachers: {e}", file=sys.stderr)
        return 2
    recs = read_index(index)
    print(f"{index}: {len(recs)} scenes, {sum(len(r['teachers']) for r in recs)} teachers")
    return 1 if errors else 0

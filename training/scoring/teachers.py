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
     "teachers": [row, ...], "scores": [EPDMS, ...],
     "labels": {"names": [nc, dac, ddc, tlc, ep, ttc, lk, hc, ec], "rows": [row, ...], "subscores": [[...], ...]}}

`labels` (scorer-head supervision, `--label-rows`, default 32): the sub-scores of the best 8 rows and of random
others (seeded by the scene id); `ec` is Extended Comfort against the previous frame's plan where the scene has one,
else 1. `extended_comfort` (bool) in each line says whether the scene's EPDMS includes EC.

Sources (`--source`): `scenes` (default), a folder of scene files; `navsim-cache`, a folder written by navsim's
`run_metric_caching` (`<log>/<scenario type>/<token>/metric_cache.pkl`, or the paths of its `metadata/*.csv`;
needs navsim installed, see docs/datasets.md), scene id = token, each cache paired with the same log's frame
0.5 s earlier for Extended Comfort as navsim pairs tokens (the previous plan = that frame's logged future);
`carla-snapshots`, `*.jsonl` logs of
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drive_jepa.atomic import atomic_file
from training.scoring.vocab import DEFAULT_VOCABULARY, vocabulary_file

INDEX_NAME = "teachers.jsonl"
SCENE_SUFFIXES = (".json.gz", ".json")
NOT_SCENES = {"manifest.json", "meta.json", "summary.json"}  # JSON files that scene folders hold beside the scenes


@dataclass(frozen=True)
class TeacherConfig:
    threshold: float = 0.95
    cap: int = 256
    batch: int = 4096
    version: int = 2
    device: str = "cpu"
    label_rows: int = 32  # vocabulary rows per scene whose sub-scores are kept as scorer labels (0 = none)
    label_top: int = 8  # of them, the best rows by score; the rest drawn at random (seeded by the scene id)


# planner score-head names (agent.planner.config.EPDMS_SUBSCORES) -> the scorer's (human-filtered) outputs; EC needs
# the previous frame's plan: without one (the scorer then has no `extended_comfort`) its label is 1
LABEL_KEYS = {
    "nc": "no_at_fault_collisions", "dac": "drivable_area_compliance", "ddc": "driving_direction_compliance",
    "tlc": "traffic_light_compliance", "ep": "ego_progress", "ttc": "time_to_collision_within_bound",
    "lk": "lane_keeping", "hc": "history_comfort", "ec": "extended_comfort",
}  # fmt: skip


def scene_files(root: Path) -> list[Path]:
    """Scene files under `root` (recursively), sorted by relative path; candidate/expected npz are ignored."""
    files = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(SCENE_SUFFIXES) and p.name not in NOT_SCENES]
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


def score_scene(scene: Any, vocab: Any, cfg: TeacherConfig, with_subscores: bool = False) -> Any:
    """EPDMS (or PDMS) of every vocabulary row on one scene (a `Scene` or a scene file), batched -> (V,) float64
    tensor; `with_subscores`: also the (V, K) sub-scores of `LABEL_KEYS` (as a pair)."""
    import torch

    from training.scoring.scene import load_scene_json
    from training.scoring.scorer import PDMScorer

    scorer = PDMScorer(load_scene_json(scene) if isinstance(scene, str | Path) else scene, device=cfg.device)
    key = "epdms" if cfg.version == 2 else "pdms"
    totals, subs = [], []
    for i in range(0, len(vocab), cfg.batch):
        out = scorer.score(vocab[i : i + cfg.batch], 0.1, cfg.version)
        totals.append(out[key].cpu())
        if with_subscores:
            n = len(out[key])
            subs.append(
                torch.stack(
                    [out[k].cpu() if k in out else torch.ones(n, dtype=torch.float64) for k in LABEL_KEYS.values()], 1
                )
            )
    total = torch.cat(totals)
    return (total, torch.cat(subs)) if with_subscores else total


def label_rows(scores: Any, scene_id: str, rows: int, top: int) -> list[int]:
    """Vocabulary rows whose sub-scores become scorer labels: the `top` best by score (ties by row index), then
    random other rows, drawn with a generator seeded by the scene id (the same rows on every run)."""
    import zlib

    import numpy as np

    s = np.asarray(scores, np.float64)
    rows = min(rows, len(s))
    best = [int(i) for i in np.lexsort((np.arange(len(s)), -s))[: min(top, rows)]]
    rest = np.setdiff1d(np.arange(len(s)), best)
    rng = np.random.default_rng(zlib.crc32(scene_id.encode()))
    return best + [int(i) for i in rng.choice(rest, rows - len(best), replace=False)]


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


def read_vocabulary_rows(path: Path) -> Any:
    """A (V, 40, 3) finite vocabulary from a .npy file, or a one-line ValueError naming what is wrong."""
    from training.scoring.vocab import read_pose_array

    arr = read_pose_array(path, "vocabulary")
    if arr.shape[1:] != (40, 3):
        raise ValueError(f"{path}: expected a (V, 40, 3) vocabulary (40 poses at 0.1 s), got shape {arr.shape}")
    return arr


def _scenes(source: str, root: Path, todo: list[Path]) -> Iterator[tuple[Path, Any]]:
    """(file, Scene or scene file) for the files still to score, in order."""
    if source == "navsim-cache":
        from training.scoring.from_metric_cache import scenes_from_cache_folder

        yield from scenes_from_cache_folder(root, todo)
    else:
        yield from ((p, p) for p in todo)


def run(
    scenes: Path,
    vocab_path: Path,
    out: Path,
    cfg: TeacherConfig,
    progress: bool = True,
    scene_id_from_path: bool = False,
    max_seconds: float = 0.0,
    source: str = "scenes",
) -> Path:
    """Score every scene under `scenes`: scene files, or with `source="navsim-cache"` a navsim metric-cache folder
    (scene id = the token folder's name; each cache paired with the log's frame 0.5 s earlier for Extended
    Comfort, as navsim pairs them). `scene_id_from_path`: scene id = relative path without the suffix
    (`<log>/<frame>`, the Bench2Drive sample token) instead of the file name stem. `max_seconds` > 0: stop after
    the scene that passes this wall-time budget (a rerun continues with the rest)."""
    import time

    import numpy as np
    import torch
    from tqdm import tqdm

    from training.scoring.scene import SceneFormatError, load_scene_json

    vocab_np = read_vocabulary_rows(vocab_path)
    vocab = torch.from_numpy(vocab_np.astype(np.float64))
    vhash = file_sha256(vocab_path)
    if source == "navsim-cache":
        from training.scoring.from_metric_cache import CACHE_FILE, metric_cache_files

        files = metric_cache_files(scenes)
        if not files:
            raise ValueError(f"{scenes}: no navsim metric caches ({CACHE_FILE}) found")
    else:
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
    t_start = time.monotonic()
    with open(index, "a", encoding="utf-8") as f:
        bar = tqdm(total=len(todo), desc="teachers", unit="scene", disable=not progress)
        n_done = 0
        items = _scenes(source, scenes, todo)
        while True:
            try:
                item = next(items, None)
                if item is None:
                    break
                path, scene = item
                if isinstance(scene, Path):
                    scene = load_scene_json(scene)
                scores, subs = score_scene(scene, vocab, cfg, with_subscores=True)
            except SceneFormatError as exc:  # one line; every scene scored before it stays in the index
                raise ValueError(
                    f"{exc} ({len(done) + n_done} scenes scored so far are kept in {index}; fix or move that file "
                    "and rerun to continue)"
                ) from None
            rows, vals, n_pass = select_teachers(scores, cfg.threshold, cfg.cap)
            rel = path.relative_to(scenes).as_posix()
            if source == "navsim-cache":
                scene_id = path.parent.name  # the token
            else:
                scene_id = rel.split(".")[0] if scene_id_from_path else path.name.split(".")[0]
            labels = None
            if cfg.label_rows > 0:
                picked = label_rows(scores, scene_id, cfg.label_rows, cfg.label_top)
                labels = {
                    "names": list(LABEL_KEYS),
                    "rows": picked,
                    "subscores": [[round(float(x), 4) for x in subs[r]] for r in picked],
                }
            rec = {
                "scene_id": scene_id,
                "file": path.relative_to(scenes).as_posix(),
                **meta,
                "num_rows": len(vocab),
                "num_pass": n_pass,
                "teachers": rows,
                "scores": vals,
                # EPDMS with Extended Comfort (the scene has its previous frame) or without it (weights /14)
                "extended_comfort": scene.previous is not None,
            }
            if labels is not None:
                rec["labels"] = labels
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
            n_done += 1
            bar.update(1)
            if max_seconds > 0 and time.monotonic() - t_start > max_seconds:
                print(f"teachers: time budget of {max_seconds:.0f} s spent: {len(todo) - n_done} scenes left "
                      "(rerun the same command to score them)")  # fmt: skip
                break
        bar.close()
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
        choices=("scenes", "navsim-cache", "carla-snapshots", "bench2drive"),
        default="scenes",
        help="what --scenes holds: scene files (default); a navsim metric-cache folder (navsim's "
        "run_metric_caching output, <log>/<type>/<token>/metric_cache.pkl; needs navsim installed; scene id = "
        "token); carla_tools snapshot logs (*.jsonl); Bench2Drive clip folders (<clip>/anno/*.json.gz). Logs are "
        "converted first to OUT/scenes/<log>/<frame>.json.gz (kept between runs), scene id = <log>/<frame>",
    )
    p.add_argument("--scenes", type=Path, required=True, help="input dir (see --source)")
    p.add_argument("--maps", type=Path, default=None, help="CARLA town SUMO nets (default: the shipped lite maps)")
    p.add_argument("--town", default=None, help="town of snapshot logs that do not record it (e.g. Town01)")
    p.add_argument("--every", type=float, default=0.5, help="log sources: one scene every this many seconds")
    p.add_argument(
        "--map-radius", type=float, default=100.0,
        help="log sources: half-size (m) of the map square kept around the ego (70 is enough for the 8192 "
        "vocabulary, whose rows end within 59 m, and prepares each scene faster)",
    )  # fmt: skip
    p.add_argument(
        "--reference",
        choices=("expert", "idm"),
        default="expert",
        help="log sources: EP reference in place of NAVSIM's PDM-Closed: the logged expert (default) or an IDM "
        "rollout along the route centreline at the speed limit (docs/scorer.md, 'Scenes from CARLA logs')",
    )
    p.add_argument(
        "--vocab",
        type=vocabulary_file,
        default=vocabulary_file(DEFAULT_VOCABULARY),
        help="(V, 40, 3) .npy vocabulary, or a shipped one's name (default: navsim_8192, the published 8192 rows)",
    )
    p.add_argument("--out", type=Path, required=True, help=f"output dir (writes {INDEX_NAME})")
    p.add_argument("--threshold", type=float, default=TeacherConfig.threshold)
    p.add_argument("--cap", type=int, default=TeacherConfig.cap, help="max teachers per scene (0 = no cap)")
    p.add_argument("--batch", type=int, default=TeacherConfig.batch, help="vocabulary rows per scorer batch")
    p.add_argument("--version", type=int, choices=(1, 2), default=2, help="2: EPDMS (default), 1: PDMS")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--label-rows", type=int, default=TeacherConfig.label_rows,
        help="rows per scene whose sub-scores are kept as scorer labels (0 = none)",
    )  # fmt: skip
    p.add_argument(
        "--max-seconds", type=float, default=0.0,
        help="stop scoring after this many seconds (0: no limit); the index stays valid and a rerun continues",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch threads of the scorer (default 1: scale out with one process per core instead; two 2-thread "
        "scorers on 2 cores ran 7x slower than two 1-thread ones)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        print(f"teachers: --threads must be ≥ 1, got {args.threads}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    cfg = TeacherConfig(
        threshold=args.threshold,
        cap=args.cap,
        batch=args.batch,
        version=args.version,
        device=args.device,
        label_rows=max(0, args.label_rows),
    )
    errors: list[str] = []
    try:
        scenes, by_path = args.scenes, False
        if args.source not in ("scenes", "navsim-cache"):
            from training.scoring.from_snapshot import SceneConfig, convert_logs

            scenes, by_path = args.out / "scenes", True
            paths = convert_logs(
                args.source,
                args.scenes,
                scenes,
                args.maps,
                SceneConfig(every_s=args.every, reference=args.reference, map_radius_m=args.map_radius),
                args.town,
            )
            if not paths:
                raise ValueError(f"{args.scenes}: logs too short for a scene (1.5 s history + 4 s future)")
        index = run(
            scenes, args.vocab, args.out, cfg, progress=not args.no_progress, scene_id_from_path=by_path,
            max_seconds=args.max_seconds, source=args.source,
        )  # fmt: skip
    except (ValueError, OSError, ImportError) as e:
        print(f"teachers: {e}", file=sys.stderr)
        return 2
    recs = read_index(index)
    with_ec = sum(1 for r in recs if r.get("extended_comfort"))
    print(f"{index}: {len(recs)} scenes, {sum(len(r['teachers']) for r in recs)} teachers")
    if args.version == 2 and with_ec < len(recs):
        print(
            f"  Extended Comfort: {with_ec} of {len(recs)} scenes have their previous frame; the other "
            f"{len(recs) - with_ec} are scored without EC (EPDMS weights /14, as navsim without an adjacent frame)"
        )
    return 1 if errors else 0

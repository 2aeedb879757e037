"""Bench2Drive / leaderboard results files: reading, validating, merging and writing.

Two on-disk formats exist (see docs/bench2drive_results.md and the fixture README):

* **A, checkpoint** — written by the leaderboard's `StatisticsManager`, one per evaluation process:
  `{"_checkpoint": {"global_record", "progress", "records"}, "entry_status", "eligible", "sensors", "values",
  "labels"}`; every record carries an `index`.
* **B, merged** — written by Bench2Drive's `tools/merge_route_json.py`; the format of every published
  result:
  `{"_checkpoint": {"records"}, "driving score", "success rate", "eval num"}`; records have no `index`.

`merge_records` reproduces `merge_route_json.py` (Bench2Drive 7ec25d1) arithmetic exactly — Σ score_composed
/ 220 and #successes / 220 summed in reading order, records sorted by `route_id` string descending with a
stable sort — except that duplicate `route_id`s are de-duplicated (the later record wins) unless
`deduplicate_ids=False`. Route completion is in percent (0–100), penalties are multipliers in [0, 1],
lengths in metres, durations in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drive_jepa.atomic import write_json_atomic

SUCCESS_STATUSES: frozenset[str] = frozenset({"Completed", "Perfect"})

# Every status string the Bench2Drive leaderboard writes (statistics_manager.py / leaderboard_evaluator.py).
KNOWN_STATUSES: frozenset[str] = frozenset(
    {
        "Perfect",
        "Completed",
        "Failed",
        "Failed - Agent got blocked",
        "Failed - Agent deviated from the route",
        "Failed - Agent timed out",
        "Failed - TickRuntime",
        "Failed - Agent crashed",
        "Failed - Agent couldn't be set up",
        "Failed - Agent's sensors were invalid",
        "Failed - Simulation crashed",
    }
)

# merge_route_json.py and ability_benchmark.py divide by this hard-coded route count (quirk 1).
TOOL_ROUTE_COUNT = 220

MERGED_NAME = "merged.json"


class ResultsFileError(ValueError):
    """A results file is missing, truncated, not JSON, or not in checkpoint/merged format."""


def is_success(record: Mapping[str, Any]) -> bool:
    """Bench2Drive's success rule (merge and ability tools): status Completed/Perfect and every
    infraction list other than `min_speed_infractions` empty. `num_infractions` is not consulted (quirk 6)."""
    if record.get("status") not in SUCCESS_STATUSES:
        return False
    infractions = record.get("infractions") or {}
    return all(not v for k, v in infractions.items() if k != "min_speed_infractions")


def route_number(route_id: str) -> str:
    """The tools' route id: `route_id.split('_')[1]` (`"RouteScenario_1711_rep0"` → `"1711"`)."""
    parts = route_id.split("_")
    return parts[1] if len(parts) > 1 else route_id


@dataclass(frozen=True)
class ResultsFile:
    """One parsed results file. `records` are copies in file order (`index` removed)."""

    path: Path
    kind: str  # "checkpoint" | "merged"
    records: tuple[dict[str, Any], ...]
    entry_status: str | None = None
    progress: tuple[int, int] | None = None
    stored_top_level: dict[str, Any] = field(default_factory=dict)  # merged files: driving score / SR / eval num


def _check_record(rec: Any, where: str) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise ResultsFileError(f"{where}: expected a record object, got {type(rec).__name__}")
    rid = rec.get("route_id")
    if not isinstance(rid, str) or not rid.startswith("RouteScenario_"):
        raise ResultsFileError(f"{where}: 'route_id' must be a string 'RouteScenario_<id>_rep<k>', got {rid!r}")
    where = f"{where} ({rid})"
    if not isinstance(rec.get("status"), str):
        raise ResultsFileError(f"{where}: 'status' must be a string, got {rec.get('status')!r}")
    scores = rec.get("scores")
    if not isinstance(scores, dict):
        raise ResultsFileError(f"{where}: 'scores' must be an object with score_route/score_penalty/score_composed")
    for key in ("score_route", "score_penalty", "score_composed"):
        val = scores.get(key)
        if not isinstance(val, (int, float)) or isinstance(val, bool):
            raise ResultsFileError(f"{where}: 'scores.{key}' must be a number, got {val!r}")
    infractions = rec.get("infractions")
    if not isinstance(infractions, dict):
        raise ResultsFileError(f"{where}: 'infractions' must be an object of message lists")
    for key, val in infractions.items():
        if not isinstance(val, list) or not all(isinstance(m, str) for m in val):
            raise ResultsFileError(f"{where}: 'infractions.{key}' must be a list of message strings")
    meta = rec.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise ResultsFileError(f"{where}: 'meta' must be an object")
    out = dict(rec)
    out.pop("index", None)
    return out


def parse_results(data: Any, path: Path) -> ResultsFile:
    """Validate decoded JSON as format A (checkpoint) or B (merged).

    Raises `ResultsFileError` naming the file, the record and the field."""
    if not isinstance(data, dict):
        raise ResultsFileError(f"{path}: expected a JSON object at top level, got {type(data).__name__}")
    ckpt = data.get("_checkpoint")
    if not isinstance(ckpt, dict):
        hint = " (this looks like an *_ability.json output)" if "crashed" in data else ""
        raise ResultsFileError(
            f"{path}: no '_checkpoint' object; expected a leaderboard checkpoint or a merged results file{hint}"
        )
    records = ckpt.get("records")
    if not isinstance(records, list):
        raise ResultsFileError(f"{path}: '_checkpoint.records' must be a list")
    kind = "merged" if "driving score" in data or "global_record" not in ckpt else "checkpoint"
    parsed = tuple(_check_record(r, f"{path}: record {i}") for i, r in enumerate(records))
    progress = ckpt.get("progress")
    prog: tuple[int, int] | None = None
    if isinstance(progress, list) and len(progress) == 2 and all(isinstance(p, int) for p in progress):
        prog = (progress[0], progress[1])
    top = {k: data[k] for k in ("driving score", "success rate", "eval num") if k in data}
    entry = data.get("entry_status")
    return ResultsFile(path, kind, parsed, entry if isinstance(entry, str) else None, prog, top)


def load_results_file(path: Path | str) -> ResultsFile:
    """Read one results JSON (checkpoint or merged). Truncated / invalid files raise a one-line error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: results file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot read ({exc})") from None
    if not text.strip():
        raise ResultsFileError(f"{path}: empty file (interrupted write?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1
        what = "truncated JSON (interrupted write?)" if truncated else "invalid JSON"
        raise ResultsFileError(f"{path}: {what} at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_results(data, path)


def is_eval_folder(path: Path) -> bool:
    """A `drive-jepa eval` output folder (docs/evaluation.md): `records/` and the merged results file."""
    return path.is_dir() and (path / "records").is_dir() and (path / MERGED_NAME).is_file()


def is_partial_eval_folder(path: Path) -> bool:
    """A `drive-jepa eval` folder that is running or was interrupted: `records/`, no merged results yet."""
    return path.is_dir() and (path / "records").is_dir() and not (path / MERGED_NAME).is_file()


@dataclass(frozen=True)
class EvalFolderRecords:
    """The leaderboard records of a running / interrupted `drive-jepa eval` folder, read from `records/`."""

    results: ResultsFile  # kind "checkpoint", path = the records folder
    without_record: tuple[str, ...]  # route repetitions that have a record file but no result yet (pending, failed)


def read_eval_folder_records(folder: Path) -> EvalFolderRecords:
    """Read `folder/records/*.json` (one doc per route repetition; its `record` is the leaderboard result, or
    null while pending / after a failure). A bad doc is a one-line error naming it."""
    records: list[dict[str, Any]] = []
    missing: list[str] = []
    for f in sorted((folder / "records").glob("*.json")):
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsFileError(f"{f}: unreadable route record ({exc})") from None
        if not isinstance(doc, dict):
            raise ResultsFileError(f"{f}: expected a route record object, got {type(doc).__name__}")
        if doc.get("record") is None:
            missing.append(f.stem)
        else:
            records.append(_check_record(doc["record"], f"{f}: record"))
    if not records and not missing:
        raise ResultsFileError(f"{folder}: an eval folder with no route records yet (records/ is empty)")
    results = ResultsFile(folder / "records", "checkpoint", tuple(records))
    return EvalFolderRecords(results, tuple(missing))


def expand_inputs(paths: Sequence[Path | str]) -> list[Path]:
    """Files in the given order; a `drive-jepa eval` folder contributes its `merged.json`; any other folder (e.g.
    the per-split checkpoints of a parallel Bench2Drive run) its `*.json` files sorted by name, skipping any path
    that contains `merged.json` (as merge_route_json.py does) and `*_ability.json` outputs."""
    out: list[Path] = []
    for p in map(Path, paths):
        if is_eval_folder(p):  # a `drive-jepa eval` output folder: its merged results
            out.append(p / MERGED_NAME)
        elif p.is_dir():
            found = [
                f
                for f in sorted(p.glob("*.json"))
                if MERGED_NAME not in str(f) and not f.name.endswith("_ability.json")
            ]
            if not found:
                raise ResultsFileError(
                    f"{p}: no results here (expected a drive-jepa eval folder or Bench2Drive results *.json files)"
                )
            out.extend(found)
        else:
            out.append(p)
    return out


def deduplicate(records: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Keep the last record per `route_id` (a resumed / re-run route supersedes the earlier attempt), at the
    position of that last record. Returns (records, ids that had duplicates, in first-seen order)."""
    last: dict[str, int] = {}
    for i, rec in enumerate(records):
        last[str(rec["route_id"])] = i
    counts: dict[str, int] = {}
    for rec in records:
        rid = str(rec["route_id"])
        counts[rid] = counts.get(rid, 0) + 1
    kept = [dict(rec) for i, rec in enumerate(records) if last[str(rec["route_id"])] == i]
    return kept, [rid for rid, n in counts.items() if n > 1]


def merge_records(records: Sequence[Mapping[str, Any]], *, deduplicate_ids: bool = True) -> dict[str, Any]:
    """Merged file (format B) exactly as merge_route_json.py builds it, from records in reading order.

    `driving score` = Σ score_composed / 220 and `success rate` = #successes / 220, both summed in reading
    order (so floats match the tool bit for bit); `eval num` = number of records; records sorted by
    `route_id` string descending (stable). With `deduplicate_ids` (default) a repeated `route_id` keeps only
    its later record; with False every record is counted, as the tool does (quirk 2)."""
    recs = deduplicate(records)[0] if deduplicate_ids else [dict(r) for r in records]
    for rec in recs:
        rec.pop("index", None)
    scores = [rec["scores"]["score_composed"] for rec in recs]
    successes = sum(1 for rec in recs if is_success(rec))
    ordered = sorted(recs, key=lambda r: r["route_id"], reverse=True)
    merged: dict[str, Any] = {
        "_checkpoint": {"records": ordered},
        "driving score": sum(scores) / TOOL_ROUTE_COUNT,
        "success rate": successes / TOOL_ROUTE_COUNT,
        "eval num": len(scores),
    }
    if any(is_lite_record(r) for r in recs):  # an extra key the tools ignore: these are not CARLA results
        merged["world"] = LITE_WORLD
    return merged


LITE_WORLD = "lite"
LITE_MARK = " (lite world)"  # appended to the name of a run evaluated in the CPU lite world, wherever it is shown


def is_lite_record(record: Mapping[str, Any]) -> bool:
    """A record of the CPU lite world (`meta.world`, or the lite-only `meta.lite_scenarios` of older runs)."""
    meta = record.get("meta") or {}
    return meta.get("world") == LITE_WORLD or "lite_scenarios" in meta


@dataclass(frozen=True)
class Headline:
    """The figures to show for a set of evaluated records: strict DS and SR over the routes evaluated (what a
    researcher means by DS), and the tools' /220 compat DS of merged.json beside it."""

    driving_score: float  # mean score_composed over the evaluated (deduplicated) records, 0–100
    success_rate: float  # % of them that succeed (Bench2Drive's rule)
    evaluated: int
    compat_220: float  # Σ score_composed / 220, as merge_route_json.py and merged.json's "driving score"

    def text(self, expected: int | None = None) -> str:
        of = f" of {expected}" if expected is not None else ""
        routes = "route" if (expected if expected is not None else self.evaluated) == 1 else "routes"
        return (
            f"driving score {self.driving_score:.2f}, success rate {self.success_rate:.2f} % "
            f"(strict, {self.evaluated}{of} {routes} evaluated; Bench2Drive /220 compat DS {self.compat_220:.2f})"
        )


def headline(records: Sequence[Mapping[str, Any]]) -> Headline | None:
    """`Headline` of records (a repeated route_id keeps its later record); None without records."""
    recs = deduplicate(records)[0]
    if not recs:
        return None
    scores = [float(r["scores"]["score_composed"]) for r in recs]
    ok = sum(1 for r in recs if is_success(r))
    return Headline(sum(scores) / len(scores), 100.0 * ok / len(recs), len(recs), sum(scores) / TOOL_ROUTE_COUNT)


def write_merged(merged: Mapping[str, Any], path: Path) -> None:
    """Write a merged results dict atomically with the tool's layout (`json.dump(..., indent=4)`)."""
    write_json_atomic(Path(path), dict(merged), indent=4)

"""One run's results, read and aggregated in both modes: what `drive-jepa report` renders.

* **compat** — exactly what Bench2Drive's tools print for the same files (merge on the records in reading
  order without de-duplication, /220, ability on the merged order with the first record per route,
  efficiency and comfort over every merged record), including where a tool would die (reported, not raised).
* **strict** — the documented quirks fixed: duplicates de-duplicated (latest wins), the expected route set
  taken from the route XML (missing routes count 0 and are listed; records of routes not in the XML are
  excluded and listed), abilities with missing routes as failures and no partial credit, empty sets give
  n/a, comfort in SI units at the real 20 Hz step, off-lane distance per km driven.

Reading order: the input paths in the order given; a folder contributes its `*.json` sorted by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench2drive.abilities import (
    ABILITIES,
    AbilityResult,
    RouteSpec,
    compute_abilities,
    compute_abilities_strict,
    strict_mean,
)
from bench2drive.comfort import ComfortResult, driving_smoothness
from bench2drive.metrics import (
    GroupRow,
    RouteResult,
    StrictScores,
    ToolFailure,
    breakdown,
    compat_scores,
    driving_efficiency_compat,
    driving_efficiency_strict,
    infractions_per_km,
    infractions_per_km_strict,
    route_result,
    strict_scores,
)
from bench2drive.results import (
    LITE_MARK,
    TOOL_ROUTE_COUNT,
    ResultsFile,
    deduplicate,
    expand_inputs,
    is_lite_record,
    is_partial_eval_folder,
    load_results_file,
    merge_records,
    read_eval_folder_records,
    route_number,
)
from drive_jepa.routes import Route, load_routes

PENALTY_TOLERANCE = 2e-4  # off-lane % is printed with 2 decimals, so a recomputed penalty is only this close


@dataclass(frozen=True)
class DuplicateEntry:
    file: str
    position: int  # index in reading order
    status: str
    driving_score: float
    kept: bool


@dataclass
class ReaderReport:
    files: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[str, list[DuplicateEntry]] = field(default_factory=dict)
    unknown_statuses: list[tuple[str, str]] = field(default_factory=list)  # (route_id, status)
    not_in_routes: list[str] = field(default_factory=list)
    penalty_mismatch: list[tuple[str, float, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CompatMetrics:
    driving_score: float  # points, /220
    success_rate: float  # fraction, /220
    eval_num: int
    ability_v004: AbilityResult
    ability_v003: AbilityResult
    efficiency: float | None
    efficiency_error: str | None
    tool_stdout_warning: str | None


@dataclass(frozen=True)
class StrictMetrics:
    scores: StrictScores
    ability: AbilityResult
    efficiency: float | None
    per_km: dict[str, float]


@dataclass
class RunSummary:
    name: str
    inputs: list[Path]
    route_file: Path | None
    route_set_source: str  # "route file" | "records"
    specs: list[RouteSpec]
    reader: ReaderReport
    merged_compat: dict[str, Any]
    merged_strict: dict[str, Any]
    compat: CompatMetrics
    strict: StrictMetrics
    by_route: dict[str, RouteResult]  # strict (de-duplicated, in the route set)
    comfort: ComfortResult | None
    per_km_compat: dict[str, float]
    by_town: list[GroupRow]
    by_scenario: list[GroupRow]
    by_status: list[GroupRow]

    @property
    def missing(self) -> tuple[str, ...]:
        return self.strict.scores.missing


_SAVE_TIME = re.compile(r"_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{2})$")


def _save_time(save_name: str | None) -> tuple[int, ...] | None:
    """(month, day, hour, minute, second) the leaderboard appends to `save_name` (no year), or None."""
    m = _SAVE_TIME.search(save_name or "")
    return tuple(int(g) for g in m.groups()) if m else None


def _specs_from_routes(routes: Sequence[Route]) -> list[RouteSpec]:
    return [RouteSpec(r.id, r.town, r.scenario_type or "") for r in routes]


def _specs_from_records(results: Sequence[RouteResult]) -> list[RouteSpec]:
    seen: dict[str, RouteSpec] = {}
    for r in results:
        seen.setdefault(r.route, RouteSpec(r.route, r.town or "?", r.scenario_type or "?"))
    return list(seen.values())


def summarize(
    name: str,
    inputs: Sequence[Path | str],
    routes: Sequence[Route] | None = None,
    route_file: Path | None = None,
    junctions: Mapping[str, float] | None = None,
    metric_dir: Path | None = None,
) -> RunSummary:
    """Read `inputs` (files or folders, one run) and compute everything the report shows."""
    reader = ReaderReport()
    files: list[ResultsFile] = []
    for item in map(Path, inputs):
        if is_partial_eval_folder(item):  # running or interrupted: its route records, and what is missing
            partial = read_eval_folder_records(item)
            files.append(partial.results)
            reader.warnings.append(
                f"{item}: no merged.json yet (eval running or interrupted): {len(partial.results.records)} route "
                f"records read, {len(partial.without_record)} routes started without a result"
                + (f" ({', '.join(partial.without_record[:5])}{', …' if len(partial.without_record) > 5 else ''})"
                   if partial.without_record else "")
                + "; rerun the eval command to finish"
            )  # fmt: skip
        else:
            files.extend(load_results_file(p) for p in expand_inputs([item]))
    records: list[dict[str, Any]] = []
    origin: list[str] = []
    for f in files:
        reader.files.append(
            {
                "path": str(f.path),
                "format": f.kind,
                "records": len(f.records),
                "entry_status": f.entry_status,
                "progress": list(f.progress) if f.progress else None,
            }
        )
        if f.kind == "checkpoint" and f.progress and len(set((*f.progress, len(f.records)))) > 1:
            reader.warnings.append(
                f"{f.path}: progress {list(f.progress)} with {len(f.records)} records: the run did not "
                "finish (resume it)"
            )
        if f.entry_status in ("Crashed", "Invalid", "Rejected"):
            reader.warnings.append(f"{f.path}: entry_status {f.entry_status}")
        records.extend(f.records)
        origin.extend([str(f.path)] * len(f.records))
    if routes is None and route_file is not None:
        routes = load_routes(route_file)
    if not routes:
        reader.warnings.append(
            "no route file: the route set is the records' own (missing routes cannot be counted); pass "
            "--routes, e.g. bench2drive220.xml"
        )
    route_map = {r.id: r for r in routes} if routes else {}

    def interpret(rec: Mapping[str, Any]) -> RouteResult:
        spec = route_map.get(route_number(str(rec["route_id"])))
        return route_result(rec, spec.town if spec else None, spec.scenario_type if spec else None)

    all_results = [interpret(r) for r in records]
    for res in all_results:
        if not res.known_status:
            reader.unknown_statuses.append((res.route_id, res.status))
        if abs(res.recomputed_penalty - res.penalty) > PENALTY_TOLERANCE:
            reader.penalty_mismatch.append((res.route_id, res.penalty, res.recomputed_penalty))

    # duplicates: later in reading order wins
    kept_records, dup_ids = deduplicate(records)
    for rid in dup_ids:
        idx = [i for i, r in enumerate(records) if r["route_id"] == rid]
        reader.duplicates[rid] = [
            DuplicateEntry(origin[i], i, all_results[i].status, all_results[i].driving_score, i == idx[-1]) for i in idx
        ]
        stamps = [t for t in (_save_time(all_results[i].save_name) for i in idx) if t is not None]
        if len(stamps) == len(idx) and stamps[-1] != max(stamps):
            reader.warnings.append(
                f"{rid}: the record kept (last in reading order) is not the one started last according to "
                "save_name timestamps; reorder the inputs if the other attempt should win"
            )

    # compat: the tool's merge (no de-dup), ability on merged order, efficiency over merged records
    merged_compat = merge_records(records, deduplicate_ids=False)
    merged_order = [interpret(r) for r in merged_compat["_checkpoint"]["records"]]
    ds, sr, n = compat_scores(all_results)
    specs = _specs_from_routes(routes) if routes else _specs_from_records(all_results)
    table = junctions or {}
    ab4 = compute_abilities(specs, merged_order, table, "v0.0.4")
    ab3 = compute_abilities(specs, merged_order, table, "v0.0.3")
    try:
        eff: float | None = driving_efficiency_compat(merged_order)
        eff_err = None
    except ToolFailure as exc:
        eff, eff_err = None, str(exc)
    warn = None
    if n != TOOL_ROUTE_COUNT:
        warn = (
            f"-----------------------Warning: there are {n} routes in your json, which does not equal to "
            f"{TOOL_ROUTE_COUNT}. All metrics (Driving Score, Success Rate, Ability) are inaccurate!!!"
        )
    compat = CompatMetrics(ds, sr, n, ab4, ab3, eff, eff_err, warn)

    # strict
    merged_strict = merge_records(records)
    strict_results = [interpret(r) for r in kept_records]
    expected = [s.route for s in specs]
    expected_set = set(expected)
    by_route: dict[str, RouteResult] = {}
    for res in strict_results:
        if res.route in expected_set:
            by_route[res.route] = res
        else:
            reader.not_in_routes.append(res.route_id)
    in_set = list(by_route.values())
    if routes and len(reader.not_in_routes) > len(in_set):
        reader.warnings.append(
            f"only {len(in_set)} of {len(strict_results)} routes are in {route_file or 'the route file'}: "
            "wrong --routes? (v0.0.4 results need bench2drive_0.0.4_val.xml)"
        )
    strict = StrictMetrics(
        scores=strict_scores(by_route, expected),
        ability=compute_abilities_strict(specs, by_route),
        efficiency=driving_efficiency_strict(in_set),
        per_km=infractions_per_km_strict(in_set),
    )
    comfort = None
    if metric_dir is not None:
        strict_ids = [r.route_id for r in in_set]
        comfort = driving_smoothness(merged_compat["_checkpoint"]["records"], metric_dir, strict_ids)

    groups_town: dict[str, list[RouteResult | None]] = {}
    groups_type: dict[str, list[RouteResult | None]] = {}
    groups_status: dict[str, list[RouteResult | None]] = {}
    for spec in specs:
        got = by_route.get(spec.route)
        groups_town.setdefault(spec.town, []).append(got)
        groups_type.setdefault(spec.scenario_type, []).append(got)
        groups_status.setdefault(got.status if got else "Missing (no record)", []).append(got)
    lite = any(is_lite_record(r) for f in files for r in f.records)
    if lite and not name.endswith(LITE_MARK):
        name += LITE_MARK  # every table, card, legend and headline then says which world the figures are from
    return RunSummary(
        name=name,
        inputs=[f.path for f in files],
        route_file=route_file,
        route_set_source="route file" if routes else "records",
        specs=specs,
        reader=reader,
        merged_compat=merged_compat,
        merged_strict=merged_strict,
        compat=compat,
        strict=strict,
        by_route=by_route,
        comfort=comfort,
        per_km_compat=infractions_per_km(all_results),
        by_town=breakdown(groups_town),
        by_scenario=breakdown(groups_type),
        by_status=breakdown(groups_status),
    )


def ability_table(summary: RunSummary) -> dict[str, dict[str, Any]]:
    """ability -> {v0.0.4, v0.0.4_hi, v0.0.3, strict, counts...} as fractions (None = n/a)."""
    out: dict[str, dict[str, Any]] = {}
    c4, c3, st = summary.compat.ability_v004, summary.compat.ability_v003, summary.strict.ability
    for a in [*ABILITIES, "mean"]:
        if a == "mean":
            out[a] = {
                "v0.0.4": c4.mean(),
                "v0.0.4_hi": c4.mean(upper=True),
                "v0.0.3": c3.mean(),
                "strict": strict_mean(st),
            }
            continue
        out[a] = {
            "v0.0.4": c4.value(a),
            "v0.0.4_hi": c4.value(a, upper=True),
            "v0.0.3": c3.value(a),
            "strict": st.value(a),
            "counts_v0.0.4": list(c4.counts[a]),
            "counts_strict": list(st.counts[a]),
        }
    return out

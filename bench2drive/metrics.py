"""Per-route values and aggregate Bench2Drive metrics (Driving Score, Success Rate, Efficiency, per-km rates).

Units: route completion (RC) and driving score (DS) in percent/points 0–100; penalty a multiplier in [0, 1];
success rate in the merged file a fraction 0–1 (the report shows percent); lengths in metres; rates per km.

`compat` functions reproduce Bench2Drive's tools (7ec25d1) including their quirks (fixture README, "Known
bugs and quirks"); `strict` functions fix them: the expected route set comes from the route XML (missing
routes count 0 and are listed), duplicates are de-duplicated (latest wins), nothing divides by a hard-coded
220, and no metric dies on an empty set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench2drive.results import KNOWN_STATUSES, TOOL_ROUTE_COUNT, is_success, route_number
from drive_jepa.leaderboard_format import INFRACTION_KEYS, PENALTY_FACTORS

# `min_speed_infractions` carry no penalty since 2024-08-19; route_dev / vehicle_blocked / route_timeout end
# the route without a factor. outside_route_lanes contributes (1 - P/100) with P its
# "% of the completed route".

# efficiency_smoothness_benchmark.py parses each min-speed message with this regex (first match only) and
# drops values strictly above 1000 %.
MIN_SPEED_RE = re.compile(r"\b\d+\.?\d*%")
EFFICIENCY_MAX_PCT = 1000.0
_OUTSIDE_RE = re.compile(r"for about ([\d.]+) meters \(([\d.]+)% of the completed route\)")


class ToolFailure(RuntimeError):
    """Raised in compat mode where Bench2Drive's tool itself dies (the message names its exception)."""


def min_speed_values(messages: Iterable[str]) -> list[float]:
    """Percent values of `min_speed_infractions` messages, parsed exactly as the efficiency tool does."""
    out = []
    for msg in messages:
        m = MIN_SPEED_RE.search(msg)
        if m is not None:
            out.append(float(m.group().rstrip("%")))
    return out


def outside_lanes(messages: Sequence[str]) -> tuple[float, float]:
    """(metres outside route lanes, percent of the completed route) from an `outside_route_lanes` message."""
    metres = pct = 0.0
    for msg in messages:
        m = _OUTSIDE_RE.search(msg)
        if m is not None:
            metres += float(m.group(1))
            pct += float(m.group(2))
    return metres, pct


@dataclass(frozen=True)
class RouteResult:
    """One route's record, interpreted. `route` is the tools' id (`route_id.split('_')[1]`)."""

    route_id: str
    route: str
    town: str | None
    scenario_type: str | None
    status: str
    route_completion: float  # %, 0-100
    penalty: float  # stored score_penalty
    driving_score: float  # stored score_composed
    success: bool
    num_infractions: int
    infraction_counts: dict[str, int]
    penalty_factors: dict[str, list[float]]  # infraction key -> one coefficient per message
    recomputed_penalty: float  # product of penalty_factors, rounded to 6 digits like the leaderboard
    min_speed_pct: tuple[float, ...]
    route_length_m: float | None
    duration_game_s: float | None
    duration_system_s: float | None
    save_name: str | None
    outside_lanes_m: float
    known_status: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def route_efficiency_compat(self) -> float | None:
        """Mean of min-speed values ≤ 1000 %; None without messages; raises ToolFailure if all are > 1000."""
        if not self.min_speed_pct:
            return None
        kept = [v for v in self.min_speed_pct if v <= EFFICIENCY_MAX_PCT]
        if not kept:
            raise ToolFailure(f"ZeroDivisionError: every min-speed value of {self.route_id} is > 1000 %")
        return sum(kept) / len(kept)

    @property
    def route_efficiency_strict(self) -> float | None:
        kept = [v for v in self.min_speed_pct if v <= EFFICIENCY_MAX_PCT]
        return math.fsum(kept) / len(kept) if kept else None


def scenario_type_from_name(scenario_name: str | None) -> str | None:
    """`"ParkingCutIn_1"` → `"ParkingCutIn"` (the record's `scenario_name` is `<type>_<n>`)."""
    if not scenario_name:
        return None
    head, _, tail = scenario_name.rpartition("_")
    return head if head and tail.isdigit() else scenario_name


def route_result(record: Mapping[str, Any], town: str | None = None, scenario_type: str | None = None) -> RouteResult:
    """Interpret one record; `town` / `scenario_type` come from the route XML when known, else from the
    record itself."""
    inf: Mapping[str, list[str]] = record.get("infractions") or {}
    counts = {k: len(inf.get(k, [])) for k in INFRACTION_KEYS}
    for k, v in inf.items():
        counts.setdefault(k, len(v))
    factors: dict[str, list[float]] = {}
    for key, coeff in PENALTY_FACTORS.items():
        if inf.get(key):
            factors[key] = [coeff] * len(inf[key])
    metres, pct = outside_lanes(inf.get("outside_route_lanes", []))
    if inf.get("outside_route_lanes"):
        factors["outside_route_lanes"] = [1.0 - pct / 100.0]
    penalty = 1.0
    for vals in factors.values():
        for factor in vals:
            penalty *= factor
    scores = record["scores"]
    meta = record.get("meta") or {}
    status = str(record["status"])
    rid = str(record["route_id"])
    return RouteResult(
        route_id=rid,
        route=route_number(rid),
        town=town or record.get("town_name"),
        scenario_type=scenario_type or scenario_type_from_name(record.get("scenario_name")),
        status=status,
        route_completion=float(scores["score_route"]),
        penalty=float(scores["score_penalty"]),
        driving_score=float(scores["score_composed"]),
        success=is_success(record),
        num_infractions=int(record.get("num_infractions", sum(counts.values()))),
        infraction_counts=counts,
        penalty_factors=factors,
        recomputed_penalty=round(penalty, 6),
        min_speed_pct=tuple(min_speed_values(inf.get("min_speed_infractions", []))),
        route_length_m=_num(meta.get("route_length")),
        duration_game_s=_num(meta.get("duration_game")),
        duration_system_s=_num(meta.get("duration_system")),
        save_name=record.get("save_name"),
        outside_lanes_m=metres,
        known_status=status in KNOWN_STATUSES,
    )


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# ----------------------------------------------------------------------------------------------------------
# Aggregates


def driving_efficiency_compat(routes: Sequence[RouteResult]) -> float:
    """efficiency_smoothness_benchmark.py: mean over records with ≥ 1 min-speed message of the per-route mean,
    in merged-file order. Raises ToolFailure where the tool raises ZeroDivisionError."""
    per_route = [e for e in (r.route_efficiency_compat for r in routes) if e is not None]
    if not per_route:
        raise ToolFailure("ZeroDivisionError: no record has a min-speed message")
    return sum(per_route) / len(per_route)


def driving_efficiency_strict(routes: Sequence[RouteResult]) -> float | None:
    """Mean per-route efficiency over routes with at least one kept value; None if there is none."""
    per_route = [e for e in (r.route_efficiency_strict for r in routes) if e is not None]
    return math.fsum(per_route) / len(per_route) if per_route else None


@dataclass(frozen=True)
class StrictScores:
    """DS / SR over an expected route set: missing routes count 0 and are listed."""

    driving_score: float  # points
    success_rate: float  # fraction
    route_completion: float  # mean RC, %
    expected: int
    present: int
    missing: tuple[str, ...]


def strict_scores(by_route: Mapping[str, RouteResult], expected_routes: Sequence[str]) -> StrictScores:
    """`by_route` maps the tools' route number to its (de-duplicated) result."""
    n = len(expected_routes)
    present = [by_route[r] for r in expected_routes if r in by_route]
    missing = tuple(r for r in expected_routes if r not in by_route)
    if n == 0:
        return StrictScores(0.0, 0.0, 0.0, 0, 0, ())
    return StrictScores(
        driving_score=math.fsum(r.driving_score for r in present) / n,
        success_rate=sum(r.success for r in present) / n,
        route_completion=math.fsum(r.route_completion for r in present) / n,
        expected=n,
        present=len(present),
        missing=missing,
    )


def compat_scores(routes: Sequence[RouteResult]) -> tuple[float, float, int]:
    """(driving score, success rate, eval num) exactly as merge_route_json.py (reading order, /220)."""
    return (
        sum(r.driving_score for r in routes) / TOOL_ROUTE_COUNT,
        sum(1 for r in routes if r.success) / TOOL_ROUTE_COUNT,
        len(routes),
    )


def infractions_per_km(routes: Sequence[RouteResult]) -> dict[str, float]:
    """Leaderboard `global_record.infractions` (unrounded): message count per km driven, where km driven =
    Σ route_length/1000 · RC/100; `outside_route_lanes` is Σ metres outside / 1000 (not divided, as the
    leaderboard does). Unit fix in `infractions_per_km_strict`."""
    km = math.fsum((r.route_length_m or 0.0) / 1000.0 * r.route_completion / 100.0 for r in routes)
    out: dict[str, float] = {}
    for key in INFRACTION_KEYS:
        if key == "outside_route_lanes":
            out[key] = math.fsum(r.outside_lanes_m for r in routes) / 1000.0
        else:
            total = sum(r.infraction_counts.get(key, 0) for r in routes)
            out[key] = total / km if km > 0 else 0.0
    return out


def infractions_per_km_strict(routes: Sequence[RouteResult]) -> dict[str, float]:
    """Like `infractions_per_km` but `outside_route_lanes` in metres off-lane per km driven."""
    out = infractions_per_km(routes)
    km = math.fsum((r.route_length_m or 0.0) / 1000.0 * r.route_completion / 100.0 for r in routes)
    metres = math.fsum(r.outside_lanes_m for r in routes)
    out["outside_route_lanes"] = metres / km if km > 0 else 0.0
    return out


@dataclass(frozen=True)
class GroupRow:
    key: str
    routes: int
    present: int
    driving_score: float  # mean over the group's routes, missing = 0
    success_rate: float  # fraction
    route_completion: float


def breakdown(
    groups: Mapping[str, Sequence[RouteResult | None]],
) -> list[GroupRow]:
    """Per-group means; a `None` entry is an expected route with no record (counts 0)."""
    rows = []
    for key in sorted(groups):
        items = groups[key]
        present = [r for r in items if r is not None]
        n = len(items)
        rows.append(
            GroupRow(
                key=key,
                routes=n,
                present=len(present),
                driving_score=math.fsum(r.driving_score for r in present) / n if n else 0.0,
                success_rate=sum(r.success for r in present) / n if n else 0.0,
                route_completion=math.fsum(r.route_completion for r in present) / n if n else 0.0,
            )
        )
    return rows

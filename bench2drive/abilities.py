"""Bench2Drive multi-ability success rates: `ability_benchmark.py` v0.0.4 (7ec25d1) and v0.0.3 (c644989).

Rules (fixture README, "ability_benchmark.py"):

* the XML routes are stably sorted by town; each route's type is its first `<scenario>`'s type; its record is
  the **first** merged record whose `route_id.split('_')[1]` equals the XML id; a route without a record goes
  to `crashed` and leaves every denominator;
* a present route adds 1 to the denominator of every ability listing its type and `success` to the numerator;
* **Traffic_Signs partial credit** (v0.0.4): a Traffic_Signs route that is *not* a success and has no
  `stop_infraction` / `red_light` message adds 1 to the Traffic_Signs numerator when
  `score_route / 100 > junction_completion` (strict), where
  `junction_completion = (first_junction_count + 8) / len(trace)` from CARLA's
  GlobalRoutePlanner trace at 1 m over the route keypoints;
* v0.0.3 runs the partial-credit check for every present Traffic_Signs route (successes too) and adds 1 to the
  Traffic_Signs denominator each time (so TS = (S + passes) / 2N);
* each ability = num / den (0 / 0 kills the tool: ZeroDivisionError); `mean` = sum of the five / 5.

`junction_completion` needs the town's OpenDRIVE map, so it is read from a table (the format of
`fixtures/bench2drive/routes/ts_junction_completion.json`). Where a route's value is unknown and needed, the
Traffic_Signs numerator is reported as an interval [lo, hi] and the route listed as undetermined.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench2drive.metrics import RouteResult

ABILITIES: dict[str, frozenset[str]] = {
    "Overtaking": frozenset(
        [
            "Accident",
            "AccidentTwoWays",
            "ConstructionObstacle",
            "ConstructionObstacleTwoWays",
            "HazardAtSideLaneTwoWays",
            "HazardAtSideLane",
            "ParkedObstacleTwoWays",
            "ParkedObstacle",
            "VehicleOpensDoorTwoWays",
        ]
    ),
    "Merging": frozenset(
        [
            "CrossingBicycleFlow",
            "EnterActorFlow",
            "HighwayExit",
            "InterurbanActorFlow",
            "HighwayCutIn",
            "InterurbanAdvancedActorFlow",
            "MergerIntoSlowTrafficV2",
            "MergerIntoSlowTraffic",
            "NonSignalizedJunctionLeftTurn",
            "NonSignalizedJunctionRightTurn",
            "NonSignalizedJunctionLeftTurnEnterFlow",
            "ParkingExit",
            "SequentialLaneChange",
            "SignalizedJunctionLeftTurn",
            "SignalizedJunctionRightTurn",
            "SignalizedJunctionLeftTurnEnterFlow",
        ]
    ),
    "Emergency_Brake": frozenset(
        [
            "BlockedIntersection",
            "DynamicObjectCrossing",
            "HardBreakRoute",
            "OppositeVehicleTakingPriority",
            "OppositeVehicleRunningRedLight",
            "ParkingCutIn",
            "PedestrianCrossing",
            "ParkingCrossingPedestrian",
            "StaticCutIn",
            "VehicleTurningRoute",
            "VehicleTurningRoutePedestrian",
            "ControlLoss",
        ]
    ),
    "Give_Way": frozenset({"InvadingTurn", "YieldToEmergencyVehicle"}),
    "Traffic_Signs": frozenset(
        [
            "BlockedIntersection",
            "OppositeVehicleTakingPriority",
            "OppositeVehicleRunningRedLight",
            "PedestrianCrossing",
            "VehicleTurningRoute",
            "VehicleTurningRoutePedestrian",
            "EnterActorFlow",
            "CrossingBicycleFlow",
            "NonSignalizedJunctionLeftTurn",
            "NonSignalizedJunctionRightTurn",
            "NonSignalizedJunctionLeftTurnEnterFlow",
            "SignalizedJunctionLeftTurn",
            "SignalizedJunctionRightTurn",
            "SignalizedJunctionLeftTurnEnterFlow",
            "T_Junction",
            "VanillaNonSignalizedTurn",
            "VanillaSignalizedTurnEncounterGreenLight",
            "VanillaSignalizedTurnEncounterRedLight",
            "VanillaNonSignalizedTurnEncounterStopsign",
        ]
    ),
}
TS = "Traffic_Signs"
JUNCTION_OFFSET_WPS = 8  # "+8" waypoints after the first junction waypoint (ability_benchmark.py)


def abilities_of(scenario_type: str | None) -> list[str]:
    return [a for a, types in ABILITIES.items() if scenario_type in types]


class JunctionTableError(ValueError):
    """A junction-completion table is missing or malformed."""


def load_junction_table(path: Path | str, route_file: str | None = None) -> dict[str, float]:
    """route id → junction_completion from a JSON table. Accepts the fixture layout (`{"<routes>.xml": {id:
    {"junction_completion": x}}}`, pick the section by `route_file` name, else merge all sections) or a flat
    `{id: x | {"junction_completion": x}}`. Null entries (no map) are left out."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JunctionTableError(f"{path}: junction table not found") from None
    except json.JSONDecodeError as exc:
        raise JunctionTableError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise JunctionTableError(f"{path}: expected a JSON object")
    sections = {k: v for k, v in data.items() if k.endswith(".xml") and isinstance(v, dict)}
    chosen: list[dict[str, Any]] = [data]
    if sections:
        chosen = [sections[route_file]] if route_file in sections else list(sections.values())
    table: dict[str, float] = {}
    for section in chosen:
        for rid, entry in section.items():
            val = entry.get("junction_completion") if isinstance(entry, dict) else entry
            if val is None or rid in ("description", "maps_used"):
                continue
            if not isinstance(val, (int, float)):
                raise JunctionTableError(f"{path}: route {rid}: junction_completion must be a number")
            table[str(rid)] = float(val)
    return table


@dataclass(frozen=True)
class RouteSpec:
    """A route of the evaluated set: id, town and scenario type (from the XML, or recovered from records)."""

    route: str
    town: str
    scenario_type: str


@dataclass
class AbilityResult:
    """Per-ability [num, den]; Traffic_Signs num is an interval [ts_lo, ts_hi] when undetermined."""

    version: str  # "v0.0.4" | "v0.0.3" | "strict"
    counts: dict[str, list[int]]
    ts_num_hi: int
    crashed: list[list[str]]
    ts_passes: dict[str, bool | None] = field(default_factory=dict)  # route -> partial credit outcome
    error: str | None = None  # what the tool would raise (ZeroDivisionError) in compat mode

    @property
    def ts_undetermined(self) -> list[str]:
        return [r for r, p in self.ts_passes.items() if p is None]

    @property
    def exact(self) -> bool:
        return self.ts_num_hi == self.counts[TS][0]

    def value(self, ability: str, upper: bool = False) -> float | None:
        num, den = self.counts[ability]
        if ability == TS and upper:
            num = self.ts_num_hi
        return num / den if den else None

    def mean(self, upper: bool = False) -> float | None:
        vals = [self.value(a, upper) for a in ABILITIES]
        if any(v is None for v in vals):
            return None
        return sum(v for v in vals if v is not None) / len(ABILITIES)

    def as_tool_json(self) -> dict[str, Any]:
        """The `<merged>_ability.json` the tool writes (Traffic_Signs at its lower bound if undetermined)."""
        out: dict[str, Any] = {a: self.value(a) for a in ABILITIES}
        out["mean"] = self.mean()
        out["crashed"] = [list(c) for c in self.crashed]
        return out


def ts_partial_credit(result: RouteResult, junction_completion: float | None) -> bool | None:
    """Does this Traffic_Signs record pass the partial-credit test? None when it depends on an unknown jc."""
    if result.infraction_counts.get("stop_infraction") or result.infraction_counts.get("red_light"):
        return False
    if result.route_completion <= 0:
        return False  # jc = (count + 8) / len > 0, so RC 0 never passes
    if junction_completion is None:
        return None
    return result.route_completion / 100 > junction_completion


def _first_records(merged_order: Sequence[RouteResult]) -> dict[str, RouteResult]:
    first: dict[str, RouteResult] = {}
    for r in merged_order:
        first.setdefault(r.route, r)
    return first


def compute_abilities(
    specs: Sequence[RouteSpec],
    merged_order: Sequence[RouteResult],
    junctions: Mapping[str, float],
    version: str = "v0.0.4",
) -> AbilityResult:
    """The tool's ability table. `merged_order`: records in merged.json order (first match per route wins)."""
    if version not in ("v0.0.4", "v0.0.3"):
        raise ValueError(f"unknown ability tool version {version!r}")
    first = _first_records(merged_order)
    counts = {a: [0, 0] for a in ABILITIES}
    crashed: list[list[str]] = []
    passes: dict[str, bool | None] = {}
    for spec in sorted(specs, key=lambda s: s.town):  # stable, like the tool's sort by town
        rec = first.get(spec.route)
        if rec is None:
            crashed.append([spec.scenario_type, spec.route])
            continue
        for ability in abilities_of(spec.scenario_type):
            counts[ability][0] += int(rec.success)
            counts[ability][1] += 1
        if spec.scenario_type not in ABILITIES[TS]:
            continue
        if version == "v0.0.3" or not rec.success:
            ok = ts_partial_credit(rec, junctions.get(spec.route))
            passes[spec.route] = ok
            counts[TS][0] += int(ok is True)
            if version == "v0.0.3":
                counts[TS][1] += 1
    ts_hi = counts[TS][0] + sum(1 for p in passes.values() if p is None)
    zero = [a for a in ABILITIES if counts[a][1] == 0]
    err = f"ZeroDivisionError: no evaluated route for {', '.join(zero)}" if zero else None
    return AbilityResult(version, counts, ts_hi, crashed, passes, err)


def compute_abilities_strict(specs: Sequence[RouteSpec], by_route: Mapping[str, RouteResult]) -> AbilityResult:
    """Success rate per ability over the expected routes: missing routes count as failures, Traffic_Signs
    without partial credit, an ability with no route is n/a instead of an error."""
    counts = {a: [0, 0] for a in ABILITIES}
    crashed = []
    for spec in specs:
        rec = by_route.get(spec.route)
        if rec is None:
            crashed.append([spec.scenario_type, spec.route])
        for ability in abilities_of(spec.scenario_type):
            counts[ability][0] += int(rec is not None and rec.success)
            counts[ability][1] += 1
    return AbilityResult("strict", counts, counts[TS][0], crashed)


def strict_mean(result: AbilityResult) -> float | None:
    vals = [result.value(a) for a in ABILITIES]
    present = [v for v in vals if v is not None]
    return math.fsum(present) / len(present) if present else None

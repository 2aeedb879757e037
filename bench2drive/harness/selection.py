"""Which routes to run and how long each is expected to take.

Selection filters combine with AND across kinds and OR within a kind: route ids, towns, scenario types (the
type of a route's first `<scenario>`, as Bench2Drive's ability tool uses) and abilities (Bench2Drive's five
multi-ability groups, `ABILITY_TYPES`, from `tools/ability_benchmark.py` as documented in
fixtures/bench2drive/README.md).

Expected durations (seconds) order the queue longest first: the mean `duration_system_s` of a route over
earlier runs (CSV files with columns `route_id` = `RouteScenario_<id>_rep<k>` and `duration_system_s`,
optional `source`, e.g. route_durations.csv, or this harness's own `durations.csv`; sources rescaled to one
median, see `read_durations`). The mean, not the median: one long run shows that a route *can* take long, and
a long route started last is what stretches a makespan. Without history: route length × the median seconds
per metre of the routes that have durations, else the route length alone (a consistent ordering key).
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench2drive.abilities import ABILITIES
from drive_jepa.routes import Route

# one table for the whole project: the results aggregator owns it
ABILITY_TYPES: dict[str, frozenset[str]] = ABILITIES


class SelectionError(ValueError):
    """A selection names something the route file does not have."""


def select_routes(
    routes: Sequence[Route],
    ids: Iterable[str] = (),
    towns: Iterable[str] = (),
    scenario_types: Iterable[str] = (),
    abilities: Iterable[str] = (),
) -> list[Route]:
    """The routes matching every given filter, in file order. Unknown names raise `SelectionError`."""
    ids, towns, types, abil = set(map(str, ids)), set(towns), set(scenario_types), list(abilities)
    known_ids = {r.id for r in routes}
    if ids - known_ids:
        raise SelectionError(f"route ids not in the route file: {', '.join(sorted(ids - known_ids))}")
    if towns - {r.town for r in routes}:
        raise SelectionError(f"towns not in the route file: {', '.join(sorted(towns - {r.town for r in routes}))}")
    bad = [a for a in abil if a not in ABILITY_TYPES]
    if bad:
        raise SelectionError(f"unknown abilities {bad}; choose from {', '.join(ABILITY_TYPES)}")
    ability_types = set().union(*(ABILITY_TYPES[a] for a in abil)) if abil else set()
    out = []
    for r in routes:
        if ids and r.id not in ids:
            continue
        if towns and r.town not in towns:
            continue
        if types and r.scenario_type not in types:
            continue
        if abil and r.scenario_type not in ability_types:
            continue
        out.append(r)
    if not out:
        raise SelectionError("the selection matches no route")
    return out


def read_durations(paths: Iterable[Path]) -> dict[str, list[float]]:
    """Route id (`<id>`) -> positive `duration_system_s` values found in the CSV files.

    Rows are grouped by their `source` column (or by file when there is none). Agents differ a lot in speed,
    so
    each source's values are rescaled by (median over all sources / that source's median): the result keeps
    seconds as its unit and makes routes comparable across sources. One source alone is returned unchanged.
    """
    by_source: dict[str, dict[str, list[float]]] = {}
    for path in paths:
        with Path(path).open(newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"route_id", "duration_system_s"} <= set(reader.fieldnames):
                raise ValueError(f"{path}: expected CSV columns 'route_id' and 'duration_system_s'")
            for row in reader:
                parts = row["route_id"].split("_")
                rid = parts[1] if len(parts) > 1 else row["route_id"]
                try:
                    d = float(row["duration_system_s"])
                except ValueError:
                    continue
                if d > 0:
                    source = f"{path}:{row.get('source') or ''}"
                    by_source.setdefault(source, {}).setdefault(rid, []).append(d)
    if not by_source:
        return {}
    medians = {s: statistics.median(v for vs in d.values() for v in vs) for s, d in by_source.items()}
    overall = statistics.median(medians.values())
    found: dict[str, list[float]] = {}
    for source, routes in by_source.items():
        scale = overall / medians[source]
        for rid, values in routes.items():
            found.setdefault(rid, []).extend(v * scale for v in values)
    return found


def expected_durations(routes: Sequence[Route], durations: dict[str, list[float]]) -> dict[str, float]:
    """Route id -> expected wall seconds (see the module docstring for the fallbacks)."""
    med = {r.id: statistics.fmean(durations[r.id]) for r in routes if durations.get(r.id)}
    rates = [med[r.id] / r.length_m for r in routes if r.id in med and r.length_m > 0]
    rate = statistics.median(rates) if rates else 1.0
    return {r.id: med.get(r.id, r.length_m * rate) for r in routes}

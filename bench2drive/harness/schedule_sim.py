"""Scheduling benchmark: makespan of the harness's queue vs Bench2Drive's static split vs the lower bound.

Simulated with real per-route wall-clock durations (`route_durations.csv`, one set per source = one published
evaluation run). For a source and m servers:

- static split: Bench2Drive's `tools/split_xml.py` cuts the route file, in file order, into m contiguous parts
  whose sizes differ by at most one (`divmod(n, m)`, the first `n mod m` parts one longer); each server runs
  its
  part; makespan = the largest part's sum;
- ours: one queue ordered by expected duration, longest first, each route handed to the first free server
  (exactly what `Scheduler` does); expected durations from (a) route length only, (b) the mean of the
  *other*
  sources' runs of that route, each source rescaled to a common median as `read_durations` does (earlier runs
  of
  other agents: the first run of a new agent), (c) the same source (a rerun or resume of the same agent);
- lower bound: max(longest route, total / m).

Durations are seconds; makespans are reported in hours.
"""

from __future__ import annotations

import csv
import heapq
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench2drive.harness.selection import expected_durations
from drive_jepa.routes import load_routes


@dataclass(frozen=True)
class BenchRow:
    source: str
    servers: int
    routes: int
    static_h: float
    ours_length_h: float
    ours_history_h: float
    ours_same_agent_h: float
    bound_h: float


def static_split_makespan(durations_in_file_order: Sequence[float], servers: int) -> float:
    n = len(durations_in_file_order)
    k, m = divmod(n, servers)
    spans, start = [], 0
    for i in range(servers):
        size = k + (1 if i < m else 0)
        spans.append(sum(durations_in_file_order[start : start + size]))
        start += size
    return max(spans)


def list_schedule_makespan(durations: Sequence[float], priority: Sequence[float], servers: int) -> float:
    """Greedy: jobs in descending `priority`, each to the earliest-free server; returns the makespan."""
    order = sorted(range(len(durations)), key=lambda i: -priority[i])
    free = [0.0] * servers
    heapq.heapify(free)
    end = 0.0
    for i in order:
        t = heapq.heappop(free) + durations[i]
        end = max(end, t)
        heapq.heappush(free, t)
    return end


def lower_bound(durations: Sequence[float], servers: int) -> float:
    return max(max(durations), sum(durations) / servers)


def read_sources(csv_path: Path) -> dict[str, dict[str, float]]:
    """source -> route id -> duration_system_s (first row wins if a source repeats a route)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            out[row["source"]].setdefault(row["route"], float(row["duration_system_s"]))
    return dict(out)


def benchmark(routes_xml: Path, durations_csv: Path, servers: Sequence[int] = (4, 8)) -> list[BenchRow]:
    routes = load_routes(routes_xml)
    sources = read_sources(durations_csv)
    by_length = expected_durations(routes, {})
    rows = []
    for source, dur in sources.items():
        ids = [r.id for r in routes if r.id in dur]  # file order
        others: dict[str, list[float]] = defaultdict(list)
        for other, d in sources.items():
            if other != source:
                scale = statistics.median(d.values())  # agents differ in speed: compare relative durations
                for rid, v in d.items():
                    others[rid].append(v / scale)
        history = expected_durations(routes, others)
        actual = [dur[i] for i in ids]
        for m in servers:
            rows.append(
                BenchRow(
                    source=source,
                    servers=m,
                    routes=len(ids),
                    static_h=static_split_makespan(actual, m) / 3600,
                    ours_length_h=list_schedule_makespan(actual, [by_length[i] for i in ids], m) / 3600,
                    ours_history_h=list_schedule_makespan(actual, [history[i] for i in ids], m) / 3600,
                    ours_same_agent_h=list_schedule_makespan(actual, actual, m) / 3600,
                    bound_h=lower_bound(actual, m) / 3600,
                )
            )
    return rows


def to_markdown(rows: Sequence[BenchRow]) -> str:
    head = (
        "| source | servers | routes | static split (h) | ours, by length (h) | ours, other runs (h) | "
        "ours, same agent (h) | lower bound (h) | ours (other runs) / bound |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r.source} | {r.servers} | {r.routes} | {r.static_h:.2f} | {r.ours_length_h:.2f} | "
        f"{r.ours_history_h:.2f} | {r.ours_same_agent_h:.2f} | {r.bound_h:.2f} | "
        f"{r.ours_history_h / r.bound_h:.3f} |\n"
        for r in rows
    )
    return head + body


def summary(rows: Sequence[BenchRow]) -> dict[str, float]:
    """Geometric-free summary: worst and median ratios to the bound per strategy."""
    out: dict[str, float] = {}
    for name in ("static_h", "ours_length_h", "ours_history_h", "ours_same_agent_h"):
        ratios = [getattr(r, name) / r.bound_h for r in rows]
        out[f"{name[:-2]}_median_ratio"] = statistics.median(ratios)
        out[f"{name[:-2]}_worst_ratio"] = max(ratios)
    return out

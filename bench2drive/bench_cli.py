"""`drive-jepa bench`: benchmarks of the evaluation harness.

  drive-jepa bench schedule [--routes XML] [--durations CSV] [--servers 4 8] [--json OUT]

simulates the route set on N servers with real per-route durations and prints the makespan of the harness's
longest-first dynamic queue, of Bench2Drive's static split, and the lower bound max(longest, total/N).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "bench2drive"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="drive-jepa bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("schedule", help="makespan of our scheduler vs Bench2Drive's static split vs the bound")
    s.add_argument("--routes", type=Path, default=_FIXTURES / "routes" / "bench2drive220.xml")
    s.add_argument("--durations", type=Path, default=_FIXTURES / "route_durations.csv")
    s.add_argument("--servers", type=int, nargs="+", default=[4, 8])
    s.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ns = p.parse_args(argv)
    from bench2drive.harness.schedule_sim import benchmark, summary, to_markdown

    for path, what in ((ns.routes, "--routes"), (ns.durations, "--durations")):
        if not path.is_file():
            print(f"drive-jepa bench: {what} {path} not found", file=sys.stderr)
            return 2
    rows = benchmark(ns.routes, ns.durations, ns.servers)
    print(to_markdown(rows), end="")
    print(json.dumps(summary(rows), indent=1))
    if ns.json:
        ns.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "summary": summary(rows)}, indent=1))
    return 0

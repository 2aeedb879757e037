"""`drive-jepa bench WHAT ...`: the project's benchmarks (not tests), one entry point.

  drive-jepa bench schedule ...   makespan of the harness's queue vs Bench2Drive's static split vs the bound
  drive-jepa bench scorer ...     the torch EPDMS scorer on all vocabulary rows of a scene vs NAVSIM's figure
  drive-jepa bench planner ...    the method's claims on synthetic data: MTD on a two-mode fork, momentum selection
  drive-jepa bench agent ...      the leaderboard agent's run_step latency (tiny / full ViT-L config)

Each writes its figures to stdout; docs/PERFORMANCE.md records them with the machine they were measured on.
`drive-jepa bench WHAT --help` explains one.
"""

from __future__ import annotations

import importlib
import sys

# benchmark -> module with main(argv); the module's own parser handles the rest of the arguments
BENCHES: dict[str, str] = {
    "schedule": "bench2drive.bench_cli",
    "scorer": "training.scoring.bench",
    "planner": "training.planner.bench",
    "agent": "agent.bench_latency",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    what, rest = argv[0], argv[1:]
    if what not in BENCHES:
        print(f"drive-jepa bench: unknown benchmark {what!r}; choose one of: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHES[what])
    # bench2drive.bench_cli takes the benchmark name itself as its first argument
    args = argv if what == "schedule" else rest
    return int(module.main(args) or 0)

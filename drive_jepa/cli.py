"""The single `drive-jepa` command line.

Subcommands are registered in `COMMANDS` by dotted module path and imported only when invoked, so
`drive-jepa --help` stays fast and works without torch, CARLA or a GPU. Each subcommand module exposes
`main(argv: list[str]) -> int` and builds its own argparse parser (so `drive-jepa CMD --help` explains it).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    summary: str


# name -> where it lives. Keep one line per subcommand; later issues add theirs here.
COMMANDS: dict[str, Command] = {
    "version": Command("drive_jepa.commands.version", "print the package version and key dependency versions"),
    "demo": Command("drive_jepa.commands.demo", "the main job on this machine: lite-world eval + report + replays"),
    "doctor": Command("drive_jepa.commands.doctor", "check torch/CUDA, CARLA, Bench2Drive, NAVSIM and video setup"),
    "agent-config": Command("agent.cli_agent_config", "write the leaderboard agent's config (--agent-config file)"),
    "report": Command("bench2drive.cli_report", "Bench2Drive results: merged.json + Markdown/HTML report"),
    "eval": Command(
        "bench2drive.eval_cli", "run Bench2Drive routes closed-loop on N CARLA servers or the lite world; resumable"
    ),
    "bench": Command("drive_jepa.commands.bench", "benchmarks: bench schedule | scorer | planner | agent"),
    "carla-replay": Command(
        "carla_tools.carla_replay", "replay a CARLA recorder log in a running server, film the hero"
    ),
    "replay": Command("agent.replay.cli", "render an agent recording (MP4 + Rerun), compare it with another model"),
    "cache-data": Command("training.data.cli_cache", "cache training features of data=navsim|bench2drive (resumable)"),
    "train": Command("training.planner.train", "train a planner (baseline / proposal-centric) with Hydra configs"),
    "selection-report": Command(
        "training.planner.selection_report", "open loop: does the scorer pick the expert-like proposal?"
    ),
    "pretrain": Command("training.pretrain.command", "V-JEPA pretraining of the encoder on driving video"),
    "teachers": Command("training.scoring.teachers", "score a vocabulary on every scene and write the teacher index"),
    "vocab": Command("training.scoring.vocab", "build a trajectory vocabulary by k-means, or show the published one"),
    "lite": Command("carla_tools.lite.cli", "run agents on Bench2Drive routes in the CPU lite world (SUMO)"),
    "collect": Command(
        "carla_tools.lite.collect", "the expert drives scenario routes in the lite world: Bench2Drive-layout clips"
    ),
    "eval-table": Command(
        "bench2drive.seed_table", "one row per evaluated run over seeds: DS range, per-km, plan change"
    ),
    "learn": Command(
        "training.pipeline", "the whole loop: collect, teachers, pretrain, train, evaluate, ship (resumable)"
    ),
    "scenario-routes": Command(
        "carla_tools.lite.scenarios.generate",
        "generate routes posing one Bench2Drive scenario each in the lite towns",
    ),
}

_USAGE = "usage: drive-jepa [-h] COMMAND [ARGS ...]"


def _help_text() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        _USAGE,
        "",
        "Drive-JEPA: train on NAVSIM / Bench2Drive, evaluate closed-loop in CARLA (Bench2Drive's 220 routes),",
        "debug from replays. Run `drive-jepa COMMAND --help` for a command's options.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += [
        "",
        "Commands that take a config accept Hydra-style `key=value` overrides and `--cfg` to print the",
        "composed config and exit.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help_text())
        return 0
    if args[0] in ("-V", "--version"):
        args = ["version"]
    name, rest = args[0], args[1:]
    cmd = COMMANDS.get(name)
    if cmd is None:
        print(f"drive-jepa: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(cmd.module)
    result: int = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

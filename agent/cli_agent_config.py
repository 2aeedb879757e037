"""`drive-jepa agent-config`: compose the leaderboard agent's config and write it (the file `--agent-config` takes).

Examples:
    drive-jepa agent-config --cfg                                   # print the defaults
    drive-jepa agent-config model=checkpoint checkpoint=runs/x --out run/agent.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.leaderboard_agent import AgentConfig
from drive_jepa import config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa agent-config", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    config.add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="write the YAML here (default: print it)")
    ns = parser.parse_args(argv)

    def run(cfg: AgentConfig) -> int:
        if cfg.model == "checkpoint":  # a config naming a checkpoint that is not there would fail every route
            from agent.planner.checkpoint import resolve_checkpoint

            if not cfg.checkpoint:
                print(
                    "drive-jepa agent-config: model=checkpoint needs checkpoint=<a drive-jepa train folder>",
                    file=sys.stderr,
                )
                return 2
            try:
                resolve_checkpoint(Path(cfg.checkpoint).expanduser())
            except FileNotFoundError as exc:
                print(f"drive-jepa agent-config: checkpoint={cfg.checkpoint}: {exc}", file=sys.stderr)
                return 2
            if ns.out is not None:  # stored absolute: the evaluator runs in another folder
                cfg.checkpoint = str(Path(cfg.checkpoint).expanduser().resolve())
        if ns.out is None:
            print(config.to_yaml(cfg), end="")
        else:
            config.save(cfg, ns.out)
            print(f"wrote {ns.out}")
        return 0

    return config.run_with_config("agent", AgentConfig, ns, run)

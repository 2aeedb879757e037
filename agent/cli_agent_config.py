"""`drive-jepa agent-config`: compose the leaderboard agent's config and write it (the file `--agent-config` takes).

Examples:
    drive-jepa agent-config --cfg                                   # print the defaults
    drive-jepa agent-config model=checkpoint checkpoint=runs/x --out run/agent.yaml
"""

from __future__ import annotations

import argparse
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
        if ns.out is None:
            print(config.to_yaml(cfg), end="")
        else:
            config.save(cfg, ns.out)
            print(f"wrote {ns.out}")
        return 0

    return config.run_with_config("agent", AgentConfig, ns, run)

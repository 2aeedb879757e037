"""`drive-jepa version`: the package version and the versions of the packages a run depends on."""

from __future__ import annotations

import argparse
import platform
from importlib.metadata import PackageNotFoundError, version

from drive_jepa import __version__

_DEPS = (
    "torch",
    "timm",
    "numpy",
    "opencv-python-headless",
    "hydra-core",
    "carla-0-9-15",
    "carla",
    "py-trees",
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="drive-jepa version", description=__doc__)
    parser.add_argument("--short", action="store_true", help="print only drive-jepa's version")
    ns = parser.parse_args(argv)
    print(f"drive-jepa {__version__}")
    if ns.short:
        return 0
    print(f"python {platform.python_version()} ({platform.platform()})")
    for dep in _DEPS:
        try:
            print(f"{dep} {version(dep)}")
        except PackageNotFoundError:
            continue
    return 0

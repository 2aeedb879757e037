"""Shared pytest fixtures: the `../shared/fixtures` oracle folder and skips for optional environments."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


def fixtures_dir(*parts: str) -> Path:
    """Path inside ../shared/fixtures; skips the calling test with a reason when it is absent."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"oracle fixtures not found at {path} (standalone checkout without ../shared)")
    return path


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    return fixtures_dir()


@pytest.fixture(scope="session")
def vjepa_fx() -> Path:
    """The V-JEPA 2 oracle folder (tiny official checkpoint, inputs and the official code's outputs)."""
    return fixtures_dir("vjepa2")


@pytest.fixture(scope="session")
def vjepa_io(vjepa_fx: Path) -> dict[str, np.ndarray]:
    with np.load(vjepa_fx / "a_io.npz") as z:
        return {k: z[k] for k in z.files}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons: dict[str, str | None] = {
        "carla": None if _has("carla") else "the CARLA client (`carla`) is not importable: `uv sync --extra carla`",
        "gpu": None,
        "navsim": None if _has("navsim") else "navsim/nuplan-devkit not installed (they install from git)",
        "carla_server": "needs a running CARLA 0.9.15 server",
    }
    try:
        import torch

        if not torch.cuda.is_available():
            reasons["gpu"] = "no CUDA GPU on this machine"
    except ImportError:
        reasons["gpu"] = "torch not installed"
    import os

    root = os.environ.get("CARLA_ROOT")
    if root and (Path(root) / "CarlaUE4.sh").is_file():
        reasons["carla_server"] = None
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))

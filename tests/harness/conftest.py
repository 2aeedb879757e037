"""Harness test fixtures: a stand-in Bench2Drive root."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def b2d_root(tmp_path: Path) -> Path:
    """A folder shaped like $BENCH2DRIVE_ROOT as far as the evaluator's working directory needs."""
    root = tmp_path / "Bench2Drive"
    (root / "leaderboard" / "data").mkdir(parents=True)
    (root / "leaderboard" / "data" / "weather.xml").write_text("<weathers/>\n")
    (root / "scenario_runner").mkdir()
    return root

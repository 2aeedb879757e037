"""drive_jepa.config with a schema that selects a config group through a Hydra defaults list."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drive_jepa.config import compose, register, save, to_yaml


@dataclass
class _Part:
    size: int = 1


@dataclass
class _BigPart(_Part):
    size: int = 100


@dataclass
class _Top:
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"part": "small"}])
    part: _Part = field(default_factory=_Part)
    steps: int = 3


def test_group_selection_save_and_reload(tmp_path: Path) -> None:
    register("cfgtest_top", _Top)
    register("small", _Part, group="part")
    register("big", _BigPart, group="part")
    cfg = compose("cfgtest_top", _Top, ["part=big", "steps=5"])
    assert cfg.part.size == 100 and cfg.steps == 5
    assert "defaults" not in to_yaml(cfg)
    path = save(cfg, tmp_path / "config.yaml")
    again = compose("cfgtest_top", _Top, ["steps=7"], config_file=path)
    assert again.part.size == 100 and again.steps == 7
    legacy = tmp_path / "legacy.yaml"  # a file written with the defaults list still loads
    legacy.write_text("defaults:\n- _self_\n- part: small\npart:\n  size: 42\n")
    assert compose("cfgtest_top", _Top, [], config_file=legacy).part.size == 42

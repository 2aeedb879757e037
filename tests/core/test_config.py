"""Hydra-composed typed configs: overrides, groups, printing, saving and reloading."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from omegaconf import MISSING

from drive_jepa import config


@dataclass
class _Data:
    root: str = MISSING
    frames: int = 2


@dataclass
class _Navsim(_Data):
    root: str = "/data/navsim"
    split: str = "navtrain"


@dataclass
class _Optim:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class _Train:
    defaults: list = field(default_factory=lambda: ["_self_", {"data": "test_navsim"}])
    data: _Data = MISSING
    optim: _Optim = field(default_factory=_Optim)
    epochs: int = 1
    out: str = "runs/x"


config.register("test_train", _Train)
config.register("test_navsim", _Navsim, group="data")


def test_compose_defaults_and_overrides():
    cfg = config.compose("test_train", _Train, ["optim.lr=3e-4", "epochs=5", "data.frames=4"])
    assert isinstance(cfg, _Train) and isinstance(cfg.data, _Navsim)
    assert cfg.optim.lr == 3e-4 and cfg.epochs == 5 and cfg.data.frames == 4 and cfg.data.split == "navtrain"


def test_bad_overrides_are_one_line_errors():
    with pytest.raises(config.ConfigError, match="key=value"):
        config.compose("test_train", _Train, ["epochs"])
    with pytest.raises(config.ConfigError, match="test_train"):
        config.compose("test_train", _Train, ["nonexistent=1"])
    with pytest.raises(config.ConfigError, match="'many' of type 'str' could not be converted to Integer"):
        config.compose("test_train", _Train, ["epochs=many"])


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("epoch=3", "did you mean 'epochs'?"),  # a typo of a top-level key
        ("optim.lrr=1", "did you mean 'optim.lr'?"),  # of a nested key
        ("optm.lr=1", "did you mean 'optim.lr'?"),  # of the section
        ("lr=1", "did you mean 'optim.lr'?"),  # the right leaf in the wrong place
        ("data.splt=x", "did you mean 'data.split'?"),  # a key of the chosen group option
        ("optm.nothing=1", "did you mean 'optim'?"),  # only the section exists
    ],
)
def test_unknown_keys_name_the_reason_and_the_closest_key(override: str, hint: str):
    with pytest.raises(config.ConfigError) as err:
        config.compose("test_train", _Train, [override])
    msg = str(err.value)
    assert "\n" not in msg and f"unknown key {override.split('=')[0]!r}" in msg and msg.endswith(hint)
    assert "not in" in msg  # the reason from OmegaConf
    with pytest.raises(
        config.ConfigError, match=r"Could not find 'data/nav'; Available options in 'data':.*test_navsim"
    ):
        config.compose("test_train", _Train, ["data=nav"])


def test_print_save_and_reload_reproduces_the_run(tmp_path: Path):
    cfg = config.compose("test_train", _Train, ["optim.lr=0.5", "out=runs/y"])
    text = config.to_yaml(cfg)
    assert "lr: 0.5" in text and "split: navtrain" in text
    saved = config.save(cfg, tmp_path / "run" / "config.yaml")
    again = config.compose("test_train", _Train, [], config_file=saved)
    assert again == cfg
    # command-line overrides still win over the saved file
    assert config.compose("test_train", _Train, ["epochs=9"], config_file=saved).epochs == 9


def test_run_with_config_prints_with_cfg(capsys):
    parser = argparse.ArgumentParser()
    config.add_config_arguments(parser)
    ns = parser.parse_args(["--cfg", "epochs=3"])
    assert config.run_with_config("test_train", _Train, ns, lambda c: 99) == 0
    assert "epochs: 3" in capsys.readouterr().out
    ns = parser.parse_args(["epochs=3"])
    assert config.run_with_config("test_train", _Train, ns, lambda c: c.epochs) == 3
    ns = parser.parse_args(["epochs=x"])
    assert config.run_with_config("test_train", _Train, ns, lambda c: 0) == 2


@dataclass
class _B2D(_Data):
    root: str = "/data/b2d"
    towns: list[str] = field(default_factory=lambda: ["Town01"])


config.register("test_bench2drive", _B2D, group="data")


def test_saved_config_remembers_group_options(tmp_path: Path):
    cfg = config.compose("test_train", _Train, ["data=test_bench2drive", "data.towns=[Town02,Town05]"])
    assert isinstance(cfg.data, _B2D) and cfg.data.towns == ["Town02", "Town05"]
    saved = config.save(cfg, tmp_path / "config.yaml")
    assert saved.read_text().startswith("# drive-jepa config groups: data=test_bench2drive")
    again = config.compose("test_train", _Train, [], config_file=saved)
    assert again == cfg
    # switching the group on the command line still works on top of a saved file
    other = config.compose("test_train", _Train, ["data=test_navsim"], config_file=saved)
    assert isinstance(other.data, _Navsim)


@dataclass
class _Plain:
    data: str = "plain"  # a plain field named like the `data` group of _Train
    n: int = 1


config.register("test_plain", _Plain)


def test_plain_field_named_like_another_configs_group(tmp_path: Path) -> None:
    cfg = config.compose("test_plain", _Plain, ["data=other", "n=3"])
    assert cfg == _Plain(data="other", n=3)
    saved = config.save(cfg, tmp_path / "p.yaml")
    assert config.compose("test_plain", _Plain, ["data=again"], saved) == _Plain(data="again", n=3)
    with pytest.raises(config.ConfigError):
        config.compose("test_plain", _Plain, ["data=x", "nope=1"])


def test_cfg_shows_unset_mandatory_values_instead_of_failing(capsys):
    # the documented `drive-jepa cache-data data=navsim --cfg` / `train data=navsim --cfg` (data.root unset)
    from drive_jepa.cli import main

    for command in ("cache-data", "train"):
        assert main([command, "data=navsim", "--cfg"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("# drive-jepa config groups: data=navsim\n# unset, to be given: data.root\n")
        assert "  root: ???" in out
    assert main(["train", "data=navsim", "stepz=1", "--cfg"]) == 2  # other errors still are errors
    assert "did you mean 'steps'?" in capsys.readouterr().err


def test_data_loader_workers_default_to_the_cores_there_are():
    from training.data.video import VideoDataConfig, auto_workers

    assert VideoDataConfig().workers == -1
    assert [auto_workers(-1, cores) for cores in (1, 2, 4, 16)] == [0, 0, 3, 8]
    assert auto_workers(5, 2) == 5  # an explicit value is kept

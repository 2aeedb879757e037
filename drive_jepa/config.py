"""Typed configs composed with Hydra.

Every configurable command defines a dataclass schema (typed, with defaults and a docstring per field group),
registers it in Hydra's ConfigStore under a name (and optional groups, e.g. `data=navsim`), and composes it with
`key=value` overrides from the command line. The composed config is converted back to the dataclass (so code gets
real types, not DictConfig), can be printed (`--cfg`) and is saved next to every run's outputs, so a run is
reproducible from `config.yaml` alone (`drive-jepa CMD --config-file RUN/config.yaml`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config could not be composed: unknown key, bad type or bad value. The message names the key."""


def register(name: str, node: type[Any], group: str | None = None) -> None:
    """Register a dataclass schema as config `name` (inside `group` when given) in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=name, node=node, group=group)


def compose(name: str, schema: type[T], overrides: Sequence[str] = (), config_file: Path | None = None) -> T:
    """Compose config `name` with `key=value` overrides and return it as an instance of `schema`.

    `config_file` (a YAML saved by an earlier run) is merged over the defaults before the overrides.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"config override {bad[0]!r} is not of the form key=value")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize(version_base=None):
            cfg = hydra_compose(config_name=name, overrides=list(overrides))
        if config_file is not None:
            if not config_file.is_file():
                raise ConfigError(f"{config_file}: config file not found")
            saved = OmegaConf.load(config_file)
            if isinstance(saved, DictConfig) and "defaults" in saved:  # a Hydra defaults list is not a value
                saved = OmegaConf.create({k: v for k, v in saved.items() if k != "defaults"})
            cfg = OmegaConf.merge(cfg, saved)
            if overrides:  # command-line overrides still win over the saved file
                cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in overrides]))
        obj = OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        msg = str(exc).strip().splitlines()[0]
        raise ConfigError(f"config {name!r}: {msg}") from None
    if not isinstance(obj, schema):
        raise ConfigError(f"config {name!r} composed to {type(obj).__name__}, expected {schema.__name__}")
    return obj


def to_yaml(cfg: Any) -> str:
    """The YAML text of a config dataclass (what `--cfg` prints and what runs save).

    A schema's Hydra `defaults` list (group selection, e.g. `model: tiny`) is composition input, not a value:
    it is left out, so a saved file merges back over the composed defaults (`--config-file`).
    """
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    if isinstance(data, dict):
        data.pop("defaults", None)
    return OmegaConf.to_yaml(data)


def save(cfg: Any, path: Path) -> Path:
    """Write `cfg` as YAML to `path` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_yaml(cfg))
    tmp.replace(path)
    return path


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `overrides` (key=value ...), `--cfg` and `--config-file` to a subcommand's parser."""
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="Hydra-style config overrides")
    parser.add_argument("--cfg", action="store_true", help="print the composed config as YAML and exit")
    parser.add_argument("--config-file", type=Path, default=None, help="a config.yaml saved by an earlier run")


def from_args(name: str, schema: type[T], ns: argparse.Namespace) -> T:
    """Compose config `name` from the parsed `overrides`/`--config-file` arguments."""
    return compose(name, schema, ns.overrides, ns.config_file)


def run_with_config(
    name: str, schema: type[T], ns: argparse.Namespace, run: Callable[[T], int]
) -> int:
    """Compose, honour `--cfg` (print and exit 0), otherwise call `run(cfg)`. Config errors exit 2 with one line."""
    import sys

    try:
        cfg = from_args(name, schema, ns)
    except ConfigError as exc:
        print(f"drive-jepa: {exc}", file=sys.stderr)
        return 2
    if ns.cfg:
        print(to_yaml(cfg), end="")
        return 0
    return run(cfg)


def asdict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (for metadata and logging)."""
    return dataclasses.asdict(cfg)

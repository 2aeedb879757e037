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

from drive_jepa.atomic import write_text_atomic

T = TypeVar("T")


class ConfigError(ValueError):
    """A config could not be composed: unknown key, bad type or bad value. The message names the key."""


# (group, node class) -> option name, so a saved config can record which group options it was composed from
_GROUP_OPTIONS: dict[tuple[str, type[Any]], str] = {}
_CHOICES_HEADER = "# drive-jepa config groups:"


def register(name: str, node: type[Any], group: str | None = None) -> None:
    """Register a dataclass schema as config `name` (inside `group` when given) in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=name, node=node, group=group)
    if group is not None:
        _GROUP_OPTIONS[(group, node)] = name


def group_choices(cfg: Any) -> list[str]:
    """`group=option` for every top-level field of `cfg` whose value is a registered group option."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        option = _GROUP_OPTIONS.get((f.name, type(value)))
        if option is not None:
            out.append(f"{f.name}={option}")
    return out


def _foreign_group_keys(schema: type[Any]) -> set[str]:
    """Registered group names that are plain (scalar or list) top-level fields of `schema`."""
    groups = {g for g, _ in _GROUP_OPTIONS}
    out = set()
    for f in dataclasses.fields(schema):
        if f.name not in groups:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        # a config node (a dataclass, or OmegaConf's "???" for a group chosen in the defaults list) is a group
        if default == "???" or dataclasses.is_dataclass(default):
            continue
        out.add(f.name)
    return out


def _read_saved(config_file: Path) -> tuple[list[str], Any]:
    from omegaconf import DictConfig, OmegaConf

    if not config_file.is_file():
        raise ConfigError(f"{config_file}: config file not found")
    text = config_file.read_text()
    choices: list[str] = []
    for line in text.splitlines():
        if line.startswith(_CHOICES_HEADER):
            choices = line[len(_CHOICES_HEADER) :].split()
    saved = OmegaConf.create(text)
    if not isinstance(saved, DictConfig):
        raise ConfigError(f"{config_file}: expected a mapping of config keys, found a list")
    if "defaults" in saved:
        del saved["defaults"]
    return choices, saved


def compose(name: str, schema: type[T], overrides: Sequence[str] = (), config_file: Path | None = None) -> T:
    """Compose config `name` with `key=value` overrides and return it as an instance of `schema`.

    `config_file` (a YAML saved by an earlier run) is merged over the defaults before the overrides.
    """
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    node = _compose_dictconfig(name, schema, overrides, config_file)
    try:
        obj = OmegaConf.to_object(node)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"config {name!r}: {_explain(exc, name, schema, overrides)}") from None
    if not isinstance(obj, schema):
        raise ConfigError(f"config {name!r} composed to {type(obj).__name__}, expected {schema.__name__}")
    return obj


def compose_yaml(name: str, schema: type[Any], overrides: Sequence[str] = (), config_file: Path | None = None) -> str:
    """What `--cfg` prints: the composed config as YAML (`to_yaml`). Mandatory values still unset are shown as
    `???` under a comment naming them, instead of being an error: `--cfg` is how one finds what to set."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    try:
        return to_yaml(compose(name, schema, overrides, config_file))
    except ConfigError:
        node = _compose_dictconfig(name, schema, overrides, config_file)
        missing = [k for k in _dotted_keys(node) if OmegaConf.is_missing(*_parent_and_leaf(node, k))]
        if not missing:
            raise
        try:
            OmegaConf.to_object(node)
        except MissingMandatoryValue:
            pass
        except Exception:  # another problem than the unset values: the one-line error of compose stands
            raise
        choices = []
        for key in node:
            option = _GROUP_OPTIONS.get((str(key), OmegaConf.get_type(node, key)))  # type: ignore[arg-type]
            if option is not None:
                choices.append(f"{key!s}={option}")
        body = OmegaConf.to_yaml(node)
        return f"{_CHOICES_HEADER} {' '.join(choices)}\n# unset, to be given: {', '.join(missing)}\n{body}"


def _parent_and_leaf(node: Any, dotted: str) -> tuple[Any, str]:
    from omegaconf import OmegaConf

    parent, _, leaf = dotted.rpartition(".")
    return (OmegaConf.select(node, parent) if parent else node), leaf


def _compose_dictconfig(name: str, schema: type[Any], overrides: Sequence[str], config_file: Path | None) -> Any:
    """The composed (not yet instantiated) config node; errors as one-line `ConfigError`s."""
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"config override {bad[0]!r} is not of the form key=value")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        choices, saved = _read_saved(config_file) if config_file is not None else ([], None)
        saved_groups = dict(c.split("=", 1) for c in choices)
        cli_groups = {k: v for k, v in (o.split("=", 1) for o in overrides) if k in saved_groups}
        # the command line picks group options last; a switched group drops the saved section
        first = [f"{k}={v}" for k, v in saved_groups.items() if k not in cli_groups]
        # a plain field whose name is also a config group of another schema (AgentConfig.model vs the
        # pretraining `model` group) would be taken by Hydra for a group choice: set it after composing
        foreign = _foreign_group_keys(schema)
        late = [o for o in overrides if o.lstrip("+").split("=", 1)[0] in foreign]
        with initialize(version_base=None):
            cfg: Any = hydra_compose(config_name=name, overrides=first + [o for o in overrides if o not in late])
        if late:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in late]))
        if saved is not None:
            for key, option in cli_groups.items():
                if option != saved_groups[key] and key in saved:
                    del saved[key]
            cfg = OmegaConf.merge(cfg, saved)
            plain = [o.lstrip("+") for o in overrides if o.split("=", 1)[0] not in cli_groups]
            if plain:  # command-line overrides still win over the saved file
                cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(plain))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"config {name!r}: {_explain(exc, name, schema, overrides)}") from None
    return cfg


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every key path of a composed config node (`model.proposal.num_proposals`, …)."""
    from omegaconf import DictConfig

    keys: list[str] = []
    if isinstance(node, DictConfig):
        for k in node:
            path = f"{prefix}{k!s}"
            keys.append(path)
            try:
                child = node._get_node(k)
            except Exception:  # a missing value (???) has no children
                continue
            keys.extend(_dotted_keys(child, path + "."))
    return keys


def _explain(exc: Exception, name: str, schema: type[Any], overrides: Sequence[str]) -> str:
    """One line for a Hydra / OmegaConf error: the reason (from the underlying error) and, for an unknown key,
    the closest valid key of the config as composed with the given group choices."""
    import re

    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    msg = lines[0] if lines else type(exc).__name__
    options = [ln for ln in lines[1:] if not ln.startswith(("Config search path", "provider="))]
    if msg.startswith("In '") and "Could not find" in msg and options:  # a group option that does not exist
        return f"{msg.split(': ', 1)[-1]}; {' '.join(options[:1])} {', '.join(options[1:])}"
    cause = exc.__cause__
    reason = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    unknown = re.match(r"Could not override '([^']+)'", msg)
    in_file = re.match(r"Key '([^']+)' not in '", msg)  # a key of a --config-file / agent config file
    if in_file and not unknown:
        key = str(getattr(exc, "full_key", "") or in_file.group(1))
        return f"unknown key {key!r} in the config file ({msg}){_key_hint(name, key, overrides)}"
    if unknown:
        key = unknown.group(1)
        return f"unknown key {key!r} ({reason or 'not in ' + schema.__name__}){_key_hint(name, key, overrides)}"
    return f"{msg}: {reason}" if reason and reason not in msg else msg


def _key_hint(name: str, key: str, overrides: Sequence[str]) -> str:
    """`; did you mean 'x'?` for an unknown `key`, searched in the config as composed with the given group choices
    (data=bench2drive shapes the keys that exist); empty when nothing is close."""
    groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0] and o.split("=", 1)[0] != key]
    try:
        close = _closest_key(key, _dotted_keys(_compose_node(name, groups)))
    except Exception:  # the hint is best effort; the error itself is what matters
        close = []
    return f"; did you mean {close[0]!r}?" if close else ""


def _closest_key(key: str, valid: Sequence[str]) -> list[str]:
    """The valid key a typo most likely meant: the whole path with its first unknown segment corrected
    (`modle.dt` → `model.dt`), else the closest whole path, else a key ending in the same last segment
    (`lr` → `optim.lr`)."""
    import difflib

    known = set(valid)
    parts = key.split(".")
    for i, part in enumerate(parts):
        prefix = ".".join(parts[:i])
        siblings = [k.rsplit(".", 1)[-1] for k in known if (k.rsplit(".", 1)[0] if "." in k else "") == prefix]
        if part in siblings:
            continue
        fixes = difflib.get_close_matches(part, siblings, n=3, cutoff=0.6)
        for fixed in fixes:
            candidate = ".".join([*parts[:i], fixed, *parts[i + 1 :]])
            if candidate in known:
                return [candidate]
        if fixes:  # the corrected section exists, the rest of the path does not: name the section
            return [".".join([*parts[:i], fixes[0]])]
        break
    whole = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.75)
    if whole:
        return whole
    same_leaf = sorted(k for k in known if k.rsplit(".", 1)[-1] == parts[-1])
    return same_leaf[:1]


def _compose_node(name: str, overrides: Sequence[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize(version_base=None):
        return hydra_compose(config_name=name, overrides=list(overrides))


def to_yaml(cfg: Any) -> str:
    """The YAML text of a config dataclass (what `--cfg` prints and what runs save), with a header line naming
    the group options it was composed from so `--config-file` can recompose it."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(cfg)
    if "defaults" in node:
        with open_dict(node):
            del node["defaults"]
    header = f"{_CHOICES_HEADER} {' '.join(group_choices(cfg))}\n"
    return header + OmegaConf.to_yaml(node)


def open_dict(node: Any) -> Any:
    from omegaconf import open_dict as _open_dict

    return _open_dict(node)


def save(cfg: Any, path: Path) -> Path:
    """Write `cfg` as YAML to `path` atomically (temp file + rename)."""
    return write_text_atomic(path, to_yaml(cfg))


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `overrides` (key=value ...), `--cfg` and `--config-file` to a subcommand's parser."""
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="Hydra-style config overrides")
    parser.add_argument("--cfg", action="store_true", help="print the composed config as YAML and exit")
    parser.add_argument("--config-file", type=Path, default=None, help="a config.yaml saved by an earlier run")


def from_args(name: str, schema: type[T], ns: argparse.Namespace) -> T:
    """Compose config `name` from the parsed `overrides`/`--config-file` arguments."""
    return compose(name, schema, ns.overrides, ns.config_file)


def run_with_config(name: str, schema: type[T], ns: argparse.Namespace, run: Callable[[T], int]) -> int:
    """Compose, honour `--cfg` (print and exit 0), otherwise call `run(cfg)`. Config errors exit 2 with one line."""
    import sys

    try:
        if ns.cfg:
            print(compose_yaml(name, schema, ns.overrides, ns.config_file), end="")
            return 0
        cfg = from_args(name, schema, ns)
    except ConfigError as exc:
        print(f"drive-jepa: {exc}", file=sys.stderr)
        return 2
    return run(cfg)


def asdict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (for metadata and logging)."""
    return dataclasses.asdict(cfg)

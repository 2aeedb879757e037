"""Strict loading of V-JEPA 2 checkpoints.

Accepted formats (facts from facebookresearch/vjepa2 `app/vjepa/train.py` `save_checkpoint` and
`src/hub/backbones.py`, restated in `../shared/fixtures/vjepa2/README.md`):

* training checkpoints: a dict with `encoder`, `target_encoder`, `predictor` (state dicts whose keys start
  with `module.backbone.`, from DDP + the multi-sequence wrappers), plus `opt`, `scaler`, `epoch`, ...;
* plain state dicts `{name: tensor}` (the hub form, prefixes already removed).

Keys lose leading `module.` / `backbone.` prefixes; `*pos_embed` keys are ignored (RoPE models have none, but
released files may carry one). Every other difference - missing, unexpected or mis-shaped tensors - raises
`CheckpointError` with one line naming them; nothing is ever silently re-initialized (the official hub loader
uses `strict=False`; we never do).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agent.encoder.vit import EncoderConfig, VJEPAEncoder

STRIP_PREFIXES = ("module.", "backbone.")
TRAINING_KEYS = ("encoder", "target_encoder", "predictor")
# Heads of the released models, by width (num_heads cannot be read from weight shapes).
KNOWN_NUM_HEADS = {96: 3, 1024: 16, 1280: 16, 1408: 22}


class CheckpointError(ValueError):
    """A checkpoint does not hold what was asked for; the message is one line naming the file and keys."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load(path, weights_only=True)` on the CPU; the result must be a dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types
        raise CheckpointError(f"{path}: not a loadable torch checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(obj).__name__}")
    return obj


def strip_prefixes(key: str) -> str:
    """Remove leading `module.` / `backbone.` prefixes (in any order, any number)."""
    changed = True
    while changed:
        changed = False
        for p in STRIP_PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def is_state_dict(obj: Mapping[str, Any]) -> bool:
    """True for a plain `{name: tensor}` dict."""
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def select_state_dict(obj: Mapping[str, Any], key: str | None, source: str) -> dict[str, torch.Tensor]:
    """The cleaned state dict of entry `key` of a training checkpoint, or `obj` itself when it is plain."""
    if is_state_dict(obj):
        sd = obj
    else:
        present = [k for k in TRAINING_KEYS if isinstance(obj.get(k), Mapping)]
        if key is None or key not in present:
            what = "no key given" if key is None else f"no state dict under {key!r}"
            raise CheckpointError(
                f"{source}: {what}; this checkpoint holds {present or sorted(map(str, obj))} "
                "(pass the entry to load, e.g. 'target_encoder' or 'encoder')"
            )
        sd = obj[key]
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: entry {k!r} is a {type(v).__name__}, expected a tensor")
        name = strip_prefixes(k)
        if name.endswith("pos_embed"):
            continue
        if name in out:
            raise CheckpointError(f"{source}: key {name!r} occurs twice after removing prefixes")
        out[name] = v
    return out


def _listing(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy `state_dict` into `module`; keys and shapes must match exactly (CheckpointError otherwise)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if state_dict[k].shape != expected[k].shape
    )
    if missing or unexpected or misshaped:
        parts = [
            f"{label} [{_listing(items)}]"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if items
        ]
        raise CheckpointError(f"{source}: does not match {type(module).__name__}: " + "; ".join(parts))
    module.load_state_dict(dict(state_dict), strict=True)


def infer_encoder_config(state_dict: Mapping[str, torch.Tensor], num_heads: int | None = None) -> EncoderConfig:
    """Encoder sizes read from weight shapes; `num_heads` from `KNOWN_NUM_HEADS` unless given."""
    try:
        w = state_dict["patch_embed.proj.weight"]
    except KeyError:
        raise CheckpointError("state dict has no 'patch_embed.proj.weight': not a V-JEPA encoder") from None
    if w.ndim != 5:
        raise CheckpointError(f"patch_embed.proj.weight has shape {tuple(w.shape)}: not a 3D tubelet embedding")
    dim, in_chans, tubelet, patch, _ = w.shape
    depth = len({k.split(".")[1] for k in state_dict if k.startswith("blocks.")})
    if num_heads is None:
        if dim not in KNOWN_NUM_HEADS:
            raise CheckpointError(f"embed_dim {dim}: unknown head count, pass num_heads explicitly")
        num_heads = KNOWN_NUM_HEADS[dim]
    hidden = state_dict["blocks.0.mlp.fc1.weight"].shape[0] if depth else 4 * dim
    return EncoderConfig(
        embed_dim=dim,
        depth=depth,
        num_heads=num_heads,
        mlp_hidden=hidden,
        in_chans=in_chans,
        patch_size=patch,
        tubelet_size=tubelet,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
    )


def load_encoder(
    path: str | Path,
    key: str | None = "target_encoder",
    num_heads: int | None = None,
    cfg: EncoderConfig | None = None,
) -> VJEPAEncoder:
    """Build a `VJEPAEncoder` from a checkpoint file and load it strictly.

    `key` picks the entry of a training checkpoint (`target_encoder`, the EMA encoder the official evals use,
    or `encoder`, what the hub loads); plain state dicts ignore it. Sizes come from `cfg` or weight shapes.
    """
    source = f"{path}[{key}]" if key else str(path)
    sd = select_state_dict(read_checkpoint(path), key, source)
    model = VJEPAEncoder(cfg or infer_encoder_config(sd, num_heads))
    load_strict(model, sd, source)
    return model

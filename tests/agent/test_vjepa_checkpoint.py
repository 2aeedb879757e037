"""Strict checkpoint loading: formats accepted, mismatches reported in one line, nothing re-initialized."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.encoder import CheckpointError, VJEPAEncoder, encoder_config, load_encoder, read_checkpoint
from agent.encoder.checkpoint import select_state_dict, strip_prefixes
from tests.conftest import fixtures_dir


@pytest.fixture(scope="module")
def ckpt_path() -> Path:
    return fixtures_dir("vjepa2", "a_train_ckpt.pt")


def test_training_checkpoint_keys_have_official_prefix(ckpt_path: Path) -> None:
    ckpt = read_checkpoint(ckpt_path)
    assert {"encoder", "target_encoder", "predictor", "opt", "scaler", "epoch"} <= set(ckpt)
    assert all(k.startswith("module.backbone.") for k in ckpt["encoder"])
    assert strip_prefixes("module.backbone.blocks.0.norm1.weight") == "blocks.0.norm1.weight"


def test_training_checkpoint_needs_a_key(ckpt_path: Path) -> None:
    with pytest.raises(CheckpointError, match="target_encoder"):
        load_encoder(ckpt_path, key=None)
    with pytest.raises(CheckpointError, match="no state dict under 'teacher'"):
        load_encoder(ckpt_path, key="teacher")


def test_loaded_weights_equal_file(ckpt_path: Path) -> None:
    enc = load_encoder(ckpt_path, key="target_encoder")
    raw = read_checkpoint(ckpt_path)["target_encoder"]
    for k, v in enc.state_dict().items():
        assert torch.equal(v, raw["module.backbone." + k]), k


def test_pos_embed_is_ignored(tmp_path: Path, ckpt_path: Path) -> None:
    sd = select_state_dict(read_checkpoint(ckpt_path), "encoder", "fx")
    sd["pos_embed"] = torch.zeros(1, 32, 96)
    torch.save(sd, tmp_path / "with_pos.pt")
    load_encoder(tmp_path / "with_pos.pt")


def _mutated(tmp_path: Path, ckpt_path: Path, edit: str) -> Path:
    sd = select_state_dict(read_checkpoint(ckpt_path), "encoder", "fx")
    if edit == "missing":
        del sd["blocks.1.mlp.fc2.bias"]
    elif edit == "unexpected":
        sd["blocks.0.attn.q_norm.weight"] = torch.ones(32)
    elif edit == "misshaped":
        sd["norm.weight"] = torch.ones(95)
    path = tmp_path / f"{edit}.pt"
    torch.save(sd, path)
    return path


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ("missing", "missing [blocks.1.mlp.fc2.bias]"),
        ("unexpected", "unexpected [blocks.0.attn.q_norm.weight]"),
        ("misshaped", "mis-shaped [norm.weight (95,) vs model (96,)]"),
    ],
)
def test_mismatch_is_one_line_error(tmp_path: Path, ckpt_path: Path, edit: str, needle: str) -> None:
    path = _mutated(tmp_path, ckpt_path, edit)
    with pytest.raises(CheckpointError) as err:
        load_encoder(path, cfg=encoder_config("tiny"))
    msg = str(err.value)
    assert needle in msg and "\n" not in msg and str(path) in msg


def test_wrong_model_size_is_refused(ckpt_path: Path) -> None:
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_encoder(ckpt_path, key="encoder", cfg=encoder_config("tiny", embed_dim=192, num_heads=6))


def test_not_a_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a loadable"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "absent.pt")


def test_save_load_roundtrip(tmp_path: Path) -> None:
    enc = VJEPAEncoder(encoder_config("tiny", depth=1))
    torch.save({"module.backbone." + k: v for k, v in enc.state_dict().items()}, tmp_path / "e.pt")
    again = load_encoder(tmp_path / "e.pt")
    assert again.cfg.depth == 1
    for k, v in enc.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])

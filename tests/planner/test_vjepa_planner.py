"""The V-JEPA encoder as the planner's token encoder: strict init from a V-JEPA 2 checkpoint, train, reload."""

from __future__ import annotations

import pytest
import torch

from agent.planner.checkpoint import load_planner_checkpoint
from agent.planner.config import EncoderConfig
from agent.planner.tokens import VJEPATokenEncoder, build_encoder
from tests.conftest import fixtures_dir


def _tiny_vjepa(**kw) -> EncoderConfig:
    return EncoderConfig(kind="vjepa", dim=96, patch=16, frames=2, vjepa_size="tiny", **kw)


def test_vjepa_token_grid_from_the_official_tiny_checkpoint():
    ckpt = fixtures_dir("vjepa2", "a_encoder_plain.pt")
    enc = build_encoder(_tiny_vjepa(vjepa_checkpoint=str(ckpt), vjepa_key=""))
    assert isinstance(enc, VJEPATokenEncoder) and enc.dim == 96
    grid = enc(torch.randn(2, 3, 2, 64, 128))
    assert grid.shape == (2, 96, 4, 8)
    # the weights really came from the file: a fresh encoder gives other tokens
    torch.manual_seed(0)
    fresh = build_encoder(_tiny_vjepa())
    assert not torch.allclose(fresh(torch.ones(1, 3, 2, 64, 128)), enc(torch.ones(1, 3, 2, 64, 128)))


def test_vjepa_encoder_config_mismatches_are_clear_errors():
    with pytest.raises(ValueError, match="embed_dim 96"):
        build_encoder(EncoderConfig(kind="vjepa", dim=64, vjepa_size="tiny"))
    with pytest.raises(ValueError, match="patch"):
        build_encoder(EncoderConfig(kind="vjepa", dim=96, patch=8, vjepa_size="tiny"))
    ckpt = fixtures_dir("vjepa2", "a_encoder_plain.pt")
    with pytest.raises(Exception, match=r"(?i)missing|mis-shaped|shape"):  # a tiny file into a ViT-L: refused
        build_encoder(
            EncoderConfig(kind="vjepa", dim=1024, vjepa_size="vit_large", vjepa_checkpoint=str(ckpt), vjepa_key="")
        )


def test_train_with_the_vjepa_encoder_and_reload_the_checkpoint(tmp_path):
    from drive_jepa import cli
    from training.planner.train import tiny_overrides

    ckpt = fixtures_dir("vjepa2", "a_encoder_plain.pt")
    over = [o for o in tiny_overrides() if not o.startswith(("model.encoder.", "model.image_"))]
    over += [
        "model.image_height=64",
        "model.image_width=128",
        "model.encoder.kind=vjepa",
        "model.encoder.vjepa_size=tiny",
        "model.encoder.dim=96",
        "model.encoder.patch=16",
        f"model.encoder.vjepa_checkpoint={ckpt}",
        "model.encoder.vjepa_key=''",
        "steps=2",
        f"out={tmp_path / 'run'}",
    ]
    assert cli.main(["train", *over]) == 0
    loaded = load_planner_checkpoint(tmp_path / "run")
    assert loaded.config.encoder.kind == "vjepa" and loaded.config.encoder.vjepa_checkpoint is None
    out = loaded.model(torch.zeros(1, 3, 2, 64, 128), torch.zeros(1, 8))
    assert torch.isfinite(out.trajectories).all()

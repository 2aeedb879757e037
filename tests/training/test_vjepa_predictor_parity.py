"""Predictor outputs, targets, loss and optimizer groups against the official code (fixtures/vjepa2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agent.encoder import VJEPAEncoder, load_encoder, read_checkpoint
from agent.encoder.rope import decode_positions
from tests.vjepa_oracle import assert_close
from training.pretrain.jepa import JEPA, load_predictor, target_features
from training.pretrain.masks import Masks
from training.pretrain.optim import param_groups
from training.pretrain.predictor import VJEPAPredictor

LOSS_TOL = 1e-6


@pytest.fixture(scope="module")
def predictor(vjepa_fx: Path) -> VJEPAPredictor:
    return load_predictor(vjepa_fx / "a_train_ckpt.pt", num_heads=4, img_height=64).eval()


@pytest.fixture(scope="module")
def encoders(vjepa_fx: Path) -> tuple[VJEPAEncoder, VJEPAEncoder]:
    ckpt = vjepa_fx / "a_train_ckpt.pt"
    return load_encoder(ckpt, key="encoder").eval(), load_encoder(ckpt, key="target_encoder").eval()


def _t(vjepa_io: dict[str, np.ndarray], key: str) -> torch.Tensor:
    return torch.from_numpy(vjepa_io[key])


@pytest.mark.parametrize("j", ["0", "1", "c"])
def test_predictor_outputs(vjepa_io: dict[str, np.ndarray], predictor: VJEPAPredictor, j: str) -> None:
    with torch.no_grad():
        out = predictor(
            _t(vjepa_io, f"enc_ctx_{j}"),
            _t(vjepa_io, f"masks_enc_{j}"),
            _t(vjepa_io, f"masks_pred_{j}"),
            mask_index=0,
            grid_hw=(4, 4),
        )
    assert_close(out, vjepa_io[f"pred_{j}"], f"pred_{j}")
    loss = (out - _t(vjepa_io, f"tgt_masked_{j}")).abs().mean().item()
    assert abs(loss - float(vjepa_io[f"loss_{j}"])) <= LOSS_TOL


def test_predictor_block_intermediates(vjepa_io: dict[str, np.ndarray], predictor: VJEPAPredictor) -> None:
    """Residual stream after each block, compared in the official sorted-position order."""
    acts: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, i, o: acts.append(o)) for b in predictor.predictor_blocks]
    with torch.no_grad():
        predictor(
            _t(vjepa_io, "enc_ctx_0"),
            _t(vjepa_io, "masks_enc_0"),
            _t(vjepa_io, "masks_pred_0"),
            mask_index=0,
            grid_hw=(4, 4),
        )
        embed = predictor.predictor_embed(_t(vjepa_io, "enc_ctx_0"))
    for h in hooks:
        h.remove()
    assert_close(embed, vjepa_io["pred_0_embed"], "pred_0_embed")
    positions = torch.cat((_t(vjepa_io, "masks_enc_0"), _t(vjepa_io, "masks_pred_0")), dim=1)
    order = torch.argsort(positions, dim=1)
    assert torch.equal(torch.gather(positions, 1, order), _t(vjepa_io, "pred_0_seq_positions"))
    for i, a in enumerate(acts):
        sorted_a = torch.gather(a, 1, order.unsqueeze(-1).expand(-1, -1, a.shape[-1]))
        assert_close(sorted_a, vjepa_io[f"pred_0_block{i}_out"], f"pred_0_block{i}_out")


def test_mask_index_one_is_the_direct_call_token(vjepa_io: dict[str, np.ndarray], predictor: VJEPAPredictor) -> None:
    with torch.no_grad():
        out = predictor(
            _t(vjepa_io, "enc_ctx_0"),
            _t(vjepa_io, "masks_enc_0"),
            _t(vjepa_io, "masks_pred_0"),
            mask_index=1,
            grid_hw=(4, 4),
        )
        wrapped = predictor(
            _t(vjepa_io, "enc_ctx_0"),
            _t(vjepa_io, "masks_enc_0"),
            _t(vjepa_io, "masks_pred_0"),
            mask_index=11,
            grid_hw=(4, 4),
        )
    assert_close(out, vjepa_io["pred_0_mask_index1"], "pred_0_mask_index1")
    assert torch.equal(out, wrapped)  # mask_index mod num_mask_tokens


def test_full_training_loss(
    vjepa_io: dict[str, np.ndarray], predictor: VJEPAPredictor, encoders: tuple[VJEPAEncoder, VJEPAEncoder]
) -> None:
    """The whole objective from the clip and the official masks: targets, per-config and mean loss."""
    encoder, target = encoders
    clip = _t(vjepa_io, "clip")
    masks = [Masks(enc=_t(vjepa_io, f"masks_enc_{j}"), pred=_t(vjepa_io, f"masks_pred_{j}")) for j in (0, 1)]
    with torch.no_grad():
        h = target_features(target, clip)
        loss, per_cfg = JEPA(encoder, predictor).eval()(clip, h, masks)
    assert_close(h, vjepa_io["tgt_full_ln"], "tgt_full_ln")
    assert abs(per_cfg[0].item() - float(vjepa_io["loss_0"])) <= LOSS_TOL
    assert abs(per_cfg[1].item() - float(vjepa_io["loss_1"])) <= LOSS_TOL
    assert abs(loss.item() - float(vjepa_io["loss"])) <= LOSS_TOL


def test_square_grid_position_quirk(predictor: VJEPAPredictor) -> None:
    """The official predictor decodes indices with a G x G grid (G = img_height // 16) even when W' != H'."""
    assert predictor.position_grid_hw((4, 8)) == (4, 4)
    idx = torch.tensor([[5, 21]])  # on a 4 x 8 grid: (0, 0, 5), (0, 2, 5); on 4 x 4: (0, 1, 1), (1, 1, 1)
    assert decode_positions(idx, predictor.position_grid_hw((4, 8))).tolist() == [[[0, 1, 1], [1, 1, 1]]]
    predictor.cfg.square_grid_positions = False
    try:
        assert decode_positions(idx, predictor.position_grid_hw((4, 8))).tolist() == [[[0, 0, 5], [0, 2, 5]]]
    finally:
        predictor.cfg.square_grid_positions = True


def test_optimizer_groups_match_official(vjepa_fx: Path, encoders: tuple[VJEPAEncoder, VJEPAEncoder]) -> None:
    opt = read_checkpoint(vjepa_fx / "a_train_ckpt.pt")["opt"]
    predictor = load_predictor(vjepa_fx / "a_train_ckpt.pt", num_heads=4, img_height=64)
    groups = param_groups(encoders[0], predictor)
    assert [len(g["params"]) for g in groups] == [len(g["params"]) for g in opt["param_groups"]]  # type: ignore[arg-type]
    assert [g.get("WD_exclude", False) for g in groups] == [g.get("WD_exclude", False) for g in opt["param_groups"]]

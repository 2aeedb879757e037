"""Parity of the V-JEPA encoder with the official code's outputs (../shared/fixtures/vjepa2, config A)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agent.encoder import VJEPAEncoder, encoder_config, load_encoder
from agent.encoder.rope import rope_axis_dim, rotate_axis
from tests.vjepa_oracle import REL_TOL, assert_close


@pytest.fixture(scope="module")
def target(vjepa_fx: Path) -> VJEPAEncoder:
    return load_encoder(vjepa_fx / "a_train_ckpt.pt", key="target_encoder").eval()


@pytest.fixture(scope="module")
def context(vjepa_fx: Path) -> VJEPAEncoder:
    return load_encoder(vjepa_fx / "a_train_ckpt.pt", key="encoder").eval()


def test_config_inferred_from_weights(target: VJEPAEncoder) -> None:
    assert target.cfg == encoder_config("tiny")
    assert rope_axis_dim(target.head_dim) == 10  # 10/10/10 + 2 unrotated


@pytest.mark.parametrize("d", [4, 8, 10])
def test_rope_one_axis(vjepa_io: dict[str, np.ndarray], d: int) -> None:
    x, pos = torch.from_numpy(vjepa_io[f"rope_d{d}_x"]), torch.from_numpy(vjepa_io[f"rope_d{d}_pos"])
    assert_close(rotate_axis(x, pos), vjepa_io[f"rope_d{d}_out"], f"rope d={d}")


def test_target_encoder_full_clip_and_intermediates(vjepa_io: dict[str, np.ndarray], target: VJEPAEncoder) -> None:
    clip = torch.from_numpy(vjepa_io["clip"])
    acts: dict[str, torch.Tensor] = {}
    hooks = [target.patch_embed.register_forward_hook(lambda m, i, o: acts.__setitem__("pe", o))]
    for i, blk in enumerate(target.blocks):
        hooks.append(blk.register_forward_hook(lambda m, inp, o, i=i: acts.__setitem__(f"b{i}", o)))
    with torch.no_grad():
        out = target(clip)
    for h in hooks:
        h.remove()
    assert_close(acts["pe"], vjepa_io["tgt_full_patch_embed"], "tgt_full_patch_embed")
    assert_close(acts["b0"], vjepa_io["tgt_full_block0_out"], "tgt_full_block0_out")
    assert_close(acts["b1"], vjepa_io["tgt_full_block1_out"], "tgt_full_block1_out")
    assert_close(out, vjepa_io["tgt_full"], "tgt_full")
    ln = torch.nn.functional.layer_norm(out, (out.shape[-1],))  # eps 1e-5, no affine
    assert_close(ln, vjepa_io["tgt_full_ln"], "tgt_full_ln")


def test_token_order_and_grid(vjepa_io: dict[str, np.ndarray], target: VJEPAEncoder) -> None:
    clip = torch.from_numpy(vjepa_io["clip"])
    with torch.no_grad():
        grid = target.forward_grid(clip)
    assert grid.shape == (2, 2, 4, 4, 96)
    thw = vjepa_io["token_thw"]
    expected = vjepa_io["tgt_full"]
    for idx in (0, 5, 17, 31):
        t, h, w = thw[idx]
        assert_close(grid[:, t, h, w], expected[:, idx], f"grid token {idx}")


def test_context_encoder_and_masked_encoding(vjepa_io: dict[str, np.ndarray], context: VJEPAEncoder) -> None:
    clip = torch.from_numpy(vjepa_io["clip"])
    with torch.no_grad():
        assert_close(context(clip), vjepa_io["enc_full"], "enc_full")
        for j in ("0", "1", "c"):  # "c": shuffled, non-ascending indices -> rows follow the mask order
            masks = torch.from_numpy(vjepa_io[f"masks_enc_{j}"])
            assert_close(context(clip, masks), vjepa_io[f"enc_ctx_{j}"], f"enc_ctx_{j}")


def test_target_encoder_masked(vjepa_io: dict[str, np.ndarray], target: VJEPAEncoder) -> None:
    with torch.no_grad():
        out = target(torch.from_numpy(vjepa_io["clip"]), torch.from_numpy(vjepa_io["masks_enc_0"]))
    assert_close(out, vjepa_io["tgt_ctx_0"], "tgt_ctx_0")


def test_plain_state_dict_is_bit_identical(vjepa_fx: Path, vjepa_io: dict[str, np.ndarray]) -> None:
    enc = load_encoder(vjepa_fx / "a_encoder_plain.pt").eval()
    with torch.no_grad():
        out = enc(torch.from_numpy(vjepa_io["clip"]))
    assert_close(out, vjepa_io["enc_full"], "enc_full (plain)")


def test_encoder_and_target_differ(vjepa_io: dict[str, np.ndarray], context: VJEPAEncoder) -> None:
    """Loading the wrong copy is detectable: the fixture's two encoders differ far beyond the tolerance."""
    with torch.no_grad():
        out = context(torch.from_numpy(vjepa_io["clip"])).numpy()
    assert np.abs(out - vjepa_io["tgt_full"]).max() > 100 * REL_TOL * np.abs(vjepa_io["tgt_full"]).max()


def test_driving_input_grid() -> None:
    enc = VJEPAEncoder(encoder_config("tiny")).eval()
    video = torch.randn(1, 3, 2, 256, 512)
    assert enc.grid_shape(2, 256, 512) == (1, 16, 32)
    with torch.no_grad():
        tokens, grid = enc(video), enc.forward_grid(video)
    assert tokens.shape == (1, 512, 96)
    assert torch.equal(grid.reshape(1, 512, 96), tokens)


@pytest.mark.parametrize("shape", [(1, 3, 3, 64, 64), (1, 3, 2, 64, 40), (1, 1, 2, 64, 64), (3, 2, 64, 64)])
def test_bad_video_shape_is_one_clear_error(shape: tuple[int, ...]) -> None:
    enc = VJEPAEncoder(encoder_config("tiny"))
    with pytest.raises(ValueError, match="video"):
        enc(torch.zeros(shape))


@pytest.mark.gpu
def test_parity_on_gpu_without_tf32(vjepa_io: dict[str, np.ndarray], target: VJEPAEncoder) -> None:
    """README: on a GPU, disable TF32 to meet the float32 rule."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        enc = VJEPAEncoder(target.cfg).cuda().eval()
        enc.load_state_dict(target.state_dict())
        with torch.no_grad():
            out = enc(torch.from_numpy(vjepa_io["clip"]).cuda()).cpu()
            ctx = enc(torch.from_numpy(vjepa_io["clip"]).cuda(), torch.from_numpy(vjepa_io["masks_enc_0"]).cuda()).cpu()
        assert_close(out, vjepa_io["tgt_full"], "tgt_full (cuda)")
        assert_close(ctx, vjepa_io["tgt_ctx_0"], "tgt_ctx_0 (cuda)")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.mark.gpu
def test_bf16_autocast_close_to_fp32(vjepa_io: dict[str, np.ndarray], target: VJEPAEncoder) -> None:
    """bf16 autocast (the training precision) stays within bf16 rounding of the float32 output."""
    enc = VJEPAEncoder(target.cfg).cuda().eval()
    enc.load_state_dict(target.state_dict())
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = enc(torch.from_numpy(vjepa_io["clip"]).cuda()).float().cpu().numpy()
    assert np.abs(out - vjepa_io["tgt_full"]).max() < 0.05 * np.abs(vjepa_io["tgt_full"]).max()


def test_activation_checkpointing_changes_no_numbers(vjepa_io: dict[str, np.ndarray], target: VJEPAEncoder) -> None:
    """README quirk 14: activation checkpointing changes neither keys nor outputs nor gradients."""
    plain = VJEPAEncoder(target.cfg).train()
    ckpt = VJEPAEncoder(encoder_config("tiny", activation_checkpointing=True)).train()
    plain.load_state_dict(target.state_dict())
    ckpt.load_state_dict(target.state_dict())
    clip, masks = torch.from_numpy(vjepa_io["clip"]), torch.from_numpy(vjepa_io["masks_enc_1"])
    out_a, out_b = plain(clip, masks), ckpt(clip, masks)
    assert torch.equal(out_a, out_b)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    for (name, pa), pb in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        assert pa.grad is not None and pb.grad is not None
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-5, atol=1e-7), name

"""The V-JEPA objective: context encoder + predictor against an EMA target encoder.

Per step (official `app/vjepa/train.py`, restated in `../shared/fixtures/vjepa2/README.md`):

1. targets `h = layer_norm(target_encoder(clip))` on the *unmasked* clip, parameter-free, eps 1e-5;
2. for each mask config j: `z = encoder(clip, masks_enc_j)`, `p = predictor(z, masks_enc_j, masks_pred_j,
   mask_index=0)` (0 = the frames-per-clip group; a single group here);
3. `loss_j = mean(|p - h[masks_pred_j]|)` over all elements; `loss = mean_j loss_j`;
4. after the optimizer step, `target <- m * target + (1 - m) * encoder` (`ema_update`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from agent.encoder import VJEPAEncoder, load_strict, read_checkpoint, select_state_dict
from training.pretrain.masks import Masks
from training.pretrain.predictor import PredictorConfig, VJEPAPredictor

TARGET_LN_EPS = 1e-5  # F.layer_norm default, as in the official forward_target (model norms use 1e-6)
TRAIN_MASK_INDEX = 0


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows `index` (B, K) of `x` (B, N, D) -> (B, K, D)."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


@torch.no_grad()
def target_features(target_encoder: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """Layer-normed target-encoder features (B, N, D) of the whole clip."""
    h = target_encoder(clip)
    return F.layer_norm(h, (h.shape[-1],), eps=TARGET_LN_EPS)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`mean(|pred - target|)` over every element, in float32."""
    return (pred.float() - target.float()).abs().mean()


class JEPA(nn.Module):
    """Context encoder + predictor (trained); the target encoder is kept outside (see `ema_update`)."""

    def __init__(self, encoder: VJEPAEncoder, predictor: VJEPAPredictor) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def forward(
        self, clip: torch.Tensor, targets: torch.Tensor, masks: list[Masks]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss (scalar) and per-config losses (J,) for `clip` (B, C, T, H, W) and normalized `targets`."""
        grid_hw = self.encoder.grid_shape(*clip.shape[2:])[1:]
        losses = []
        for m in masks:
            z = self.encoder(clip, m.enc)
            p = self.predictor(z, m.enc, m.pred, mask_index=TRAIN_MASK_INDEX, grid_hw=grid_hw)
            losses.append(l1_loss(p, gather_tokens(targets, m.pred)))
        per_cfg = torch.stack(losses)
        return per_cfg.mean(), per_cfg.detach()


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """`target <- momentum * target + (1 - momentum) * online`, over parameters in order."""
    t_params: list[torch.Tensor] = list(target.parameters())
    o_params: list[torch.Tensor] = list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError("EMA: target and online encoders have different parameter lists")
    torch._foreach_mul_(t_params, momentum)
    torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)


def infer_predictor_config(
    state_dict: Mapping[str, torch.Tensor], num_heads: int, img_height: int, patch_size: int = 16
) -> PredictorConfig:
    """Predictor sizes from weight shapes (heads and the built image height cannot be read from weights)."""
    dp, d = state_dict["predictor_embed.weight"].shape
    depth = len({k.split(".")[1] for k in state_dict if k.startswith("predictor_blocks.")})
    n_tokens = len([k for k in state_dict if k.startswith("mask_tokens.")])
    return PredictorConfig(
        embed_dim=d,
        predictor_embed_dim=dp,
        depth=depth,
        num_heads=num_heads,
        mlp_hidden=state_dict["predictor_blocks.0.mlp.fc1.weight"].shape[0],
        num_mask_tokens=n_tokens,
        img_height=img_height,
        patch_size=patch_size,
    )


def load_predictor(
    path: str | Path, num_heads: int, img_height: int, key: str = "predictor", patch_size: int = 16
) -> VJEPAPredictor:
    """A predictor loaded strictly from a training checkpoint (`predictor` entry) or a plain state dict."""
    source = f"{path}[{key}]"
    sd = select_state_dict(read_checkpoint(path), key, source)
    model = VJEPAPredictor(infer_predictor_config(sd, num_heads, img_height, patch_size))
    load_strict(model, sd, source)
    return model

"""Typed config of `drive-jepa pretrain` (Hydra structured config `pretrain`, model group `model`).

`drive-jepa pretrain --cfg` prints the composed config; `model=tiny` selects the tiny model of the parity
fixture (used by the CPU test), `model=vit_large` (default) the V-JEPA 2 ViT-L with its 12 x 384 predictor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drive_jepa.config import register
from training.data.video import VideoDataConfig
from training.pretrain.masks import MaskConfig, default_mask_configs
from training.pretrain.optim import OptimConfig


@dataclass
class ModelConfig:
    """Encoder preset, predictor sizes and where the weights start from."""

    encoder: str = "vit_large"  # preset in agent.encoder.ENCODER_PRESETS
    predictor_dim: int = 384
    predictor_depth: int = 12
    predictor_heads: int = 12
    num_mask_tokens: int = 10  # as in the released checkpoints; training uses token 0
    # False: decode predictor positions with the input's true (H', W') (right for 256 x 512 driving input);
    # True: the official square-grid quirk (side = predictor_img_height // 16), needed to reproduce upstream.
    square_grid_positions: bool = False
    predictor_img_height: int = 256
    drop_path_rate: float = 0.0
    activation_checkpointing: bool = True
    init_checkpoint: str = ""  # a V-JEPA 2 checkpoint to start from ("" = random init)
    init_encoder_key: str = "target_encoder"  # entry of a training checkpoint used for both encoders
    init_predictor: bool = True  # also load `predictor` when the init checkpoint has one


@dataclass
class RunConfig:
    """Loop, output and hardware settings."""

    out_dir: str = "runs/pretrain"
    steps: int = 100_000
    batch_size: int = 24  # clips per process
    seed: int = 0
    t_max_scale: float = 1.25  # schedules run to t_max = steps * scale (V-JEPA `ipe_scale`)
    precision: str = "bf16"  # bf16 autocast on CUDA; always float32 on CPU
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False  # torch.compile every transformer block (dynamic shapes): slow start, faster steps
    log_every: int = 50
    ckpt_every: int = 1000
    resume: bool = True  # continue from out_dir/latest.pt when it exists
    stop_after_steps: int = 0  # end this invocation (with a checkpoint) after N steps; 0 = run to `steps`
    tensorboard: bool = True
    throughput_warmup_steps: int = 5  # first steps left out of the throughput figure
    progress: bool = True  # a progress line (step, loss, s/step, ETA) on stderr at most every 10 s


@dataclass
class PretrainConfig:
    """V-JEPA pretraining on driving video."""

    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"model": "vit_large"}])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    masks: list[MaskConfig] = field(default_factory=default_mask_configs)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class TinyModelConfig(ModelConfig):
    """The parity fixture's sizes (encoder 96 x 2 layers x 3 heads, predictor 48 x 2 x 4): CPU tests."""

    encoder: str = "tiny"
    predictor_dim: int = 48
    predictor_depth: int = 2
    predictor_heads: int = 4
    activation_checkpointing: bool = False


def register_configs() -> None:
    register("pretrain", PretrainConfig)
    register("vit_large", ModelConfig, group="model")
    register("tiny", TinyModelConfig, group="model")

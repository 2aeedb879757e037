"""Typed configs of the planner models (plain dataclasses; Hydra composes them inside the training config).

Frames and units: every trajectory a planner reads or writes is `Frame.EGO_REAR_AXLE`, (x, y, heading) in metres
and radians, at `dt` spacing starting at `dt` (NAVSIM: 8 poses at 0.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# NAVSIM v2 EPDMS sub-scores a scorer head predicts by default (fixtures/navsim_scorer/README.md §5).
EPDMS_SUBSCORES: tuple[str, ...] = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "hc", "ec")
TARGET_POINT_SCALE = 10.0  # metres per unit of the target-point input (clipped to ±TARGET_POINT_CLIP units)
TARGET_POINT_CLIP = 6.0
STATUS_DIM = 8  # driving command one-hot (4: left, straight, right, unknown), velocity (vx, vy), accel (ax, ay)


@dataclass
class EncoderConfig:
    """The video encoder producing the token grid.

    kind: "patch" = `PatchEncoder` (a small trainable tubelet-conv encoder for tests and tiny configs); "vjepa" =
    the V-JEPA 2 ViT of `agent/encoder/` (3D RoPE, tubelets 2×16×16), optionally initialised from a checkpoint.
    """

    kind: str = "patch"  # "patch" (PatchEncoder) or "vjepa" (agent.encoder.VJEPAEncoder)
    dim: int = 64  # token dimension D (for vjepa: must equal the preset's embed_dim)
    patch: int = 16  # spatial patch size (pixels)
    frames: int = 2  # tubelet depth = number of input frames
    freeze: bool = False
    vjepa_size: str = "vit_large"  # V-JEPA preset (agent.encoder.encoder_config): tiny, vit_large, vit_huge, ...
    # a V-JEPA 2 checkpoint (official training checkpoint or plain state dict) loaded strictly at build time;
    # `vjepa_key` picks its entry (target_encoder = the EMA encoder, or encoder)
    vjepa_checkpoint: str | None = None
    vjepa_key: str = "target_encoder"
    activation_checkpointing: bool = False


@dataclass
class BaselineConfig:
    """Perception-free baseline: pooled tokens + status token → transformer decoder → `num_poses` poses."""

    d_model: int = 256
    heads: int = 8
    layers: int = 3
    ffn: int = 1024
    pool: int = 2  # average-pool the token grid by this factor before attention
    dropout: float = 0.0


@dataclass
class ProposalConfig:
    """Proposal-centric planner: N proposals × T waypoint queries, K weight-tied refinement iterations."""

    num_proposals: int = 32
    iterations: int = 4
    d_model: int = 256
    heads: int = 8
    ffn: int = 1024
    dropout: float = 0.0
    # initial proposals: "fan" = fixed anchors (arcs at `anchor_speed` with curvatures evenly spread over
    # ±`anchor_max_curvature`) plus a learned offset (zero at init); "learned" = from the queries alone
    anchors: str = "fan"
    anchor_speed: float = 8.0
    anchor_max_curvature: float = 0.05
    # box points projected at each waypoint: the 4 ego box corners at these heights above ground (m), + box centre
    corner_heights: list[float] = field(default_factory=lambda: [0.0, 0.9, 1.8])
    score_names: list[str] = field(default_factory=lambda: list(EPDMS_SUBSCORES))
    # an imitation score beside the simulator sub-scores (as Hydra-MDP's scorer): how close a trajectory is to the
    # human one, trained on the proposals themselves (target exp(−ADE/τ), `loss.imitation_tau_m`); selection then
    # ranks by sigmoid(final) · sigmoid(imitation)^imitation_weight
    imitation_score: bool = False
    imitation_weight: float = 1.0
    # how the imitation head is trained and read: "independent" = a scorer output, one BCE per trajectory against
    # exp(−ADE/τ), sigmoid at inference; "softmax" = a scorer output, Hydra-MDP's cross-entropy over a sample's
    # trajectories against softmax(−ADE/τ) (a ranking: only the relative closeness to the human trajectory
    # matters), softmax at inference; "decoder" = the same ranking loss, but read from the proposal decoder's own
    # queries (which know the mode they stand for, as mode-classification heads of proposal-centric planners do)
    # instead of the scorer (which sees a trajectory only through the image features at its waypoints); the
    # candidates then get no imitation score; "regression" = the decoder regresses one human-like trajectory (L1 to
    # the human one, from the pooled final proposal queries) and each proposal's imitation score is
    # softmax(−ADE(proposal, regressed) / imitation_regression_tau_m) over the proposals: a dense target, where
    # the ranking kinds only learn from which proposal happened to be closest
    imitation_kind: str = "independent"
    imitation_regression_tau_m: float = 1.0


@dataclass
class PlannerModelConfig:
    """Everything needed to rebuild a planner model (saved as `model.yaml` in every checkpoint)."""

    kind: str = "proposal"  # "proposal" | "baseline"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    proposal: ProposalConfig = field(default_factory=ProposalConfig)
    num_poses: int = 8
    dt: float = 0.5
    image_height: int = 256
    image_width: int = 512
    camera: str = "navsim_cam_f0"  # agent.camera.camera_by_name; per-sample projections override it
    # ego geometry for the box corners (metres; rear-axle frame). Default: NAVSIM's Pacifica.
    ego_front_length: float = 4.049
    ego_rear_length: float = 1.127
    ego_width: float = 2.297
    # output scaling of the pose heads (x, y, heading): heads predict pose / scale
    pose_scale: list[float] = field(default_factory=lambda: [10.0, 4.0, 0.5])
    # False: the planner never sees the ego's velocity / acceleration (status entries 4-7 are zeroed in training and
    # at inference alike), only the command, so it reads its motion from the frames; against the imitation
    # shortcut "standing still predicts standing still" (the ego then never starts again)
    ego_motion_input: bool = True
    # True: the planner also takes the route's target point (EGO_REAR_AXLE, metres; the leaderboard route's next point
    # beyond a few metres, Bench2Drive's `command_near`), scaled by 1/TARGET_POINT_SCALE and clipped, appended to the
    # status. CARLA / Bench2Drive have it, NAVSIM does not (a NAVSIM-trained model keeps this False)
    target_point_input: bool = False


def status_dim(cfg: PlannerModelConfig) -> int:
    """Width of the planner's status input: `STATUS_DIM`, plus 2 with the target point."""
    return STATUS_DIM + (2 if cfg.target_point_input else 0)


# The tiny planner (CPU runs in seconds: tests, docs, latency bench), as `model.*` overrides of a training config.
TINY_MODEL_OVERRIDES: tuple[str, ...] = (
    "model.image_height=32",
    "model.image_width=64",
    "model.encoder.dim=16",
    "model.encoder.patch=8",
    "model.proposal.num_proposals=6",
    "model.proposal.iterations=2",
    "model.proposal.d_model=32",
    "model.proposal.heads=4",
    "model.proposal.ffn=64",
    "model.baseline.d_model=32",
    "model.baseline.heads=4",
    "model.baseline.layers=1",
    "model.baseline.ffn=64",
)

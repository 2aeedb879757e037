"""The contract between the policy core and a planning model, and the selection step.

A `PlanModel` takes `ModelInputs` (the video tensor and the ego status, as in training) and returns
`ModelOutputs`: N proposals of T poses in EGO_REAR_AXLE at 0.5 s spacing (first pose at +0.5 s), one learned score
per proposal, and optional named sub-scores. A `Selector` turns scores into the chosen index and may keep state
across frames (momentum-aware selection); `ArgmaxSelector` is the stateless baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class ModelInputs:
    video: np.ndarray  # (3, T, H, W) float32, normalized, oldest frame first
    command: np.ndarray  # (4,) one-hot (left, straight, right, unknown)
    speed: float  # m/s
    acceleration: np.ndarray  # (2,) m/s², EGO_REAR_AXLE (x forward, y left)
    target_point: np.ndarray  # (2,) EGO_REAR_AXLE, metres


@dataclass
class ModelOutputs:
    proposals: np.ndarray  # (N, T, 3) EGO_REAR_AXLE, 0.5 s spacing
    scores: np.ndarray  # (N,) higher is better
    subscores: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,)
    dt: float = 0.5


class PlanModel(Protocol):
    def plan(self, inputs: ModelInputs) -> ModelOutputs: ...


@dataclass
class Selection:
    index: int
    final_scores: np.ndarray  # (N,) what was maximised
    momentum_scores: np.ndarray | None = None  # (N,) comfort term against the previous plan, when used


class Selector(Protocol):
    def reset(self) -> None: ...

    def select(self, outputs: ModelOutputs, ego_pose_world: np.ndarray, timestamp: float) -> Selection: ...


class ArgmaxSelector:
    """Pick the highest learned score; no state."""

    def reset(self) -> None:
        return None

    def select(self, outputs: ModelOutputs, ego_pose_world: np.ndarray, timestamp: float) -> Selection:
        scores = np.nan_to_num(np.asarray(outputs.scores, dtype=np.float64), nan=-np.inf)
        return Selection(int(np.argmax(scores)), scores)

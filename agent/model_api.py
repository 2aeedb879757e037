"""The contract between the policy core and a planning model, and the selection step.

A `PlanModel` takes `ModelInputs` (the video tensor and the ego status, as in training) and returns
`ModelOutputs`: N proposals of T poses in EGO_REAR_AXLE at 0.5 s spacing (first pose at +0.5 s), one learned score
per proposal, and optional named sub-scores. Selection (argmax or momentum-aware, with state across frames) lives
in `agent.selection`.
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

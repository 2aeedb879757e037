"""Momentum-aware selection of a proposal: favour proposals that continue the previously selected plan comfortably.

The paper's rule (Drive-JEPA; not in the released code): the final score of every proposal becomes
S ← (7·S + S_c)/8, where S_c is a comfort score of the proposal against the plan selected at the previous frame,
warped into the current ego frame. Here (weights configurable):

1. the previous plan (EGO_REAR_AXLE of the ego when it was chosen) is taken to WORLD with the ego's WORLD pose of
   that moment and back into the current EGO_REAR_AXLE frame (`drive_jepa.frames`);
2. both it and each proposal are read at the same absolute times t = 0, dt, 2dt, … (relative to now, up to the end
   of the previous plan; the previous plan is interpolated, the proposals include the current pose at t = 0);
3. per trajectory, NAVSIM's extended-comfort (EC) features are computed by finite differences: acceleration
   magnitude, jerk magnitude, yaw rate, yaw acceleration; S_c = 1 iff the RMS over time of (proposal − previous) is
   within NAVSIM's EC thresholds 0.7 m/s², 0.5 m/s³, 0.1 rad/s, 0.1 rad/s² for all four (fixtures/navsim_scorer
   README §6.3; NAVSIM computes them on LQR-simulated 10 Hz states with Savitzky-Golay filtering — here on the
   plan poses). `mode="fraction"` uses the fraction of the four that pass instead.
First frame, a reset (route start) or a gap longer than `max_gap_s` → no previous plan, S unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from agent.model_api import ModelOutputs
from drive_jepa.frames import interp_poses, to_global, to_local, wrap_angle

# NAVSIM EC thresholds on the RMS difference: acceleration, jerk, yaw rate, yaw acceleration
EC_THRESHOLDS: tuple[float, float, float, float] = (0.7, 0.5, 0.1, 0.1)


@dataclass(frozen=True)
class MomentumConfig:
    previous_weight: float = 7.0  # weight of the planner's own score S
    comfort_weight: float = 1.0  # weight of the comfort score S_c
    dt: float = 0.5  # spacing of the plan poses (s); poses at dt, 2dt, …
    max_gap_s: float = 1.0  # older previous plans are dropped
    min_common_poses: int = 4  # poses at common times (including t = 0) needed to compare
    thresholds: tuple[float, float, float, float] = EC_THRESHOLDS
    mode: str = "binary"  # "binary" (EC) | "fraction"

    def __post_init__(self) -> None:
        if self.mode not in ("binary", "fraction"):
            raise ValueError(f"momentum mode {self.mode!r}: expected 'binary' or 'fraction'")
        if self.previous_weight < 0 or self.comfort_weight < 0 or self.previous_weight + self.comfort_weight <= 0:
            raise ValueError("momentum weights must be non-negative with a positive sum")


@dataclass
class MomentumState:
    """The selected plan (T, 3) EGO_REAR_AXLE, the ego's WORLD rear-axle pose (3,) and the time (s) it was chosen."""

    plan: np.ndarray
    ego_pose: np.ndarray
    timestamp: float


@dataclass
class Selection:
    """The one result type of proposal selection (the policy, the recorder and the replays read it)."""

    index: int
    trajectory: np.ndarray  # (T, 3) EGO_REAR_AXLE
    scores: np.ndarray  # (N,) what was maximised (after momentum)
    raw_scores: np.ndarray  # (N,) as the model gave them
    comfort: np.ndarray | None = field(default=None)  # (N,) S_c, None when no previous plan applied


class Selector(Protocol):
    """What the policy core needs of a selector; it may keep state across frames (reset at route start)."""

    def reset(self) -> None: ...

    def choose(self, outputs: ModelOutputs, ego_pose_world: np.ndarray, timestamp: float) -> Selection: ...


class ArgmaxSelector:
    """Pick the highest model score; no state (NaN scores never win)."""

    def reset(self) -> None:
        return None

    def choose(self, outputs: ModelOutputs, ego_pose_world: np.ndarray, timestamp: float) -> Selection:
        raw = np.asarray(outputs.scores, dtype=np.float64)
        scores = np.nan_to_num(raw, nan=-np.inf)
        idx = int(np.argmax(scores))
        return Selection(idx, np.asarray(outputs.proposals[idx], dtype=np.float64), scores, raw, None)


def comfort_features(poses: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Poses (…, J, 3) at spacing dt → |acceleration| (…, J−2), |jerk| (…, J−3), yaw rate (…, J−1),
    yaw acceleration (…, J−2); SI units."""
    vel = np.diff(poses[..., :2], axis=-2) / dt
    acc = np.diff(vel, axis=-2) / dt
    jerk = np.diff(acc, axis=-2) / dt
    yaw_rate = wrap_angle(np.diff(poses[..., 2], axis=-1)) / dt
    yaw_acc = np.diff(yaw_rate, axis=-1) / dt
    return np.linalg.norm(acc, axis=-1), np.linalg.norm(jerk, axis=-1), yaw_rate, yaw_acc


class MomentumSelector:
    """Stateful selector; one per driving episode. `select` is vectorised over the N proposals."""

    def __init__(self, cfg: MomentumConfig | None = None) -> None:
        self.cfg = cfg or MomentumConfig()
        self.state: MomentumState | None = None

    def reset(self) -> None:
        self.state = None

    def warp_previous(self, ego_pose: np.ndarray, timestamp: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The previous plan in the current EGO_REAR_AXLE frame with its anchor (the previous ego pose) prepended:
        poses (T+1, 3) and their times (T+1,) relative to now; None without a usable previous plan."""
        st = self.state
        if st is None:
            return None
        gap = timestamp - st.timestamp
        if not (0.0 < gap <= self.cfg.max_gap_s):
            return None
        prev = np.concatenate([np.zeros((1, 3)), np.asarray(st.plan, dtype=np.float64)], 0)
        world = to_global(prev, st.ego_pose[None])
        local = to_local(world, np.asarray(ego_pose, dtype=np.float64)[None])
        times = self.cfg.dt * np.arange(prev.shape[0]) - gap
        return local, times

    def comfort(self, proposals: np.ndarray, ego_pose: np.ndarray, timestamp: float) -> np.ndarray | None:
        """S_c (N,) of proposals (N, T, 3) EGO_REAR_AXLE against the warped previous plan; None if not applicable."""
        warped = self.warp_previous(ego_pose, timestamp)
        if warped is None:
            return None
        prev, prev_t = warped
        n, t, _ = proposals.shape
        n_common = int(np.floor((prev_t[-1] + 1e-9) / self.cfg.dt)) + 1  # t = 0, dt, … ≤ end of previous plan
        n_common = min(n_common, t + 1)
        if n_common < self.cfg.min_common_poses:
            return None
        grid = self.cfg.dt * np.arange(n_common)
        prev_on_grid = interp_poses(prev_t, prev, grid)  # (J, 3)
        cur = np.concatenate([np.zeros((n, 1, 3)), np.asarray(proposals, dtype=np.float64)], 1)[:, :n_common]
        f_cur = comfort_features(cur, self.cfg.dt)
        f_prev = comfort_features(prev_on_grid, self.cfg.dt)
        passes = []
        for fc, fp, th in zip(f_cur, f_prev, self.cfg.thresholds, strict=True):
            rms = np.sqrt(np.mean((fc - fp[None]) ** 2, axis=-1)) if fc.shape[-1] > 0 else np.zeros(n)
            passes.append(rms <= th)
        ok = np.stack(passes, -1)
        out = np.asarray(ok.all(-1) if self.cfg.mode == "binary" else ok.mean(-1), dtype=np.float64)
        return out

    def choose(self, outputs: ModelOutputs, ego_pose_world: np.ndarray, timestamp: float) -> Selection:
        """The `Selector` interface: momentum-aware selection over a model's outputs."""
        return self.select(outputs.proposals, outputs.scores, ego_pose_world, timestamp)

    def select(
        self,
        proposals: np.ndarray,
        scores: np.ndarray,
        ego_pose: np.ndarray,
        timestamp: float,
        route_start: bool = False,
    ) -> Selection:
        """proposals (N, T, 3) EGO_REAR_AXLE at dt…T·dt; scores (N,) in [0, 1]; ego_pose (3,) WORLD rear axle."""
        proposals = np.asarray(proposals, dtype=np.float64)
        raw = np.asarray(scores, dtype=np.float64)
        if proposals.ndim != 3 or proposals.shape[-1] != 3 or raw.shape != proposals.shape[:1]:
            raise ValueError(f"select: proposals must be (N, T, 3) and scores (N,), got {proposals.shape}, {raw.shape}")
        if route_start:
            self.reset()
        ego = np.asarray(ego_pose, dtype=np.float64)
        comfort = self.comfort(proposals, ego, timestamp)
        final = raw
        if comfort is not None:
            a, b = self.cfg.previous_weight, self.cfg.comfort_weight
            final = (a * raw + b * comfort) / (a + b)
        idx = int(np.argmax(final))
        self.state = MomentumState(plan=proposals[idx].copy(), ego_pose=ego.copy(), timestamp=float(timestamp))
        return Selection(idx, proposals[idx], final, raw, comfort)

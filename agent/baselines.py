"""A privileged-free, learning-free planning model: drive along the route toward the target point.

`RouteFollowModel` proposes N constant-curvature arcs at a few speeds, scores them by how close their end comes
to the ray toward the route target, and caps the speed in turns. It needs no weights, so the policy, the
leaderboard adapter, the harness and the lite world can be exercised end to end on any machine; it is also a
sanity baseline (it has no perception: it does not stop for anything).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.model_api import ModelInputs, ModelOutputs


@dataclass
class RouteFollowConfig:
    num_curvatures: int = 11
    max_curvature: float = 0.15  # 1/m
    speeds: tuple[float, ...] = (3.0, 6.0, 9.0)  # m/s
    horizon: int = 8
    dt: float = 0.5
    max_lateral_accel: float = 2.5  # m/s², caps the speed on a curvature


class RouteFollowModel:
    def __init__(self, cfg: RouteFollowConfig | None = None) -> None:
        self.cfg = cfg or RouteFollowConfig()
        c = self.cfg
        curv = np.linspace(-c.max_curvature, c.max_curvature, c.num_curvatures)
        kk, vv = np.meshgrid(curv, np.asarray(c.speeds), indexing="ij")
        self.curvature, self.speed = kk.ravel(), vv.ravel()  # (N,)
        t = (np.arange(c.horizon) + 1) * c.dt
        s = self.speed[:, None] * t[None]  # arc length (N, T)
        k = self.curvature[:, None]
        small = np.abs(k) < 1e-6
        safe_k = np.where(small, 1.0, k)
        x = np.where(small, s, np.sin(k * s) / safe_k)
        y = np.where(small, 0.0, (1 - np.cos(k * s)) / safe_k)
        self.proposals = np.stack([x, y, k * s], -1)  # (N, T, 3) EGO_REAR_AXLE

    def plan(self, inputs: ModelInputs) -> ModelOutputs:
        target = np.asarray(inputs.target_point, dtype=np.float64)
        dist = float(np.hypot(*target))
        direction = target / max(dist, 1e-6)
        ends = self.proposals[:, -1, :2]
        # distance of each proposal's points from the ray toward the target (perpendicular), averaged
        pts = self.proposals[:, :, :2]
        along = pts @ direction
        perp = np.abs(pts @ np.array([-direction[1], direction[0]]))
        heading_err = np.abs(np.arctan2(ends[:, 1], ends[:, 0]) - np.arctan2(direction[1], direction[0]))
        v_cap = np.sqrt(self.cfg.max_lateral_accel / np.maximum(np.abs(self.curvature), 1e-3))
        over = np.maximum(self.speed - v_cap, 0.0)
        cost = perp.mean(1) + 2.0 * heading_err + 0.5 * over + 0.05 * np.abs(self.speed - 6.0)
        cost += np.where(along[:, -1] < 0, 10.0, 0.0)
        return ModelOutputs(self.proposals.copy(), -cost, {"route_cost": cost}, self.cfg.dt)

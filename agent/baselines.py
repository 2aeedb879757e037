"""A privileged-free, learning-free planning model: drive along the route toward the target point.

`RouteFollowModel` proposes constant-curvature arcs at two speeds and scores them by pure pursuit: how far each
passes from the point toward the route target at least 2 s of its speed ahead; it prefers 6 m/s and slows to
3 m/s where the arc's lateral acceleration would pass 2.5 m/s² (until 2026-12-08 it scored whole arcs against the
ray to the target, which favoured the short, slow ones: it crawled at about 3 m/s, half the speed it was meant to
drive, and slow enough that several of Bench2Drive's timed scenarios missed it). It needs no weights, so the policy, the
leaderboard adapter, the harness and the lite world can be exercised end to end on any machine; it is also a
sanity baseline (it has no perception: it does not stop for anything).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.model_api import ModelInputs, ModelOutputs


@dataclass
class RouteFollowConfig:
    # curvatures c·u·|u| for u evenly in [-1, 1]: fine near straight (steps of 0.0015 1/m: the 6 m/s look-ahead of
    # 12 m must aim within a degree, or the follower weaves on straights), coarse in turns
    num_curvatures: int = 21
    max_curvature: float = 0.15  # 1/m
    speeds: tuple[float, ...] = (3.0, 6.0)  # m/s: it prefers 6 and slows to 3 in turns
    horizon: int = 8
    dt: float = 0.5
    max_lateral_accel: float = 2.5  # m/s², caps the speed on a curvature


class RouteFollowModel:
    def __init__(self, cfg: RouteFollowConfig | None = None) -> None:
        self.cfg = cfg or RouteFollowConfig()
        c = self.cfg
        u = np.linspace(-1.0, 1.0, c.num_curvatures)
        curv = c.max_curvature * u * np.abs(u)
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
        dist = max(float(np.hypot(*target)), 1.0)
        # look ahead at least 2 s of each arc's speed along the ray toward the target (a short look-ahead at
        # speed weaves after a turn)
        dist = np.maximum(dist, 2.0 * self.speed)  # (N,)
        target = target / max(float(np.hypot(*target)), 1.0) * dist[:, None]  # (N, 2)
        # pure pursuit: how far each arc passes from the target point when it has driven as far as the target is
        # (the same for every speed, so the curvature is chosen by the road and the speed by the preference and
        # the turn cap; scoring whole arcs instead favoured the short, slow ones and overshot turns with the long)
        k = self.curvature
        small = np.abs(k) < 1e-6
        safe_k = np.where(small, 1.0, k)
        at_d = np.stack(
            [np.where(small, dist, np.sin(k * dist) / safe_k), np.where(small, 0.0, (1 - np.cos(k * dist)) / safe_k)],
            -1,
        )
        miss = np.hypot(*(at_d - target).T)
        ahead = float(inputs.target_point[0])
        v_cap = np.sqrt(self.cfg.max_lateral_accel / np.maximum(np.abs(k), 1e-3))
        over = np.maximum(self.speed - v_cap, 0.0)
        cost = miss + 2.0 * over + 0.1 * np.abs(self.speed - 6.0)
        side = float(np.sign(inputs.target_point[1] + 1e-9))
        cost += np.where(ahead < 0, 2.0 * np.abs(k - side * self.cfg.max_curvature), 0.0)  # behind: turn hardest
        return ModelOutputs(self.proposals.copy(), -cost, {"route_cost": cost}, self.cfg.dt)

"""Batched plan -> reference poses -> LQR tracker + kinematic bicycle, as NAVSIM's `PDMSimulator` (torch).

All functions work on a batch of N proposals at once on any device; the only Python loop is over the 40
simulation steps (inherently sequential). Frames: states are in the scorer's *local* frame (global minus the
scene origin's x, y; headings stay global CCW radians), at the rear axle, in NAVSIM `StateIndex` order
(x, y, heading, vx, vy, ax, ay, steering_angle, steering_rate, yaw_rate, yaw_accel).

Algorithm facts (from NAVSIM `batch_lqr.py`, `batch_lqr_utils.py`, `batch_kinematic_bicycle.py`; described in
../shared/fixtures/navsim_scorer/README.md section 6.2):
* velocity profile: least squares on displacements projected on the reference headings with a jerk penalty
1e-4
  on the accelerations (NAVSIM's banded-matrix quirk, see `_velocity_solver`). Because cos^2 + sin^2 = 1
  its normal matrix is the same for every proposal, so
  the solve is one constant (40 x 40) matrix applied to the projected displacements.
* curvature profile: least squares with penalty 1e-2 on curvature rates and 1e-10 on the initial curvature;
  re-parametrised in the 40 curvature values it is a symmetric tridiagonal system, solved batched (Thomas).
* one-step LQR over a 10-step horizon for the longitudinal and lateral subsystems (closed form below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from drive_jepa.frames import wrap_angle

JERK_PENALTY = 1e-4
CURVATURE_RATE_PENALTY = 1e-2
INITIAL_CURVATURE_PENALTY = 1e-10


@dataclass(frozen=True)
class TrackerParams:
    """LQR tracker and bicycle-model constants (NAVSIM defaults)."""

    q_longitudinal: float = 10.0
    r_longitudinal: float = 1.0
    q_lateral: tuple[float, float, float] = (1.0, 10.0, 0.0)
    r_lateral: float = 1.0
    horizon: int = 10
    stopping_gain: float = 0.5
    stopping_velocity: float = 0.2
    accel_time_constant: float = 0.2
    steering_time_constant: float = 0.05
    max_steering_angle: float = math.pi / 3


def interpolate_plan(
    rel_poses: torch.Tensor, plan_dt: float, origin: torch.Tensor, num_steps: int = 41, dt: float = 0.1
) -> torch.Tensor:
    """Ego-frame plan (N, K, 3) at t = plan_dt ... K plan_dt -> reference poses (N, num_steps, 3), 0 ... 4 s.

    `origin` is the local-frame rear-axle pose at t = 0 (3,). Knots are [origin, plan poses]; x, y linear in
    time, heading unwrapped over knots then linear then wrapped (nuPlan `InterpolatedTrajectory`).
    """
    n, k, _ = rel_poses.shape
    c, s = torch.cos(origin[2]), torch.sin(origin[2])
    gx = origin[0] + c * rel_poses[..., 0] - s * rel_poses[..., 1]
    gy = origin[1] + s * rel_poses[..., 0] + c * rel_poses[..., 1]
    gh = wrap_angle(origin[2] + rel_poses[..., 2])
    knots = torch.stack([gx, gy, gh], -1)
    knots = torch.cat([origin.expand(n, 1, 3), knots], 1)  # (N, K+1, 3)
    if abs(plan_dt - dt) < 1e-12 and k + 1 == num_steps:
        return knots  # knots are the samples: nothing to interpolate
    h = knots[..., 2]
    # np.unwrap: add multiples of 2 pi where successive differences exceed pi
    dh = h[:, 1:] - h[:, :-1]
    dd = torch.remainder(dh + math.pi, 2 * math.pi) - math.pi
    dd = torch.where((dd == -math.pi) & (dh > 0), torch.full_like(dd, math.pi), dd)
    corr = torch.where(dh.abs() < math.pi, torch.zeros_like(dd), dd - dh)
    unwrapped = torch.cat([h[:, :1], h[:, 1:] + torch.cumsum(corr, 1)], 1)
    vals = torch.stack([knots[..., 0], knots[..., 1], unwrapped], -1)
    ratio = round(plan_dt / dt)
    if abs(ratio * dt - plan_dt) > 1e-9:
        raise ValueError(f"plan interval {plan_dt} s is not a multiple of the scorer step {dt} s")
    steps = torch.arange(num_steps, device=rel_poses.device)
    lo = torch.clamp(steps // ratio, max=k)
    hi = torch.clamp(lo + 1, max=k)
    w = ((steps - lo * ratio).to(vals.dtype) / ratio).clamp(0, 1)
    w = torch.where(lo == hi, torch.zeros_like(w), w)
    out = vals[:, lo] + (vals[:, hi] - vals[:, lo]) * w[None, :, None]
    return torch.stack([out[..., 0], out[..., 1], wrap_angle(out[..., 2])], -1)


def _velocity_solver(num: int, dt: float, device: torch.device) -> torch.Tensor:
    """Constant matrix G (num, num): [v0, a_0 ... a_{num-2}] = G @ projected displacements."""
    c = np.zeros((num, num))
    c[:, 0] = dt
    for k in range(num):
        c[k, 1 : k + 1] = dt * dt
    # NAVSIM's `_make_banded_difference_matrix` assigns `[:, 1:] = eye` and then `[:, :-1] = -eye`; the second
    # assignment overwrites the +1 entries except in the last row, so the "jerk" penalty actually acts on the
    # accelerations a_0 ... a_{num-3} themselves plus (a_{num-2} - a_{num-3}). Reproduced on purpose (the
    # oracle
    # fixtures confirm it); see docs/scorer.md.
    band = np.zeros((num - 2, num - 1))
    band[:, 1:] = np.eye(num - 2)
    band[:, :-1] = -np.eye(num - 2)
    r = np.concatenate([np.zeros((num - 2, 1)), band], 1)
    g = np.linalg.pinv(c.T @ c + JERK_PENALTY * r.T @ r) @ c.T
    return torch.from_numpy(g).to(device)


_VEL_CACHE: dict[tuple[int, float, str], torch.Tensor] = {}


def velocity_curvature_profiles(poses: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference poses (N, P, 3) -> velocity (N, P-1) and curvature (N, P-1) profiles."""
    p = poses.shape[1]
    m = p - 1
    d = poses[:, 1:] - poses[:, :-1]
    dtheta = wrap_angle(d[..., 2])
    h = poses[:, :-1, 2]
    proj = torch.cos(h) * d[..., 0] + torch.sin(h) * d[..., 1]  # (N, m)
    key = (m, dt, str(poses.device))
    if key not in _VEL_CACHE:
        _VEL_CACHE[key] = _velocity_solver(m, dt, poses.device)
    x = proj @ _VEL_CACHE[key].to(poses.dtype).T
    vel = x[:, :1] + torch.cat([torch.zeros_like(x[:, :1]), torch.cumsum(x[:, 1:] * dt, 1)], 1)
    # curvature: min sum_k (v_k dt kappa_k - dtheta_k)^2 + mu sum (kappa_{k+1} - kappa_k)^2 + eps kappa_0^2
    mu = CURVATURE_RATE_PENALTY / (dt * dt)
    w = vel * dt
    diag = w * w + 2 * mu
    diag = torch.cat([diag[:, :1] - mu + INITIAL_CURVATURE_PENALTY, diag[:, 1:-1], diag[:, -1:] - mu], 1)
    rhs = w * dtheta
    kappa = _solve_sym_tridiagonal(diag, -mu, rhs)
    return vel, kappa


def _solve_sym_tridiagonal(diag: torch.Tensor, off: float, rhs: torch.Tensor) -> torch.Tensor:
    """Batched Thomas algorithm for a symmetric tridiagonal system with a constant off-diagonal."""
    m = diag.shape[1]
    cp = [torch.empty(0)] * m
    dp = [torch.empty(0)] * m
    cp[0] = off / diag[:, 0]
    dp[0] = rhs[:, 0] / diag[:, 0]
    for i in range(1, m):
        den = diag[:, i] - off * cp[i - 1]
        cp[i] = off / den
        dp[i] = (rhs[:, i] - off * dp[i - 1]) / den
    x = [torch.empty(0)] * m
    x[m - 1] = dp[m - 1]
    for i in range(m - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    return torch.stack(x, 1)


def simulate(
    reference: torch.Tensor,
    initial_state: torch.Tensor,
    wheel_base: float,
    dt: float = 0.1,
    params: TrackerParams | None = None,
) -> torch.Tensor:
    """Track reference poses (N, 41, 3) from `initial_state` (11,) -> simulated states (N, 41, 11)."""
    p = params or TrackerParams()
    n, num, _ = reference.shape
    vel_prof, curv_prof = velocity_curvature_profiles(reference, dt)  # (N, 40)
    m = vel_prof.shape[1]
    hz = p.horizon
    dev, dtype = reference.device, reference.dtype
    # B of the lateral system (response to a unit steering-rate input) depends on the velocity profile only.
    out = torch.zeros(n, num, 11, device=dev, dtype=dtype)
    out[:, 0] = initial_state
    x, y, hd = out[:, 0, 0], out[:, 0, 1], out[:, 0, 2]
    vx, ax = out[:, 0, 3], out[:, 0, 5]
    delta, yaw_rate = out[:, 0, 7], out[:, 0, 9]
    q_lon, r_lon = p.q_longitudinal, p.r_longitudinal
    q0, q1_lat = p.q_lateral[0], p.q_lateral[1]
    b_lon = hz * dt
    # Closed form of NAVSIM's 10-step lateral LQR composition. With v_k = vx + accel dt k, every sum over
    # the horizon is a polynomial in (vx, accel) whose coefficients are constants or fixed linear functionals
    # of the curvature window; the windows of all 40 iterations are contracted at once (one matmul).
    kk = torch.arange(hz, dtype=torch.float64)
    pj = torch.tensor([float(sum(range(j + 1, hz))) for j in range(hz)], dtype=torch.float64)
    ones = torch.ones(hz, dtype=torch.float64)
    w = torch.stack([ones, kk, hz - 1 - kk, pj + kk * (hz - 1 - kk), kk * pj], 1)
    win_idx = torch.clamp(torch.arange(num - 1)[:, None] + torch.arange(hz)[None], max=m - 1).to(dev)
    kap = curv_prof[:, win_idx] @ w.to(dev, dtype)  # (N, 40, 5)
    pairs = [(j, k) for k in range(hz) for j in range(k)]
    s1 = float(sum(range(hz)))
    s2 = float(sum(j * j for j in range(hz)))
    q1 = float(sum(j + k for j, k in pairs))
    q2 = float(sum(j * k for j, k in pairs))
    r0 = float(sum(j for j, _ in pairs))
    r1 = float(sum(j * k + j * j for j, k in pairs))
    r2 = float(sum(j * j * k for j, k in pairs))
    dl = dt / wheel_base
    for i in range(num - 1):
        ref_i = reference[:, i]
        j = min(i + hz, m - 1)
        v_ref = vel_prof[:, j]
        stop = (v_ref <= p.stopping_velocity) & (vx <= p.stopping_velocity)
        accel_lqr = -(b_lon * q_lon / (b_lon * q_lon * b_lon + r_lon)) * (vx - v_ref)
        accel_cmd = torch.where(stop, -p.stopping_gain * (vx - v_ref), accel_lqr)
        # lateral errors w.r.t. reference pose i
        ch, sh = torch.cos(ref_i[:, 2]), torch.sin(ref_i[:, 2])
        e0 = -(x - ref_i[:, 0]) * sh + (y - ref_i[:, 1]) * ch
        e1 = wrap_angle(hd - ref_i[:, 2])
        u, al = vx, accel_cmd * dt
        uu, ua, aa = u * u, u * al, al * al
        k0, k1, k2, k3, k4 = kap[:, i].unbind(-1)
        sum_a = dt * (hz * u + al * s1)
        sum_ab = dt * dl * (uu * s1 + ua * q1 + aa * q2)
        sum_ac = -dt * dt * (uu * k2 + ua * k3 + aa * k4)
        e0_end = e0 + e1 * sum_a + delta * sum_ab + sum_ac
        e1_end = wrap_angle(e1 + delta * dl * (hz * u + al * s1) - dt * (u * k0 + al * k1))
        b1_end = dt * dl * (u * s1 + al * s2)
        b0_end = dt * dt * dl * (uu * r0 + ua * r1 + aa * r2)
        steer_lqr = -(b0_end * q0 * e0_end + b1_end * q1_lat * e1_end) / (
            b0_end * q0 * b0_end + b1_end * q1_lat * b1_end + p.r_lateral
        )
        steer_cmd = torch.where(stop, torch.zeros_like(steer_lqr), steer_lqr)
        # kinematic bicycle with first-order command delay
        ax_new = dt / (dt + p.accel_time_constant) * (accel_cmd - ax) + ax
        ideal_delta = dt * steer_cmd + delta
        delta_f = dt / (dt + p.steering_time_constant) * (ideal_delta - delta) + delta
        steer_rate = (delta_f - delta) / dt
        x_n = x + vx * torch.cos(hd) * dt
        y_n = y + vx * torch.sin(hd) * dt
        h_n = wrap_angle(hd + vx * torch.tan(delta) / wheel_base * dt)
        vx_n = vx + ax_new * dt
        delta_n = torch.clamp(delta + steer_rate * dt, -p.max_steering_angle, p.max_steering_angle)
        yaw_n = vx_n * torch.tan(delta_n) / wheel_base
        st = out[:, i + 1]
        st[:, 0], st[:, 1], st[:, 2], st[:, 3] = x_n, y_n, h_n, vx_n
        st[:, 5], st[:, 7], st[:, 8] = ax_new, delta_n, steer_rate
        st[:, 9], st[:, 10] = yaw_n, (yaw_n - yaw_rate) / dt
        x, y, hd, vx, ax, delta, yaw_rate = x_n, y_n, h_n, vx_n, ax_new, delta_n, yaw_n
    return out

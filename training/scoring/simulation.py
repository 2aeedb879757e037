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
    The result is a view of a component-major, time-major (3, num_steps, N) tensor (see `simulate`).
    """
    n, k, _ = rel_poses.shape
    rp = rel_poses.permute(2, 1, 0).contiguous()  # (3, K, N)
    c, s = torch.cos(origin[2]), torch.sin(origin[2])
    knots = torch.empty(3, k + 1, n, dtype=rel_poses.dtype, device=rel_poses.device)
    knots[:, 0] = origin[:, None]
    knots[0, 1:] = origin[0] + c * rp[0] - s * rp[1]
    knots[1, 1:] = origin[1] + s * rp[0] + c * rp[1]
    knots[2, 1:] = wrap_angle(origin[2] + rp[2])
    if abs(plan_dt - dt) < 1e-12 and k + 1 == num_steps:
        return knots.permute(2, 1, 0)  # knots are the samples: nothing to interpolate
    h = knots[2]
    # np.unwrap: add multiples of 2 pi where successive differences exceed pi
    dh = h[1:] - h[:-1]
    dd = torch.remainder(dh + math.pi, 2 * math.pi) - math.pi
    dd = torch.where((dd == -math.pi) & (dh > 0), torch.full_like(dd, math.pi), dd)
    corr = torch.where(dh.abs() < math.pi, torch.zeros_like(dd), dd - dh)
    vals = knots.clone()
    vals[2, 1:] += torch.cumsum(corr, 0)
    ratio = round(plan_dt / dt)
    if abs(ratio * dt - plan_dt) > 1e-9:
        raise ValueError(f"plan interval {plan_dt} s is not a multiple of the scorer step {dt} s")
    steps = torch.arange(num_steps, device=rel_poses.device)
    lo = torch.clamp(steps // ratio, max=k)
    hi = torch.clamp(lo + 1, max=k)
    w = ((steps - lo * ratio).to(vals.dtype) / ratio).clamp(0, 1)
    w = torch.where(lo == hi, torch.zeros_like(w), w)
    out = vals[:, lo] + (vals[:, hi] - vals[:, lo]) * w[None, :, None]  # (3, num_steps, N)
    out[2] = wrap_angle(out[2])
    return out.permute(2, 1, 0)


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


def _time_major(poses: torch.Tensor) -> torch.Tensor:
    """(N, P, 3) poses -> (3, P, N) contiguous (a no-op view for the outputs of `interpolate_plan`)."""
    return poses.permute(2, 1, 0).contiguous()


def _profiles_time_major(ref: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference poses (3, P, N) -> velocity (P-1, N) and curvature (P-1, N) profiles."""
    m = ref.shape[1] - 1
    d = ref[:, 1:] - ref[:, :-1]  # (3, m, N)
    dtheta = wrap_angle(d[2])
    h = ref[2, :-1]
    proj = torch.cos(h) * d[0] + torch.sin(h) * d[1]  # (m, N)
    key = (m, dt, str(ref.device))
    if key not in _VEL_CACHE:
        _VEL_CACHE[key] = _velocity_solver(m, dt, ref.device)
    x = _VEL_CACHE[key].to(ref.dtype) @ proj  # (m, N)
    vel = x[:1] + torch.cat([torch.zeros_like(x[:1]), torch.cumsum(x[1:] * dt, 0)], 0)
    # curvature: min sum_k (v_k dt kappa_k - dtheta_k)^2 + mu sum (kappa_{k+1} - kappa_k)^2 + eps kappa_0^2
    mu = CURVATURE_RATE_PENALTY / (dt * dt)
    w = vel * dt
    diag = w * w + 2 * mu
    diag[0] += INITIAL_CURVATURE_PENALTY - mu
    diag[-1] -= mu
    kappa = _solve_sym_tridiagonal(diag, -mu, w * dtheta)
    return vel, kappa


def velocity_curvature_profiles(poses: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference poses (N, P, 3) -> velocity (N, P-1) and curvature (N, P-1) profiles."""
    vel, kappa = _profiles_time_major(_time_major(poses), dt)
    return vel.T, kappa.T


def _solve_sym_tridiagonal(diag: torch.Tensor, off: float, rhs: torch.Tensor) -> torch.Tensor:
    """Batched Thomas algorithm for a symmetric tridiagonal system with a constant off-diagonal.

    Time-major: diag, rhs (m, N) -> x (m, N); every step touches contiguous rows."""
    m = diag.shape[0]
    cp = [torch.empty(0)] * m
    dp = [torch.empty(0)] * m
    cp[0] = off / diag[0]
    dp[0] = rhs[0] / diag[0]
    for i in range(1, m):
        den = diag[i] - off * cp[i - 1]
        cp[i] = off / den
        dp[i] = (rhs[i] - off * dp[i - 1]) / den
    x = [torch.empty(0)] * m
    x[m - 1] = dp[m - 1]
    for i in range(m - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    return torch.stack(x, 0)


def simulate(
    reference: torch.Tensor,
    initial_state: torch.Tensor,
    wheel_base: float,
    dt: float = 0.1,
    params: TrackerParams | None = None,
) -> torch.Tensor:
    """Track reference poses (N, 41, 3) from `initial_state` (11,) -> simulated states (N, 41, 11).

    Layout: the result is a view of a component-major, time-major (11, 41, N) tensor, so `states[..., k]` is
    a transposed-contiguous (N, 41) block on which elementwise ops and matmuls run at full speed (strided
    per-component reads of an (N, 41, 11) tensor are ~20x slower on CPU). Inside the loop every per-step
    quantity is a contiguous (N,) row."""
    p = params or TrackerParams()
    n, num, _ = reference.shape
    ref = _time_major(reference)  # (3, 41, N)
    vel_t, curv_t = _profiles_time_major(ref, dt)  # (40, N)
    m = vel_t.shape[0]
    hz = p.horizon
    dev, dtype = reference.device, reference.dtype
    ref_x, ref_y, ref_h = ref[0], ref[1], ref[2]
    ref_c, ref_s = torch.cos(ref_h), torch.sin(ref_h)
    q_lon, r_lon = p.q_longitudinal, p.r_longitudinal
    q0, q1_lat = p.q_lateral[0], p.q_lateral[1]
    b_lon = hz * dt
    gain_lon = -(b_lon * q_lon / (b_lon * q_lon * b_lon + r_lon))
    # Closed form of NAVSIM's 10-step lateral LQR composition. With v_k = vx + accel dt k, every sum over
    # the horizon is a polynomial in (vx, accel) whose coefficients are constants or fixed linear functionals
    # of the curvature window; the windows of all 40 iterations are contracted at once (one matmul).
    kk = torch.arange(hz, dtype=torch.float64)
    pj = torch.tensor([float(sum(range(j + 1, hz))) for j in range(hz)], dtype=torch.float64)
    ones = torch.ones(hz, dtype=torch.float64)
    w = torch.stack([ones, kk, hz - 1 - kk, pj + kk * (hz - 1 - kk), kk * pj], 1)
    # windows curv[i ... i + hz - 1] (clamped at the end) of the time-major profile, as a strided view
    curv_pad = torch.cat([curv_t, curv_t[-1:].expand(hz - 1, n)], 0)  # (m + hz - 1, N)
    windows = curv_pad.unfold(0, hz, 1)[: num - 1].transpose(1, 2)  # (40, hz, N)
    kap = torch.matmul(w.T.to(dev, dtype), windows)  # (40, 5, N)
    pairs = [(j, k) for k in range(hz) for j in range(k)]
    s1 = float(sum(range(hz)))
    s2 = float(sum(j * j for j in range(hz)))
    q1 = float(sum(j + k for j, k in pairs))
    q2 = float(sum(j * k for j, k in pairs))
    r0 = float(sum(j for j, _ in pairs))
    r1 = float(sum(j * k + j * j for j, k in pairs))
    r2 = float(sum(j * j * k for j, k in pairs))
    dl = dt / wheel_base
    c_ab = dt * dl
    c_b0 = dt * dt * dl
    k_acc = dt / (dt + p.accel_time_constant)
    k_steer = dt / (dt + p.steering_time_constant)
    two_pi = 2 * math.pi

    def wrap(a: torch.Tensor) -> torch.Tensor:
        # [-pi, pi) as drive_jepa.frames.wrap_angle, via floor (float64 `remainder` / `floor_divide` are ~5x
        # slower on CPU); equal up to rounding of the last bit
        return torch.add(a, torch.floor((a + math.pi) * (1.0 / two_pi)), alpha=-two_pi)

    init = initial_state.to(dev, dtype)
    x = init[0].expand(n).clone()
    y = init[1].expand(n).clone()
    hd = init[2].expand(n).clone()
    vx = init[3].expand(n).clone()
    ax = init[5].expand(n).clone()
    delta = init[7].expand(n).clone()
    yaw_rate = init[9].expand(n).clone()
    tan_delta = torch.tan(delta)
    out = torch.empty(11, num, n, device=dev, dtype=dtype)  # component-major, time-major
    out[:, 0] = init[:, None]
    out[4, 1:] = 0.0
    out[6, 1:] = 0.0
    # constant factors of the horizon sums (see the closed form above)
    c_sa_u, c_sa_a = hz * dt, s1 * dt
    c_ab_uu, c_ab_ua, c_ab_aa = s1 * c_ab, q1 * c_ab, q2 * c_ab
    c_b1_u, c_b1_a = s1 * c_ab, s2 * c_ab
    c_b0_uu, c_b0_ua, c_b0_aa = r0 * c_b0, r1 * c_b0, r2 * c_b0
    c_e1_u, c_e1_a = hz * dl, s1 * dl
    inv_wb_dt = dt / wheel_base
    for i in range(num - 1):
        j = min(i + hz, m - 1)
        v_ref = vel_t[j]
        dv = vx - v_ref
        stop = (v_ref <= p.stopping_velocity) & (vx <= p.stopping_velocity)
        accel_cmd = torch.where(stop, dv * -p.stopping_gain, dv * gain_lon)
        # lateral errors w.r.t. reference pose i
        e0 = (y - ref_y[i]) * ref_c[i] - (x - ref_x[i]) * ref_s[i]
        e1 = wrap(hd - ref_h[i])
        u, al = vx, accel_cmd * dt
        uu, ua, aa = u * u, u * al, al * al
        k0, k1, k2, k3, k4 = kap[i].unbind(0)
        sum_a = torch.add(u * c_sa_u, al, alpha=c_sa_a)
        sum_ab = torch.add(torch.add(uu * c_ab_uu, ua, alpha=c_ab_ua), aa, alpha=c_ab_aa)
        sum_ac = torch.addcmul(torch.addcmul(uu * k2, ua, k3), aa, k4)
        e0_end = torch.addcmul(torch.addcmul(e0, e1, sum_a), delta, sum_ab).sub_(sum_ac, alpha=dt * dt)
        lat = torch.add(u * c_e1_u, al, alpha=c_e1_a)
        e1_end = wrap(torch.addcmul(e1, delta, lat).sub_(torch.addcmul(u * k0, al, k1), alpha=dt))
        b1_end = torch.add(u * c_b1_u, al, alpha=c_b1_a)
        b0_end = torch.add(torch.add(uu * c_b0_uu, ua, alpha=c_b0_ua), aa, alpha=c_b0_aa)
        num_l = torch.addcmul(b0_end * e0_end * q0, b1_end, e1_end, value=q1_lat)
        den_l = torch.addcmul((b0_end * b0_end).mul_(q0).add_(p.r_lateral), b1_end, b1_end, value=q1_lat)
        steer_cmd = (num_l / den_l).neg_().masked_fill_(stop, 0.0)
        # kinematic bicycle with first-order command delay: delta_f - delta = k_steer * dt * steer_cmd
        ax_new = torch.add(ax, accel_cmd - ax, alpha=k_acc)
        steer_rate = steer_cmd * k_steer
        row = out[:, i + 1]
        torch.addcmul(x, vx, torch.cos(hd), value=dt, out=row[0])
        torch.addcmul(y, vx, torch.sin(hd), value=dt, out=row[1])
        h_n = wrap(torch.addcmul(hd, vx, tan_delta, value=inv_wb_dt))
        vx_n = torch.add(vx, ax_new, alpha=dt)
        delta_n = torch.add(delta, steer_rate, alpha=dt).clamp_(-p.max_steering_angle, p.max_steering_angle)
        tan_delta = torch.tan(delta_n)
        yaw_n = vx_n * tan_delta / wheel_base
        row[2], row[3], row[5], row[7], row[8], row[9] = h_n, vx_n, ax_new, delta_n, steer_rate, yaw_n
        torch.div(yaw_n - yaw_rate, dt, out=row[10])
        x, y, hd, vx, ax, delta, yaw_rate = row[0], row[1], h_n, vx_n, ax_new, delta_n, yaw_n
    return out.permute(2, 1, 0)

"""Frames and geometry: the single home of all pose math in drive-jepa.

Every pose or trajectory names its frame (`Frame`). All functions are batched over leading dimensions and
accept either numpy arrays or torch tensors (the result has the input's type, dtype and device).

Frames (see docs/ARCHITECTURE.md and ../shared/CONVENTIONS.md):

* ``CARLA_WORLD`` — Unreal's left-handed world: x forward/east, **y right/south**, z up; yaw in **degrees**,
  positive clockwise seen from above. This is what `carla.Transform` holds.
* ``WORLD`` — the same origin made right-handed: x east, y north (= −y_carla), z up; heading in radians,
  counter-clockwise (= −yaw_carla).
* ``EGO_CENTER`` — right-handed, origin at the vehicle's bounding-box centre (CARLA's actor location), x forward,
  y left, z up; heading counter-clockwise in radians.
* ``EGO_REAR_AXLE`` — NAVSIM / nuPlan: as EGO_CENTER but with the origin at the rear axle.
* ``CAMERA`` — OpenCV camera axes: x right, y down, z forward (optical axis); metres.
* GNSS (lat, lon in degrees) is not a Cartesian frame: `GeoReference` converts exactly as the CARLA leaderboard.

Pose arrays are ``(..., 3)`` = (x, y, heading). For ``CARLA_WORLD`` the third entry is yaw in degrees (as
CARLA stores it); for every other frame it is a heading in radians.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor; kept loose so torch stays an optional, lazy import here
A = TypeVar("A")

EARTH_RADIUS_EQUA = 6378137.0  # metres; the leaderboard's `EARTH_RADIUS_EQUA`


class Frame(str, Enum):
    CARLA_WORLD = "carla_world"
    WORLD = "world"
    EGO_CENTER = "ego_center"
    EGO_REAR_AXLE = "ego_rear_axle"
    CAMERA = "camera"


class FrameError(ValueError):
    """A pose/trajectory was used in a frame it is not in."""


# --------------------------------------------------------------------------------------------------------------
# array backend shims (numpy or torch, decided by the input)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _xp(x: Any) -> Any:
    if _is_torch(x):
        import torch

        return torch
    return np


def _atan2(y: Array, x: Array) -> Array:
    return _xp(y).atan2(y, x) if _is_torch(y) else np.arctan2(y, x)


def _stack(parts: list[Array], axis: int = -1) -> Array:
    if _is_torch(parts[0]):
        import torch

        return torch.stack(parts, dim=axis)
    return np.stack(parts, axis=axis)


def _asarray(x: Any) -> Array:
    return x if _is_torch(x) else np.asarray(x, dtype=np.float64) if not isinstance(x, np.ndarray) else x


def wrap_angle(a: Array) -> Array:
    """Wrap radians to [−π, π)."""
    a = _asarray(a)
    return (a + math.pi) % (2 * math.pi) - math.pi


def _deg2rad(a: Array) -> Array:
    return a * (math.pi / 180.0)


def _rad2deg(a: Array) -> Array:
    return a * (180.0 / math.pi)


# --------------------------------------------------------------------------------------------------------------
# CARLA (left-handed, degrees) <-> right-handed world (radians)


def carla_to_world(pose: Array) -> Array:
    """CARLA_WORLD (x, y, yaw°) → WORLD (x, −y, −yaw in rad, wrapped)."""
    pose = _asarray(pose)
    return _stack([pose[..., 0], -pose[..., 1], wrap_angle(-_deg2rad(pose[..., 2]))])


def world_to_carla(pose: Array) -> Array:
    """WORLD (x, y, heading rad) → CARLA_WORLD (x, −y, −heading in degrees, in [−180, 180))."""
    pose = _asarray(pose)
    yaw = _rad2deg(wrap_angle(-pose[..., 2]))
    return _stack([pose[..., 0], -pose[..., 1], yaw])


def carla_points_to_world(xyz: Array) -> Array:
    """CARLA_WORLD points (..., 2|3) → WORLD points: flip y (z unchanged)."""
    xyz = _asarray(xyz)
    parts = [xyz[..., 0], -xyz[..., 1]] + ([xyz[..., 2]] if xyz.shape[-1] == 3 else [])
    return _stack(parts)


world_points_to_carla = carla_points_to_world  # the y flip is its own inverse


# --------------------------------------------------------------------------------------------------------------
# SE(2) in right-handed frames (heading in radians)


def se2_compose(a: Array, b: Array) -> Array:
    """a ∘ b: pose b given in a's frame, expressed in a's parent frame."""
    a, b = _asarray(a), _asarray(b)
    c, s = _xp(a).cos(a[..., 2]), _xp(a).sin(a[..., 2])
    x = a[..., 0] + c * b[..., 0] - s * b[..., 1]
    y = a[..., 1] + s * b[..., 0] + c * b[..., 1]
    return _stack([x, y, wrap_angle(a[..., 2] + b[..., 2])])


def se2_inverse(a: Array) -> Array:
    a = _asarray(a)
    c, s = _xp(a).cos(a[..., 2]), _xp(a).sin(a[..., 2])
    x = -(c * a[..., 0] + s * a[..., 1])
    y = s * a[..., 0] - c * a[..., 1]
    return _stack([x, y, wrap_angle(-a[..., 2])])


def to_local(poses: Array, origin: Array) -> Array:
    """Express poses (..., 3) given in a parent frame in the frame of `origin` (broadcastable (..., 3))."""
    origin = _asarray(origin)
    poses = _asarray(poses)
    return se2_compose(se2_inverse(origin), poses)


def to_global(local: Array, origin: Array) -> Array:
    """Inverse of `to_local`: poses in `origin`'s frame → the parent frame."""
    return se2_compose(_asarray(origin), _asarray(local))


def points_to_local(xy: Array, origin: Array) -> Array:
    """Points (..., 2) in a parent frame → `origin`'s frame (origin broadcastable (..., 3))."""
    xy, origin = _asarray(xy), _asarray(origin)
    c, s = _xp(origin).cos(origin[..., 2]), _xp(origin).sin(origin[..., 2])
    dx, dy = xy[..., 0] - origin[..., 0], xy[..., 1] - origin[..., 1]
    return _stack([c * dx + s * dy, -s * dx + c * dy])


def points_to_global(xy: Array, origin: Array) -> Array:
    xy, origin = _asarray(xy), _asarray(origin)
    c, s = _xp(origin).cos(origin[..., 2]), _xp(origin).sin(origin[..., 2])
    return _stack([origin[..., 0] + c * xy[..., 0] - s * xy[..., 1], origin[..., 1] + s * xy[..., 0] + c * xy[..., 1]])


# --------------------------------------------------------------------------------------------------------------
# rear axle <-> bounding-box centre


@dataclass(frozen=True)
class VehicleGeometry:
    """Ego geometry needed to move between EGO_CENTER and EGO_REAR_AXLE. Lengths in metres."""

    length: float
    width: float
    rear_axle_to_center: float
    wheel_base: float
    name: str = ""


# NAVSIM v2 ego (Chrysler Pacifica), from NAVSIM's vehicle parameters.
PACIFICA = VehicleGeometry(length=5.176, width=2.297, rear_axle_to_center=1.461, wheel_base=3.089, name="pacifica")
# CARLA `vehicle.lincoln.mkz_2020`: bounding box 4.89 × 2.10 m (extent 2.44 × 1.05). Its wheel positions give a
# wheel base of ~2.88 m; the rear axle sits ~1.39 m behind the box centre, the same point Bench2Drive's rig
# mounts IMU/GNSS at (x −1.4). Override from `vehicle.get_physics_control().wheels` when a server is at hand.
LINCOLN_MKZ_2020 = VehicleGeometry(
    length=4.89, width=2.10, rear_axle_to_center=1.39, wheel_base=2.88, name="vehicle.lincoln.mkz_2020"
)


def center_to_rear_axle(poses: Array, rear_axle_to_center: float) -> Array:
    """Poses of the box centre → poses of the rear axle (same frame, same heading)."""
    poses = _asarray(poses)
    h = poses[..., 2]
    xp = _xp(poses)
    return _stack([poses[..., 0] - rear_axle_to_center * xp.cos(h), poses[..., 1] - rear_axle_to_center * xp.sin(h), h])


def rear_axle_to_center(poses: Array, rear_axle_to_center: float) -> Array:
    poses = _asarray(poses)
    h = poses[..., 2]
    xp = _xp(poses)
    return _stack([poses[..., 0] + rear_axle_to_center * xp.cos(h), poses[..., 1] + rear_axle_to_center * xp.sin(h), h])


# --------------------------------------------------------------------------------------------------------------
# compass


def compass_to_heading(compass: Array, fallback: Array | float = math.nan) -> Array:
    """IMU compass (rad, 0 = north = CARLA −y, clockwise) → WORLD heading (rad, CCW from east): π/2 − compass.

    CARLA sometimes reports NaN; NaN (or inf) entries are replaced by `fallback` (e.g. the previous heading).
    """
    compass = _asarray(compass)
    xp = _xp(compass)
    bad = ~xp.isfinite(compass)
    compass = xp.where(bad, 0.0, compass) if _is_torch(compass) else np.where(bad, 0.0, compass)
    heading = wrap_angle(math.pi / 2 - compass)
    if _is_torch(compass):
        import torch

        fb = torch.as_tensor(fallback, dtype=heading.dtype, device=heading.device)
        return torch.where(bad, fb, heading)
    return np.where(bad, fallback, heading)


def compass_to_carla_yaw(compass: Array, fallback: Array | float = math.nan) -> Array:
    """IMU compass → CARLA yaw in degrees (= compass − π/2, in degrees), NaN-safe like `compass_to_heading`."""
    heading = compass_to_heading(compass, math.nan)
    yaw = _rad2deg(wrap_angle(-heading))
    xp = _xp(yaw)
    bad = ~xp.isfinite(yaw)
    if _is_torch(yaw):
        import torch

        return torch.where(bad, torch.as_tensor(fallback, dtype=yaw.dtype, device=yaw.device), yaw)
    return np.where(bad, fallback, yaw)


def heading_to_compass(heading: Array) -> Array:
    """WORLD heading (rad, CCW from east) → IMU compass (rad, 0 = north, clockwise) in [0, 2π)."""
    heading = _asarray(heading)
    return (math.pi / 2 - heading) % (2 * math.pi)


# --------------------------------------------------------------------------------------------------------------
# SUMO nets converted from the CARLA towns' OpenDRIVE (netconvert): SUMO's plane is OpenDRIVE's right-handed
# plane shifted by the net's `<location netOffset="dx,dy">`, so SUMO (x, y) = WORLD (x + dx, y + dy) and
# CARLA_WORLD = (x_sumo − dx, −(y_sumo − dy)). SUMO vehicle angles are degrees, 0 = north (+y), clockwise.


@dataclass(frozen=True)
class SumoNetOffset:
    """The `netOffset` (metres) of a SUMO net converted from a CARLA town's OpenDRIVE."""

    dx: float
    dy: float

    def sumo_to_world(self, xy: Array) -> Array:
        """SUMO points (..., 2+) → WORLD points (..., 2)."""
        xy = _asarray(xy)
        return _stack([xy[..., 0] - self.dx, xy[..., 1] - self.dy])

    def world_to_sumo(self, xy: Array) -> Array:
        xy = _asarray(xy)
        return _stack([xy[..., 0] + self.dx, xy[..., 1] + self.dy])

    def sumo_to_carla(self, xy: Array) -> Array:
        """SUMO points (..., 2+) → CARLA_WORLD points (..., 2)."""
        return carla_points_to_world(self.sumo_to_world(xy))

    def carla_to_sumo(self, xy: Array) -> Array:
        """CARLA_WORLD points (..., 2+) → SUMO points (..., 2)."""
        xy = _asarray(xy)
        return self.world_to_sumo(carla_points_to_world(xy[..., :2]))


def sumo_angle_to_heading(angle_deg: Array) -> Array:
    """SUMO vehicle angle (degrees, 0 = north, clockwise) → WORLD heading (rad, CCW from east), wrapped."""
    return wrap_angle(_deg2rad(90.0 - _asarray(angle_deg)))


def heading_to_sumo_angle(heading: Array) -> Array:
    """WORLD heading (rad) → SUMO angle in degrees, [0, 360)."""
    return (90.0 - _rad2deg(_asarray(heading))) % 360.0


# --------------------------------------------------------------------------------------------------------------
# GNSS <-> CARLA world, exactly as the leaderboard's `_location_to_gps` (spherical Mercator around the map's
# geo-reference), and its exact inverse.


@dataclass(frozen=True)
class GeoReference:
    """A map's geo-reference (degrees). CARLA's default when the OpenDRIVE header has none: (42.0, 2.0)."""

    lat0: float = 42.0
    lon0: float = 2.0

    @property
    def scale(self) -> float:
        return math.cos(math.radians(self.lat0))

    def _my0(self) -> float:
        return self.scale * EARTH_RADIUS_EQUA * math.log(math.tan((90.0 + self.lat0) * math.pi / 360.0))

    def carla_to_gnss(self, xy: Array) -> Array:
        """CARLA_WORLD points (..., 2+) → (..., 2) (lat, lon) in degrees."""
        xy = _asarray(xy)
        xp = _xp(xy)
        mx = self.scale * self.lon0 * math.pi * EARTH_RADIUS_EQUA / 180.0 + xy[..., 0]
        my = self._my0() - xy[..., 1]
        lon = mx * 180.0 / (math.pi * EARTH_RADIUS_EQUA * self.scale)
        lat = 360.0 * xp.arctan(xp.exp(my / (EARTH_RADIUS_EQUA * self.scale))) / math.pi - 90.0
        return _stack([lat, lon])

    def gnss_to_carla(self, latlon: Array) -> Array:
        """(..., 2+) (lat, lon[, alt]) degrees → (..., 2) CARLA_WORLD (x, y). Exact inverse of `carla_to_gnss`."""
        latlon = _asarray(latlon)
        xp = _xp(latlon)
        lat, lon = latlon[..., 0], latlon[..., 1]
        mx = lon * math.pi * EARTH_RADIUS_EQUA * self.scale / 180.0
        my = EARTH_RADIUS_EQUA * self.scale * xp.log(xp.tan((90.0 + lat) * math.pi / 360.0))
        x = mx - self.scale * self.lon0 * math.pi * EARTH_RADIUS_EQUA / 180.0
        y = self._my0() - my
        return _stack([x, y])

    @classmethod
    def from_opendrive(cls, xodr_text: str) -> GeoReference:
        """Read `+lat_0=… +lon_0=…` from the OpenDRIVE header's <geoReference>; CARLA's default if absent."""
        lat = re.search(r"\+lat_0=([-+0-9.eE]+)", xodr_text)
        lon = re.search(r"\+lon_0=([-+0-9.eE]+)", xodr_text)
        return cls(float(lat.group(1)) if lat else 42.0, float(lon.group(1)) if lon else 2.0)

    @classmethod
    def from_route_pairs(cls, gps: Array, world: Array) -> GeoReference:
        """Recover the reference from (lat, lon) ↔ CARLA (x, y) pairs, e.g. the leaderboard's global plan.

        lon = lon0 + x·k and m(lat) = m(lat0) − y·k/(180/π) with k = 180/(π·R·cos lat0), m(φ) = ln tan((90+φ)π/360).
        lat0 is found by Newton iteration on the least-squares residual; lon0 follows in closed form.
        """
        g = np.asarray(gps, dtype=np.float64).reshape(-1, np.shape(gps)[-1])[:, :2]
        w = np.asarray(world, dtype=np.float64).reshape(-1, np.shape(world)[-1])[:, :2]
        if len(g) == 0 or len(g) != len(w):
            raise ValueError(f"need matching, non-empty gps/world pairs, got {len(g)} and {len(w)}")
        m_lat = np.log(np.tan((90.0 + g[:, 0]) * math.pi / 360.0))

        def residual(lat0: float) -> float:
            m0 = math.log(math.tan((90.0 + lat0) * math.pi / 360.0))
            r = m0 - w[:, 1] / (EARTH_RADIUS_EQUA * math.cos(math.radians(lat0))) - m_lat
            return float(np.mean(r))

        lat0 = float(np.mean(g[:, 0]))  # start: the route's own latitude (within metres·1e-5° of lat0)
        for _ in range(50):
            f = residual(lat0)
            h = 1e-6
            d = (residual(lat0 + h) - residual(lat0 - h)) / (2 * h)
            step = f / d
            lat0 -= step
            if abs(step) < 1e-13:
                break
        k = 180.0 / (math.pi * EARTH_RADIUS_EQUA * math.cos(math.radians(lat0)))
        lon0 = float(np.mean(g[:, 1] - w[:, 0] * k))
        return cls(lat0, lon0)


# --------------------------------------------------------------------------------------------------------------
# yaw from 3D rotations (dataset poses)


def quaternion_yaw(q_wxyz: Array) -> Array:
    """Yaw (rad) of unit quaternions (..., 4) given as (w, x, y, z), as pyquaternion's `yaw_pitch_roll[0]`.

    Intrinsic z-y'-x'' Tait-Bryan yaw: atan2(2(wz − xy), 1 − 2(y² + z²)) after normalisation. NAVSIM / nuPlan
    store `ego2global_rotation` in this order and read the ego heading this way (`Quaternion(*rot).yaw_pitch_roll[0]`).
    """
    q = _asarray(q_wxyz)
    xp = _xp(q)
    norm = xp.sqrt((q * q).sum(-1, keepdims=True) if not _is_torch(q) else (q * q).sum(-1, keepdim=True))
    q = q / norm
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return _atan2(2.0 * (w * z - x * y), 1.0 - 2.0 * (y * y + z * z))


def carla_pose_from_inverse_matrix(world_to_actor: Array) -> Array:
    """CARLA_WORLD pose (..., 3) = (x, y, yaw°) of an actor from its 4×4 world→actor matrix (CARLA's
    `Transform.get_inverse_matrix()`, as Bench2Drive stores `world2ego` / `world2vehicle`)."""
    m = _asarray(world_to_actor)
    inv = _xp(m).linalg.inv(m)
    yaw = _rad2deg(_atan2(inv[..., 1, 0], inv[..., 0, 0]))
    return _stack([inv[..., 0, 3], inv[..., 1, 3], yaw])


# --------------------------------------------------------------------------------------------------------------
# SE(3): CARLA rotations and the camera


def carla_rotation_matrix(pitch: Array, yaw: Array, roll: Array) -> Array:
    """Rotation matrix (..., 3, 3) of a CARLA rotation (degrees) in CARLA's left-handed axes.

    Same as the 3×3 block of `carla.Transform.get_matrix()`; its first column is `get_forward_vector()`.
    """
    pitch, yaw, roll = _asarray(pitch), _asarray(yaw), _asarray(roll)
    xp = _xp(pitch)
    cp, sp = xp.cos(_deg2rad(pitch)), xp.sin(_deg2rad(pitch))
    cy, sy = xp.cos(_deg2rad(yaw)), xp.sin(_deg2rad(yaw))
    cr, sr = xp.cos(_deg2rad(roll)), xp.sin(_deg2rad(roll))
    rows = [
        _stack([cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr]),
        _stack([cp * sy, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr]),
        _stack([sp, -cp * sr, cp * cr]),
    ]
    return _stack(rows, axis=-2)


def carla_transform_matrix(location: Array, rotation: Array) -> Array:
    """4×4 homogeneous matrix of a CARLA transform: location (..., 3) metres, rotation (..., 3) (pitch, yaw, roll)°.

    Maps points from the child frame to the parent, both in CARLA's left-handed axes (`Transform.transform`).
    """
    location, rotation = _asarray(location), _asarray(rotation)
    r = carla_rotation_matrix(rotation[..., 0], rotation[..., 1], rotation[..., 2])
    xp = _xp(r)
    top = (
        xp.concatenate([r, location[..., :, None]], -1) if not _is_torch(r) else xp.cat([r, location[..., :, None]], -1)
    )
    bottom = xp.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return xp.concatenate([top, bottom], -2) if not _is_torch(r) else xp.cat([top, bottom], -2)


_FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])  # CARLA left-handed <-> right-handed (same origin); its own inverse


def carla_matrix_to_right_handed(m: Array) -> Array:
    """Conjugate a 4×4 CARLA (left-handed) transform into right-handed axes: S·M·S with S = diag(1, −1, 1, 1)."""
    s = _FLIP_Y if not _is_torch(m) else _xp(m).as_tensor(_FLIP_Y, dtype=m.dtype, device=m.device)
    return s @ m @ s


# ego (x fwd, y left, z up) -> OpenCV camera axes (x right, y down, z forward)
_EGO_TO_CV = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class CameraMount:
    """A camera mounted on the ego, in CARLA's sensor spawn convention (relative to the vehicle's box centre).

    x, y, z in metres in CARLA's vehicle axes (x forward, **y right**, z up); pitch, yaw, roll in degrees.
    """

    x: float = 0.80
    y: float = 0.0
    z: float = 1.60
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0

    def sensor_to_ego(self) -> np.ndarray:
        """4×4: camera body axes (x forward, y left, z up; right-handed) → EGO_CENTER."""
        m = carla_transform_matrix(np.array([self.x, self.y, self.z]), np.array([self.pitch, self.yaw, self.roll]))
        return carla_matrix_to_right_handed(m)

    def ego_to_camera(self) -> np.ndarray:
        """4×4: EGO_CENTER points → CAMERA (OpenCV) points."""
        inv = np.linalg.inv(self.sensor_to_ego())
        cv = np.eye(4)
        cv[:3, :3] = _EGO_TO_CV
        return cv @ inv


def transform_points(m: Array, pts: Array) -> Array:
    """Apply a 4×4 (or batched (..., 4, 4)) homogeneous transform to points (..., 3)."""
    pts = _asarray(pts)
    if _is_torch(pts) and not _is_torch(m):
        m = _xp(pts).as_tensor(m, dtype=pts.dtype, device=pts.device)
    return (m[..., :3, :3] @ pts[..., :, None])[..., 0] + m[..., :3, 3]


# --------------------------------------------------------------------------------------------------------------
# trajectories


def arc_poses(speed: Array, curvature: Array, accel: Array, times: Array) -> Array:
    """Poses (…, T, 3) of constant-curvature, constant-acceleration motion from the ego origin (any ego frame).

    speed (m/s), curvature (1/m, positive = left), accel (m/s²) broadcast over leading dims; times (T,) seconds.
    Arc length s(t) = v·t + a·t²/2, held once the vehicle stops (no reversing); heading = κ·s;
    x = sin(κs)/κ, y = (1 − cos(κs))/κ (the straight-line limit for |κ| < 1e-6).
    """
    speed, curvature, accel = _asarray(speed), _asarray(curvature), _asarray(accel)
    xp = _xp(speed)
    t: Any
    s: Any
    if _is_torch(speed):
        import torch

        t = torch.as_tensor(times, dtype=speed.dtype, device=speed.device)
        s = (speed[..., None] * t + 0.5 * accel[..., None] * t**2).clamp(min=0.0)
        s = torch.cummax(s, dim=-1).values
    else:
        t = np.asarray(times, dtype=np.float64)
        s = np.maximum.accumulate(np.maximum(speed[..., None] * t + 0.5 * accel[..., None] * t**2, 0.0), axis=-1)
    k = curvature[..., None] + 0.0 * s
    small = xp.abs(k) < 1e-6
    ks = xp.where(small, xp.ones_like(k), k)
    h = k * s
    x = xp.where(small, s, xp.sin(h) / ks)
    y = xp.where(small, 0.5 * k * s**2, (1 - xp.cos(h)) / ks)
    return _stack([x, y, h])


def interp_poses(t_src: Array, poses: Array, t_dst: Array) -> Array:
    """Linear interpolation of poses (..., T, 3) sampled at increasing times t_src (T,) onto t_dst (M,).

    x, y are interpolated linearly, heading on the circle (unwrapped, interpolated, wrapped). Times outside
    [t_src[0], t_src[-1]] are clamped (no extrapolation).
    """
    poses = _asarray(poses)
    t_c: Any
    idx: Any
    unwrapped: Any
    if _is_torch(poses):
        import torch

        t_src = torch.as_tensor(t_src, dtype=poses.dtype, device=poses.device)
        t_dst = torch.as_tensor(t_dst, dtype=poses.dtype, device=poses.device)
        h = poses[..., 2]
        dh = wrap_angle(h[..., 1:] - h[..., :-1])
        unwrapped = torch.cat([h[..., :1], h[..., :1] + torch.cumsum(dh, -1)], -1)
        t_c = t_dst.clamp(t_src[0], t_src[-1])
        idx = torch.searchsorted(t_src, t_c, right=True).clamp(1, t_src.shape[0] - 1)
    else:
        t_src = np.asarray(t_src, dtype=np.float64)
        t_dst = np.asarray(t_dst, dtype=np.float64)
        h = poses[..., 2]
        dh = wrap_angle(h[..., 1:] - h[..., :-1])
        unwrapped = np.concatenate([h[..., :1], h[..., :1] + np.cumsum(dh, -1)], -1)
        t_c = np.clip(t_dst, t_src[0], t_src[-1])
        idx = np.clip(np.searchsorted(t_src, t_c, side="right"), 1, t_src.shape[0] - 1)
    t0, t1 = t_src[idx - 1], t_src[idx]
    w = (t_c - t0) / (t1 - t0)
    vals = _stack([poses[..., 0], poses[..., 1], unwrapped])  # (..., T, 3)
    v0, v1 = vals[..., idx - 1, :], vals[..., idx, :]
    out = v0 + (v1 - v0) * w[:, None]
    return _stack([out[..., 0], out[..., 1], wrap_angle(out[..., 2])])


@dataclass(frozen=True)
class Trajectory:
    """Poses (..., T, 3) at times t0, t0+dt, … (seconds relative to "now"), in a named frame.

    NAVSIM's agent output is `Trajectory(EGO_REAR_AXLE, poses(8, 3), dt=0.5, t0=0.5)`; the vocabulary is
    `Trajectory(EGO_REAR_AXLE, poses(8192, 40, 3), dt=0.1, t0=0.1)`.
    """

    frame: Frame
    poses: Array
    dt: float
    t0: float | None = None

    def __post_init__(self) -> None:
        if self.poses.shape[-1] != 3:
            raise FrameError(f"trajectory poses must be (..., T, 3), got shape {tuple(self.poses.shape)}")
        if self.frame in (Frame.CARLA_WORLD, Frame.CAMERA):
            raise FrameError(f"trajectories are kept in right-handed 2D frames, not {self.frame.value}")

    @property
    def start(self) -> float:
        return self.dt if self.t0 is None else self.t0

    @property
    def times(self) -> np.ndarray:
        return self.start + self.dt * np.arange(self.poses.shape[-2])

    def resample(self, dt: float, num: int, t0: float | None = None, include_origin: bool = True) -> Trajectory:
        """Resample at t0, t0+dt, … (`num` poses). The current pose (t = 0, identity in ego frames) is used as
        an anchor when `include_origin` and the frame is an ego frame, so e.g. 0.5 s → 0.1 s fills 0.1…0.4 s."""
        start = dt if t0 is None else t0
        t_dst = start + dt * np.arange(num)
        t_src = self.times
        poses = self.poses
        if include_origin and self.frame in (Frame.EGO_CENTER, Frame.EGO_REAR_AXLE) and t_src[0] > 0:
            zero = poses[..., :1, :] * 0
            poses = np.concatenate([zero, poses], -2) if not _is_torch(poses) else _xp(poses).cat([zero, poses], -2)
            t_src = np.concatenate([[0.0], t_src])
        return Trajectory(self.frame, interp_poses(t_src, poses, t_dst), dt, start)

    def to_local(self, origin: Array, frame: Frame) -> Trajectory:
        """Express a WORLD trajectory in the ego frame whose WORLD pose is `origin`."""
        if self.frame is not Frame.WORLD:
            raise FrameError(f"to_local expects a {Frame.WORLD.value} trajectory, got {self.frame.value}")
        return Trajectory(frame, to_local(self.poses, _asarray(origin)[..., None, :]), self.dt, self.t0)

    def to_world(self, origin: Array) -> Trajectory:
        """Express an ego-frame trajectory in WORLD, given the WORLD pose of its frame's origin."""
        if self.frame not in (Frame.EGO_CENTER, Frame.EGO_REAR_AXLE):
            raise FrameError(f"to_world expects an ego-frame trajectory, got {self.frame.value}")
        return Trajectory(Frame.WORLD, to_global(self.poses, _asarray(origin)[..., None, :]), self.dt, self.t0)

    def change_origin(self, geometry: VehicleGeometry) -> Trajectory:
        """EGO_CENTER ↔ EGO_REAR_AXLE: both the frame origin and the tracked point move along the vehicle axis."""
        d = geometry.rear_axle_to_center
        if self.frame is Frame.EGO_REAR_AXLE:
            # rear-axle poses in rear-axle frame -> centre poses in centre frame
            centre = rear_axle_to_center(self.poses, d)
            shifted = _stack([centre[..., 0] - d, centre[..., 1], centre[..., 2]])
            return Trajectory(Frame.EGO_CENTER, shifted, self.dt, self.t0)
        if self.frame is Frame.EGO_CENTER:
            rear = center_to_rear_axle(self.poses, d)
            shifted = _stack([rear[..., 0] + d, rear[..., 1], rear[..., 2]])
            return Trajectory(Frame.EGO_REAR_AXLE, shifted, self.dt, self.t0)
        raise FrameError(f"change_origin expects an ego-frame trajectory, got {self.frame.value}")


def ego_pose_from_carla(location_xy: Array, yaw_deg: Array, geometry: VehicleGeometry | None = None) -> Array:
    """WORLD pose of the ego frame origin from CARLA's actor transform (box centre, yaw°).

    With `geometry` the returned pose is the rear axle's (the NAVSIM frame origin); otherwise the box centre's.
    """
    location_xy = _asarray(location_xy)
    pose = carla_to_world(_stack([location_xy[..., 0], location_xy[..., 1], _asarray(yaw_deg)]))
    return center_to_rear_axle(pose, geometry.rear_axle_to_center) if geometry else pose

"""Leaderboard sensor suites in the lite world: parse an agent's `sensors()` list, produce `input_data`.

Formats (CARLA 0.9.15 / leaderboard): `input_data[id] = (frame, data)` with
- 'sensor.camera.rgb': uint8 (H, W, 4) BGRA;
- 'sensor.other.gnss': float64 [lat, lon, alt] (the leaderboard's spherical-Mercator conversion around the
  town's geo-reference, `GeoReference.carla_to_gnss`), optional Gaussian noise from
  `noise_*_stddev`/`noise_*_bias` keys;
- 'sensor.other.imu': float64 [acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z, compass] in the sensor's CARLA
  axes (x forward, y right, z up; gravity included), compass in rad, 0 = north, clockwise;
- 'sensor.speedometer': {'speed': forward speed in m/s}. Other sensor types (LiDAR, radar, OpenDRIVE map) are
  not simulated and are rejected with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from carla_tools.lite.render import CameraSpec
from drive_jepa.frames import CameraMount, heading_to_compass, points_to_global

GRAVITY = 9.81
SUPPORTED = ("sensor.camera.rgb", "sensor.other.gnss", "sensor.other.imu", "sensor.speedometer")
TYPE_TAGS = {  # leaderboard `sensors` tags in the results file
    "sensor.camera.rgb": "carla_camera",
    "sensor.other.gnss": "carla_gnss",
    "sensor.other.imu": "carla_imu",
    "sensor.speedometer": "carla_speedometer",
}


class SensorSpecError(ValueError):
    """An agent's sensors() entry the lite world cannot provide or that is malformed."""


@dataclass(frozen=True)
class SensorSpec:
    type: str
    id: str
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    raw: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: float = 0.0) -> float:
        return float(dict(self.raw).get(key, default))

    def camera(self) -> CameraSpec:
        return CameraSpec(
            self.id,
            CameraMount(self.x, self.y, self.z, self.pitch, self.yaw, self.roll),
            int(self.get("width", 800)),
            int(self.get("height", 600)),
            self.get("fov", 90.0),
        )


def parse_sensors(entries: list[dict[str, Any]]) -> list[SensorSpec]:
    """Validate an agent's `sensors()` list (leaderboard format). Raises SensorSpecError naming the entry."""
    specs: list[SensorSpec] = []
    seen: set[str] = set()
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or "type" not in e or "id" not in e:
            raise SensorSpecError(f"sensors()[{k}]: expected a dict with 'type' and 'id', got {e!r}")
        if e["type"] not in SUPPORTED:
            raise SensorSpecError(
                f"sensors()[{k}] id={e['id']!r}: type {e['type']!r} is not simulated by the lite world "
                f"(supported: {', '.join(SUPPORTED)})"
            )
        if e["id"] in seen:
            raise SensorSpecError(f"sensors()[{k}]: duplicate id {e['id']!r}")
        seen.add(e["id"])
        if e["type"] == "sensor.camera.rgb":
            for key in ("width", "height", "fov"):
                if key not in e:
                    raise SensorSpecError(f"sensors()[{k}] id={e['id']!r}: camera lacks {key!r}")
        specs.append(
            SensorSpec(
                type=e["type"],
                id=str(e["id"]),
                **{a: float(e.get(a, 0.0)) for a in ("x", "y", "z", "roll", "pitch", "yaw")},
                raw=tuple(e.items()),
            )
        )
    return specs


def sensor_world_xy(spec: SensorSpec, ego_pose: np.ndarray) -> np.ndarray:
    """WORLD (x, y) of a sensor mounted at (x forward, y right; CARLA vehicle axes) on the ego box centre."""
    return np.asarray(points_to_global(np.array([spec.x, -spec.y]), ego_pose))


def gnss_reading(
    spec: SensorSpec, geo: Any, ego_pose: np.ndarray, ground_z: float, rng: np.random.Generator
) -> np.ndarray:
    """[lat, lon, alt] of the sensor location (leaderboard conversion), with the spec's noise if any."""
    wxy = sensor_world_xy(spec, ego_pose)
    lat, lon = geo.carla_to_gnss(np.array([wxy[0], -wxy[1]]))
    alt = ground_z + spec.z
    lat += spec.get("noise_lat_bias") + (
        rng.normal(0, spec.get("noise_lat_stddev")) if spec.get("noise_lat_stddev") else 0
    )
    lon += spec.get("noise_lon_bias") + (
        rng.normal(0, spec.get("noise_lon_stddev")) if spec.get("noise_lon_stddev") else 0
    )
    alt += spec.get("noise_alt_bias") + (
        rng.normal(0, spec.get("noise_alt_stddev")) if spec.get("noise_alt_stddev") else 0
    )
    return np.array([lat, lon, alt], dtype=np.float64)


def imu_reading(heading: float, accel: float, speed: float, yaw_rate: float) -> np.ndarray:
    """IMU 7-vector. CARLA sensor axes are left-handed (y right): lateral accel and yaw rate flip sign."""
    lateral = speed * yaw_rate  # right-handed, positive to the left
    compass = float(heading_to_compass(heading))
    return np.array([accel, -lateral, GRAVITY, 0.0, 0.0, -yaw_rate, compass], dtype=np.float64)


def speed_reading(speed: float) -> dict[str, float]:
    return {"speed": float(speed)}


def sensor_tags(specs: list[SensorSpec]) -> list[str]:
    return [TYPE_TAGS[s.type] for s in specs]

"""The agent's sensor rig, declared in the leaderboard's `sensors()` format.

Default = the common Bench2Drive rig: front camera at (x 0.80, y 0.0, z 1.60) in CARLA's vehicle axes
(x forward, y right, z up), 1600×900, FOV 70°; IMU and GNSS at (−1.4, 0, 0); a speedometer. At most the
SENSORS-track limits are used (≤ 8 cameras, 1 GNSS, 1 IMU, 1 speedometer, mounts within 3 m).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drive_jepa.frames import CameraMount


@dataclass
class FrontCameraConfig:
    id: str = "CAM_FRONT"
    width: int = 1600
    height: int = 900
    fov: float = 70.0  # horizontal, degrees
    x: float = 0.80
    y: float = 0.0
    z: float = 1.60
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    def mount(self) -> CameraMount:
        return CameraMount(self.x, self.y, self.z, self.pitch, self.yaw, self.roll)


@dataclass
class SensorRigConfig:
    camera: FrontCameraConfig = field(default_factory=FrontCameraConfig)
    gnss_id: str = "GPS"
    imu_id: str = "IMU"
    speed_id: str = "SPEED"
    # IMU and GNSS mount, CARLA vehicle axes (metres): Bench2Drive's rig puts both at x = −1.4.
    imu_gnss_x: float = -1.4
    gnss_tick: float = 0.01
    imu_tick: float = 0.05


def leaderboard_sensors(rig: SensorRigConfig) -> list[dict[str, Any]]:
    """The list an `AutonomousAgent.sensors()` returns for this rig."""
    cam = rig.camera
    pose0 = {"roll": 0.0, "pitch": 0.0, "yaw": 0.0}
    return [
        {
            "type": "sensor.camera.rgb",
            "x": cam.x,
            "y": cam.y,
            "z": cam.z,
            "roll": cam.roll,
            "pitch": cam.pitch,
            "yaw": cam.yaw,
            "width": cam.width,
            "height": cam.height,
            "fov": cam.fov,
            "id": cam.id,
        },
        {
            "type": "sensor.other.imu",
            "x": rig.imu_gnss_x,
            "y": 0.0,
            "z": 0.0,
            **pose0,
            "sensor_tick": rig.imu_tick,
            "id": rig.imu_id,
        },
        {
            "type": "sensor.other.gnss",
            "x": rig.imu_gnss_x,
            "y": 0.0,
            "z": 0.0,
            **pose0,
            "sensor_tick": rig.gnss_tick,
            "id": rig.gnss_id,
        },
        {"type": "sensor.speedometer", "reading_frequency": 20, "id": rig.speed_id},
    ]

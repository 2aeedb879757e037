"""The lite world of one route: town + SUMO traffic + ego bicycle + sensors, stepped at 20 Hz.

Per tick (as the leaderboard): sensors are read from the current state, the agent returns a control, the ego
integrates it for 0.05 s, is pushed into SUMO, and SUMO advances one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from carla_tools.lite.actors import Actors
from carla_tools.lite.render import Renderer
from carla_tools.lite.route import DenseRoute
from carla_tools.lite.sensors import SensorSpec, gnss_reading, imu_reading, speed_reading
from carla_tools.lite.town import TownMap
from carla_tools.lite.traffic import SumoTraffic
from carla_tools.lite.vehicle import BicycleModel, EgoState, VehicleControl, VehicleLimits
from drive_jepa.frames import LINCOLN_MKZ_2020, center_to_rear_axle
from drive_jepa.routes import Scenario

DT = 0.05  # s, the leaderboard's fixed_delta_seconds


@dataclass(frozen=True)
class LightView:
    """A signalled approach: stop line centre (WORLD), lane heading, state ('r', 'y', 'g'), tls id, lanes."""

    stop_xy: np.ndarray
    heading: float
    state: str
    tls_id: str
    from_lane: int
    via_lane: int
    width: float


class LiteWorld:
    """Everything simulated for one route. Use as a context manager (closes SUMO)."""

    def __init__(
        self,
        town: TownMap,
        route: DenseRoute,
        seed: int = 0,
        num_vehicles: int = 60,
        limits: VehicleLimits | None = None,
        renderer: Renderer | None = None,
        scenarios: tuple[Scenario, ...] = (),
        route_id: str = "",
    ) -> None:
        self.town = town
        self.route = route
        self.route_id = route_id
        self.frame = 0
        self.time = 0.0
        self.rng = np.random.default_rng(seed)
        self.model = BicycleModel(limits)
        centre = np.array([*route.world_xy[0], route.heading[0]])
        rear = center_to_rear_axle(centre, LINCOLN_MKZ_2020.rear_axle_to_center)
        self.ego = EgoState(float(rear[0]), float(rear[1]), float(rear[2]))
        self.renderer = renderer
        self.traffic = SumoTraffic(town, seed=seed, num_vehicles=num_vehicles, spawn_center=route.world_xy.mean(0))
        # the ego first, so SUMO inserts nobody on top of it; then clear its surroundings (SUMO vehicles
        # already on the lane behind could not brake for an ego that appears out of nowhere)
        self.traffic.place_ego(centre[:2], float(centre[2]), 0.0)
        self.traffic.step()
        self.traffic.clear_around(centre[:2], 30.0)
        self.traffic.place_ego(centre[:2], float(centre[2]), 0.0)
        self._light_states = self.traffic.light_states()
        self.last_control = VehicleControl()
        # Bench2Drive builds every scenario of the route at t = 0 (within 500 m of its trigger)
        from carla_tools.lite.scenarios import ScenarioEngine

        self.scenarios = ScenarioEngine(self, scenarios, seed=seed, route_id=route_id)
        self.scenarios.sync_twins()
        self._actors = Actors.concat([self.traffic.actors(self.ego_pose[:2]), self.scenarios.actors])

    # ------------------------------------------------------------------------------------------------------
    @property
    def ego_pose(self) -> np.ndarray:
        """(3,) WORLD pose of the ego box centre (CARLA's actor location)."""
        return self.ego.center_pose()

    @property
    def ego_z(self) -> float:
        """Ground height (CARLA z) under the ego, from the route's waypoints (the lite world is flat)."""
        d = np.hypot(*(self.route.world_xy - self.ego_pose[:2]).T)
        return float(self.route.xyz[int(d.argmin()), 2])

    def ego_carla_location(self) -> tuple[float, float, float]:
        p = self.ego_pose
        return float(p[0]), float(-p[1]), self.ego_z

    @property
    def actors(self) -> Actors:
        """Every actor near the ego: SUMO background cars and the scenarios' actors (visible ones)."""
        return self._actors

    def teleport_ego(self, xy: np.ndarray, heading: float) -> None:
        """Put the ego's box centre at a WORLD pose at standstill (ParkingExit starts the ego parked)."""
        rear = center_to_rear_axle(np.array([xy[0], xy[1], heading]), LINCOLN_MKZ_2020.rear_axle_to_center)
        self.ego = EgoState(float(rear[0]), float(rear[1]), float(rear[2]))
        self.traffic.clear_around(np.asarray(xy), 8.0)
        self.traffic.place_ego(np.asarray(xy), float(heading), 0.0)

    def refresh_lights(self) -> None:
        """Re-read the lights after a scenario froze or restored some."""
        self._light_states = self.traffic.light_states()

    def light_state(self, tls_id: str, link_index: int) -> str:
        """'r', 'y' or 'g' for one signalled link (SUMO's r/s → 'r', y/u → 'y', anything else 'g')."""
        state = self._light_states.get(tls_id, "")
        ch = state[link_index].lower() if link_index < len(state) else "g"
        return "r" if ch in "rs" else "y" if ch in "yu" else "g"

    def lights(self, radius: float = 120.0) -> list[LightView]:
        """Signalled approaches within `radius` m, with their current state."""
        out = []
        p = self.ego_pose[:2]
        for link in self.town.tl_links:
            if np.hypot(*(link.stop_xy - p)) > radius:
                continue
            ch = self.light_state(link.tls_id, link.link_index)
            out.append(
                LightView(
                    link.stop_xy,
                    link.stop_heading,
                    ch,
                    link.tls_id,
                    link.from_lane,
                    link.via_lane,
                    link.width,
                )
            )
        return out

    # ------------------------------------------------------------------------------------------------------
    def read_sensors(self, specs: list[SensorSpec]) -> dict[str, tuple[int, Any]]:
        """`input_data` for the agent at the current frame."""
        pose = self.ego_pose
        data: dict[str, tuple[int, Any]] = {}
        lights_drawn = None
        for spec in specs:
            if spec.type == "sensor.camera.rgb":
                if self.renderer is None:
                    self.renderer = Renderer(self.town)
                if lights_drawn is None:
                    lights_drawn = self._light_props()
                img = self.renderer.render(spec.camera(), pose, self._actors, lights_drawn)
                data[spec.id] = (self.frame, img)
            elif spec.type == "sensor.other.gnss":
                data[spec.id] = (self.frame, gnss_reading(spec, self.town.geo, pose, self.ego_z, self.rng))
            elif spec.type == "sensor.other.imu":
                data[spec.id] = (
                    self.frame,
                    imu_reading(pose[2], self.ego.accel, self.ego.speed, self.ego.yaw_rate),
                )
            elif spec.type == "sensor.speedometer":
                data[spec.id] = (self.frame, speed_reading(self.ego.speed))
        return data

    def _light_props(self) -> list[tuple[np.ndarray, float, str]]:
        """One traffic-light prop per signalled lane, on the right of its stop line."""
        seen: set[int] = set()
        props = []
        for lv in self.lights():
            if lv.from_lane in seen:
                continue
            seen.add(lv.from_lane)
            right = np.array([np.sin(lv.heading), -np.cos(lv.heading)])
            props.append((lv.stop_xy + right * (lv.width / 2 + 0.6), lv.heading, lv.state))
        return props

    def step(self, control: VehicleControl) -> None:
        """Advance 0.05 s: scenario control filters, ego dynamics, push the ego and the scenario actors' twins into
        SUMO, SUMO step, scenario behaviours, refresh actors and lights."""
        control = self.scenarios.filter_control(control)
        self.last_control = control
        self.ego = self.model.step(self.ego, control, DT)
        pose = self.ego_pose
        self.traffic.place_ego(pose[:2], float(pose[2]), self.ego.speed)
        self.scenarios.sync_twins()
        self.traffic.step()
        self.frame += 1
        self.time += DT
        self._light_states = self.traffic.light_states()
        self.scenarios.step(DT)
        self._actors = Actors.concat([self.traffic.actors(pose[:2]), self.scenarios.actors])

    def close(self) -> None:
        self.traffic.close()

    def __enter__(self) -> LiteWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

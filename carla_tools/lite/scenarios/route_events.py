"""Scenarios without an adversary of their own, or driven by the ego's surroundings (`t_junction.py`,
`vanilla_turn.py`, `hard_break.py`, `control_loss.py`, `yield_to_emergency_vehicle.py`): T_Junction,
SequentialLaneChange, the Vanilla* turns, HardBreakRoute, ControlLoss, YieldToEmergencyVehicle.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from carla_tools.lite.actors import BACKGROUND_TYPE, DEBRIS, VEHICLE
from carla_tools.lite.scenarios.base import LiteScenario, Polyline, ScenarioActor, ScenarioEvent, unit
from carla_tools.lite.scenarios.engine import register
from carla_tools.lite.scenarios.junction import Junction
from carla_tools.lite.vehicle import as_control
from drive_jepa.frames import LINCOLN_MKZ_2020


@register
class DriveDistance(LiteScenario):
    """T_Junction / SequentialLaneChange: nothing is spawned; the scenario (and its ScenarioTimeout, which
    switches ActorBlockedTest off) lasts until the ego has driven 200 m."""

    type_names = ("T_Junction", "SequentialLaneChange")
    timeout = True

    def tick(self, dt: float) -> bool:
        return self.ctx.s_ego - self.s_trigger >= 200.0


@register
class VanillaTurn(LiteScenario):
    """Vanilla turns: the junction's lights are the test. EncounterGreenLight: ego green (others red) for
    5 s, own programs, then all red — the ego's included — for 5 s, own programs again; a late ego meets red.
    EncounterRedLight: all red for 5 s, then ego green and others red until the end. NonSignalized: nothing.
    End: the ego leaves the junction and drives 10 m (or, for the green-light type, the light sequence ends)."""

    type_names = ("VanillaSignalizedTurnEncounterGreenLight", "VanillaSignalizedTurnEncounterRedLight",
                  "VanillaNonSignalizedTurn", "VanillaNonSignalizedTurnEncounterStopsign")  # fmt: skip

    def build(self) -> None:
        self.j = Junction(self.ctx, self.s_trigger)
        self.mode = self.spec.type.replace("VanillaSignalizedTurnEncounter", "").replace("VanillaNonSignalized", "")
        self.lights = self.spec.type.startswith("VanillaSignalized") and bool(self.j.tls)
        self.phase = 0

    def start(self) -> None:
        if not self.lights:
            return
        if self.mode == "GreenLight":
            self.j.set_lights({self.j.ego_entry})
        else:
            self.j.set_lights(set())

    def tick(self, dt: float) -> bool:
        t = self.elapsed
        if self.lights and self.mode == "GreenLight":
            if self.phase == 0 and t >= 5.0:
                self.j.restore_lights()
                self.phase = 1
            elif self.phase == 1 and t >= 5.05:
                self.j.set_lights(set())
                self.phase = 2
            elif self.phase == 2 and t >= 10.05:
                self.j.restore_lights()
                self.phase = 3
                return True
        elif self.lights and self.phase == 0 and t >= 5.0:
            self.j.set_lights({self.j.ego_entry})
            self.phase = 1
        return self.ctx.s_ego > self.j.s_out + 10.0

    def finish(self) -> None:
        if self.lights and self.phase < 3:
            self.j.restore_lights()


@register
class HardBreakRoute(LiteScenario):
    """Background road traffic ahead in the ego lane (here two cars, 15 m apart, that keep 30–45 m + 1.7 s
    ahead of the ego as Bench2Drive's BackgroundActivity does) brakes to a stop at the trigger, stands 10 s,
    drives on; the scenario ends after the ego drove 15 m more."""

    type_names = ("HardBreakRoute",)
    decel = 6.0  # m/s², Traffic-Manager cars braking for StopFrontVehicles

    def build(self) -> None:
        ctx = self.ctx
        self.leads: list[ScenarioActor] = []
        for d in (30.0, 15.0):
            # they stand in for BackgroundActivity's road cars: background traffic to the criteria and the expert
            car = ctx.new_actor(VEHICLE, BACKGROUND_TYPE, "car", blocks_traffic=True)
            car.path, car.s = ctx.path, d + 6.0
            car.follow(0.0)
            self.leads.append(self.add(car))
        self.limit = ctx.town.lanes[ctx.lane_at(ctx.route_pose(0.0)[0])[0]].speed
        self.stopped_at: float | None = None
        self.s_restart: float | None = None

    def drive(self, dt: float, stop: bool) -> None:
        v_ego = abs(self.ctx.world.ego.speed)
        lead_s: float | None = None
        for car in self.leads:  # farthest first
            if not car.alive:
                continue
            ahead = car.s - self.ctx.s_ego
            frac = float(np.clip((45.0 + 1.7 * v_ego - ahead) / 15.0, 0.0, 1.0))
            v_des = 0.0 if stop else self.limit * frac
            if lead_s is not None:
                v_des = min(v_des, math.sqrt(max(0.0, 2 * 4.0 * max(lead_s - car.s - car.length - 4.0, 0.0))))
            car.speed = float(np.clip(v_des, car.speed - self.decel * dt, car.speed + 2.5 * dt))
            if not car.follow(car.speed * dt):
                car.alive = False
            lead_s = car.s

    def idle(self, dt: float) -> None:
        self.drive(dt, False)  # background cars drive before the trigger too

    def tick(self, dt: float) -> bool:
        if self.stopped_at is None:
            self.stopped_at = self.time  # StopFrontVehicles at the trigger
        stop = self.time - self.stopped_at < 10.0
        if not stop and self.s_restart is None:
            self.s_restart = self.ctx.s_ego  # StartFrontVehicles
        self.drive(dt, stop)
        return self.s_restart is not None and self.ctx.s_ego - self.s_restart >= 15.0


@register
class ControlLoss(LiteScenario):
    """Three debris patches at 14, 48 and 74 m ahead (fwd1); while the ego is within 2 m of one, its control
    gets throttle + N(±0.03, 0.01) and steer + N(±0.055, 0.015) (signs drawn per patch). Ends after 110 m or
    36 m past the last patch."""

    type_names = ("ControlLoss",)

    def build(self) -> None:
        ctx = self.ctx
        self.debris = []
        self.signs = []
        for d in (14.0, 48.0, 74.0):
            s = ctx.fwd1(self.s_trigger, d)
            p, h = ctx.route_pose(s)
            a = ctx.new_actor(DEBRIS, "static.prop.dirtdebris01", "debris")
            a.place(p, h)
            self.debris.append(self.add(a))
            self.signs.append((float(ctx.rng.choice([-1.0, 1.0])), float(ctx.rng.choice([-1.0, 1.0]))))
        self.s_end = min(self.s_trigger + 110.0, ctx.route.project(self.debris[-1].xy)[0] + 36.0)
        self.noisy_ticks = 0

    def start(self) -> None:
        self.ctx.control_filter = self._noise

    def _noise(self, control: Any) -> Any:
        p = self.ctx.world.ego_pose[:2]
        for a, (st, ss) in zip(self.debris, self.signs, strict=True):
            if math.hypot(p[0] - a.x, p[1] - a.y) < 2.0:
                c = as_control(control)
                rng = self.ctx.rng
                self.noisy_ticks += 1
                return dataclasses.replace(
                    c,
                    throttle=float(np.clip(c.throttle + rng.normal(st * 0.03, 0.01), 0.0, 1.0)),
                    steer=float(np.clip(c.steer + rng.normal(ss * 0.055, 0.015), -1.0, 1.0)),
                )
        return control

    def tick(self, dt: float) -> bool:
        return self.ctx.s_ego >= self.s_end

    def finish(self) -> None:
        self.ctx.control_filter = None


@register
class YieldToEmergencyVehicle(LiteScenario):
    """An ambulance appears `distance` m behind the ego on its lane at the trigger and closes in at the ego's
    speed + 25 m/s; with the ego ahead in its lane it tailgates at the ego's speed. The scenario ends 10 s
    after the ambulance came within 50 m, or once it got ahead of the ego and drove 50 m; if the ego is still
    ahead of it then, YieldToEmergencyVehicleTest records one infraction."""

    type_names = ("YieldToEmergencyVehicle",)

    def build(self) -> None:
        ctx = self.ctx
        back = self.value("distance", 140.0)
        p0, h0 = ctx.route_pose(0.0)
        extra = max(0.0, back - self.s_trigger) + 5.0
        start = np.stack([p0 - unit(h0) * extra, p0])
        self.path = Polyline(np.concatenate([start, ctx.path.pts[1:]]))
        self.ev = self.add(ctx.emergency(visible=False, blocks_traffic=True))
        self.ev.path, self.ev.s = self.path, max(0.0, extra + self.s_trigger - back)
        self.ev.follow(0.0)
        self.t_near: float | None = None
        self.s_ahead: float | None = None

    def start(self) -> None:
        self.ev.visible = True
        # RemoveRoadLane(ego lane): background cars on the ego's lane are removed
        ctx = self.ctx
        traffic = ctx.world.traffic
        for vid in traffic.background_near(ctx.world.ego_pose[:2], 120.0):
            pos, _ = traffic.world_position(vid)
            if ctx.route.project(pos)[1] < 1.8:
                traffic.sumo.vehicle.remove(vid)

    def ego_ahead(self) -> float:
        return self.ctx.ego_ahead_of(self.ev.xy, self.ev.heading)

    def tick(self, dt: float) -> bool:
        ev, ctx = self.ev, self.ctx
        world = ctx.world
        v_ego = abs(world.ego.speed)
        v_free = v_ego + 25.0
        ahead = self.ego_ahead()
        s_e, lat = self.path.project(world.ego_pose[:2])
        in_lane = lat < (ev.width + LINCOLN_MKZ_2020.width) / 2 + 0.3
        gap = s_e - ev.s - (ev.length + LINCOLN_MKZ_2020.length) / 2
        v_des = v_free
        if in_lane and gap > -1.0 and gap < 10.0 + ev.speed:  # detected: match the ego's speed (tailgate)
            v_des = min(v_free, v_ego + 0.8 * (gap - 5.0))
        ev.speed = float(np.clip(v_des, max(ev.speed - 12.0 * dt, 0.0), ev.speed + 6.0 * dt))
        ev.follow(ev.speed * dt)
        if self.t_near is None and ctx.ego_distance(ev.xy) < 50.0:
            self.t_near = self.time
        if self.s_ahead is None and ahead < 0:
            self.s_ahead = ev.s
        if self.s_ahead is not None and ev.s - self.s_ahead >= 50.0:
            return True
        return self.t_near is not None and self.time - self.t_near >= 10.0

    def finish(self) -> None:
        if self.ego_ahead() > 0:
            self.events.append(
                ScenarioEvent("yield_emergency_vehicle_infractions", "Agent failed to yield to an emergency vehicle")
            )

"""The scenario engine: reads a route's `<scenario>` elements as Bench2Drive's RouteScenario does, builds each
known type at t = 0, starts it when the ego reaches its trigger point (route point within 2 m), ticks its
behaviour, ends it, and hands the world its actors, its SUMO twins, its criteria switches and its events.

A type the registry does not know (or a scenario that cannot be placed) is reported with a warning naming it,
and the route's record lists it as not staged; the route runs on without it, as in CARLA when building throws.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from carla_tools.lite.actors import Actors
from carla_tools.lite.scenarios.base import (
    Context,
    LiteScenario,
    ScenarioBuildError,
    ScenarioEvent,
    ScenarioStatus,
    actors_of,
)
from drive_jepa.routes import Scenario

if TYPE_CHECKING:
    from carla_tools.lite.world import LiteWorld

REGISTRY: dict[str, type[LiteScenario]] = {}
TRIGGER_DISTANCE = 2.0  # m, ScenarioTriggerer


def register(cls: type[LiteScenario]) -> type[LiteScenario]:
    """Class decorator: the class stages every Bench2Drive type named in its `type_names`."""
    for name in cls.type_names:
        if name in REGISTRY:
            raise ValueError(f"scenario type {name} registered twice")
        REGISTRY[name] = cls
    return cls


def known_types() -> list[str]:
    _load_families()
    return sorted(REGISTRY)


def _load_families() -> None:
    from carla_tools.lite.scenarios import crossing, cut_in, junction, obstacles, route_events  # noqa: F401


class ScenarioEngine:
    """All scenarios of one route in one world."""

    def __init__(self, world: LiteWorld, scenarios: tuple[Scenario, ...], seed: int = 0, route_id: str = "") -> None:
        _load_families()
        # scenario_runner resets numpy's RandomState(2000) for each route; the lite world adds its seed
        self.ctx = Context(world, np.random.default_rng([2000, seed]))
        self.world = world
        self.scenarios: list[LiteScenario] = []
        self.status: list[ScenarioStatus] = []
        self._pending: list[ScenarioEvent] = []
        self._twins: set[str] = set()
        self._status_of: dict[int, ScenarioStatus] = {}
        where = f"route {route_id}: " if route_id else ""
        for spec in scenarios:
            cls = REGISTRY.get(spec.type)
            if cls is None:
                reason = f"scenario type {spec.type} is not staged by the lite world"
                print(f"lite: warning: {where}{spec.name}: {reason}", file=sys.stderr)
                self.status.append(ScenarioStatus(spec.name, spec.type, False, reason))
                continue
            sc = cls(spec, self.ctx)
            try:
                sc.s_trigger = self.ctx.route_s(spec.trigger[:3], spec.trigger[3])
                sc.build()
            except ScenarioBuildError as exc:
                reason = f"skipped: {exc}"
                print(f"lite: warning: {where}{spec.name} ({spec.type}) {reason}", file=sys.stderr)
                self.status.append(ScenarioStatus(spec.name, spec.type, False, reason))
                sc.cleanup()
                continue
            self.scenarios.append(sc)
            self.status.append(ScenarioStatus(spec.name, spec.type, True))
            self._status_of[id(sc)] = self.status[-1]
        self._actors = self._collect()

    # ------------------------------------------------------------------------------------------------------
    @property
    def wrong_direction_checks(self) -> bool:
        return self.ctx.wrong_direction_checks

    @property
    def blocked_test_enabled(self) -> bool:
        return self.ctx.blocked_test_off == 0

    def filter_control(self, control: Any) -> Any:
        """ControlLoss and the like replace the agent's command for a tick."""
        f = self.ctx.control_filter
        return control if f is None else f(control)

    def sync_twins(self) -> None:
        """Move the SUMO twins of visible traffic-blocking actors; remove the others'."""
        traffic = self.world.traffic
        live: set[str] = set()
        for sc in self.scenarios:
            for a in sc.actors:
                if a.alive and a.visible and a.blocks_traffic and self._on_lane(a.xy):
                    traffic.place_twin(a.name, a.xy, a.heading, a.speed, a.length, a.width)
                    live.add(a.name)
        for name in self._twins - live:
            traffic.remove_twin(name)
        self._twins = live

    def _on_lane(self, xy: np.ndarray) -> bool:
        """Whether a point lies on a driving lane (SUMO would map a twin off the lanes onto the nearest one)."""
        _, dist, _, width = self.ctx.town.nearest_lanes(xy[None])
        return bool(dist[0] < width[0] / 2 + 0.3)

    def step(self, dt: float) -> None:
        """After the world moved: triggers, behaviours, ends."""
        ctx = self.ctx
        ctx.update_progress()
        for sc in self.scenarios:
            if sc.done:
                continue
            st = self._status_of[id(sc)]
            if not sc.active:
                if ctx.s_ego >= sc.s_trigger - TRIGGER_DISTANCE:
                    sc.active = True
                    sc.t_start = self.world.time
                    st.triggered_at = round(self.world.time, 2)
                    if sc.timeout:
                        ctx.blocked_test_off += 1
                    sc.start()
                else:
                    sc.idle(dt)
                    continue
            if sc.tick(dt):
                self._end(sc, st)
            self._pending += sc.events
            sc.events.clear()
        self._actors = self._collect()

    def _end(self, sc: LiteScenario, st: ScenarioStatus) -> None:
        sc.finish()
        sc.cleanup()
        sc.done = True
        sc.active = False
        if sc.timeout:
            self.ctx.blocked_test_off -= 1
        st.ended_at = round(self.world.time, 2)

    def finish(self) -> None:
        """The route ends: running scenarios are terminated (their end-of-scenario criteria report now)."""
        for sc in self.scenarios:
            if sc.active and not sc.done:
                sc.finish()
                sc.done = True
                self._pending += sc.events
                sc.events.clear()

    def pop_events(self) -> list[ScenarioEvent]:
        out, self._pending = self._pending, []
        return out

    def _collect(self) -> Actors:
        return Actors.concat([actors_of(sc.actors) for sc in self.scenarios])

    @property
    def actors(self) -> Actors:
        return self._actors

    def records(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.status]


__all__ = ["REGISTRY", "ScenarioBuildError", "ScenarioEngine", "known_types", "register"]

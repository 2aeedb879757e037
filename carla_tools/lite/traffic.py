"""Background traffic and traffic lights from SUMO (libsumo), with the ego pushed in every step.

SUMO runs the town's net at the leaderboard's 20 Hz. Background cars get random routes starting near the
evaluated route and are replaced when they arrive, so the traffic density around the ego stays constant. The
ego is a SUMO vehicle of its real size moved with `moveToXY` (keepRoute=2: mapped onto the nearest lane) each
step, so SUMO's car-following and junction logic react to it.

libsumo runs one simulation per process; `SumoTraffic` refuses to start a second one while another is open.
"""

from __future__ import annotations

import numpy as np

from carla_tools.lite.actors import Actors
from carla_tools.lite.town import TownMap
from drive_jepa.frames import LINCOLN_MKZ_2020, heading_to_sumo_angle, sumo_angle_to_heading

HERO = "hero"
TWIN = "sc"  # prefix of the SUMO twins of scenario vehicles (moved by the scenario engine)
_OPEN: list[SumoTraffic] = []  # libsumo is a process-wide singleton: at most one open simulation


class TrafficError(RuntimeError):
    pass


class SumoTraffic:
    """One SUMO simulation of a town. Coordinates in and out are WORLD (see `TownMap`)."""

    def __init__(
        self,
        town: TownMap,
        seed: int = 0,
        num_vehicles: int = 60,
        spawn_center: np.ndarray | None = None,
        spawn_radius: float = 250.0,
        dt: float = 0.05,
        context_radius: float = 120.0,
    ) -> None:
        import libsumo

        if _OPEN:
            raise TrafficError("a SUMO (libsumo) simulation is already open in this process; close it first")
        self.sumo = libsumo
        self.town = town
        self.rng = np.random.default_rng(seed)
        self.num_vehicles = num_vehicles
        self.context_radius = context_radius
        self.dt = dt
        args = [
            "sumo", "-n", str(town.path), "--step-length", str(dt), "--seed", str(seed),
            "--no-step-log", "true", "--no-warnings", "true", "--collision.action", "none",
            "--time-to-teleport", "120", "--default.speeddev", "0.1",
        ]  # fmt: skip
        try:
            libsumo.start(args)
        except Exception as exc:
            raise TrafficError(f"SUMO could not load {town.path}: {exc}") from None
        _OPEN.append(self)
        libsumo.vehicletype.copy("DEFAULT_VEHTYPE", "bg")
        libsumo.vehicletype.setLength("bg", 4.6)
        libsumo.vehicletype.setWidth("bg", 1.9)
        libsumo.vehicletype.copy("DEFAULT_VEHTYPE", HERO)
        libsumo.vehicletype.setLength(HERO, LINCOLN_MKZ_2020.length)
        libsumo.vehicletype.setWidth(HERO, LINCOLN_MKZ_2020.width)
        normal = [e for e in libsumo.edge.getIDList() if not e.startswith(":")]
        drivable_edges = {town.lanes[i].edge_id for i in range(len(town.lanes)) if town.lanes[i].drivable}
        self._edges = [e for e in normal if e in drivable_edges]
        centers = {}
        for lane in town.lanes:
            if lane.edge_id in drivable_edges and not lane.internal:
                centers[lane.edge_id] = lane.shape.mean(0)
        if spawn_center is not None:
            near = [e for e in self._edges if np.linalg.norm(centers[e] - spawn_center) < spawn_radius]
            self._sources = near or self._edges
        else:
            self._sources = self._edges
        self._counter = 0
        self._numeric: dict[str, int] = {}
        self._hero_added = False
        self._twins: set[str] = set()
        self._twin_types: set[str] = set()
        self._tls = list(libsumo.trafficlight.getIDList())
        self._programs = {t: libsumo.trafficlight.getProgram(t) for t in self._tls}
        for _ in range(num_vehicles):
            self._spawn(depart_pos="random_free")

    # ------------------------------------------------------------------------------------------------------
    def _spawn(self, depart_pos: str = "base") -> None:
        sumo = self.sumo
        for _ in range(10):
            a = self._sources[int(self.rng.integers(len(self._sources)))]
            b = self._edges[int(self.rng.integers(len(self._edges)))]
            if a == b:
                continue
            route = sumo.simulation.findRoute(a, b)
            if not route.edges or len(route.edges) < 2:
                continue
            vid = f"bg{self._counter}"
            self._counter += 1
            sumo.route.add(f"r_{vid}", route.edges)
            sumo.vehicle.add(
                vid, f"r_{vid}", typeID="bg", departPos=depart_pos, departSpeed="desired", departLane="best"
            )
            self._numeric[vid] = 1000 + self._counter
            return

    def place_ego(self, xy: np.ndarray, heading: float, speed: float) -> None:
        """Move the ego (box centre, WORLD) into SUMO; the first call inserts it. SUMO positions a vehicle by
        its front bumper, so the centre is moved forward by half the ego's length."""
        sumo = self.sumo
        front = np.asarray(xy, dtype=np.float64) + 0.5 * LINCOLN_MKZ_2020.length * np.array(
            [np.cos(heading), np.sin(heading)]
        )
        sx, sy = self.town.offset.world_to_sumo(front)
        angle = float(heading_to_sumo_angle(heading))
        if not self._hero_added:
            if "r_hero" not in sumo.route.getIDList():  # re-inserted after SUMO removed it (teleport, left the net)
                sumo.route.add("r_hero", [self._edges[0]])
            sumo.vehicle.add(HERO, "r_hero", typeID=HERO)
            sumo.vehicle.setSpeedMode(HERO, 0)
            self._hero_added = True
        try:
            sumo.vehicle.moveToXY(HERO, "", -1, float(sx), float(sy), angle=angle, keepRoute=2)
            sumo.vehicle.setSpeed(HERO, max(float(speed), 0.0))
        except Exception:  # the ego was removed by SUMO (e.g. left the net): insert again next call
            self._hero_added = False

    def place_twin(self, name: str, xy: np.ndarray, heading: float, speed: float, length: float, width: float) -> None:
        """Keep a SUMO vehicle of the given size at a scenario actor's box (centre, WORLD), so background cars
        queue behind, yield to or pass it; inserted on the first call, moved like the ego."""
        sumo = self.sumo
        vid = TWIN + name
        front = np.asarray(xy, dtype=np.float64) + 0.5 * length * np.array([np.cos(heading), np.sin(heading)])
        sx, sy = self.town.offset.world_to_sumo(front)
        if vid not in self._twins:
            tid = f"t_{vid}"
            if tid not in self._twin_types:
                sumo.vehicletype.copy("DEFAULT_VEHTYPE", tid)
                sumo.vehicletype.setLength(tid, float(length))
                sumo.vehicletype.setWidth(tid, float(width))
                sumo.route.add(f"r_{vid}", [self._edges[0]])
                self._twin_types.add(tid)
            sumo.vehicle.add(vid, f"r_{vid}", typeID=tid)
            sumo.vehicle.setSpeedMode(vid, 0)
            sumo.vehicle.setLaneChangeMode(vid, 0)
            self._twins.add(vid)
        try:
            sumo.vehicle.moveToXY(vid, "", -1, float(sx), float(sy), angle=float(heading_to_sumo_angle(heading)),
                                  keepRoute=2)  # fmt: skip
            sumo.vehicle.setSpeed(vid, max(float(speed), 0.0))
        except Exception:  # SUMO removed it (left the net): insert again next call
            self._twins.discard(vid)

    def remove_twin(self, name: str) -> None:
        vid = TWIN + name
        if vid in self._twins:
            self._twins.discard(vid)
            if vid in self.sumo.vehicle.getIDList():
                self.sumo.vehicle.remove(vid)

    def background_near(self, xy: np.ndarray, radius: float) -> list[str]:
        """SUMO ids of background vehicles whose front bumper is within `radius` m of a WORLD point."""
        sumo = self.sumo
        out = []
        sx, sy = self.town.offset.world_to_sumo(np.asarray(xy, dtype=np.float64))
        for v in sumo.vehicle.getIDList():
            if v == HERO or v.startswith(TWIN):
                continue
            px, py = sumo.vehicle.getPosition(v)
            if (px - sx) ** 2 + (py - sy) ** 2 < radius * radius:
                out.append(v)
        return out

    def world_position(self, vid: str) -> tuple[np.ndarray, float]:
        """Front bumper (WORLD) and heading of a SUMO vehicle."""
        pos = self.town.offset.sumo_to_world(np.asarray(self.sumo.vehicle.getPosition(vid), dtype=np.float64))
        return pos, float(sumo_angle_to_heading(self.sumo.vehicle.getAngle(vid)))

    def set_light_state(self, tls: str, state: str) -> None:
        """Freeze a traffic light at a state string (one char per link), SUMO's `setRedYellowGreenState`."""
        self.sumo.trafficlight.setRedYellowGreenState(tls, state)

    def restore_light(self, tls: str) -> None:
        """Give a frozen light its own program back."""
        self.sumo.trafficlight.setProgram(tls, self._programs[tls])

    def clear_around(self, xy: np.ndarray, radius: float) -> None:
        """Remove background vehicles within `radius` m of a WORLD point (spawn area of the ego)."""
        actors = self.actors(xy, radius)
        for vid in list(actors.ids):
            name = self._name_of(int(vid))
            if name is not None:
                self.sumo.vehicle.remove(name)

    def _name_of(self, numeric: int) -> str | None:
        for k, v in self._numeric.items():
            if v == numeric:
                return k
        return None

    def step(self) -> None:
        sumo = self.sumo
        sumo.simulationStep()
        missing = self.num_vehicles - (sumo.vehicle.getIDCount() - (1 if self._hero_added else 0) - len(self._twins))
        for _ in range(max(0, min(missing, 3))):
            self._spawn()

    def actors(self, center: np.ndarray, radius: float | None = None) -> Actors:
        """Background vehicles within `radius` (default the context radius) of a WORLD point."""
        sumo = self.sumo
        r = self.context_radius if radius is None else radius
        ids = [v for v in sumo.vehicle.getIDList() if v != HERO and not v.startswith(TWIN)]
        if not ids:
            return Actors.empty()
        pos = np.array([sumo.vehicle.getPosition(v) for v in ids], dtype=np.float64).reshape(-1, 2)
        world = self.town.offset.sumo_to_world(pos)
        near = np.hypot(*(world - np.asarray(center)[None, :2]).T) < r
        sel = [v for v, k in zip(ids, near, strict=True) if k]
        if not sel:
            return Actors.empty()
        angle = np.array([sumo.vehicle.getAngle(v) for v in sel])
        length = np.array([sumo.vehicle.getLength(v) for v in sel])
        heading = sumo_angle_to_heading(angle)
        front = world[near]
        # SUMO positions are the front bumper: move to the box centre
        xy = front - 0.5 * length[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1)
        return Actors(
            ids=np.array([self._numeric.get(v, 0) for v in sel], np.int64),
            xy=xy,
            heading=heading,
            speed=np.array([sumo.vehicle.getSpeed(v) for v in sel]),
            length=length,
            width=np.array([sumo.vehicle.getWidth(v) for v in sel]),
        )

    def light_states(self) -> dict[str, str]:
        """tls id → SUMO state string (one char per link: r/y/g/G/o…)."""
        get = self.sumo.trafficlight.getRedYellowGreenState
        return {t: get(t) for t in self._tls}

    def close(self) -> None:
        if self in _OPEN:
            try:
                self.sumo.close()
            finally:
                _OPEN.remove(self)

    def __enter__(self) -> SumoTraffic:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

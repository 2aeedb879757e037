"""Generated scenario routes: Bench2Drive-format routes that pose one scenario each, placed by the scenario engine
at suitable spots of the lite towns, away from the evaluation routes (for training data and extra evaluation).

A route is a random walk along the town's lanes (1 m samples, keypoints every 2 m, CARLA_WORLD x, y, z = 0) that
turns at its first junction as the type needs; the scenario's trigger point is 8 m after the start (Bench2Drive's
median) and its parameters are drawn from the ranges Bench2Drive's 220 routes use (../shared/SCENARIOS.md). A
candidate is kept only if the engine stages it (junction entries, lights, opposite lanes... exist), and, when
evaluation routes are given, if none of its points comes within `min_distance` m of an evaluation route's trigger
point. The types whose actors need flow locations from the XML (EnterActorFlow, MergerIntoSlowTraffic*,
HighwayExit) and the types the engine does not stage are not generated.

    drive-jepa scenario-routes --out routes.xml --per-type 3 --exclude carla_tools/lite/routes/bench2drive220_lite.xml
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import math
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from carla_tools.lite.town import TOWNS, TownMap, load_town
from drive_jepa.frames import wrap_angle
from drive_jepa.routes import Route, Scenario, load_routes

TRIGGER_AT = 8.0  # m from the route start
Params = dict[str, dict[str, str]]


def _v(x: float) -> dict[str, str]:
    return {"value": f"{x:g}"}


def _range(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(round(rng.uniform(lo, hi)))


@dataclass(frozen=True)
class TypeSpec:
    """Where a type can be placed: the turn at the first junction ('straight', 'left', 'right' or 'any'), the
    window (m from the start) in which that junction must begin (None: no junction within `free` m), whether it
    must be signalled, the lanes the scenario needs beside the route, and a parameter sampler."""

    junction: tuple[float, float] | None = None
    turn: str = "any"
    signalized: bool | None = None
    free: float = 90.0
    left_same: bool = False  # a same-direction lane on the left (to pass, to move over)
    left_opposite: bool = False  # an opposite-direction lane on the left (TwoWays)
    length: tuple[float, float] = (140.0, 200.0)
    params: Callable[[np.random.Generator], Params] = field(default=lambda rng: {})


def _obstacle(rng: np.random.Generator) -> Params:
    return {"distance": _v(_range(rng, 40, 45)), "direction": {"value": "right"}, "speed": _v(_range(rng, 40, 60))}


def _two_ways(rng: np.random.Generator) -> Params:
    lo = _range(rng, 32, 63)
    return {
        "distance": _v(_range(rng, 40, 45)),
        "frequency": {"from": f"{lo:g}", "to": f"{lo + _range(rng, 60, 120):g}"},
    }


def _hazard(rng: np.random.Generator, two_ways: bool = False) -> Params:
    p = {
        "distance": _v(_range(rng, 41, 45)),
        "bicycle_drive_distance": _v(_range(rng, 50, 110)),
        "bicycle_speed": _v(_range(rng, 6, 12)),
    }
    p["frequency" if two_ways else "speed"] = _v(_range(rng, 75, 100) if two_ways else _range(rng, 32, 59))
    return p


def _crossing(lo: float, hi: float, angle: float) -> Callable[[np.random.Generator], Params]:
    return lambda rng: {
        "distance": _v(_range(rng, lo, hi)),
        "direction": {"value": "right"},
        "crossing_angle": _v(_range(rng, 0, angle)),
    }


def _flow(speed: tuple[float, float], lo: tuple[float, float], hi: tuple[float, float]) -> Callable[..., Params]:
    def sample(rng: np.random.Generator) -> Params:
        gap = {"from": f"{_range(rng, *lo):g}", "to": f"{_range(rng, *hi):g}"}
        return {"flow_speed": _v(_range(rng, *speed)), "source_dist_interval": gap}

    return sample


NEAR = (15.0, 60.0)  # the first junction begins this far from the start
SPECS: dict[str, TypeSpec] = {
    "Accident": TypeSpec(left_same=True, params=_obstacle),
    "AccidentTwoWays": TypeSpec(left_opposite=True, params=_two_ways),
    "ParkedObstacle": TypeSpec(left_same=True, params=_obstacle),
    "ParkedObstacleTwoWays": TypeSpec(left_opposite=True, params=_two_ways),
    "ConstructionObstacle": TypeSpec(left_same=True, params=_obstacle),
    "ConstructionObstacleTwoWays": TypeSpec(left_opposite=True, params=_two_ways),
    "HazardAtSideLane": TypeSpec(params=_hazard),
    "HazardAtSideLaneTwoWays": TypeSpec(left_opposite=True, params=lambda rng: _hazard(rng, True)),
    "DynamicObjectCrossing": TypeSpec(free=70.0, params=_crossing(40, 50, 11)),
    "ParkingCrossingPedestrian": TypeSpec(free=70.0, params=_crossing(36, 45, 12)),
    "ControlLoss": TypeSpec(free=80.0),
    "HardBreakRoute": TypeSpec(free=80.0),
    "StaticCutIn": TypeSpec(
        free=120.0, params=lambda rng: {"distance": _v(_range(rng, 40, 45)), "direction": {"value": "right"}}
    ),
    "ParkingCutIn": TypeSpec(free=70.0, params=lambda rng: {"direction": {"value": "right"}}),
    "YieldToEmergencyVehicle": TypeSpec(
        free=120.0, left_same=True, params=lambda rng: {"distance": _v(_range(rng, 26, 30))}
    ),
    "PedestrianCrossing": TypeSpec(junction=NEAR, turn="straight"),
    "BlockedIntersection": TypeSpec(junction=NEAR),
    "OppositeVehicleRunningRedLight": TypeSpec(
        junction=NEAR, turn="straight", signalized=True, params=lambda rng: {"direction": {"value": "right"}}
    ),
    "OppositeVehicleTakingPriority": TypeSpec(
        junction=NEAR, turn="straight", signalized=False, params=lambda rng: {"direction": {"value": "right"}}
    ),
    "SignalizedJunctionLeftTurn": TypeSpec(
        junction=NEAR, turn="left", signalized=True, params=_flow((9, 11), (15, 24), (25, 30))
    ),
    "NonSignalizedJunctionLeftTurn": TypeSpec(
        junction=NEAR, turn="left", signalized=False, params=_flow((9, 11), (15, 24), (25, 30))
    ),
    "SignalizedJunctionLeftTurnEnterFlow": TypeSpec(
        junction=NEAR, turn="left", signalized=True, params=_flow((8, 10), (15, 24), (25, 30))
    ),
    "NonSignalizedJunctionLeftTurnEnterFlow": TypeSpec(
        junction=NEAR, turn="left", signalized=False, params=_flow((8, 10), (15, 24), (25, 30))
    ),
    "SignalizedJunctionRightTurn": TypeSpec(
        junction=NEAR, turn="right", signalized=True, params=_flow((10, 14), (16, 24), (25, 38))
    ),
    "NonSignalizedJunctionRightTurn": TypeSpec(
        junction=NEAR, turn="right", signalized=False, params=_flow((10, 14), (16, 24), (25, 38))
    ),
    "T_Junction": TypeSpec(junction=NEAR),
    "VanillaSignalizedTurnEncounterGreenLight": TypeSpec(junction=NEAR, signalized=True),
    "VanillaSignalizedTurnEncounterRedLight": TypeSpec(junction=NEAR, signalized=True),
    "VanillaNonSignalizedTurn": TypeSpec(junction=NEAR, signalized=False),
}


def _heading(a: np.ndarray, b: np.ndarray) -> float:
    return math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))


def _turn_of(town: TownMap, lane: int, to: int) -> str:
    a, b = town.lanes[lane].shape, town.lanes[to].shape
    dh = math.degrees(float(wrap_angle(_heading(b[0], b[1]) - _heading(a[-2], a[-1]))))
    return "left" if dh > 30 else "right" if dh < -30 else "straight"


@functools.lru_cache(maxsize=8)
def _start_lanes(town: TownMap) -> list[int]:
    """Driving lanes with a successor and at least 25 m long."""
    return [
        i
        for i, ln in enumerate(town.lanes)
        if ln.drivable
        and not ln.internal
        and town.successors.get(i)
        and float(np.hypot(*np.diff(ln.shape, axis=0).T).sum()) >= 25.0
    ]


def random_walk(town: TownMap, rng: np.random.Generator, spec: TypeSpec) -> np.ndarray | None:
    """WORLD points (1 m apart) of a lane walk that fits `spec`'s junction rule, or None."""
    starts = _start_lanes(town)
    lane = starts[int(rng.integers(len(starts)))]
    shape = town.lanes[lane].shape
    acc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(shape, axis=0).T))])
    # start mid-road, at least 20 m before the lane's end (never on a stop line, as Bench2Drive's routes)
    s0 = float(rng.uniform(0.0, acc[-1] - 20.0))
    # the walk starts AT s0 (a lane shape may be two points: its end alone would put the start on the stop line)
    start = np.array([[np.interp(s0, acc, shape[:, 0]), np.interp(s0, acc, shape[:, 1])]])
    parts = [np.concatenate([start, shape[acc > s0]])]
    length = float(acc[-1] - s0)
    target = float(rng.uniform(*spec.length))
    first_junction: float | None = None
    first_turn = ""
    signalled = False
    while length < target:
        succ = town.successors.get(lane, [])
        if not succ:
            return None
        want = spec.turn if first_junction is None else "straight"
        turns = [(v, t, _turn_of(town, lane, t)) for v, t in succ]
        fits = [c for c in turns if want in ("any", c[2])]
        if not fits:
            return None
        via, to, turn = fits[int(rng.integers(len(fits)))]
        if via >= 0:
            if first_junction is None:
                first_junction, first_turn = length, turn
                signalled = any(lk.from_lane == lane for lk in town.tl_links)
            parts.append(town.lanes[via].shape)
            length += float(np.hypot(*np.diff(town.lanes[via].shape, axis=0).T).sum())
        parts.append(town.lanes[to].shape)
        length += float(np.hypot(*np.diff(town.lanes[to].shape, axis=0).T).sum())
        lane = to
    if spec.junction is None:
        if first_junction is not None and first_junction < spec.free:
            return None
    else:
        if first_junction is None or not spec.junction[0] <= first_junction <= spec.junction[1]:
            return None
        if spec.turn != "any" and first_turn != spec.turn:
            return None
        if spec.signalized is not None and signalled != spec.signalized:
            return None
    pts = np.concatenate(parts)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    pts = pts[np.concatenate([[True], seg > 1e-6])]
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    grid = np.arange(0.0, min(s[-1], target), 1.0)
    return np.stack([np.interp(grid, s, pts[:, 0]), np.interp(grid, s, pts[:, 1])], -1)


def _side_lane(town: TownMap, pts: np.ndarray, k: int, side: int, same: bool) -> bool:
    """A driving lane one lane width to the `side` (−1 left) of point k, running the same (or opposite) way."""
    h = _heading(pts[k], pts[min(k + 1, len(pts) - 1)])
    _, _, _, w = town.nearest_lanes(pts[k][None])
    q = pts[k] + side * float(w[0]) * np.array([math.sin(h), -math.cos(h)])
    _, dist, lh, lw = town.nearest_lanes(q[None])
    if dist[0] > lw[0] / 2 + 0.2:
        return False
    aligned = abs(float(wrap_angle(float(lh[0]) - h))) < math.pi / 2
    return aligned == same


def candidate(town: TownMap, stype: str, rng: np.random.Generator, rid: str) -> Route | None:
    spec = SPECS[stype]
    pts = random_walk(town, rng, spec)
    if pts is None or len(pts) < 60:
        return None
    probe = [int(TRIGGER_AT) + d for d in (30, 45, 60) if int(TRIGGER_AT) + d < len(pts) - 1]
    if spec.left_same and not all(_side_lane(town, pts, k, -1, True) for k in probe):
        return None
    if spec.left_opposite and not all(_side_lane(town, pts, k, -1, False) for k in probe):
        return None
    carla = np.stack([pts[::2, 0], -pts[::2, 1], np.zeros(len(pts[::2]))], -1)  # CARLA_WORLD, keypoints every 2 m
    k = int(TRIGGER_AT)
    yaw = -math.degrees(_heading(pts[k], pts[k + 1]))
    trigger = (float(pts[k, 0]), float(-pts[k, 1]), 0.0, round(yaw, 1))
    scenario = Scenario(f"{stype}_1", stype, trigger, spec.params(rng))
    return Route(rid, town.name, carla, (scenario,))


def staged(route: Route) -> bool:
    """Whether the lite world stages the route's scenario (the engine finds everything it needs)."""
    from carla_tools.lite.route import build_dense_route
    from carla_tools.lite.world import LiteWorld

    town = load_town(route.town)
    dense = build_dense_route(route, town)
    with contextlib.redirect_stderr(io.StringIO()):  # rejected candidates need no warning
        world = LiteWorld(town, dense, seed=0, num_vehicles=0, scenarios=route.scenarios, route_id=route.id)
    with world:
        return all(s["staged"] for s in world.scenarios.records())


def far_from(route: Route, triggers: np.ndarray, min_distance: float) -> bool:
    if not len(triggers):
        return True
    d = np.hypot(*(route.waypoints[:, None, :2] - triggers[None]).transpose(2, 0, 1))
    return bool(d.min() >= min_distance)


def generate(
    types: list[str],
    per_type: int,
    seed: int = 0,
    exclude: list[Route] | None = None,
    min_distance: float = 50.0,
    towns: tuple[str, ...] = TOWNS,
    tries: int = 1500,
    first_id: int = 90000,
) -> tuple[list[Route], dict[str, int]]:
    """`per_type` routes of each type (fewer where the towns offer no spot within `tries` attempts; the second
    value counts what was made per type)."""
    unknown = [t for t in types if t not in SPECS]
    if unknown:
        raise ValueError(f"cannot generate scenario types {unknown}; generated types: {', '.join(sorted(SPECS))}")
    rng = np.random.default_rng(seed)
    triggers = np.array([sc.trigger[:2] for r in exclude or [] for sc in r.scenarios]).reshape(-1, 2)
    routes: list[Route] = []
    made: dict[str, int] = {}
    for stype in types:
        made[stype] = 0
        for _ in range(tries):
            if made[stype] >= per_type:
                break
            town = load_town(towns[int(rng.integers(len(towns)))])
            r = candidate(town, stype, rng, str(first_id + len(routes)))
            if r is None or not far_from(r, triggers, min_distance) or not staged(r):
                continue
            routes.append(r)
            made[stype] += 1
    return routes, made


def write_routes(routes: list[Route], path: Path) -> None:
    """Bench2Drive's route XML (`<routes><route id town><waypoints>…<scenarios><scenario>…`), written atomically."""
    from drive_jepa.atomic import write_text_atomic

    root = ET.Element("routes")
    for r in routes:
        re_ = ET.SubElement(root, "route", id=r.id, town=r.town)
        wps = ET.SubElement(re_, "waypoints")
        for x, y, z in r.waypoints:
            ET.SubElement(wps, "position", x=f"{x:.1f}", y=f"{y:.1f}", z=f"{z:.1f}")
        scs = ET.SubElement(re_, "scenarios")
        for sc in r.scenarios:
            e = ET.SubElement(scs, "scenario", name=sc.name, type=sc.type)
            x, y, z, yaw = sc.trigger
            ET.SubElement(e, "trigger_point", x=f"{x:.1f}", y=f"{y:.1f}", z=f"{z:.1f}", yaw=f"{yaw:.1f}")
            for tag, attrs in sc.params.items():
                ET.SubElement(e, tag, attrib=dict(attrs))
    ET.indent(root)
    write_text_atomic(path, ET.tostring(root, encoding="unicode") + "\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa scenario-routes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, required=True, help="route XML to write")
    p.add_argument("--types", default="", help="comma-separated scenario types (default: every generated type)")
    p.add_argument("--per-type", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        help="route XML whose trigger points every generated route keeps away from (repeatable)",
    )
    p.add_argument("--min-distance", type=float, default=50.0, help="metres from any excluded trigger point")
    p.add_argument("--towns", default=",".join(TOWNS), help="towns to place routes in")
    p.add_argument("--first-id", type=int, default=90000, help="id of the first route (ids count up from it)")
    return p


def main(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    types = [t for t in ns.types.split(",") if t] or sorted(SPECS)
    towns = tuple(t for t in ns.towns.split(",") if t)
    bad_towns = [t for t in towns if t not in TOWNS]
    if bad_towns or not towns:
        print(f"drive-jepa scenario-routes: --towns {ns.towns!r}: expected some of {', '.join(TOWNS)}", file=sys.stderr)
        return 2
    if ns.per_type < 1:
        print("drive-jepa scenario-routes: --per-type must be at least 1", file=sys.stderr)
        return 2
    exclude: list[Route] = []
    try:
        for path in ns.exclude:
            exclude += load_routes(path)
        routes, made = generate(types, ns.per_type, ns.seed, exclude, ns.min_distance, towns, first_id=ns.first_id)
    except ValueError as exc:  # RouteFileError is a ValueError
        print(f"drive-jepa scenario-routes: {exc}", file=sys.stderr)
        return 2
    write_routes(routes, ns.out)
    short = {t: n for t, n in made.items() if n < ns.per_type}
    print(f"scenario-routes: {len(routes)} routes of {len(made)} types → {ns.out}")
    if short:
        print(f"scenario-routes: fewer than {ns.per_type} spots found for {short}")
    return 0

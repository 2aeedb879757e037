"""Leaderboard / Bench2Drive route files (`<routes><route id town>…`): the one parser every package uses.

Waypoints and trigger points are kept as CARLA_WORLD values (left-handed, metres, yaw in degrees), exactly as
written in the XML. Scenario types are the `type` attribute of each `<scenario>`; Bench2Drive routes have one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class RouteFileError(ValueError):
    """A route file is missing, not XML, or a route in it lacks a required element/attribute."""


@dataclass(frozen=True)
class Scenario:
    name: str
    type: str
    trigger: tuple[float, float, float, float]  # CARLA_WORLD x, y, z, yaw(deg)
    params: dict[str, dict[str, str]] = field(default_factory=dict)  # child tag -> its attributes


@dataclass(frozen=True)
class Route:
    id: str
    town: str
    waypoints: np.ndarray  # (N, 3) CARLA_WORLD x, y, z
    scenarios: tuple[Scenario, ...] = ()
    weathers: tuple[dict[str, str], ...] = ()

    @property
    def scenario_type(self) -> str | None:
        """The type of the first scenario (what Bench2Drive's ability tool uses), or None."""
        return self.scenarios[0].type if self.scenarios else None

    @property
    def length_m(self) -> float:
        """Polyline length through the XML waypoints (2D), in metres."""
        d = np.diff(self.waypoints[:, :2], axis=0)
        return float(np.hypot(d[:, 0], d[:, 1]).sum())


def _float(elem: ET.Element, key: str, where: str) -> float:
    raw = elem.get(key)
    if raw is None:
        raise RouteFileError(f"{where}: <{elem.tag}> lacks attribute {key!r}")
    try:
        return float(raw)
    except ValueError:
        raise RouteFileError(f"{where}: <{elem.tag} {key}={raw!r}> is not a number") from None


def load_routes(path: Path | str) -> list[Route]:
    """Parse a route XML. Raises `RouteFileError` naming the file and the route on any malformed entry."""
    path = Path(path)
    if not path.is_file():
        raise RouteFileError(f"{path}: route file not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RouteFileError(f"{path}: not valid XML ({exc})") from None
    if root.tag != "routes":
        raise RouteFileError(f"{path}: expected a <routes> root element, found <{root.tag}>")
    routes: list[Route] = []
    seen: set[str] = set()
    for elem in root.findall("route"):
        rid, town = elem.get("id"), elem.get("town")
        if rid is None or town is None:
            raise RouteFileError(f"{path}: a <route> lacks its 'id' or 'town' attribute")
        where = f"{path} route {rid}"
        if rid in seen:
            raise RouteFileError(f"{where}: duplicate route id")
        seen.add(rid)
        wps = elem.find("waypoints")
        positions = [] if wps is None else wps.findall("position")
        if not positions:
            raise RouteFileError(f"{where}: no <waypoints>/<position> entries")
        waypoints = np.array([[_float(p, "x", where), _float(p, "y", where), _float(p, "z", where)] for p in positions])
        scenarios = []
        for sc in elem.findall("scenarios/scenario"):
            trig = sc.find("trigger_point")
            if trig is None:
                raise RouteFileError(f"{where}: scenario {sc.get('name')!r} lacks a <trigger_point>")
            trigger = (
                _float(trig, "x", where),
                _float(trig, "y", where),
                _float(trig, "z", where),
                float(trig.get("yaw", "0")),
            )
            params = {c.tag: dict(c.attrib) for c in sc if c.tag != "trigger_point"}
            scenarios.append(Scenario(sc.get("name", ""), sc.get("type", ""), trigger, params))
        weathers = tuple(dict(w.attrib) for w in elem.findall("weathers/weather"))
        routes.append(Route(rid, town, waypoints, tuple(scenarios), weathers))
    if not routes:
        raise RouteFileError(f"{path}: no <route> elements")
    return routes

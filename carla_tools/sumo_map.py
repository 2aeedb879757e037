"""Convert a CARLA town's SUMO road network (`TownXX.net.xml[.gz]`) into the scorer's scene map geometry.

Output: the `map` section of the scene file format (`navsim_scorer_fixture/1.x`, see docs/scorer.md): lanes
(centreline x, y, heading; polygon; left/right boundaries; successors/predecessors; speed limit), roadblocks
(one per SUMO edge; its polygon is the union of its lanes), intersections (SUMO junction shapes), and the
ordered `drivable_map` list. carla_tools never imports `training`; the scorer reads this through files.

Frames: the output is in drive-jepa's WORLD frame (right-handed: x east, y north = -y_CARLA, metres; headings
CCW radians). CARLA's SUMO co-simulation bridge maps SUMO (xs, ys) to CARLA (xs - ox, -(ys - oy)) with
(ox, oy) = `<location netOffset>`; so WORLD = (xs - ox, ys - oy). Only lanes that allow passenger cars are
kept (sidewalks, rail, etc. are dropped).
"""

from __future__ import annotations

import gzip
import itertools
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_LANE_WIDTH = 3.2  # SUMO's default lane width (m)


class SumoNetError(ValueError):
    """A SUMO net file is missing an element/attribute the converter needs."""


def _shape(s: str | None, where: str) -> np.ndarray:
    if not s:
        raise SumoNetError(f"{where}: missing 'shape'")
    pts = np.array([[float(v) for v in p.split(",")[:2]] for p in s.split()], dtype=np.float64)
    return pts


def _allows_cars(lane: ET.Element, type_disallow: dict[str, set[str]], edge_type: str | None) -> bool:
    allow = lane.get("allow")
    if allow is not None:
        return "passenger" in allow.split() or "all" in allow.split()
    disallow = lane.get("disallow")
    dis = set(disallow.split()) if disallow is not None else type_disallow.get(edge_type or "", set())
    return "passenger" not in dis and "all" not in dis


def _headings(line: np.ndarray) -> np.ndarray:
    d = np.diff(line, axis=0)
    h = np.arctan2(d[:, 1], d[:, 0])
    return np.concatenate([h, h[-1:]])


def _lane_polygon(line: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offset the centreline by +-width/2 along the normals -> (polygon ring, left, right boundary)."""
    h = _headings(line)
    # averaged normals at inner vertices keep the strip continuous at kinks
    nx, ny = -np.sin(h), np.cos(h)
    if len(line) > 2:
        prev = np.roll(h, 1)[:-1]
        hm = np.arctan2(np.sin(h[:-1]) + np.sin(prev), np.cos(h[:-1]) + np.cos(prev))
        nx[1:-1], ny[1:-1] = -np.sin(hm[1:]), np.cos(hm[1:])
    n = np.stack([nx, ny], 1)
    left = line + n * width / 2
    right = line - n * width / 2
    ring = np.concatenate([left, right[::-1]], 0)
    return ring, left, right


def load_sumo_net(path: str | Path) -> dict[str, Any]:
    """Parse a SUMO net into the scene `map` dict (WORLD frame). Raises SumoNetError on malformed input."""
    import shapely

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        root = ET.parse(f).getroot()
    loc = root.find("location")
    if loc is None or loc.get("netOffset") is None:
        raise SumoNetError(f"{path}: no <location netOffset=...>")
    ox, oy = (float(v) for v in loc.get("netOffset", "0,0").split(","))
    off = np.array([ox, oy])
    type_disallow = {t.get("id", ""): set((t.get("disallow") or "").split()) for t in root.findall("type")}
    lanes: dict[str, dict[str, Any]] = {}
    roadblocks: list[dict[str, Any]] = []
    for edge in root.findall("edge"):
        eid = edge.get("id", "")
        internal = edge.get("function") == "internal"
        if edge.get("function") not in (None, "internal", "normal"):
            continue
        lane_ids = []
        for lane in edge.findall("lane"):
            lid = lane.get("id", "")
            if not _allows_cars(lane, type_disallow, edge.get("type")):
                continue
            line = _shape(lane.get("shape"), f"{path}: lane {lid}") - off
            keep = np.concatenate([[True], np.hypot(*np.diff(line, axis=0).T) > 1e-6])
            line = line[keep]
            if len(line) < 2:
                continue
            width = float(lane.get("width", DEFAULT_LANE_WIDTH))
            ring, left, right = _lane_polygon(line, width)
            lanes[lid] = {
                "id": lid,
                "name": lid,
                "type": "LANE_CONNECTOR" if internal else "LANE",
                "roadblock_id": eid,
                "centerline": np.concatenate([line, _headings(line)[:, None]], 1).tolist(),
                "polygon": ring.tolist(),
                "left_boundary": left.tolist(),
                "right_boundary": right.tolist(),
                "speed_limit_mps": float(lane.get("speed", "nan")),
                "predecessors": [],
                "successors": [],
                "left_neighbor": None,
                "right_neighbor": None,
            }
            lane_ids.append(lid)
        if not lane_ids:
            continue
        # SUMO lane index 0 is the rightmost lane
        for a, b in itertools.pairwise(lane_ids):
            lanes[a]["left_neighbor"], lanes[b]["right_neighbor"] = b, a
        union = shapely.unary_union([shapely.Polygon(lanes[i]["polygon"]).buffer(0) for i in lane_ids])
        # lanes of one edge that do not touch (e.g. a removed sidewalk between them) give several pieces;
        # each piece becomes its own roadblock entry (`<edge>#k` for k > 0)
        pieces = sorted(getattr(union, "geoms", [union]), key=lambda g: -g.area)
        for k, poly in enumerate(pieces):
            roadblocks.append(
                {
                    "id": eid if k == 0 else f"{eid}#{k}",
                    "name": eid,
                    "type": "ROADBLOCK_CONNECTOR" if internal else "ROADBLOCK",
                    "lane_ids": lane_ids,
                    "polygon": np.asarray(poly.exterior.coords)[:-1].tolist(),
                }
            )
    # connectivity: from-lane -> via (internal) lane -> to-lane
    for c in root.findall("connection"):
        fl = f"{c.get('from')}_{c.get('fromLane')}"
        tl = f"{c.get('to')}_{c.get('toLane')}"
        via = c.get("via")
        chain = [fl, via, tl] if via else [fl, tl]
        chain = [x for x in chain if x in lanes]
        for a, b in itertools.pairwise(chain):
            if b not in lanes[a]["successors"]:
                lanes[a]["successors"].append(b)
            if a not in lanes[b]["predecessors"]:
                lanes[b]["predecessors"].append(a)
    intersections = []
    for j in root.findall("junction"):
        if j.get("type") in ("internal", "dead_end") or not j.get("shape"):
            continue
        ring = _shape(j.get("shape"), f"{path}: junction {j.get('id')}") - off
        poly = shapely.Polygon(ring).buffer(0)
        if poly.is_empty or poly.area < 1.0:
            continue
        poly = max(getattr(poly, "geoms", [poly]), key=lambda g: g.area)
        intersections.append(
            {
                "id": f"junction_{j.get('id')}",
                "name": j.get("id"),
                "polygon": np.asarray(poly.exterior.coords)[:-1].tolist(),
            }
        )
    drivable = [{"token": r["id"], "layer": "ROADBLOCK"} for r in roadblocks if r["type"] == "ROADBLOCK"]
    drivable += [{"token": i["id"], "layer": "INTERSECTION"} for i in intersections]
    drivable += [{"token": lid, "layer": lane["type"]} for lid, lane in lanes.items()]
    return {
        "lanes": list(lanes.values()),
        "roadblocks": roadblocks,
        "intersections": intersections,
        "carparks": [],
        "drivable_map": drivable,
        "frame": "world (right-handed; = SUMO - netOffset; CARLA y = -y)",
        "source": path.name,
    }


def drivable_area(map_dict: dict[str, Any]) -> Any:
    """Union of the drivable-area layers (roadblocks, intersections, car parks) as a shapely geometry."""
    import shapely

    by_id = {r["id"]: r["polygon"] for r in map_dict["roadblocks"]}
    by_id.update({i["id"]: i["polygon"] for i in map_dict["intersections"]})
    polys = [
        shapely.Polygon(by_id[e["token"]])
        for e in map_dict["drivable_map"]
        if e["layer"] in ("ROADBLOCK", "INTERSECTION", "CARPARK_AREA")
    ]
    return shapely.unary_union([p.buffer(0) for p in polys])


def heading_deg_to_rad(angle: float) -> float:
    """SUMO angle (degrees, 0 = north, clockwise) -> WORLD heading (radians, CCW from east)."""
    return math.radians(90.0 - angle)

"""A CARLA town as a SUMO road network: lanes, junctions and traffic-light links in the WORLD frame.

The nets are CARLA's OpenDRIVE towns converted by SUMO's netconvert (see `maps/README.md`). All geometry here
is in drive-jepa's right-handed WORLD frame (x east, y north = −y_CARLA, metres); `SumoNetOffset` (in
`drive_jepa.frames`) moves between SUMO, WORLD and CARLA_WORLD coordinates.

Nets ship with the package (`carla_tools/lite/maps/TownXX.net.xml.gz`, MIT licence of the CARLA maps); a
different folder can be given with `maps_dir`.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drive_jepa.frames import GeoReference, SumoNetOffset

MAPS_DIR = Path(__file__).resolve().parent / "maps"
TOWNS = ("Town01", "Town02", "Town03", "Town04", "Town05", "Town06", "Town07", "Town10HD")


class TownMapError(ValueError):
    """A town's net is missing or malformed."""


@dataclass(frozen=True)
class Lane:
    """One SUMO lane. `shape` (K, 2) WORLD metres along the driving direction; width in metres."""

    id: str
    edge_id: str
    index: int  # 0 = rightmost lane of its edge (SUMO)
    internal: bool  # a lane inside a junction
    drivable: bool  # allows passenger cars
    width: float
    speed: float  # m/s
    shape: np.ndarray


@dataclass(frozen=True)
class TrafficLightLink:
    """A signalled connection `from_lane` → junction lane `via_lane`; its state = program[link_index]."""

    tls_id: str
    link_index: int
    from_lane: int  # lane indices into TownMap.lanes
    via_lane: int
    stop_xy: np.ndarray  # (2,) WORLD: the end of the from-lane (its stop line centre)
    stop_heading: float  # WORLD heading of the from-lane at its end (rad)
    width: float


def net_path(town: str, maps_dir: Path | None = None) -> Path:
    """Path of `<town>.net.xml.gz` (or `.net.xml`) in `maps_dir` (default: the nets shipped here)."""
    folder = Path(maps_dir) if maps_dir is not None else MAPS_DIR
    for name in (f"{town}.net.xml.gz", f"{town}.net.xml"):
        if (folder / name).is_file():
            return folder / name
    raise TownMapError(
        f"{folder}: no SUMO net for town {town!r} (expected {town}.net.xml.gz; the lite world has {', '.join(TOWNS)})"
    )


class TownMap:
    """Lanes, lane segments for nearest-lane queries and traffic-light links of one town (WORLD frame)."""

    def __init__(self, town: str, maps_dir: Path | None = None) -> None:
        import sumolib

        self.name = town
        self.path = net_path(town, maps_dir)
        try:
            with warnings.catch_warnings():  # sumolib warns that the optional `rtree` is missing; not needed here
                warnings.simplefilter("ignore", UserWarning)
                net = sumolib.net.readNet(str(self.path), withInternal=True)
        except Exception as exc:  # sumolib raises plain exceptions on bad XML
            raise TownMapError(f"{self.path}: cannot read the SUMO net ({exc})") from None
        dx, dy = net.getLocationOffset()
        self.offset = SumoNetOffset(float(dx), float(dy))
        # GNSS reference: the projection the net was made with (= the OpenDRIVE header's geoReference).
        self.geo = GeoReference.from_opendrive(str(net._location.get("projParameter", "")))
        lanes: list[Lane] = []
        for edge in net.getEdges(withInternal=True):
            internal = edge.getFunction() == "internal"
            for lane in edge.getLanes():
                shape = self.offset.sumo_to_world(np.asarray(lane.getShape(), dtype=np.float64)[:, :2])
                if len(shape) < 2:
                    continue
                lanes.append(
                    Lane(
                        id=lane.getID(),
                        edge_id=edge.getID(),
                        index=lane.getIndex(),
                        internal=internal,
                        drivable=bool(lane.allows("passenger")),
                        width=float(lane.getWidth()),
                        speed=float(lane.getSpeed()),
                        shape=shape,
                    )
                )
        self.lanes = lanes
        self.lane_index = {lane.id: i for i, lane in enumerate(lanes)}
        self.junction_shapes = [
            self.offset.sumo_to_world(np.asarray(n.getShape(), dtype=np.float64)[:, :2])
            for n in net.getNodes()
            if len(n.getShape()) >= 3
        ]
        # lane segments (vectorized nearest-lane queries)
        a, b, lane_of, s0 = [], [], [], []
        for i, lane in enumerate(lanes):
            d = np.hypot(*np.diff(lane.shape, axis=0).T)
            a.append(lane.shape[:-1])
            b.append(lane.shape[1:])
            lane_of.append(np.full(len(d), i))
            s0.append(np.concatenate([[0.0], np.cumsum(d)[:-1]]))
        self.seg_a = np.concatenate(a)
        self.seg_b = np.concatenate(b)
        self.seg_lane = np.concatenate(lane_of)
        self.seg_s0 = np.concatenate(s0)
        seg_d = self.seg_b - self.seg_a
        self.seg_len = np.maximum(np.hypot(seg_d[:, 0], seg_d[:, 1]), 1e-9)
        self.seg_heading = np.arctan2(seg_d[:, 1], seg_d[:, 0])
        self.seg_width = np.array([lanes[i].width for i in self.seg_lane])
        self.seg_drivable = np.array([lanes[i].drivable for i in self.seg_lane])
        self.seg_internal = np.array([lanes[i].internal for i in self.seg_lane])
        self._seg_lo = np.minimum(self.seg_a, self.seg_b)
        self._seg_hi = np.maximum(self.seg_a, self.seg_b)
        # lane graph: lane -> [(junction lane or -1, next lane)]
        self.successors: dict[int, list[tuple[int, int]]] = {}
        for edge in net.getEdges(withInternal=False):
            for lane in edge.getLanes():
                if lane.getID() not in self.lane_index:
                    continue
                nxt = []
                for con in lane.getOutgoing():
                    to = con.getToLane().getID()
                    if to in self.lane_index:
                        nxt.append((self.lane_index.get(con.getViaLaneID(), -1), self.lane_index[to]))
                self.successors[self.lane_index[lane.getID()]] = nxt
        # traffic-light links
        links: list[TrafficLightLink] = []
        for edge in net.getEdges(withInternal=False):
            for lane in edge.getLanes():
                for con in lane.getOutgoing():
                    tls = con.getTLSID()
                    via = con.getViaLaneID()
                    if not tls or via not in self.lane_index or lane.getID() not in self.lane_index:
                        continue
                    shp = lanes[self.lane_index[lane.getID()]].shape
                    d = shp[-1] - shp[-2]
                    links.append(
                        TrafficLightLink(
                            tls_id=tls,
                            link_index=int(con.getTLLinkIndex()),
                            from_lane=self.lane_index[lane.getID()],
                            via_lane=self.lane_index[via],
                            stop_xy=shp[-1].copy(),
                            stop_heading=float(np.arctan2(d[1], d[0])),
                            width=float(lane.getWidth()),
                        )
                    )
        self.tl_links = links
        self.bounds = (self.seg_a.min(0), self.seg_a.max(0))
        self._junction_box = np.array([[*j.min(0), *j.max(0)] for j in self.junction_shapes], dtype=np.float64).reshape(
            -1, 4
        )

    def in_junction(self, xy: np.ndarray, margin: float = 0.5) -> bool:
        """Whether a WORLD point lies inside (or within `margin` m of) a junction area of the net."""
        import cv2

        x, y = float(xy[0]), float(xy[1])
        b = self._junction_box
        cand = np.nonzero(
            (b[:, 0] - margin <= x) & (x <= b[:, 2] + margin) & (b[:, 1] - margin <= y) & (y <= b[:, 3] + margin)
        )[0]
        for j in cand:
            contour = self.junction_shapes[j].astype(np.float32).reshape(-1, 1, 2)
            if cv2.pointPolygonTest(contour, (x, y), True) >= -margin:
                return True
        return False

    # ------------------------------------------------------------------------------------------------------
    def nearest_lanes(
        self, xy: np.ndarray, drivable_only: bool = True, chunk: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nearest lane segment of each WORLD point (N, 2).

        Returns (lane index, distance to the lane centre line in metres, lane heading there in rad, the lane's
        width), each (N,). Vectorized over points and segments (chunked over points).
        """
        pts = np.atleast_2d(np.asarray(xy, dtype=np.float64))[:, :2]
        mask = self.seg_drivable if drivable_only else np.ones(len(self.seg_a), bool)
        if len(pts) <= 4:  # per-step queries: only segments whose bounding box is within 20 m of a point
            lo, hi = pts.min(0) - 20.0, pts.max(0) + 20.0
            near = mask & (self._seg_hi[:, 0] >= lo[0]) & (self._seg_lo[:, 0] <= hi[0])
            near &= (self._seg_hi[:, 1] >= lo[1]) & (self._seg_lo[:, 1] <= hi[1])
            if near.any():
                mask = near
        a, b = self.seg_a[mask], self.seg_b[mask]
        seg_lane, seg_h, seg_w, seg_l = (
            self.seg_lane[mask],
            self.seg_heading[mask],
            self.seg_width[mask],
            self.seg_len[mask],
        )
        ab = b - a
        out_lane = np.empty(len(pts), np.int64)
        out_d = np.empty(len(pts))
        for start in range(0, len(pts), chunk):
            p = pts[start : start + chunk]
            ap = p[:, None, :] - a[None]
            t = np.clip((ap * ab[None]).sum(-1) / (seg_l**2)[None], 0.0, 1.0)
            proj = a[None] + t[..., None] * ab[None]
            dist = np.hypot(*(p[:, None, :] - proj).transpose(2, 0, 1))
            j = dist.argmin(1)
            out_lane[start : start + chunk] = j
            out_d[start : start + chunk] = dist[np.arange(len(p)), j]
        return seg_lane[out_lane], out_d, seg_h[out_lane], seg_w[out_lane]


@functools.lru_cache(maxsize=4)
def load_town(town: str, maps_dir: str | None = None) -> TownMap:
    """Cached `TownMap` (the net is immutable; reading Town04 takes ~1 s)."""
    return TownMap(town, Path(maps_dir) if maps_dir else None)

"""Pinhole rendering of the lite world into a CARLA-format camera image (uint8 (H, W, 4) BGRA).

Flat-shaded: sky and terrain split by the true horizon, road surface (lanes and junction areas), lane
markings, stop lines, vehicles as 3D boxes and traffic lights (pole + head coloured by state). All geometry is
kept as convex polygons in WORLD coordinates (z up, ground at z = 0); per frame the polygons near the camera
are moved into the OpenCV camera frame (`CameraMount.ego_to_camera`), clipped against the near plane
(vectorized Sutherland–Hodgman on one plane), projected and filled with OpenCV, farthest first.
"""

from __future__ import annotations

import itertools
import math
import weakref
from dataclasses import dataclass

import cv2
import numpy as np

from carla_tools.lite.actors import BICYCLE, DEBRIS, EMERGENCY, PEDESTRIAN, PROP, Actors
from carla_tools.lite.town import TownMap
from drive_jepa.frames import CameraMount

NEAR = 0.3  # m
FAR = 120.0  # m, culling distance
# BGR colours
SKY = (235, 206, 160)
TERRAIN = (70, 105, 80)
ROAD = (88, 88, 88)
SIDEWALK = (150, 150, 155)
WHITE = (230, 230, 230)
YELLOW = (40, 200, 230)
POLE = (60, 60, 60)
LIGHT = {"r": (30, 30, 230), "y": (30, 210, 240), "g": (60, 220, 60)}
SKIN = (120, 160, 205)
BIKE_FRAME = (40, 40, 40)
CONE = (0, 120, 250)  # orange
BOARD = (0, 200, 255)  # warning boards: yellow
DEBRIS_COLOUR = (50, 75, 95)
EMERGENCY_BODY = (235, 235, 235)
SIREN = ((230, 60, 40), (40, 40, 230))  # blue, red light bar halves


def _boxes(
    xy: np.ndarray,
    heading: np.ndarray,
    length: np.ndarray,
    width: np.ndarray,
    z0: np.ndarray,
    z1: np.ndarray,
    colour: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Faces (5N, 4, 3) and their colours (5N, 3) of boxes, sides shaded darker than tops."""
    faces = box_faces(xy, heading, length, width, z0, z1)
    shade = np.array([0.8, 0.6, 0.8, 0.6, 1.0])
    fc = (np.asarray(colour, np.float64)[:, None, :] * shade[None, :, None]).astype(np.uint8)
    return faces.reshape(-1, 4, 3), fc.reshape(-1, 3)


def actor_polygons(a: Actors) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """3D polygons of every actor, by kind: cars as boxes in per-id colours; emergency vehicles white with a
    red/blue light bar; pedestrians as legs, torso and head (1.8 m, 0.5 m wide); cyclists as a dark low frame
    with a rider's torso and head above it; props as orange cones or yellow boards; debris as a flat patch."""
    polys: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    if not len(a):
        return polys, cols

    def add(
        mask: np.ndarray,
        length: float | np.ndarray,
        width: float | np.ndarray,
        z0: float | np.ndarray,
        z1: float | np.ndarray,
        colour: np.ndarray,
        forward: float = 0.0,
    ) -> None:
        idx = np.nonzero(mask)[0]
        if not len(idx):
            return
        n = len(idx)
        h = a.heading[idx]
        xy = a.xy[idx] + forward * np.stack([np.cos(h), np.sin(h)], -1)
        col = np.broadcast_to(np.asarray(colour, np.uint8).reshape(-1, 3), (n, 3))
        p, c = _boxes(xy, h, np.broadcast_to(length, (n,))[:n] if np.ndim(length) else np.full(n, length),
                      np.broadcast_to(width, (n,))[:n] if np.ndim(width) else np.full(n, width),
                      np.broadcast_to(np.asarray(z0, np.float64), (n,)).copy(),
                      np.broadcast_to(np.asarray(z1, np.float64), (n,)).copy(), col)  # fmt: skip
        polys.append(p)
        cols.append(c)

    ids = a.ids
    car = (a.kind != PEDESTRIAN) & (a.kind != BICYCLE) & (a.kind != PROP) & (a.kind != DEBRIS)
    car_col = np.stack([(ids * 47) % 200 + 30, (ids * 91) % 200 + 30, (ids * 13) % 200 + 30], -1).astype(np.uint8)
    emergency = a.kind == EMERGENCY
    car_col[emergency] = EMERGENCY_BODY
    heights = np.where(a.height > 0, a.height, 1.5)
    idx = np.nonzero(car)[0]
    if len(idx):
        p, c = _boxes(a.xy[idx], a.heading[idx], a.length[idx], a.width[idx], np.zeros(len(idx)),
                      heights[idx], car_col[idx])  # fmt: skip
        polys.append(p)
        cols.append(c)
    if emergency.any():  # light bar: blue left half, red right half on the roof
        e = np.nonzero(emergency)[0]
        for sign, colour in zip((1.0, -1.0), SIREN, strict=True):
            h = a.heading[e]
            off = sign * 0.35 * np.stack([-np.sin(h), np.cos(h)], -1)
            p, c = _boxes(a.xy[e] + off, h, np.full(len(e), 0.5), np.full(len(e), 0.7), heights[e],
                          heights[e] + 0.25, np.tile(np.array(colour, np.uint8), (len(e), 1)))  # fmt: skip
            polys.append(p)
            cols.append(c)
    walker = a.kind == PEDESTRIAN
    if walker.any():
        shirt = np.stack([(ids * 29) % 160 + 60, (ids * 53) % 120 + 40, (ids * 71) % 160 + 80], -1).astype(np.uint8)
        add(walker, 0.3, 0.4, 0.0, 0.85, np.array((60, 50, 40), np.uint8))  # legs
        w = np.nonzero(walker)[0]
        p, c = _boxes(a.xy[w], a.heading[w], np.full(len(w), 0.3), np.full(len(w), 0.5), np.full(len(w), 0.85),
                      np.full(len(w), 1.5), shirt[w])  # fmt: skip
        polys.append(p)
        cols.append(c)
        add(walker, 0.22, 0.22, 1.5, 1.8, np.array(SKIN, np.uint8))  # head
    bike = a.kind == BICYCLE
    if bike.any():
        add(bike, 1.7, 0.12, 0.25, 0.9, np.array(BIKE_FRAME, np.uint8))  # frame and wheels
        add(bike, 0.35, 0.45, 0.9, 1.45, np.array((30, 160, 240), np.uint8), forward=-0.15)  # rider (orange jersey)
        add(bike, 0.22, 0.22, 1.45, 1.7, np.array(SKIN, np.uint8), forward=-0.05)  # head
    prop = a.kind == PROP
    if prop.any():
        small = prop & (a.length < 0.6) & (a.width < 0.6)
        add(small, 0.4, 0.4, 0.0, 0.35, np.array(CONE, np.uint8))
        add(small, 0.22, 0.22, 0.35, 0.7, np.array(CONE, np.uint8))
        big = prop & ~small
        b = np.nonzero(big)[0]
        if len(b):
            col = np.where(np.array(["warning" in a.type_ids[i] for i in b])[:, None], np.array(BOARD, np.uint8),
                           np.array((180, 170, 160), np.uint8)).astype(np.uint8)  # fmt: skip
            p, c = _boxes(a.xy[b], a.heading[b], a.length[b], a.width[b], np.zeros(len(b)), heights[b], col)
            polys.append(p)
            cols.append(c)
    debris = a.kind == DEBRIS
    if debris.any():
        add(debris, a.length[debris], a.width[debris], 0.02, 0.06, np.array(DEBRIS_COLOUR, np.uint8))
    return polys, cols


@dataclass(frozen=True)
class CameraSpec:
    """A leaderboard 'sensor.camera.rgb' entry: mount in CARLA vehicle axes, image size, horizontal FOV°."""

    id: str
    mount: CameraMount
    width: int
    height: int
    fov: float

    @property
    def intrinsics(self) -> np.ndarray:
        f = self.width / (2.0 * math.tan(math.radians(self.fov) / 2.0))
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])


def _ribbon(shape: np.ndarray, half_width: float, piece: float) -> np.ndarray:
    """Quads (Q, 4, 2) covering a polyline (K, 2) with the given half width, cut into pieces ≤ `piece` m."""
    d = np.diff(shape, axis=0)
    seg_len = np.hypot(d[:, 0], d[:, 1])
    quads = []
    for (a, b), length in zip(itertools.pairwise(shape), seg_len, strict=True):
        if length < 1e-6:
            continue
        n = max(1, math.ceil(length / piece))
        t = np.linspace(0.0, 1.0, n + 1)[:, None]
        pts = a + t * (b - a)
        u = (b - a) / length
        nrm = np.array([-u[1], u[0]]) * half_width
        left, right = pts + nrm, pts - nrm
        ext = u * 0.03  # overlap neighbouring pieces slightly: no rasterization seams between them
        quads.append(np.stack([right[:-1] - ext, right[1:] + ext, left[1:] + ext, left[:-1] - ext], 1))
    return np.concatenate(quads) if quads else np.zeros((0, 4, 2))


def _offset_line(shape: np.ndarray, offset: float) -> np.ndarray:
    """The polyline shifted sideways by `offset` m (positive = left of the driving direction)."""
    d = np.gradient(shape, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], -1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    return shape + offset * n


class StaticScene:
    """A town's static ground polygons (road, sidewalks, markings) as flat arrays, built once per town."""

    def __init__(self, town: TownMap) -> None:
        quads: list[np.ndarray] = []
        colours: list[np.ndarray] = []
        layers: list[np.ndarray] = []

        def add(q: np.ndarray, colour: tuple[int, int, int], layer: int) -> None:
            if len(q):
                quads.append(q)
                colours.append(np.tile(np.array(colour, np.uint8), (len(q), 1)))
                layers.append(np.full(len(q), layer))

        edges_with_twin = {lane.edge_id for lane in town.lanes if not lane.internal}
        max_index: dict[str, int] = {}
        for lane in town.lanes:
            if not lane.internal:
                max_index[lane.edge_id] = max(max_index.get(lane.edge_id, 0), lane.index)
        stop_lanes = {link.from_lane for link in town.tl_links}
        for i, lane in enumerate(town.lanes):
            surface = ROAD if lane.drivable else SIDEWALK
            add(_ribbon(lane.shape, lane.width / 2 + 0.05, 4.0), surface, 0 if lane.drivable else 1)
            if lane.internal or not lane.drivable:
                continue
            left = _offset_line(lane.shape, lane.width / 2)
            right = _offset_line(lane.shape, -lane.width / 2)
            if lane.index == max_index[lane.edge_id]:
                twin = lane.edge_id[1:] if lane.edge_id.startswith("-") else "-" + lane.edge_id
                colour = YELLOW if twin in edges_with_twin else WHITE
                add(_ribbon(left, 0.08, 3.0), colour, 2)
            else:  # dashed separator between lanes of the same direction: 3 m on, 3 m off
                dashes = _ribbon(left, 0.07, 3.0)
                add(dashes[::2], WHITE, 2)
            if lane.index == 0:
                add(_ribbon(right, 0.08, 3.0), WHITE, 2)
            if i in stop_lanes:
                end, h = lane.shape[-1], lane.shape[-1] - lane.shape[-2]
                u = h / max(np.linalg.norm(h), 1e-9)
                line = np.stack([end - 0.5 * u, end - 0.1 * u])
                add(_ribbon(line, lane.width / 2 - 0.1, 1.0), WHITE, 3)
        q = np.concatenate(quads)
        self.quads = np.concatenate([q, np.zeros((*q.shape[:2], 1))], -1)  # (Q, 4, 3), z = 0
        self.colours = np.concatenate(colours)
        self.layers = np.concatenate(layers)
        self.centres = q.mean(1)
        self.radius = np.linalg.norm(q - self.centres[:, None], axis=-1).max(1)
        self.junctions = [np.concatenate([j, np.zeros((len(j), 1))], -1) for j in town.junction_shapes]
        self.junction_centres = np.array([j[:, :2].mean(0) for j in self.junctions]).reshape(-1, 2)


def box_faces(
    xy: np.ndarray, heading: np.ndarray, length: np.ndarray, width: np.ndarray, z0: np.ndarray, z1: np.ndarray
) -> np.ndarray:
    """Faces (N, 5, 4, 3) of boxes: 4 sides then the top, WORLD coordinates."""
    c, s = np.cos(heading), np.sin(heading)
    hl, hw = length / 2, width / 2
    corners = np.stack(
        [np.stack([hl, hw], -1), np.stack([hl, -hw], -1), np.stack([-hl, -hw], -1), np.stack([-hl, hw], -1)],
        1,
    )  # (N, 4, 2) local: front-left, front-right, rear-right, rear-left
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], 1)  # (N, 2, 2)
    g = np.einsum("nij,nkj->nki", rot, corners) + xy[:, None]
    lo = np.concatenate([g, np.broadcast_to(z0[:, None, None], (*g.shape[:2], 1))], -1)
    hi = np.concatenate([g, np.broadcast_to(z1[:, None, None], (*g.shape[:2], 1))], -1)
    faces = [np.stack([lo[:, k], lo[:, (k + 1) % 4], hi[:, (k + 1) % 4], hi[:, k]], 1) for k in range(4)]
    faces.append(hi)
    return np.stack(faces, 1)


def clip_near(poly: np.ndarray, near: float = NEAR) -> tuple[np.ndarray, np.ndarray]:
    """Clip convex polygons (N, K, 3) in camera coordinates against z ≥ near.

    Returns (N, 2K, 3) vertices (unused slots repeat a kept vertex, harmless for filling) and a (N,) mask of
    polygons with anything left."""
    n, k, _ = poly.shape
    nxt = np.roll(poly, -1, axis=1)
    zin, znx = poly[..., 2] >= near, nxt[..., 2] >= near
    t = (near - poly[..., 2]) / np.where(np.abs(nxt[..., 2] - poly[..., 2]) < 1e-12, 1e-12, nxt[..., 2] - poly[..., 2])
    cross = poly + t[..., None] * (nxt - poly)
    out = np.stack([poly, cross], 2).reshape(n, 2 * k, 3)
    valid = np.stack([zin, zin != znx], 2).reshape(n, 2 * k)
    any_valid = valid.any(1)
    # forward-fill invalid slots with the previous valid vertex (first valid one for leading slots)
    idx = np.where(valid, np.arange(2 * k)[None], -1)
    idx = np.maximum.accumulate(idx, axis=1)
    first = valid.argmax(1)
    idx = np.where(idx < 0, first[:, None], idx)
    out = np.take_along_axis(out, idx[..., None], axis=1)
    return out, np.asarray(any_valid)


_SCENES: weakref.WeakKeyDictionary[TownMap, StaticScene] = weakref.WeakKeyDictionary()


class Renderer:
    """Renders camera images of one town for any number of camera specs."""

    def __init__(self, town: TownMap) -> None:
        scene = _SCENES.get(town)
        if scene is None:  # built once per (cached) town: ~0.3 s for the larger towns
            scene = _SCENES[town] = StaticScene(town)
        self.scene = scene
        self.town = town

    def render(
        self,
        cam: CameraSpec,
        ego_pose: np.ndarray,
        actors: Actors | tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        lights: list[tuple[np.ndarray, float, str]],
    ) -> np.ndarray:
        """BGRA image. ego_pose (3,) WORLD box centre; actors: an `Actors` set (drawn by kind) or plain car
        boxes (xy, heading, length, width, ids); lights = [(stop_xy, heading, state char)]."""
        h_img, w_img = cam.height, cam.width
        img = np.empty((h_img, w_img, 4), np.uint8)
        img.view(np.uint32)[:] = np.array([*SKY, 255], np.uint8).view(np.uint32)[0]  # BGRA sky, one 32-bit fill
        k = cam.intrinsics
        c, s = math.cos(ego_pose[2]), math.sin(ego_pose[2])
        world_to_ego = np.array(
            [[c, s, 0.0, -(c * ego_pose[0] + s * ego_pose[1])],
             [-s, c, 0.0, s * ego_pose[0] - c * ego_pose[1]],
             [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
        )  # fmt: skip
        m = cam.mount.ego_to_camera() @ world_to_ego
        rot, trans = m[:3, :3], m[:3, 3]
        fwd = np.array([c, s])

        def draw(polys: np.ndarray, colours: np.ndarray, sort: bool) -> None:
            if not len(polys):
                return
            cam_pts = polys @ rot.T + trans
            keep = (cam_pts[..., 2] > NEAR).any(1)
            cam_pts, cols = cam_pts[keep], colours[keep]
            if not len(cam_pts):
                return
            clipped, ok = clip_near(cam_pts)
            clipped, cols = clipped[ok], cols[ok]
            depth = clipped[..., 2].mean(1)
            uv = clipped[..., :2] / clipped[..., 2:3] * k[[0, 1], [0, 1]] + k[:2, 2]
            uv = np.clip(uv, -1e5, 1e5)
            in_view = (
                (uv[..., 0].max(1) >= 0)
                & (uv[..., 0].min(1) < w_img)
                & (uv[..., 1].max(1) >= 0)
                & (uv[..., 1].min(1) < h_img)
            )
            uv, cols, depth = uv[in_view], cols[in_view], depth[in_view]
            order = np.argsort(-depth) if sort else np.arange(len(uv))
            pts = np.round(uv * 4).astype(np.int32)  # 2 fractional bits
            colour_list = np.concatenate([cols, np.full((len(cols), 1), 255, np.uint8)], 1).tolist()
            for j in order.tolist():
                cv2.fillConvexPoly(img, pts[j], colour_list[j], lineType=cv2.LINE_8, shift=2)

        # terrain: a large ground square ahead, clipped at the near plane -> exact horizon
        big = 5000.0
        ground = np.array([[[ego_pose[0] + big * x, ego_pose[1] + big * y, 0.0] for x, y in
                            ((-1, -1), (1, -1), (1, 1), (-1, 1))]])  # fmt: skip
        draw(ground, np.array([TERRAIN], np.uint8), False)
        # junction areas and ground polygons
        sc = self.scene
        rel = sc.centres - ego_pose[:2]
        near = (np.hypot(rel[:, 0], rel[:, 1]) < FAR + sc.radius) & (rel @ fwd > -10.0)
        if len(sc.junctions):
            jrel = sc.junction_centres - ego_pose[:2]
            for j in np.nonzero(np.hypot(jrel[:, 0], jrel[:, 1]) < FAR)[0]:
                poly = sc.junctions[j]
                cam_pts = poly @ rot.T + trans
                if (cam_pts[:, 2] > NEAR).any():
                    self._fill_general(img, cam_pts, k, (*ROAD, 255))
        sel = np.nonzero(near)[0]
        sel = sel[np.argsort(sc.layers[sel], kind="stable")]
        draw(sc.quads[sel], sc.colours[sel], False)
        # 3D objects, farthest first: vehicles and traffic lights together
        polys: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        if not isinstance(actors, Actors):
            xy, heading, length, width, ids = actors
            actors = Actors(np.asarray(ids, np.int64), xy, heading, np.zeros(len(xy)), length, width)
        if len(actors):
            near_actors = actors.select(np.hypot(*(actors.xy - ego_pose[:2]).T) < FAR)
            actor_polys, actor_cols = actor_polygons(near_actors)
            polys += actor_polys
            cols += actor_cols
        if lights:
            lxy = np.array([p for p, _, _ in lights])
            lh = np.array([hh for _, hh, _ in lights])
            states = [st for _, _, st in lights]
            n = len(lights)
            pole = box_faces(lxy, lh, np.full(n, 0.15), np.full(n, 0.15), np.zeros(n), np.full(n, 3.0))
            head = box_faces(lxy, lh, np.full(n, 0.4), np.full(n, 0.4), np.full(n, 3.0), np.full(n, 4.0))
            polys += [pole.reshape(-1, 4, 3), head.reshape(-1, 4, 3)]
            cols.append(np.tile(np.array(POLE, np.uint8), (n * 5, 1)))
            cols.append(np.repeat(np.array([LIGHT.get(st, POLE) for st in states], np.uint8), 5, axis=0))
        if polys:
            draw(np.concatenate(polys), np.concatenate(cols), True)
        return img

    @staticmethod
    def _fill_general(img: np.ndarray, cam_pts: np.ndarray, k: np.ndarray, colour: tuple[int, ...]) -> None:
        """Fill one (possibly non-convex) ground polygon in camera coordinates, clipped at the near plane."""
        clipped, ok = clip_near(cam_pts[None])
        if not ok[0]:
            return
        p = clipped[0]
        uv = np.clip(p[:, :2] / p[:, 2:3] * k[[0, 1], [0, 1]] + k[:2, 2], -1e5, 1e5)
        cv2.fillPoly(img, [np.round(uv * 4).astype(np.int32)], colour, lineType=cv2.LINE_8, shift=2)

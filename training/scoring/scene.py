"""Scene representation for the vectorized PDM scorer, independent of nuPlan/NAVSIM classes.

Frames and units: every geometry is in a global right-handed frame (x east, y north, metres; heading CCW
from +x,
radians), as in nuPlan/NAVSIM. Coordinates are large (UTM-like), so everything is float64; the scorer
subtracts
`Scene.origin` before doing geometry. Ego states follow NAVSIM's `StateIndex` order (`EGO_STATE_FIELDS`),
at the
**rear axle**; candidate plans are given in the ego rear-axle frame at t = 0 (x forward, y left, heading CCW).
Time steps are 0.1 s; step k is at t0 + 0.1 k s.

`load_scene_json` reads the `navsim_scorer_fixture/1.0` scene format (see `docs/scorer.md`); a CARLA or NAVSIM
metric-cache converter produces the same dataclasses.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

EGO_STATE_FIELDS = (
    "x",
    "y",
    "heading",
    "vx",
    "vy",
    "ax",
    "ay",
    "steering_angle",
    "steering_rate",
    "angular_velocity",
    "angular_acceleration",
)
NUM_STATE = len(EGO_STATE_FIELDS)

# Map layers (nuPlan SemanticMapLayer names) as small integer codes.
LAYERS = (
    "LANE",
    "LANE_CONNECTOR",
    "ROADBLOCK",
    "ROADBLOCK_CONNECTOR",
    "INTERSECTION",
    "CARPARK_AREA",
    "DRIVABLE_AREA",
)
LAYER_CODE = {name: i for i, name in enumerate(LAYERS)}
LANE_LAYERS = (LAYER_CODE["LANE"], LAYER_CODE["LANE_CONNECTOR"])
# Layers whose union is NAVSIM's drivable area for the non-drivable-area test (lanes do not count there).
AREA_LAYERS = (
    LAYER_CODE["ROADBLOCK"],
    LAYER_CODE["INTERSECTION"],
    LAYER_CODE["DRIVABLE_AREA"],
    LAYER_CODE["CARPARK_AREA"],
)

# Tracked-object types (nuPlan TrackedObjectType names).
OBJECT_TYPES = (
    "VEHICLE",
    "PEDESTRIAN",
    "BICYCLE",
    "EGO",
    "TRAFFIC_CONE",
    "BARRIER",
    "CZONE_SIGN",
    "GENERIC_OBJECT",
)
OBJECT_TYPE_CODE = {name: i for i, name in enumerate(OBJECT_TYPES)}
AGENT_TYPE_CODES = (0, 1, 2, 3)  # collisions with these score 0; with static objects 0.5


class SceneFormatError(ValueError):
    """A scene file has a missing or malformed field."""


@dataclass(frozen=True)
class EgoParams:
    """Ego vehicle geometry (metres). NAVSIM's scorer always uses the Pacifica values."""

    length: float = 5.176
    width: float = 2.297
    rear_axle_to_center: float = 1.461
    wheel_base: float = 3.089

    @property
    def half_length(self) -> float:
        return self.length / 2.0

    @property
    def half_width(self) -> float:
        return self.width / 2.0


@dataclass
class Polygons:
    """Simple polygons (exterior ring only, not closed), padded: `vertices` (P, V, 2) float64,
    `num_vertices` (P,).

    Padding repeats the last vertex, so padded edges are degenerate and never cross anything.
    """

    ids: list[str]
    layer: torch.Tensor  # (P,) int64, LAYER_CODE
    vertices: torch.Tensor  # (P, V, 2) float64, global
    num_vertices: torch.Tensor  # (P,) int64

    def __len__(self) -> int:
        return len(self.ids)

    def ring(self, i: int) -> np.ndarray:
        return self.vertices[i, : int(self.num_vertices[i])].numpy()

    @staticmethod
    def from_lists(ids: list[str], layers: list[int], rings: list[np.ndarray]) -> Polygons:
        vmax = max((len(r) for r in rings), default=1)
        verts = np.zeros((len(rings), vmax, 2))
        for i, r in enumerate(rings):
            verts[i, : len(r)] = r
            verts[i, len(r) :] = r[-1]
        return Polygons(
            ids=list(ids),
            layer=torch.tensor(layers, dtype=torch.int64),
            vertices=torch.from_numpy(verts),
            num_vertices=torch.tensor([len(r) for r in rings], dtype=torch.int64),
        )


@dataclass
class Lane:
    """A lane or lane connector: centreline (n, 3) x, y, heading in driving direction; connectivity by id."""

    id: str
    is_connector: bool
    roadblock_id: str
    centerline: np.ndarray
    polygon: np.ndarray
    speed_limit_mps: float | None
    predecessors: list[str]
    successors: list[str]
    left_neighbor: str | None = None
    right_neighbor: str | None = None


@dataclass
class MapGeometry:
    """The drivable map the scorer tests against, plus lanes/intersections for routing and lane keeping.

    `drivable` holds every polygon of NAVSIM's `PDMDrivableMap` (layers LANE, LANE_CONNECTOR, ROADBLOCK,
    INTERSECTION, CARPARK_AREA, DRIVABLE_AREA). `intersections` are the INTERSECTION polygons (also in
    `drivable`).
    """

    drivable: Polygons
    intersections: Polygons
    lanes: dict[str, Lane] = field(default_factory=dict)


@dataclass
class Route:
    """Route lanes (all lanes of the route roadblocks) and the centreline (m, 3) used for EP and LK."""

    lane_ids: list[str]
    centerline: torch.Tensor  # (M, 3) float64 global
    roadblock_ids: list[str] = field(default_factory=list)
    speed_limit_mps: float | None = None


@dataclass
class TrafficLights:
    """Per lane connector: red per 0.1 s step. `polygons` are the lane-connector polygons."""

    lane_ids: list[str]
    polygons: Polygons
    is_red: torch.Tensor  # (L, T) bool, steps 0 ... T-1
    on_route: torch.Tensor  # (L,) bool


@dataclass
class Agents:
    """Tracked objects per 0.1 s step. `states` (A, T, 5) = centre x, y, heading, vx, vy (global); NaN where
    absent.

    `present` (A, T) says whether the object is in the observation at step k (T = 51 covers v1's 5 s; v2 uses
    `present_v2` over the first 41 steps). `dropped_v2` marks tracks removed by v2's log replay (box
    overlapping
    the initial ego box).
    """

    tokens: list[str]
    type_code: torch.Tensor  # (A,) int64
    length: torch.Tensor  # (A,) float64
    width: torch.Tensor  # (A,) float64
    states: torch.Tensor  # (A, T, 5) float64
    present_v1: torch.Tensor  # (A, T1) bool
    present_v2: torch.Tensor  # (A, T2) bool
    dropped_v2: torch.Tensor  # (A,) bool

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def is_agent(self) -> torch.Tensor:
        return self.type_code <= 3


@dataclass
class EgoHistory:
    """Ego state now and before. `initial_state` (11,), `past_states` (4, 11) at -1.5 ... 0 s,
    `comfort_states` (14, 11) at -1.5 ... -0.2 s (what NAVSIM prepends for History Comfort)."""

    initial_state: torch.Tensor
    past_states: torch.Tensor
    comfort_states: torch.Tensor


@dataclass
class PreviousFrame:
    """The previous frame (0.5 s earlier): its state, its selected plan (8, 3) in its own rear-axle frame and,
    when known, its simulated states (41, 11) (what Extended Comfort compares against)."""

    state: torch.Tensor
    plan_poses_8: torch.Tensor
    simulated_states: torch.Tensor | None


@dataclass
class ReferencePlan:
    """PDM-Closed reference for EP normalisation: 41 reference states (global; x, y, heading used)."""

    reference_states: torch.Tensor  # (41, 11)
    reference_states_v1: torch.Tensor | None = None


@dataclass
class Scene:
    """Everything the scorer needs about one scene (except the candidate plans)."""

    scene_id: str
    t0_us: int
    ego: EgoParams
    history: EgoHistory
    map: MapGeometry
    route: Route
    traffic_lights: TrafficLights
    agents: Agents
    human_poses_8: torch.Tensor  # (8, 3) ego rear-axle frame, t = 0.5 ... 4.0 s
    human_poses_40: torch.Tensor | None  # (40, 3) t = 0.1 ... 4.0 s
    previous: PreviousFrame | None
    reference: ReferencePlan | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> torch.Tensor:
        """Rear-axle pose (x, y, heading) at t = 0 (global)."""
        return self.history.initial_state[:3]


# ------------------------------------------------------------------------------------------------------------
# loader for the navsim_scorer_fixture/1.0 JSON format


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise SceneFormatError(f"{where}: missing field {key!r}")
    return d[key]


def _arr(x: Any, shape_tail: tuple[int, ...], where: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SceneFormatError(f"{where}: expected a numeric array, got {type(x).__name__}") from e
    if a.ndim != len(shape_tail) + 1 or tuple(a.shape[1:]) != shape_tail:
        raise SceneFormatError(f"{where}: expected shape (n, {', '.join(map(str, shape_tail))}), got {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise SceneFormatError(f"{where}[{row}]: NaN or infinite value; expected finite poses / coordinates")
    return a


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def load_scene_json(path: str | Path) -> Scene:
    """Read a `scene_XX.json.gz` (or plain .json) file of the navsim_scorer fixture format."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, zlib.error) as e:
        what = "truncated file (interrupted write?)" if isinstance(e, EOFError) else f"cannot read scene JSON ({e})"
        raise SceneFormatError(f"{path}: {what}") from None
    return scene_from_dict(d, str(path))


def _presence(tracks: list[dict[str, Any]], key: str, n_steps: int) -> torch.Tensor:
    """(A, steps) bool presence flags; (0, n_steps) for a scene without tracked objects."""
    if not tracks:
        return torch.zeros((0, n_steps), dtype=torch.bool)
    return torch.tensor([t[key] for t in tracks], dtype=torch.bool).reshape(len(tracks), -1)


def scene_from_dict(d: dict[str, Any], where: str = "scene") -> Scene:
    fmt = d.get("format_version", "")
    if not str(fmt).startswith("navsim_scorer_fixture/1"):
        raise SceneFormatError(f"{where}: format_version {fmt!r}, expected 'navsim_scorer_fixture/1.x'")
    ego_d = _req(d, "ego", where)
    veh = _req(ego_d, "vehicle", f"{where}.ego")
    ego = EgoParams(
        length=float(veh["length"]),
        width=float(veh["width"]),
        rear_axle_to_center=float(veh["rear_axle_to_center"]),
        wheel_base=float(veh["wheel_base"]),
    )
    init = _arr([_req(ego_d, "initial_state", f"{where}.ego")["state"]], (NUM_STATE,), f"{where}.ego.initial_state")
    past = _arr(ego_d["past_states"]["states"], (NUM_STATE,), f"{where}.ego.past_states.states")
    hist = _arr(ego_d["history_comfort_states"]["states"], (NUM_STATE,), f"{where}.ego.history_comfort_states.states")
    history = EgoHistory(initial_state=_t(init[0]), past_states=_t(past), comfort_states=_t(hist))

    m = _req(d, "map", where)
    lanes: dict[str, Lane] = {}
    poly_by_id: dict[str, np.ndarray] = {}
    for i, ln in enumerate(_req(m, "lanes", f"{where}.map")):
        w = f"{where}.map.lanes[{i}]"
        lane = Lane(
            id=str(ln["id"]),
            is_connector=ln["type"] == "LANE_CONNECTOR",
            roadblock_id=str(ln.get("roadblock_id", "")),
            centerline=_arr(ln["centerline"], (3,), f"{w}.centerline"),
            polygon=_arr(ln["polygon"], (2,), f"{w}.polygon"),
            speed_limit_mps=ln.get("speed_limit_mps"),
            predecessors=[str(x) for x in ln.get("predecessors", [])],
            successors=[str(x) for x in ln.get("successors", [])],
            left_neighbor=ln.get("left_neighbor"),
            right_neighbor=ln.get("right_neighbor"),
        )
        lanes[lane.id] = lane
        poly_by_id[lane.id] = lane.polygon
    for key in ("roadblocks", "intersections", "carparks"):
        for i, obj in enumerate(m.get(key, [])):
            poly_by_id[str(obj["id"])] = _arr(obj["polygon"], (2,), f"{where}.map.{key}[{i}].polygon")
    ids, layers, rings = [], [], []
    for i, e in enumerate(_req(m, "drivable_map", f"{where}.map")):
        tok, layer = str(e["token"]), str(e["layer"])
        if layer not in LAYER_CODE:
            raise SceneFormatError(f"{where}.map.drivable_map[{i}].layer: unknown layer {layer!r}")
        if tok not in poly_by_id:
            raise SceneFormatError(f"{where}.map.drivable_map[{i}].token: no map object with id {tok!r}")
        ids.append(tok)
        layers.append(LAYER_CODE[layer])
        rings.append(poly_by_id[tok])
    drivable = Polygons.from_lists(ids, layers, rings)
    inter = [(str(o["id"]), poly_by_id[str(o["id"])]) for o in m.get("intersections", [])]
    intersections = Polygons.from_lists(
        [i for i, _ in inter], [LAYER_CODE["INTERSECTION"]] * len(inter), [r for _, r in inter]
    )
    map_geom = MapGeometry(drivable=drivable, intersections=intersections, lanes=lanes)

    r = _req(d, "route", where)
    route = Route(
        lane_ids=[str(x) for x in r["lane_ids"]],
        centerline=_t(_arr(r["centerline"], (3,), f"{where}.route.centerline")),
        roadblock_ids=[str(x) for x in r.get("roadblock_ids", [])],
        speed_limit_mps=r.get("start_lane_speed_limit_mps"),
    )

    tl = d.get("traffic_lights", {}).get("lights", [])
    tl_ids = [str(x["lane_connector_id"]) for x in tl]
    for lid in tl_ids:
        if lid not in lanes:
            raise SceneFormatError(f"{where}.traffic_lights: lane connector {lid!r} not in map.lanes")
    traffic_lights = TrafficLights(
        lane_ids=tl_ids,
        polygons=Polygons.from_lists(
            tl_ids, [LAYER_CODE["LANE_CONNECTOR"]] * len(tl), [lanes[i].polygon for i in tl_ids]
        ),
        is_red=torch.tensor([x["is_red_per_step"] for x in tl], dtype=torch.bool).reshape(len(tl), -1)
        if tl
        else torch.zeros(0, 41, dtype=torch.bool),
        on_route=torch.tensor([bool(x.get("on_route", x["lane_connector_id"] in route.lane_ids)) for x in tl]),
    )

    to = _req(d, "tracked_objects", where)
    tracks = to["tracks"]
    n_steps = max((len(t["states"]) for t in tracks), default=51)
    states = np.full((len(tracks), n_steps, 5), np.nan)
    for i, t in enumerate(tracks):
        for k, s in enumerate(t["states"]):
            if s is not None:
                states[i, k] = s
    for i, t in enumerate(tracks):
        if t["type"] not in OBJECT_TYPE_CODE:
            raise SceneFormatError(f"{where}.tracked_objects.tracks[{i}].type: unknown type {t['type']!r}")
    dropped = set(to.get("dropped_by_v2_log_replay", []))
    agents = Agents(
        tokens=[str(t["token"]) for t in tracks],
        type_code=torch.tensor([OBJECT_TYPE_CODE[t["type"]] for t in tracks], dtype=torch.int64),
        length=torch.tensor([float(t["length"]) for t in tracks], dtype=torch.float64),
        width=torch.tensor([float(t["width"]) for t in tracks], dtype=torch.float64),
        states=_t(states),
        present_v1=_presence(tracks, "present_v1", n_steps),
        present_v2=_presence(tracks, "present_v2", n_steps),
        dropped_v2=torch.tensor([t["token"] in dropped for t in tracks], dtype=torch.bool),
    )

    h = _req(d, "human", where)
    prev_d = ego_d.get("previous_frame")
    previous = None
    if prev_d is not None:
        sim = prev_d.get("simulated_states")
        previous = PreviousFrame(
            state=_t(np.asarray(prev_d["state"], dtype=np.float64)),
            plan_poses_8=_t(_arr(prev_d["plan_poses_8"], (3,), f"{where}.ego.previous_frame.plan_poses_8")),
            simulated_states=None if sim is None else _t(_arr(sim, (NUM_STATE,), f"{where}.previous.simulated")),
        )
    pc = d.get("pdm_closed")
    reference = None
    if pc is not None:
        reference = ReferencePlan(
            reference_states=_t(_arr(pc["v2"]["reference_states_41"], (NUM_STATE,), f"{where}.pdm_closed.v2")),
            reference_states_v1=_t(_arr(pc["v1"]["reference_states_41"], (NUM_STATE,), f"{where}.pdm_closed.v1"))
            if "v1" in pc
            else None,
        )
    return Scene(
        scene_id=str(d.get("scene_id", where)),
        t0_us=int(d["time"]["t0_us"]),
        ego=ego,
        history=history,
        map=map_geom,
        route=route,
        traffic_lights=traffic_lights,
        agents=agents,
        human_poses_8=_t(_arr(h["poses_8"], (3,), f"{where}.human.poses_8")),
        human_poses_40=_t(_arr(h["poses_40"], (3,), f"{where}.human.poses_40")) if "poses_40" in h else None,
        previous=previous,
        reference=reference,
        meta={"name": d.get("name", ""), "category": d.get("category", "")},
    )

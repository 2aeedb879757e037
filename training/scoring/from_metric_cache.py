"""navsim metric cache → the fast scorer's `Scene` (so teachers come from the official maps and logs).

navsim's `run_metric_caching` writes one `metric_cache.pkl` per scene token: an lzma-compressed pickle of
`navsim.planning.metric_caching.metric_cache.MetricCache` (navsim v2: `log_name`, `timepoint`, `scene_type`,
`trajectory` (PDM-Closed, an `InterpolatedTrajectory` of nuPlan `EgoState`s), `human_trajectory` (navsim
`Trajectory`, 8 poses at 0.5 s; None for synthetic scenes), `past_human_trajectory` (`InterpolatedTrajectory`),
`ego_state`, `observation` (`PDMObservation`: one `PDMOccupancyMap` per 0.1 s step; red lights on the route appear
as tokens `red_light_<lane connector id>` with the connector's polygon), `centerline` (`PDMPath`,
`states_se2_array` (M, 3)), `route_lane_ids`, `drivable_area_map` (`PDMDrivableMap`: `tokens`, `map_types`
(nuPlan `SemanticMapLayer`), a polygon per token), `past_detections_tracks`, `current_tracked_objects`,
`future_tracked_objects` (`DetectionsTracks` at 10 Hz), `map_parameters`) — layout read from navsim's
`metric_cache.py`, `pdm_observation.py`, `pdm_occupancy_map.py` and `pdm_path.py`.

Two steps, so the conversion itself is testable without navsim:

* `arrays_from_metric_cache(cache)` reads the navsim/nuPlan objects into plain numpy (`MetricCacheArrays`) by
  attribute access only (ego states in navsim's `StateIndex` order, exactly the fields of navsim's
  `ego_state_to_state_array`); it needs the real objects, hence navsim installed to unpickle them.
* `scene_from_arrays(arrays)` builds the `training.scoring.scene.Scene` (pure numpy/torch).

`load_metric_cache(path)` unpickles a cache file. Pickle runs code from the file: load only caches you produced
with navsim yourself. navsim is imported lazily; without it the loader raises one clear ImportError.

What the cache does not hold and how it is filled: `history.comfort_states` / `past_states` are sampled from
`past_human_trajectory` (clamped at its start); `agents.present_v1` covers the cached 10 Hz future only (v2's 41
steps; NAVSIM v1 looked 5 s ahead, so v1 TTC near the 4–5 s end can differ); `previous` (the two-frame extended
comfort input) is None; `dropped_v2` = tracks whose step-0 box intersects the ego footprint (v2 log replay).
"""

from __future__ import annotations

import lzma
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.scoring.scene import (
    LAYER_CODE,
    NUM_STATE,
    OBJECT_TYPE_CODE,
    Agents,
    EgoHistory,
    EgoParams,
    MapGeometry,
    Polygons,
    ReferencePlan,
    Route,
    Scene,
    SceneFormatError,
    TrafficLights,
)

RED_LIGHT_PREFIX = "red_light_"
STEPS_V2 = 41  # 0 … 4 s at 0.1 s
DT = 0.1


@dataclass
class MetricCacheArrays:
    """One metric cache as plain arrays. Global frame (nuPlan UTM, x east, y north, heading CCW), metres, seconds.

    Ego states are (…, 11) in `training.scoring.scene.EGO_STATE_FIELDS` order at the rear axle. Polygons are
    exterior rings without the closing vertex. `track_states` (A, T, 5) = centre x, y, heading, vx, vy per 0.1 s
    step (NaN where absent); `red_light_is_red` (L, T).
    """

    token: str
    log_name: str
    t0_us: int
    initial_state: np.ndarray
    past_states: np.ndarray  # (4, 11) at −1.5 … 0 s
    comfort_states: np.ndarray  # (14, 11) at −1.5 … −0.2 s
    drivable_ids: list[str]
    drivable_layers: list[str]
    drivable_rings: list[np.ndarray]
    route_lane_ids: list[str]
    centerline: np.ndarray  # (M, 3)
    red_light_lane_ids: list[str]
    red_light_rings: list[np.ndarray]
    red_light_is_red: np.ndarray  # (L, T) bool
    track_tokens: list[str]
    track_types: list[str]
    track_length: np.ndarray
    track_width: np.ndarray
    track_states: np.ndarray
    dropped_tokens: list[str] = field(default_factory=list)
    human_poses_8: np.ndarray | None = None
    reference_states: np.ndarray | None = None  # (41, 11) PDM-Closed at 0 … 4 s


# ----------------------------------------------------------------------------------------------------------------
# navsim objects → arrays (needs the real objects; attribute access only)


def ego_state_array(ego: Any) -> np.ndarray:
    """A nuPlan `EgoState` → (11,) in StateIndex order (rear-axle pose, velocity, acceleration, steering angle and
    rate, angular velocity and acceleration)."""
    dyn = ego.dynamic_car_state
    ra = ego.rear_axle
    v, a = dyn.rear_axle_velocity_2d, dyn.rear_axle_acceleration_2d
    return np.array(
        [ra.x, ra.y, ra.heading, v.x, v.y, a.x, a.y, ego.tire_steering_angle, dyn.tire_steering_rate,
         dyn.angular_velocity, dyn.angular_acceleration],
        dtype=np.float64,
    )  # fmt: skip


def sample_states(times_us: np.ndarray, states: np.ndarray, at_us: np.ndarray) -> np.ndarray:
    """Linear interpolation of (N, 11) states at `at_us` (clamped to the covered span; heading unwrapped)."""
    order = np.argsort(times_us)
    t, s = times_us[order].astype(np.float64), states[order].copy()
    s[:, 2] = np.unwrap(s[:, 2])
    out = np.stack([np.interp(at_us.astype(np.float64), t, s[:, j]) for j in range(s.shape[1])], -1)
    out[:, 2] = (out[:, 2] + np.pi) % (2 * np.pi) - np.pi
    return out


def _trajectory_arrays(traj: Any) -> tuple[np.ndarray, np.ndarray]:
    states = list(traj.get_sampled_trajectory())
    if not states:
        raise SceneFormatError("metric cache: empty InterpolatedTrajectory")
    return np.array([int(s.time_us) for s in states], np.int64), np.stack([ego_state_array(s) for s in states])


def _ring(polygon: Any) -> np.ndarray:
    return np.asarray(polygon.exterior.coords, dtype=np.float64)[:-1, :2]


def arrays_from_metric_cache(cache: Any, token: str = "") -> MetricCacheArrays:
    """Read a navsim `MetricCache` object (see the module docstring) into `MetricCacheArrays`."""
    ego = cache.ego_state
    t0 = int(ego.time_us)
    init = ego_state_array(ego)
    pt, ps = _trajectory_arrays(cache.past_human_trajectory)
    past = sample_states(pt, ps, t0 + np.round(np.arange(-1.5, 0.01, 0.5) * 1e6).astype(np.int64))
    comfort = sample_states(pt, ps, t0 + np.round(np.arange(-15, -1, 1) * DT * 1e6).astype(np.int64))
    ref_t, ref_s = _trajectory_arrays(cache.trajectory)
    reference = sample_states(ref_t, ref_s, t0 + np.round(np.arange(STEPS_V2) * DT * 1e6).astype(np.int64))

    dm = cache.drivable_area_map
    ids = [str(t) for t in dm.tokens]
    layers = [getattr(m, "name", str(m)) for m in dm.map_types]
    rings = [_ring(dm[t]) for t in dm.tokens]
    path = cache.centerline
    centerline = np.asarray(path.states_se2_array, dtype=np.float64)[:, :3]

    # red lights per step, from the observation's occupancy maps (tokens red_light_<lane connector id>)
    obs = cache.observation
    red: dict[str, np.ndarray] = {}
    red_rings: dict[str, np.ndarray] = {}
    for k in range(STEPS_V2):
        occ = obs[k]
        for tok in occ.tokens:
            if str(tok).startswith(RED_LIGHT_PREFIX):
                lane = str(tok)[len(RED_LIGHT_PREFIX) :]
                red.setdefault(lane, np.zeros(STEPS_V2, bool))[k] = True
                red_rings.setdefault(lane, _ring(occ[tok]))

    # tracked objects at 10 Hz
    frames = list(cache.future_tracked_objects)[:STEPS_V2]
    index: dict[str, int] = {}
    tokens: list[str] = []
    types: list[str] = []
    length: list[float] = []
    width: list[float] = []
    rows: list[tuple[int, int, list[float]]] = []
    for k, det in enumerate(frames):
        for obj in det.tracked_objects.tracked_objects:
            tok = str(obj.track_token)
            if tok not in index:
                index[tok] = len(tokens)
                tokens.append(tok)
                types.append(obj.tracked_object_type.name)
                length.append(float(obj.box.length))
                width.append(float(obj.box.width))
            c = obj.box.center
            vel = getattr(obj, "velocity", None)
            vx, vy = (float(vel.x), float(vel.y)) if vel is not None else (0.0, 0.0)
            rows.append((index[tok], k, [c.x, c.y, c.heading, vx, vy]))
    states = np.full((len(tokens), STEPS_V2, 5), np.nan)
    for a, k, s in rows:
        states[a, k] = s
    dropped: list[str] = []
    if frames:
        footprint = ego.car_footprint.geometry
        dropped = [
            str(o.track_token)
            for o in frames[0].tracked_objects.tracked_objects
            if o.box.geometry.intersects(footprint)
        ]
    human = getattr(cache, "human_trajectory", None)
    return MetricCacheArrays(
        token=token,
        log_name=str(getattr(cache, "log_name", "")),
        t0_us=t0,
        initial_state=init,
        past_states=past,
        comfort_states=comfort,
        drivable_ids=ids,
        drivable_layers=layers,
        drivable_rings=rings,
        route_lane_ids=[str(x) for x in cache.route_lane_ids],
        centerline=centerline,
        red_light_lane_ids=list(red),
        red_light_rings=[red_rings[k] for k in red],
        red_light_is_red=np.stack(list(red.values())) if red else np.zeros((0, STEPS_V2), bool),
        track_tokens=tokens,
        track_types=types,
        track_length=np.asarray(length, np.float64),
        track_width=np.asarray(width, np.float64),
        track_states=states,
        dropped_tokens=dropped,
        human_poses_8=None if human is None else np.asarray(human.poses, np.float64)[:8, :3],
        reference_states=reference,
    )


def load_metric_cache(path: str | Path) -> Any:
    """Unpickle one navsim `metric_cache.pkl` (lzma). Needs navsim + nuplan-devkit importable (the pickle holds
    their classes). Only load caches you produced: unpickling runs code named by the file."""
    try:
        import navsim  # noqa: F401
    except ImportError:
        raise ImportError(
            "reading a navsim metric cache needs navsim and nuplan-devkit installed (they install from git); "
            "see docs/datasets.md"
        ) from None
    path = Path(path)
    try:
        return pickle.loads(lzma.decompress(path.read_bytes()))
    except (OSError, lzma.LZMAError, pickle.UnpicklingError, EOFError) as exc:
        raise SceneFormatError(f"{path}: not a readable navsim metric cache ({exc})") from None


def scene_from_metric_cache(path: str | Path) -> Scene:
    """`load_metric_cache` + `arrays_from_metric_cache` + `scene_from_arrays`; the token is the parent folder name
    (navsim writes `<cache>/<log>/<scenario type>/<token>/metric_cache.pkl`)."""
    path = Path(path)
    return scene_from_arrays(arrays_from_metric_cache(load_metric_cache(path), token=path.parent.name))


# ----------------------------------------------------------------------------------------------------------------
# arrays → Scene (pure)


def _shape(name: str, a: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape, strict=True)):
        raise SceneFormatError(f"metric cache arrays: `{name}` has shape {a.shape}, expected {shape}")
    return a


def scene_from_arrays(m: MetricCacheArrays, ego: EgoParams | None = None) -> Scene:
    """Build the scorer's `Scene`. The ego is NAVSIM's Pacifica unless given."""
    init = _shape("initial_state", m.initial_state, (NUM_STATE,))
    past = _shape("past_states", m.past_states, (4, NUM_STATE))
    comfort = _shape("comfort_states", m.comfort_states, (14, NUM_STATE))
    bad = [x for x in m.drivable_layers if x not in LAYER_CODE]
    if bad:
        raise SceneFormatError(
            f"metric cache arrays: unknown map layer {bad[0]!r} (expected one of {list(LAYER_CODE)})"
        )
    drivable = Polygons.from_lists(m.drivable_ids, [LAYER_CODE[x] for x in m.drivable_layers], m.drivable_rings)
    inter = [i for i, x in enumerate(m.drivable_layers) if x == "INTERSECTION"]
    intersections = Polygons.from_lists(
        [m.drivable_ids[i] for i in inter],
        [LAYER_CODE["INTERSECTION"]] * len(inter),
        [m.drivable_rings[i] for i in inter],
    )
    centerline = _shape("centerline", m.centerline, (None, 3))
    route = Route(lane_ids=list(m.route_lane_ids), centerline=torch.from_numpy(centerline.copy()))
    n_tl = len(m.red_light_lane_ids)
    is_red = np.asarray(m.red_light_is_red, bool).reshape(n_tl, -1) if n_tl else np.zeros((0, STEPS_V2), bool)
    lights = TrafficLights(
        lane_ids=list(m.red_light_lane_ids),
        polygons=Polygons.from_lists(
            list(m.red_light_lane_ids), [LAYER_CODE["LANE_CONNECTOR"]] * n_tl, list(m.red_light_rings)
        ),
        is_red=torch.from_numpy(is_red),
        on_route=torch.tensor([lid in set(m.route_lane_ids) for lid in m.red_light_lane_ids], dtype=torch.bool),
    )
    n_a = len(m.track_tokens)
    states = _shape("track_states", m.track_states, (n_a, None, 5)) if n_a else np.zeros((0, STEPS_V2, 5))
    unknown = [t for t in m.track_types if t not in OBJECT_TYPE_CODE]
    if unknown:
        raise SceneFormatError(f"metric cache arrays: unknown tracked-object type {unknown[0]!r}")
    present = ~np.isnan(states[..., 0])
    dropped = set(m.dropped_tokens)
    agents = Agents(
        tokens=list(m.track_tokens),
        type_code=torch.tensor([OBJECT_TYPE_CODE[t] for t in m.track_types], dtype=torch.int64),
        length=torch.as_tensor(np.asarray(m.track_length, np.float64)),
        width=torch.as_tensor(np.asarray(m.track_width, np.float64)),
        states=torch.from_numpy(states.copy()),
        present_v1=torch.from_numpy(present.copy()),
        present_v2=torch.from_numpy(present[:, :STEPS_V2].copy()),
        dropped_v2=torch.tensor([t in dropped for t in m.track_tokens], dtype=torch.bool),
    )
    human = m.human_poses_8
    reference = None
    if m.reference_states is not None:
        reference = ReferencePlan(
            torch.from_numpy(_shape("reference_states", m.reference_states, (STEPS_V2, NUM_STATE)))
        )
    return Scene(
        scene_id=m.token or f"{m.log_name}@{m.t0_us}",
        t0_us=int(m.t0_us),
        ego=ego or EgoParams(),
        history=EgoHistory(
            torch.from_numpy(init.copy()), torch.from_numpy(past.copy()), torch.from_numpy(comfort.copy())
        ),
        map=MapGeometry(drivable=drivable, intersections=intersections),
        route=route,
        traffic_lights=lights,
        agents=agents,
        human_poses_8=torch.from_numpy(_shape("human_poses_8", human, (8, 3)).copy())
        if human is not None
        else torch.full((8, 3), float("nan"), dtype=torch.float64),
        human_poses_40=None,
        previous=None,
        reference=reference,
        meta={"source": "navsim_metric_cache", "log_name": m.log_name},
    )

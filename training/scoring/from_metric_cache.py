"""navsim metric cache → the fast scorer's `Scene` (so teachers come from the official maps and logs).

navsim's `run_metric_caching` writes one `metric_cache.pkl` per scene token: an lzma-compressed pickle of
`navsim.planning.metric_caching.metric_cache.MetricCache` (navsim v2.2: `log_name`, `timepoint`, `scene_type`,
`trajectory` (PDM-Closed, an `InterpolatedTrajectory` of nuPlan `EgoState`s), `human_trajectory` (navsim
`Trajectory`, 8 poses at 0.5 s; None for synthetic scenes), `past_human_trajectory` (`InterpolatedTrajectory`,
−1.5 … 0 s), `ego_state`, `observation` (`PDMObservation`: `detections_tracks`, the 41 interpolated
`DetectionsTracks` of t0 … 4 s that navsim's log replay scores against, and one `PDMOccupancyMap` per step in
which red lights on the route appear as tokens `red_light_<lane connector id>` with the connector's polygon),
`centerline` (`PDMPath`: `discrete_path`, a list of `StateSE2`), `route_lane_ids`, `drivable_area_map`
(`PDMDrivableMap`: `tokens`, `map_types` (nuPlan `SemanticMapLayer`), a polygon per token),
`past_detections_tracks`, `current_tracked_objects` (t0), `future_tracked_objects` (t0 + 0.1 s …), `map_parameters`)
— read from navsim's `metric_cache.py`, `metric_cache_processor.py`, `pdm_observation.py`, `pdm_occupancy_map.py`,
`pdm_path.py` and `log_replay_traffic_agents.py` (main @ 0a380a9).

Two steps, so the conversion itself is testable without navsim:

* `arrays_from_metric_cache(cache)` reads the navsim/nuPlan objects into plain numpy (`MetricCacheArrays`)
  through their public attributes and methods only, sampled exactly where navsim samples them: the PDM-Closed
  reference with `get_state_at_times` at navsim's `get_trajectory_as_array` times, the History Comfort states at
  the times of `PDMScorer._calculate_history_comfort`, the tracks from `observation.detections_tracks` (what
  `LogReplayTrafficAgents` replays; `dropped_v2` = the tracks it drops because their t0 box overlaps the ego).
  It needs the real objects, hence navsim installed to unpickle them.
* `scene_from_arrays(arrays)` builds the `training.scoring.scene.Scene` (pure numpy/torch).

Extended Comfort needs the previous frame: navsim compares a token's simulated plan with the one of the token 0.5 s
earlier in the same log (`infer_start_adjacent_mapping`, `SceneAggregator`). One cache does not hold it;
`link_previous` / `scenes_from_cache_folder` pair the caches of a folder by navsim's rule and use the previous
frame's logged future as its plan (as the scorer fixture does). A cache without a predecessor gets EPDMS without
EC (weights /14), as navsim reports it then.

`load_metric_cache(path)` unpickles a cache file. Pickle runs code from the file: load only caches you produced
with navsim yourself. navsim is imported lazily; without it the loader raises one clear ImportError.

Not in a v2 cache: v1's 5 s observation (`agents.present_v1` covers the cached 4 s, so v1 TTC near the end can
differ from NAVSIM v1).
"""

from __future__ import annotations

import itertools
import lzma
import pickle
from collections.abc import Iterator
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
    PreviousFrame,
    ReferencePlan,
    Route,
    Scene,
    SceneFormatError,
    TrafficLights,
)
from training.scoring.simulation import interpolate_plan, simulate

RED_LIGHT_PREFIX = "red_light_"
STEPS_V2 = 41  # 0 … 4 s at 0.1 s
DT = 0.1


@dataclass
class MetricCacheArrays:
    """One metric cache as plain arrays. Global frame (nuPlan UTM, x east, y north, heading CCW), metres, seconds.

    Ego states are (…, 11) in `training.scoring.scene.EGO_STATE_FIELDS` order at the rear axle. Polygons are
    exterior rings without the closing vertex. `track_states` (A, T, 5) = centre x, y, heading, vx, vy per 0.1 s
    step from t0 (NaN where absent); `red_light_is_red` (L, T).

    `previous_state` / `previous_plan_8` (the frame 0.5 s earlier: its logged state and its logged future, 8 poses
    in its own rear-axle frame) feed Extended Comfort; None when no previous frame is known (EC is then left
    out, as navsim does for a token without an adjacent predecessor).
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
    scene_type: str = "ORIGINAL"  # navsim SceneFrameType name (ORIGINAL / SYNTHETIC)
    previous_state: np.ndarray | None = None  # (11,) at t0 − 0.5 s
    previous_plan_8: np.ndarray | None = None  # (8, 3) in the previous frame's rear-axle frame


# ----------------------------------------------------------------------------------------------------------------
# navsim objects → arrays (needs the real objects; their public attributes and methods only)


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
    """Linear interpolation of (N, 11) states at `at_us` (clamped to the covered span; heading unwrapped). For
    arrays that are not navsim objects; objects are sampled with their own `get_state_at_times`."""
    order = np.argsort(times_us)
    t, s = times_us[order].astype(np.float64), states[order].copy()
    s[:, 2] = np.unwrap(s[:, 2])
    out = np.stack([np.interp(at_us.astype(np.float64), t, s[:, j]) for j in range(s.shape[1])], -1)
    out[:, 2] = (out[:, 2] + np.pi) % (2 * np.pi) - np.pi
    return out


def _states_at(traj: Any, times_us: np.ndarray) -> np.ndarray:
    """States of a nuPlan `InterpolatedTrajectory` at the given times (clamped to its span, as navsim clamps)."""
    from nuplan.common.actor_state.state_representation import TimePoint

    lo, hi = int(traj.start_time.time_us), int(traj.end_time.time_us)
    points = [TimePoint(int(t)) for t in np.clip(times_us, lo, hi)]
    return np.stack([ego_state_array(s) for s in traj.get_state_at_times(points)])


def navsim_future_times_us(t0_us: int, horizon_s: float = 4.0, interval_s: float = DT) -> np.ndarray:
    """navsim's `get_trajectory_as_array` sample times: arange(0, horizon + interval, interval) + t0 in seconds,
    then int(· × 1e6) (the same float arithmetic, so the same microseconds)."""
    times_s = np.arange(0.0, horizon_s + interval_s, interval_s) + t0_us * 1e-6  # TimePoint.time_s
    return np.array([int(t * 1e6) for t in times_s], np.int64)


def history_comfort_times_us(traj: Any) -> np.ndarray:
    """navsim's History Comfort samples of the past human trajectory (`PDMScorer._calculate_history_comfort`):
    arange(start, end, 0.1 s) without its last element."""
    start, end = int(traj.start_time.time_us), int(traj.end_time.time_us)
    return np.arange(start, end, int(DT * 1e6), dtype=np.int64)[:-1]


def _ring(polygon: Any) -> np.ndarray:
    return np.asarray(polygon.exterior.coords, dtype=np.float64)[:-1, :2]


def _past_states(cache: Any, t0: int) -> tuple[np.ndarray, np.ndarray]:
    past = cache.past_human_trajectory
    comfort_t = history_comfort_times_us(past)
    if len(comfort_t) != 14:
        span = (int(past.end_time.time_us) - int(past.start_time.time_us)) / 1e6
        raise SceneFormatError(
            f"metric cache: past_human_trajectory spans {span:.2f} s ({len(comfort_t)} History Comfort samples); "
            "expected navsim's 1.5 s (14 samples)"
        )
    comfort = _states_at(past, comfort_t)
    at = t0 + np.round(np.arange(-1.5, 0.01, 0.5) * 1e6).astype(np.int64)
    return _states_at(past, at), comfort


def _tracks(cache: Any) -> tuple[list[str], list[str], list[float], list[float], np.ndarray, list[str]]:
    """Tracked objects of the v2 log-replay observation: `observation.detections_tracks` (t0 … 4 s at 10 Hz, what
    navsim's `LogReplayTrafficAgents` replays); tracks whose t0 box overlaps the ego footprint are the ones log
    replay drops."""
    frames = list(cache.observation.detections_tracks)[:STEPS_V2]
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
            vel = getattr(obj, "velocity", None)  # agents have one; static objects do not
            vx, vy = (float(vel.x), float(vel.y)) if vel is not None else (0.0, 0.0)
            rows.append((index[tok], k, [c.x, c.y, c.heading, vx, vy]))
    states = np.full((len(tokens), STEPS_V2, 5), np.nan)
    for a, k, s in rows:
        states[a, k] = s
    dropped: list[str] = []
    if frames:
        ego_box = cache.ego_state.car_footprint.oriented_box.geometry
        dropped = [
            str(o.metadata.track_token)
            for o in frames[0].tracked_objects.tracked_objects
            if o.box.geometry.intersects(ego_box)
        ]
    return tokens, types, length, width, states, dropped


def _red_lights(cache: Any) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """Red lights on the route per step: the observation's occupancy-map tokens `red_light_<lane connector id>`."""
    obs = cache.observation
    n = min(STEPS_V2, len(obs.detections_tracks))
    red: dict[str, np.ndarray] = {}
    rings: dict[str, np.ndarray] = {}
    for k in range(n):
        occ = obs[k]
        for tok in occ.tokens:
            if str(tok).startswith(RED_LIGHT_PREFIX):
                lane = str(tok)[len(RED_LIGHT_PREFIX) :]
                red.setdefault(lane, np.zeros(STEPS_V2, bool))[k] = True
                rings.setdefault(lane, _ring(occ[tok]))
    is_red = np.stack(list(red.values())) if red else np.zeros((0, STEPS_V2), bool)
    return list(red), [rings[k] for k in red], is_red


def arrays_from_metric_cache(cache: Any, token: str = "", previous: Any = None) -> MetricCacheArrays:
    """Read a navsim `MetricCache` object (see the module docstring) into `MetricCacheArrays`. `previous` is the
    metric cache of the same log 0.5 s earlier, for Extended Comfort (`adjacent_previous` finds it)."""
    ego = cache.ego_state
    t0 = int(ego.time_us)
    past, comfort = _past_states(cache, t0)
    reference = _states_at(cache.trajectory, navsim_future_times_us(t0))[:STEPS_V2]
    dm = cache.drivable_area_map
    ids = [str(t) for t in dm.tokens]
    layers = [getattr(m, "name", str(m)) for m in dm.map_types]
    rings = [_ring(dm[t]) for t in dm.tokens]
    centerline = np.array([[p.x, p.y, p.heading] for p in cache.centerline.discrete_path], dtype=np.float64)
    red_ids, red_rings, is_red = _red_lights(cache)
    tokens, types, length, width, states, dropped = _tracks(cache)
    human = getattr(cache, "human_trajectory", None)
    prev_state = prev_plan = None
    if previous is not None:
        prev_human = getattr(previous, "human_trajectory", None)
        if prev_human is None:
            raise SceneFormatError("metric cache: the previous frame has no human_trajectory (a synthetic scene)")
        prev_state = ego_state_array(previous.ego_state)
        prev_plan = np.asarray(prev_human.poses, np.float64)[:8, :3]
    scene_type = getattr(cache, "scene_type", None)
    return MetricCacheArrays(
        token=token,
        log_name=str(getattr(cache, "log_name", "")),
        t0_us=t0,
        initial_state=ego_state_array(ego),
        past_states=past,
        comfort_states=comfort,
        drivable_ids=ids,
        drivable_layers=layers,
        drivable_rings=rings,
        route_lane_ids=[str(x) for x in cache.route_lane_ids],
        centerline=centerline,
        red_light_lane_ids=red_ids,
        red_light_rings=red_rings,
        red_light_is_red=is_red,
        track_tokens=tokens,
        track_types=types,
        track_length=np.asarray(length, np.float64),
        track_width=np.asarray(width, np.float64),
        track_states=states,
        dropped_tokens=dropped,
        human_poses_8=None if human is None else np.asarray(human.poses, np.float64)[:8, :3],
        reference_states=reference,
        scene_type=getattr(scene_type, "name", "ORIGINAL") if scene_type is not None else "ORIGINAL",
        previous_state=prev_state,
        previous_plan_8=prev_plan,
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


def scene_from_metric_cache(path: str | Path, previous: str | Path | None = None) -> Scene:
    """`load_metric_cache` + `arrays_from_metric_cache` + `scene_from_arrays`; the token is the parent folder name
    (navsim writes `<cache>/<log>/<scenario type>/<token>/metric_cache.pkl`). `previous`: the cache of the same
    log 0.5 s earlier, for Extended Comfort (a folder: `scenes_from_cache_folder` pairs them as navsim does)."""
    path = Path(path)
    prev = None if previous is None else load_metric_cache(previous)
    return scene_from_arrays(arrays_from_metric_cache(load_metric_cache(path), token=path.parent.name, previous=prev))


# ----------------------------------------------------------------------------------------------------------------
# arrays → Scene (pure)


def simulate_logged_plan(state: np.ndarray, plan_8: np.ndarray, ego: EgoParams) -> np.ndarray:
    """NAVSIM's simulation (LQR tracker + bicycle model, 0 … 4 s at 0.1 s) of an ego-frame plan (8, 3) at 0.5 s
    from `state` (11,) → (41, 11) global states: what navsim stores as a token's `ego_simulated_states` and compares
    across two frames for Extended Comfort. Computed around the state's own position (UTM coordinates are large)."""
    local = torch.from_numpy(np.asarray(state, np.float64).copy())
    offset = local[:2].clone()
    local[:2] = 0.0
    ref = interpolate_plan(torch.from_numpy(np.asarray(plan_8, np.float64)[None].copy()), 0.5, local[:3])
    sim = simulate(ref, local, ego.wheel_base)[0].clone()
    sim[:, :2] += offset
    return sim.numpy()


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
    previous = None
    if m.previous_state is not None and m.previous_plan_8 is not None:
        prev_state = _shape("previous_state", m.previous_state, (NUM_STATE,))
        prev_plan = _shape("previous_plan_8", m.previous_plan_8, (8, 3))
        previous = PreviousFrame(
            state=torch.from_numpy(prev_state.copy()),
            plan_poses_8=torch.from_numpy(prev_plan.copy()),
            simulated_states=torch.from_numpy(simulate_logged_plan(prev_state, prev_plan, ego or EgoParams())),
        )
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
        previous=previous,
        reference=reference,
        meta={"source": "navsim_metric_cache", "log_name": m.log_name, "scene_type": m.scene_type},
    )


# ----------------------------------------------------------------------------------------------------------------
# folders of caches: navsim's layout, its index and its adjacent-frame rule for Extended Comfort

CACHE_FILE = "metric_cache.pkl"
ADJACENT_GAP_S = 0.55  # navsim run_pdm_score_one_stage.infer_start_adjacent_mapping(time_gap_threshold)


def metric_cache_files(root: str | Path) -> list[Path]:
    """The `metric_cache.pkl` files of a navsim metric-cache folder, sorted by path relative to `root`.

    navsim's `run_metric_caching` writes `<root>/<log>/<scenario type>/<token>/metric_cache.pkl` and an index
    `<root>/metadata/*.csv` (a header line, then one path per line); the index is used when present (a path it
    lists that does not exist is an error), otherwise the folder is searched."""
    root = Path(root)
    if not root.is_dir():
        raise SceneFormatError(f"{root}: not a folder of navsim metric caches")
    csvs = sorted((root / "metadata").glob("*.csv")) if (root / "metadata").is_dir() else []
    if csvs:
        files: list[Path] = []
        for csv in csvs:
            for n, line in enumerate(csv.read_text(encoding="utf-8").splitlines()[1:], start=2):
                if not line.strip():
                    continue
                p = Path(line.strip())
                p = p if p.is_absolute() else root / p
                if not p.is_file():
                    raise SceneFormatError(f"{csv}:{n}: lists {p}, which does not exist")
                files.append(p)
    else:
        files = list(root.rglob(CACHE_FILE))
    return sorted(set(files), key=lambda p: p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p))


def link_previous(caches: list[MetricCacheArrays]) -> int:
    """Give each cache the frame before it, as navsim pairs tokens for two-frame Extended Comfort
    (`infer_start_adjacent_mapping`): ORIGINAL frames of the same log sorted by start time, each with its
    predecessor when the gap is ≤ 0.55 s. The previous plan is that frame's logged future (its human trajectory).
    Returns how many caches got a previous frame; the others keep None (navsim leaves EC out for them)."""
    logs: dict[str, list[MetricCacheArrays]] = {}
    for c in caches:
        if c.scene_type == "ORIGINAL":
            logs.setdefault(c.log_name, []).append(c)
    linked = 0
    for frames in logs.values():
        frames.sort(key=lambda c: c.t0_us)
        for prev, cur in itertools.pairwise(frames):
            if abs(cur.t0_us - prev.t0_us) / 1e6 <= ADJACENT_GAP_S and prev.human_poses_8 is not None:
                cur.previous_state = prev.initial_state.copy()
                cur.previous_plan_8 = prev.human_poses_8.copy()
                linked += 1
    return linked


def scenes_from_cache_folder(root: str | Path, files: list[Path] | None = None) -> Iterator[tuple[Path, Scene]]:
    """(path, Scene) for the caches of a navsim metric-cache folder (`files`: a subset of `metric_cache_files`),
    log folder by log folder: the caches of one log are read once, linked to their previous frames
    (`link_previous`) and converted; only one log's caches are held at a time."""
    root = Path(root)
    every = metric_cache_files(root)
    wanted = set(every if files is None else files)
    groups: dict[Path, list[Path]] = {}
    for p in every:  # navsim layout: <log>/<scenario type>/<token>/metric_cache.pkl
        groups.setdefault(p.parents[2] if len(p.parents) > 2 else p.parent, []).append(p)
    for members in groups.values():
        if not wanted.intersection(members):
            continue
        arrays = {p: arrays_from_metric_cache(load_metric_cache(p), token=p.parent.name) for p in members}
        link_previous(list(arrays.values()))
        for p in members:
            if p in wanted:
                yield p, scene_from_arrays(arrays[p])

"""Scorer scenes from CARLA-side logs: `carla_tools.snapshots` logs and Bench2Drive clips.

Two sources, one converter. Each source is read into the same intermediate, a `Log` (a time-ordered list of
`LogFrame`s of one town), and `scene_dict` turns a `Log` and a current frame into a scene of the scorer's file
format (`navsim_scorer_fixture/1.x`, docs/scorer.md), which `scene_from_dict` reads like any fixture scene:

* `log_from_carla_snapshots(records)`: per-frame records of `carla_tools.snapshots.SnapshotLogger`
  (`drive_jepa_carla_snapshot/1`, usually 20 Hz);
* `log_from_world_snapshots(snapshots)`: Bench2Drive `drive_jepa_world/1.0` snapshots (10 Hz);
  `read_bench2drive_clip(clip_dir)` builds them for every annotated frame of a clip folder.

Frames and units: everything is in drive-jepa's WORLD frame (right-handed: x east, y north = −y_CARLA, metres;
headings CCW radians), the same frame `carla_tools.sumo_map` gives the town map in; scene times are 0.1 s steps
from the current frame t0. Pose math goes through `drive_jepa.frames`.

What a scene holds and where it comes from:

* map: the town's SUMO net (`carla_tools.sumo_map.load_sumo_net`), clipped to a square of ±`map_radius_m`
  around the ego;
* ego: rear-axle poses interpolated onto the 0.1 s grid; velocity, acceleration, yaw rate/acceleration and
  steering angle (kinematic bicycle) by central differences; initial state, past states (−1.5, −1.0, −0.5, 0 s)
  and History-Comfort states (−1.5 … −0.2 s);
* human trajectory: the logged ego's future rear-axle poses (0.1 … 4.0 s) in EGO_REAR_AXLE;
* route: the lanes the logged ego drives on (map matching of its rear axle from t0 − 1.5 s to t0 + 20 s,
  heading within 60° of the lane), extended beyond the log by the straightest successor lanes; route lanes =
  every lane of the roadblocks (SUMO edges) of those lanes; centreline = the matched lanes' centrelines, cut at
  the projection of the ego path where the ego changes to a lane that is not a successor;
* traffic lights: each light is mapped to the lane connectors it controls (from its stop points for CARLA logs:
  the lane under each point, then its connector successors; from its trigger box for Bench2Drive: lanes whose
  centreline crosses the box within `trigger_reach_m` of their end, then their connector successors); red per
  0.1 s step, sample-and-hold between frames;
* agents: every actor within `agent_radius_m`, linearly interpolated between consecutive frames (heading on the
  circle) over 0 … 5 s, present only where two bracketing frames hold it;
* PDM-Closed reference for EP: NOT NAVSIM's PDM-Closed planner. `reference="expert"` (default): the logged
  expert's own 41 future states; `reference="idm"`: one IDM rollout along the route centreline at the lane's
  speed limit behind the logged agents and before red route connectors (PDM-Closed's centreline proposal at
  100 % of the limit, without its other 14 proposals and their scoring). See docs/scorer.md, "Scenes from
  CARLA logs", for how both differ.

Gaps raise `LogError` with one line naming the log and what is missing (frames, town, traffic-light geometry).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from drive_jepa import frames as F
from drive_jepa.atomic import atomic_file, write_text_atomic
from training.scoring.scene import Scene, scene_from_dict

SCENE_FORMAT = "navsim_scorer_fixture/1.0"
DT = 0.1
HISTORY_STEPS = 15  # 1.5 s
FUTURE_STEPS = 40  # 4.0 s (v2, the vocabulary horizon)
V1_STEPS = 51  # v1's observation spans 5 s
# the town nets that ship with the package (Town01-07, Town10HD; the same files as ../shared/fixtures/carla_maps)
DEFAULT_MAPS_DIR = Path(__file__).resolve().parents[2] / "carla_tools" / "lite" / "maps"
_TOWN_RE = re.compile(r"(Town\d+(?:HD)?)", re.IGNORECASE)


class LogError(ValueError):
    """A log cannot be turned into scenes (gap in frames, unknown town, missing field)."""


# ------------------------------------------------------------------------------------------------------------
# the shared intermediate


@dataclass
class LightObs:
    """A traffic light in one frame: red or not, and the geometry that says which lanes it controls."""

    id: str
    is_red: bool
    stop_points: np.ndarray  # (k, 3) WORLD x, y, heading at the stop lines (CARLA logs); (0, 3) if unknown
    trigger: np.ndarray | None  # (4, 2) WORLD corners of the trigger volume (Bench2Drive); None if unknown


@dataclass
class LogFrame:
    """One frame of a log. `actor_states` (n, 7): box centre x, y, heading, vx, vy, length, width (WORLD)."""

    frame: int
    t_s: float
    ego_rear: np.ndarray  # (3,) WORLD rear-axle pose
    actor_ids: list[str]
    actor_types: list[str]  # nuPlan tracked-object type names
    actor_states: np.ndarray
    lights: list[LightObs]


@dataclass
class Log:
    """A time-ordered sequence of frames in one town, with the ego vehicle's geometry."""

    name: str
    town: str
    frames: list[LogFrame]
    geometry: F.VehicleGeometry = F.LINCOLN_MKZ_2020

    def __post_init__(self) -> None:
        if not self.frames:
            raise LogError(f"{self.name}: no frames")
        self.frames.sort(key=lambda f: f.t_s)
        self.times = np.array([f.t_s for f in self.frames])
        self.ego_rear = np.stack([f.ego_rear for f in self.frames])


@dataclass(frozen=True)
class SceneConfig:
    """Scene extraction settings (metres / seconds)."""

    every_s: float = 0.5  # current frames at multiples of this time (0.5 s: Bench2Drive frames % 5 == 0)
    max_gap_s: float = 0.2  # consecutive frames further apart than this inside a scene window are a gap
    map_radius_m: float = 100.0  # half-size of the map square around the ego kept in the scene
    agent_radius_m: float = 80.0  # actors ever closer than this to the ego at t0 are kept
    route_horizon_s: float = 20.0  # the logged ego path up to t0 + this many seconds gives the route
    route_extension_m: float = 120.0  # route centreline continued this far beyond that path
    trigger_reach_m: float = 25.0  # a trigger box controls a lane only if it lies this close to the lane's end
    max_heading_diff: float = math.radians(60.0)  # map matching: lane direction vs ego / stop-point heading
    reference: str = "expert"  # EP reference: "expert" (logged future) or "idm" (centreline IDM rollout)
    # IDM of the "idm" reference: PDM-Closed's policy parameters (NAVSIM/tuplan_garage pdm_closed_planner config:
    # min gap 1 m, headway 1.5 s, accel 1.5 m/s², decel 3 m/s², target = fraction x speed limit, fallback 15 m/s;
    # `batch_idm_policy.py` hard-codes the acceleration exponent 10)
    idm_min_gap_m: float = 1.0
    idm_headway_s: float = 1.5
    idm_accel: float = 1.5
    idm_decel: float = 3.0
    idm_exponent: float = 10.0
    idm_fallback_speed: float = 15.0


# ------------------------------------------------------------------------------------------------------------
# sources → Log


def _town(name: str | None, where: str) -> str:
    m = _TOWN_RE.search(name or "")
    if m is None:
        raise LogError(f"{where}: no town (expected a name like 'Town01'); pass the town explicitly")
    t = m.group(1)
    return "Town" + t[4:].upper() if t.lower().endswith("hd") else "Town" + t[4:]


def log_from_carla_snapshots(
    records: Sequence[dict[str, Any]],
    name: str,
    town: str | None = None,
    geometry: F.VehicleGeometry = F.LINCOLN_MKZ_2020,
) -> Log:
    """`carla_tools.snapshots` records (one per frame) -> Log. Town: argument, else the records' `town`."""
    if not records:
        raise LogError(f"{name}: empty snapshot log")
    town = _town(town or records[0].get("town"), name)
    frames = []
    for rec in records:
        fr = int(rec["frame"])
        acts = rec.get("actors", [])
        states = np.array(
            [[a["x"], a["y"], a["heading"], a["vx"], a["vy"], a["length"], a["width"]] for a in acts], np.float64
        ).reshape(len(acts), 7)
        lights = []
        for tl in rec.get("traffic_lights", []):
            pts = np.asarray(tl.get("stop_points") or [], np.float64).reshape(-1, 3)
            if len(pts) == 0 and tl.get("lanes"):
                raise LogError(
                    f"{name}: frame {fr}: traffic light {tl['id']} has no 'stop_points' (logged by an older "
                    "SnapshotLogger); cannot map it to lane connectors"
                )
            lights.append(LightObs(str(tl["id"]), str(tl.get("state", "")).lower() == "red", pts, None))
        frames.append(
            LogFrame(
                frame=fr,
                t_s=float(rec["t_s"]),
                ego_rear=np.asarray(rec["ego"]["rear_axle"], np.float64),
                actor_ids=[str(a["id"]) for a in acts],
                actor_types=[str(a["type"]) for a in acts],
                actor_states=states,
                lights=lights,
            )
        )
    return Log(name, town, frames, geometry)


def log_from_world_snapshots(snapshots: Sequence[Any], name: str | None = None) -> Log:
    """Bench2Drive `drive_jepa_world/1.0` snapshots (`WorldSnapshot` objects) of one clip -> Log."""
    from carla_tools.snapshots import object_type

    if not snapshots:
        raise LogError(f"{name}: no world snapshots")
    first = snapshots[0]
    name = name or first.clip
    town = _town(first.town or first.clip, name)
    ego_box = first.ego.box
    geometry = F.VehicleGeometry(
        length=ego_box.length,
        width=ego_box.width,
        rear_axle_to_center=first.ego.rear_axle_to_center,
        wheel_base=F.LINCOLN_MKZ_2020.wheel_base,
        name="bench2drive ego",
    )
    frames = []
    for s in snapshots:
        acts = s.actors
        b = np.array(
            [[a.box.x, a.box.y, a.box.heading, a.speed, a.box.length, a.box.width] for a in acts], np.float64
        ).reshape(len(acts), 6)
        # speeds are along the heading (world_snapshot.py); the velocity vector follows
        vel = F.points_to_global(
            np.stack([b[:, 3], np.zeros(len(b))], -1), np.stack([0 * b[:, 0], 0 * b[:, 0], b[:, 2]], -1)
        )
        states = np.concatenate([b[:, :3], vel, b[:, 4:6]], 1)
        types = [
            "PEDESTRIAN" if a.kind == "walker" else object_type(a.type_id) if a.kind == "static_object" else "VEHICLE"
            for a in acts
        ]
        lights = []
        for tl in s.traffic_lights:
            tb = tl.trigger
            hl, hw = tb.length / 2, tb.width / 2
            corners = F.points_to_global(
                np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]]), np.array([tb.x, tb.y, tb.heading])
            )
            lights.append(LightObs(str(tl.id), tl.state == "red", np.zeros((0, 3)), corners))
        frames.append(
            LogFrame(
                frame=int(s.frame),
                t_s=float(s.time_s),
                ego_rear=np.asarray(s.ego.rear_axle, np.float64),
                actor_ids=[str(a.id) for a in acts],
                actor_types=types,
                actor_states=states,
                lights=lights,
            )
        )
    return Log(name, town, frames, geometry)


def read_bench2drive_clip(clip_dir: Path, name: str | None = None) -> Log:
    """Every annotated frame of a Bench2Drive clip folder (`<clip>/anno/*.json.gz`) -> Log (10 Hz)."""
    from training.data.bench2drive_reader import B2D_FPS, read_anno, world_snapshot

    clip_dir = Path(clip_dir)
    name = name or clip_dir.name
    files = sorted((clip_dir / "anno").glob("*.json.gz"))
    numbered = [(int(p.name.split(".")[0]), p) for p in files if p.name.split(".")[0].isdigit()]
    if not numbered:
        raise LogError(f"{clip_dir}/anno: no <frame>.json.gz annotations")
    snaps = []
    prev: dict[str, Any] | None = None
    prev_frame: int | None = None
    for fr, path in numbered:
        anno = read_anno(path)
        snaps.append(world_snapshot(anno, path, name, fr, B2D_FPS, prev=prev if prev_frame == fr - 1 else None))
        prev, prev_frame = anno, fr
    if not snaps[0].town:
        raise LogError(f"{clip_dir}: no town in the clip name (expected e.g. 'Town01_weather3_route12')")
    return log_from_world_snapshots(snaps, name)


# ------------------------------------------------------------------------------------------------------------
# town map (cached per file)


@dataclass
class TownMap:
    """A converted town (`sumo_map` dict) plus the lookups the converter needs (full town, WORLD)."""

    town: str
    data: dict[str, Any]
    lanes: dict[str, dict[str, Any]] = field(default_factory=dict)
    lane_ids: list[str] = field(default_factory=list)
    polys: list[Any] = field(default_factory=list)  # shapely lane polygons, index-aligned with lane_ids
    lines: dict[str, Any] = field(default_factory=dict)  # shapely centrelines
    tree: Any = None
    by_roadblock: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import shapely

        self.lanes = {ln["id"]: ln for ln in self.data["lanes"]}
        self.lane_ids = list(self.lanes)
        self.polys = [shapely.Polygon(self.lanes[i]["polygon"]).buffer(0) for i in self.lane_ids]
        self.lines = {i: shapely.LineString(np.asarray(ln["centerline"])[:, :2]) for i, ln in self.lanes.items()}
        self.tree = shapely.STRtree(self.polys)
        for lid, ln in self.lanes.items():
            self.by_roadblock.setdefault(ln["roadblock_id"], []).append(lid)

    def heading_at(self, lane_id: str, xy: np.ndarray) -> float:
        """Lane direction (rad) at the centreline point nearest to xy."""
        cl = np.asarray(self.lanes[lane_id]["centerline"])
        k = int(np.argmin(np.hypot(cl[:, 0] - xy[0], cl[:, 1] - xy[1])))
        k = min(k, len(cl) - 2)
        d = cl[k + 1, :2] - cl[k, :2]
        return math.atan2(d[1], d[0])

    def match(self, poses: np.ndarray, max_dh: float, connectors: bool = True) -> list[str | None]:
        """WORLD poses (n, 3) -> the lane under each (heading within max_dh; closest heading wins) or None."""
        import shapely

        pts = shapely.points(poses[:, :2])
        pi, li = self.tree.query(pts, predicate="intersects")
        best: list[tuple[float, str] | None] = [None] * len(poses)
        for p, lk in zip(pi.tolist(), li.tolist(), strict=True):
            lid = self.lane_ids[lk]
            if not connectors and self.lanes[lid]["type"] == "LANE_CONNECTOR":
                continue
            dh = abs(float(F.wrap_angle(np.asarray(self.heading_at(lid, poses[p]) - poses[p, 2]))))
            cur = best[p]
            if dh <= max_dh and (cur is None or dh < cur[0]):
                best[p] = (dh, lid)
        return [None if b is None else b[1] for b in best]

    def connector_successors(self, lane_ids: Sequence[str]) -> list[str]:
        out: list[str] = []
        for lid in lane_ids:
            for s in self.lanes[lid]["successors"]:
                if self.lanes[s]["type"] == "LANE_CONNECTOR" and s not in out:
                    out.append(s)
        return out


@lru_cache(maxsize=8)
def _load_town(path: str, town: str) -> TownMap:
    from carla_tools.sumo_map import load_sumo_net

    return TownMap(town, load_sumo_net(path))


def town_map(town: str, maps_dir: Path | None = None) -> TownMap:
    """The converted map of `town` from `maps_dir/<town>.net.xml[.gz]` (cached)."""
    maps_dir = Path(maps_dir or DEFAULT_MAPS_DIR)
    for suffix in (".net.xml.gz", ".net.xml"):
        p = maps_dir / f"{town}{suffix}"
        if p.is_file():
            return _load_town(str(p.resolve()), town)
    have = sorted(p.name.split(".")[0] for p in maps_dir.glob("*.net.xml*")) if maps_dir.is_dir() else []
    raise LogError(
        f"unknown town {town!r}: no {maps_dir}/{town}.net.xml[.gz] (towns there: {', '.join(have) or 'none'})"
    )


# ------------------------------------------------------------------------------------------------------------
# scene assembly


def scene_frames(log: Log, cfg: SceneConfig = SceneConfig()) -> list[int]:
    """Indices of the frames that can be current frames: the frame nearest to each multiple of `every_s` (if
    closer than half the median frame interval: a log whose clock is offset from the grid still gets scenes),
    with 1.5 s of history and 4 s of future inside the log (gaps inside the window are reported by
    `scene_dict`, not skipped here)."""
    t = log.times
    if len(t) < 2:
        return []
    tol = 0.5 * float(np.median(np.diff(t))) - 1e-9
    grid = cfg.every_s * np.arange(math.ceil(t[0] / cfg.every_s - 1e-9), math.floor(t[-1] / cfg.every_s + 1e-9) + 1)
    j = np.clip(np.searchsorted(t, grid), 1, len(t) - 1)
    j = np.where(np.abs(t[j - 1] - grid) <= np.abs(t[j] - grid), j - 1, j)
    ok = np.abs(t[j] - grid) < max(tol, 1e-6)
    ok &= (t[j] - HISTORY_STEPS * DT >= t[0] - 1e-6) & (t[j] + FUTURE_STEPS * DT <= t[-1] + 1e-6)
    return sorted({int(x) for x in j[ok]})


def _check_window(log: Log, t_lo: float, t_hi: float, cfg: SceneConfig) -> None:
    t = log.times
    if t_lo < t[0] - 1e-6 or t_hi > t[-1] + 1e-6:
        raise LogError(
            f"{log.name}: frames cover {t[0]:.2f}-{t[-1]:.2f} s, a scene needs {t_lo:.2f}-{t_hi:.2f} s "
            "(1.5 s history, 4 s future)"
        )
    lo = max(int(np.searchsorted(t, t_lo + 1e-9, "right")) - 1, 0)
    hi = min(int(np.searchsorted(t, t_hi - 1e-9, "left")), len(t) - 1)
    gaps = np.diff(t[lo : hi + 1])
    if len(gaps) and gaps.max() > cfg.max_gap_s + 1e-9:
        k = lo + int(np.argmax(gaps))
        raise LogError(
            f"{log.name}: missing frames between frame {log.frames[k].frame} (t={t[k]:.2f} s) and "
            f"{log.frames[k + 1].frame} (t={t[k + 1]:.2f} s): gap {gaps.max():.2f} s > {cfg.max_gap_s} s"
        )


def _bracket(t: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bracketing frame indices (j0, j1), weight w of j1, and whether the grid time is inside the log."""
    j0 = np.clip(np.searchsorted(t, grid + 1e-9, "right") - 1, 0, len(t) - 1)
    j1 = np.clip(j0 + 1, 0, len(t) - 1)
    span = t[j1] - t[j0]
    w = np.where(span > 0, (grid - t[j0]) / np.where(span > 0, span, 1.0), 0.0)
    w = np.where(np.abs(grid - t[j0]) < 1e-9, 0.0, np.clip(w, 0.0, 1.0))
    inside = (grid >= t[0] - 1e-9) & (grid <= t[-1] + 1e-9)
    return j0, j1, w, inside


def ego_states(log: Log, t0: float) -> np.ndarray:
    """Ego rear-axle states (NAVSIM StateIndex order, 11 columns) at t0 − 1.5 … t0 + 4.0 s (56 steps, WORLD).

    Velocities/accelerations are in the ego frame (x forward, y left) by central differences of the interpolated
    poses; steering angle from the kinematic bicycle, atan(wheel_base · yaw rate / speed) (0 below 0.1 m/s).
    """
    ext = t0 + DT * np.arange(-HISTORY_STEPS - 1, FUTURE_STEPS + 2)  # one extra step each side for differences
    # at the ends of the log the extra step is dropped (one-sided differences there, no clamped poses)
    inside = (ext >= log.times[0] - 1e-9) & (ext <= log.times[-1] + 1e-9)
    lo = 0 if inside[0] else 1
    ext = ext[inside]
    poses = F.interp_poses(log.times, log.ego_rear, ext)
    h = np.unwrap(poses[:, 2])
    v_world = np.gradient(poses[:, :2], DT, axis=0)
    a_world = np.gradient(v_world, DT, axis=0)
    yaw_rate = np.gradient(h, DT)
    yaw_acc = np.gradient(yaw_rate, DT)
    rot = np.stack([np.zeros_like(h), np.zeros_like(h), h], -1)  # rotation-only origins: vectors -> ego frame
    v = F.points_to_local(v_world, rot)
    a = F.points_to_local(a_world, rot)
    speed = np.hypot(v[:, 0], v[:, 1])
    steer = np.where(speed > 0.1, np.arctan(log.geometry.wheel_base * yaw_rate / np.maximum(speed, 0.1)), 0.0)
    steer_rate = np.gradient(steer, DT)
    cols = [poses[:, 0], poses[:, 1], poses[:, 2], v[:, 0], v[:, 1], a[:, 0], a[:, 1]]
    out = np.stack([*cols, steer, steer_rate, yaw_rate, yaw_acc], -1)
    n = HISTORY_STEPS + FUTURE_STEPS + 1
    return out[1 - lo : 1 - lo + n]


def _frame_range(log: Log, t_lo: float, t_hi: float) -> range:
    """Indices of the frames with t_lo <= t <= t_hi (binary search: scenes of long logs stay O(window))."""
    lo = int(np.searchsorted(log.times, t_lo - 1e-9, "left"))
    hi = int(np.searchsorted(log.times, t_hi + 1e-9, "right"))
    return range(lo, hi)


def _box_polygon(pose: np.ndarray, length: float, width: float) -> Any:
    import shapely

    hl, hw = length / 2, width / 2
    return shapely.Polygon(F.points_to_global(np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]]), pose))


def _agents(log: Log, t0: float, origin: np.ndarray, cfg: SceneConfig) -> dict[str, Any]:
    """Tracks over t0 … t0 + 5 s (51 steps): linear interpolation between consecutive frames. Tracks whose box
    intersects the ego box at t0 are listed as dropped by v2's log replay (as NAVSIM v2 does)."""
    t_hi = t0 + (V1_STEPS - 1) * DT
    frames = [log.frames[j] for j in _frame_range(log, t0 - cfg.max_gap_s, t_hi + cfg.max_gap_s)]
    ids: dict[str, int] = {}
    types: list[str] = []
    sizes: list[np.ndarray] = []
    for f in frames:
        for aid, typ, st in zip(f.actor_ids, f.actor_types, f.actor_states, strict=True):
            if aid not in ids:
                ids[aid] = len(ids)
                types.append(typ)
                sizes.append(st[5:7])
    n_a = len(ids)
    vals = np.full((len(frames), n_a, 5), np.nan)
    for k, f in enumerate(frames):
        if f.actor_ids:
            vals[k, [ids[a] for a in f.actor_ids]] = f.actor_states[:, :5]
    t = np.array([f.t_s for f in frames])
    grid = t0 + DT * np.arange(V1_STEPS)
    j0, j1, w, inside = _bracket(t, grid)
    v0, v1 = vals[j0], vals[j1]  # (T, A, 5)
    wk = w[:, None, None]
    ok0 = np.isfinite(v0[..., 0])
    ok1 = np.isfinite(v1[..., 0]) | (w[:, None] == 0)
    gap_ok = (t[j1] - t[j0] <= cfg.max_gap_s + 1e-9)[:, None]
    present = ok0 & ok1 & inside[:, None] & gap_ok
    v1f = np.where(np.isfinite(v1), v1, v0)
    states = v0 + (v1f - v0) * wk
    dh = F.wrap_angle(v1f[..., 2] - v0[..., 2])
    states[..., 2] = F.wrap_angle(v0[..., 2] + w[:, None] * dh)
    states[~present] = np.nan
    states = states.transpose(1, 0, 2)  # (A, T, 5)
    present = present.T
    dist = np.hypot(states[..., 0] - origin[0], states[..., 1] - origin[1])
    near = np.where(present, dist, np.inf).min(axis=1) <= cfg.agent_radius_m if n_a else np.zeros(0, bool)
    keep = np.nonzero(near)[0].tolist()
    tokens = list(ids)
    geo = log.geometry
    ego_box = _box_polygon(F.rear_axle_to_center(origin, geo.rear_axle_to_center), geo.length, geo.width)
    dropped = [
        tokens[a] for a in keep if present[a, 0] and ego_box.intersects(_box_polygon(states[a, 0, :3], *sizes[a]))
    ]
    tracks = []
    for a in keep:
        tracks.append(
            {
                "token": tokens[a],
                "type": types[a],
                "length": float(sizes[a][0]),
                "width": float(sizes[a][1]),
                "states": [None if not present[a, k] else [float(x) for x in states[a, k]] for k in range(V1_STEPS)],
                "present_v1": [bool(x) for x in present[a]],
                "present_v2": [bool(x) for x in present[a, : FUTURE_STEPS + 1]],
            }
        )
    return {"tracks": tracks, "dropped_by_v2_log_replay": dropped}


def _route(log: Log, j_now: int, tm: TownMap, lane_seq: list[str | None], cfg: SceneConfig) -> dict[str, Any]:
    """Route lanes and centreline from the matched lanes of the ego path (t0 − 1.5 s … t0 + route_horizon_s)."""
    import shapely
    from shapely.ops import substring

    t0 = log.times[j_now]
    idx = _frame_range(log, t0 - HISTORY_STEPS * DT, t0 + cfg.route_horizon_s)
    runs: list[tuple[str, list[int]]] = []
    for j in idx:
        lid = lane_seq[j]
        if lid is None:
            continue
        if runs and runs[-1][0] == lid:
            runs[-1][1].append(j)
        elif any(r[0] == lid for r in runs):  # re-entering an earlier lane (matching noise): stay on the last one
            continue
        else:
            runs.append((lid, [j]))
    if not runs:
        raise LogError(
            f"{log.name}: the ego path after t={t0 - 1.5:.1f} s is on no lane of {log.town} (wrong town or frame?)"
        )
    pieces: list[np.ndarray] = []
    for r, (lid, js) in enumerate(runs):
        line = tm.lines[lid]
        prev_ok = r == 0 or lid in tm.lanes[runs[r - 1][0]]["successors"]
        next_ok = r == len(runs) - 1 or runs[r + 1][0] in tm.lanes[lid]["successors"]
        s0 = 0.0 if prev_ok else float(line.project(shapely.Point(log.ego_rear[js[0], :2])))
        s1 = line.length if next_ok else float(line.project(shapely.Point(log.ego_rear[js[-1], :2])))
        if s1 - s0 > 0.05:
            pieces.append(np.asarray(substring(line, s0, s1).coords)[:, :2])
    lanes = [lid for lid, _ in runs]
    # continue beyond the log: straightest successor, until route_extension_m past the last logged position
    last_xy = log.ego_rear[idx[-1], :2]
    ahead = tm.lines[lanes[-1]].length - tm.lines[lanes[-1]].project(shapely.Point(last_xy))
    cur = lanes[-1]
    while ahead < cfg.route_extension_m and len(lanes) < 200:
        succ = [s for s in tm.lanes[cur]["successors"] if s not in lanes]
        if not succ:
            break
        h_end = np.asarray(tm.lanes[cur]["centerline"])[-1, 2]
        cur = min(succ, key=lambda s: abs(float(F.wrap_angle(np.asarray(tm.lanes[s]["centerline"][0][2] - h_end)))))
        lanes.append(cur)
        pieces.append(np.asarray(tm.lines[cur].coords))
        ahead += tm.lines[cur].length
    xy = np.concatenate(pieces, 0)
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-6])
    xy = xy[keep]
    d = np.diff(xy, axis=0)
    head = np.arctan2(d[:, 1], d[:, 0])
    centre = np.concatenate([xy, np.concatenate([head, head[-1:]])[:, None]], 1)
    roadblocks = list(dict.fromkeys(tm.lanes[lid]["roadblock_id"] for lid in lanes))
    route_lanes = [x for rb in roadblocks for x in tm.by_roadblock[rb]]
    now_lane = lane_seq[j_now] or lanes[0]
    limit = tm.lanes[now_lane].get("speed_limit_mps")
    return {
        "lane_ids": route_lanes,
        "roadblock_ids": roadblocks,
        "centerline": centre.tolist(),
        "start_lane_speed_limit_mps": None if limit is None or not math.isfinite(limit) else float(limit),
    }


def light_connectors(light: LightObs, tm: TownMap, cfg: SceneConfig) -> list[str]:
    """Lane connectors a traffic light controls (see the module docstring)."""
    import shapely

    if len(light.stop_points):
        matched = tm.match(light.stop_points, cfg.max_heading_diff)
        incoming: list[str] = []
        for lid in matched:
            if lid is None:
                continue
            if tm.lanes[lid]["type"] == "LANE_CONNECTOR":  # stop point already inside the junction
                incoming += [p for p in tm.lanes[lid]["predecessors"] if p not in incoming]
            elif lid not in incoming:
                incoming.append(lid)
        return tm.connector_successors(incoming)
    if light.trigger is None:
        return []
    box = shapely.Polygon(light.trigger)
    incoming = []
    for k in tm.tree.query(box, predicate="intersects").tolist():
        lid = tm.lane_ids[k]
        if tm.lanes[lid]["type"] == "LANE_CONNECTOR":
            continue
        line = tm.lines[lid]
        cut = line.intersection(box)
        if cut.is_empty:
            continue
        s_last = max(line.project(shapely.Point(c)) for c in np.asarray(shapely.get_coordinates(cut)))
        if line.length - s_last <= cfg.trigger_reach_m:
            incoming.append(lid)
    return tm.connector_successors(incoming)


def _traffic_lights(
    log: Log,
    t0: float,
    tm: TownMap,
    kept_lanes: set[str],
    route_lanes: set[str],
    cfg: SceneConfig,
    cache: dict[str, list[str]],
) -> dict[str, Any]:
    """Red flags per lane connector over t0 … t0 + 4 s (41 steps), sample-and-hold between frames."""
    grid = t0 + DT * np.arange(FUTURE_STEPS + 1)
    seen: dict[str, tuple[LightObs, list[tuple[float, bool]]]] = {}
    for j in _frame_range(log, t0 - 1.0, grid[-1] + cfg.max_gap_s):
        for light in log.frames[j].lights:
            entry = seen.setdefault(light.id, (light, []))
            entry[1].append((float(log.times[j]), light.is_red))
    red_by_conn: dict[str, np.ndarray] = {}
    for lid, (light, obs) in seen.items():
        if lid not in cache:
            cache[lid] = light_connectors(light, tm, cfg)
        conns = [c for c in cache[lid] if c in kept_lanes]
        if not conns:
            continue
        ts = np.array([o[0] for o in obs])
        red = np.array([o[1] for o in obs])
        k = np.clip(np.searchsorted(ts, grid + 1e-9, "right") - 1, 0, len(ts) - 1)
        per_step = red[k]
        for c in conns:
            red_by_conn[c] = red_by_conn.get(c, np.zeros(len(grid), bool)) | per_step
    lights = [
        {"lane_connector_id": c, "is_red_per_step": [bool(x) for x in r], "on_route": c in route_lanes}
        for c, r in sorted(red_by_conn.items())
    ]
    return {"lights": lights}


def _clip_map(tm: TownMap, centre: np.ndarray, radius: float) -> dict[str, Any]:
    """The town map restricted to the square of half-size `radius` around `centre` (polygons clipped to it;
    of a polygon cut in several pieces the largest is kept)."""
    import shapely

    x0, y0 = float(centre[0]), float(centre[1])
    rect = (x0 - radius, y0 - radius, x0 + radius, y0 + radius)

    def clip(ring: Any) -> list[list[float]] | None:
        g = shapely.clip_by_rect(shapely.Polygon(ring).buffer(0), *rect)
        if g.is_empty:
            return None
        g = max(getattr(g, "geoms", [g]), key=lambda p: p.area)
        if g.geom_type != "Polygon" or g.area < 1e-3:
            return None
        return np.asarray(g.exterior.coords)[:-1].tolist()

    lanes = []
    for ln in tm.data["lanes"]:
        ring = clip(ln["polygon"])
        if ring is not None:
            lanes.append({**ln, "polygon": ring})
    kept = {ln["id"] for ln in lanes}
    for ln in lanes:
        for key in ("predecessors", "successors"):
            ln[key] = [x for x in ln[key] if x in kept]
        for key in ("left_neighbor", "right_neighbor"):
            if ln[key] not in kept:
                ln[key] = None
    out: dict[str, Any] = {"lanes": lanes, "carparks": []}
    for key in ("roadblocks", "intersections"):
        objs = []
        for o in tm.data[key]:
            ring = clip(o["polygon"])
            if ring is not None:
                objs.append({**o, "polygon": ring})
        out[key] = objs
    have = kept | {o["id"] for k in ("roadblocks", "intersections") for o in out[k]}
    out["drivable_map"] = [e for e in tm.data["drivable_map"] if e["token"] in have]
    return out


def idm_reference(
    initial: np.ndarray,
    route: dict[str, Any],
    tracks: list[dict[str, Any]],
    lights: list[dict[str, Any]],
    lanes: dict[str, dict[str, Any]],
    geometry: F.VehicleGeometry,
    cfg: SceneConfig,
) -> np.ndarray:
    """(41, 11) reference states (WORLD; x, y, heading, vx, ax filled, the rest 0) of an IDM rollout along the
    route centreline from the ego's projection: target speed = the start lane's limit (fallback
    `idm_fallback_speed`), lead = the nearest present agent ahead whose centre is within (its half width + the
    ego's) of the centreline, or the start of a red route connector (a standing obstacle)."""
    import shapely

    cl = np.asarray(route["centerline"], np.float64)
    line = shapely.LineString(cl[:, :2])
    seg = np.hypot(*np.diff(cl[:, :2], axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    limit = route.get("start_lane_speed_limit_mps")
    v0 = float(limit) if limit else cfg.idm_fallback_speed
    s = float(line.project(shapely.Point(initial[:2])))
    v = float(max(initial[3], 0.0))
    front = geometry.rear_axle_to_center + geometry.length / 2  # rear axle -> front bumper
    steps = FUTURE_STEPS + 1
    # obstacles per step: (arc length of their rear end, speed along the path); NaN where none
    n = len(tracks)
    obs_s = np.full((n, steps), np.nan)
    obs_v = np.zeros((n, steps))
    for i, tr in enumerate(tracks):
        st = np.array([x if x is not None else [np.nan] * 5 for x in tr["states"][:steps]], np.float64)
        ok = np.isfinite(st[:, 0])
        if not ok.any():
            continue
        pts = shapely.points(st[ok, :2])
        lat = shapely.distance(line, pts)
        sa = shapely.line_locate_point(line, pts)
        k = np.clip(np.searchsorted(cum, sa) - 1, 0, len(seg) - 1)
        hd = cl[k, 2]
        inside = lat <= tr["width"] / 2 + geometry.width / 2
        obs_s[i, np.nonzero(ok)[0][inside]] = (sa - tr["length"] / 2)[inside]
        obs_v[i, np.nonzero(ok)[0]] = st[ok, 3] * np.cos(hd) + st[ok, 4] * np.sin(hd)
    red_s = []
    for light in lights:
        if light["on_route"] and light["lane_connector_id"] in lanes:
            start = np.asarray(lanes[light["lane_connector_id"]]["centerline"])[0, :2]
            red_s.append((float(line.project(shapely.Point(start))), np.asarray(light["is_red_per_step"], bool)))
    xs, vs, accs = [s], [v], [0.0]
    for k in range(steps - 1):
        gaps = [np.inf]
        lead_v = [0.0]
        ahead = obs_s[:, k] - (s + front)
        for a in np.nonzero(np.isfinite(ahead) & (obs_s[:, k] > s))[0].tolist():
            gaps.append(float(ahead[a]))
            lead_v.append(float(obs_v[a, k]))
        for stop_s, red in red_s:
            if red[k] and stop_s > s + front - 0.5:
                gaps.append(stop_s - (s + front))
                lead_v.append(0.0)
        j = int(np.argmin(gaps))
        acc = cfg.idm_accel * (1 - (v / max(v0, 0.1)) ** cfg.idm_exponent)
        if math.isfinite(gaps[j]):
            s_star = cfg.idm_min_gap_m + v * cfg.idm_headway_s
            s_star += v * (v - lead_v[j]) / (2 * math.sqrt(cfg.idm_accel * cfg.idm_decel))
            acc -= cfg.idm_accel * (s_star / max(gaps[j], cfg.idm_min_gap_m)) ** 2
        acc = float(np.clip(acc, -cfg.idm_decel, cfg.idm_accel))
        s = s + v * DT  # explicit Euler, as PDM-Closed's BatchIDMPolicy.propagate
        v = max(v + acc * DT, 0.0)  # (no reversing: clamped at 0 here)
        xs.append(s)
        vs.append(v)
        accs.append(acc)
    sq = np.clip(np.asarray(xs), 0.0, cum[-1])
    k = np.clip(np.searchsorted(cum, sq, "right") - 1, 0, len(seg) - 1)
    w = np.where(seg[k] > 0, (sq - cum[k]) / np.where(seg[k] > 0, seg[k], 1.0), 0.0)
    xy = cl[k, :2] + (cl[k + 1, :2] - cl[k, :2]) * w[:, None]
    out = np.zeros((steps, 11))
    out[:, :2] = xy
    out[:, 2] = cl[k, 2]
    out[:, 3] = vs
    out[:, 5] = accs
    return out


@dataclass
class LogConverter:
    """Scenes of one log: map matching and light mapping are done once per log."""

    log: Log
    maps_dir: Path | None = None
    cfg: SceneConfig = SceneConfig()

    def __post_init__(self) -> None:
        self.tm = town_map(self.log.town, self.maps_dir)
        self.lane_seq = self.tm.match(self.log.ego_rear, self.cfg.max_heading_diff)
        self._light_cache: dict[str, list[str]] = {}

    def scene_id(self, j: int) -> str:
        return f"{self.log.name}/{self.log.frames[j].frame:05d}"

    def scene_indices(self) -> list[int]:
        return scene_frames(self.log, self.cfg)

    def scene_dict(self, j: int) -> dict[str, Any]:
        """The scene (file-format dict) whose current frame is frame index j of the log."""
        log, cfg = self.log, self.cfg
        t0 = float(log.times[j])
        _check_window(log, t0 - HISTORY_STEPS * DT, t0 + FUTURE_STEPS * DT, cfg)
        st = ego_states(log, t0)  # (56, 11): -1.5 ... 4.0 s
        now = HISTORY_STEPS
        origin = st[now, :3]
        future = F.Trajectory(F.Frame.WORLD, st[now + 1 :, :3], DT, DT).to_local(origin, F.Frame.EGO_REAR_AXLE)
        poses_40 = np.asarray(future.poses)
        route = _route(log, j, self.tm, self.lane_seq, cfg)
        map_d = _clip_map(self.tm, origin, cfg.map_radius_m)
        kept = {ln["id"] for ln in map_d["lanes"]}
        route["lane_ids"] = [x for x in route["lane_ids"] if x in kept]
        lights = _traffic_lights(log, t0, self.tm, kept, set(route["lane_ids"]), cfg, self._light_cache)
        geo = log.geometry
        tracked = _agents(log, t0, origin, cfg)
        if cfg.reference == "expert":
            ref = st[now:].tolist()
        elif cfg.reference == "idm":
            lanes_by_id = {ln["id"]: ln for ln in map_d["lanes"]}
            ref = idm_reference(st[now], route, tracked["tracks"], lights["lights"], lanes_by_id, geo, cfg).tolist()
        else:
            raise LogError(f"unknown reference {cfg.reference!r}; expected 'expert' or 'idm'")
        comfort = st[0 : now - 1].copy()
        comfort[:, 8:] = 0.0  # NAVSIM's interpolated History-Comfort states carry no steering/yaw rates
        return {
            "format_version": SCENE_FORMAT,
            "scene_id": self.scene_id(j),
            "name": log.name,
            "category": "carla_log",
            "source": {"town": log.town, "frame": log.frames[j].frame, "t_s": t0},
            "time": {"t0_us": round(t0 * 1e6)},
            "ego": {
                "vehicle": {
                    "length": geo.length,
                    "width": geo.width,
                    "rear_axle_to_center": geo.rear_axle_to_center,
                    "wheel_base": geo.wheel_base,
                },
                "initial_state": {"state": st[now].tolist()},
                "past_states": {"states": st[0 : now + 1 : 5].tolist()},
                "history_comfort_states": {"states": comfort.tolist()},
                "previous_frame": None,
            },
            "map": map_d,
            "route": route,
            "traffic_lights": lights,
            "tracked_objects": tracked,
            "human": {"poses_8": poses_40[4::5].tolist(), "poses_40": poses_40.tolist()},
            # stand-in for PDM-Closed (docs/scorer.md, "Scenes from CARLA logs")
            "pdm_closed": {"v2": {"reference_states_41": ref}, "v1": {"reference_states_41": ref}},
            "reference_kind": cfg.reference,
        }

    def scene(self, j: int) -> Scene:
        return scene_from_dict(self.scene_dict(j), self.scene_id(j))

    def scenes(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for j in self.scene_indices():
            yield self.scene_id(j), self.scene_dict(j)


# ------------------------------------------------------------------------------------------------------------
# folders of logs → scene files (used by `drive-jepa teachers --source ...`)

SOURCES = ("scenes", "carla-snapshots", "bench2drive")
CONVERTED_MARKER = ".converted.txt"  # per log folder: its scene files, written once every scene was converted


def iter_logs(source: str, root: Path, town: str | None = None) -> Iterator[tuple[str, Any]]:
    """(name, loader) per log under root: `*.jsonl` snapshot logs, or Bench2Drive clip folders (with `anno/`).
    Names are paths relative to root (without `.jsonl`); loaders are called lazily."""
    from carla_tools.snapshots import read_snapshots

    root = Path(root)
    if not root.is_dir():
        raise LogError(f"{root}: input folder not found")
    if source == "carla-snapshots":
        for p in sorted(root.rglob("*.jsonl")):
            name = p.relative_to(root).as_posix()[: -len(".jsonl")]
            yield name, lambda p=p, name=name: log_from_carla_snapshots(read_snapshots(p), name, town)
    elif source == "bench2drive":
        clips = sorted({a.parent for pat in ("anno", "*/anno", "*/*/anno") for a in root.glob(pat) if a.is_dir()})
        for c in clips:
            name = c.relative_to(root).as_posix() if c != root else c.name
            yield name, lambda c=c, name=name: read_bench2drive_clip(c, name)
    else:
        raise LogError(f"unknown source {source!r}; expected one of {', '.join(SOURCES[1:])}")


def _write_json_gz(d: dict[str, Any], path: Path) -> None:
    with atomic_file(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as f:
        json.dump(d, f)


SETTINGS_NAME = ".convert-settings"  # not *.json: the scene-file scan must not pick it up


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Scene files already in `out` must come from the same settings (they are reused, not rebuilt)."""
    path = out / SETTINGS_NAME
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in settings.keys() | old.keys() if old.get(k) != settings.get(k))
        if diff:
            k = diff[0]
            raise LogError(
                f"{out}: scenes were converted with {k}={old.get(k)!r}, this run {settings.get(k)!r}; "
                "use another --out (or delete that folder)"
            )
        return
    write_text_atomic(path, json.dumps(settings, sort_keys=True))


def convert_logs(
    source: str,
    root: Path,
    out: Path,
    maps_dir: Path | None = None,
    cfg: SceneConfig = SceneConfig(),
    town: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write one scene file per current frame of every log under root to `out/<log>/<frame>.json.gz`
    (atomic; files already there are kept, so an interrupted conversion resumes).

    Returns (every scene file, error lines). A log or scene that cannot be converted (gap, unknown town, ...)
    is reported as one line and skipped; the others are still converted. No log at all raises LogError."""
    _check_settings(out, {"source": source, **dataclasses.asdict(cfg)})
    paths: list[Path] = []
    errors: list[str] = []
    found = False
    for name, load in iter_logs(source, root, town):
        found = True
        marker = out / name / CONVERTED_MARKER  # a log converted before (same settings) is not read again
        if marker.is_file():
            paths += [out / line for line in marker.read_text().splitlines() if line.strip()]
            continue
        try:
            conv = LogConverter(load(), maps_dir, cfg)
        except (LogError, ValueError, KeyError) as e:
            errors.append(f"{name}: {e}" if isinstance(e, KeyError) else str(e))
            continue
        mine: list[Path] = []
        failed = False
        for j in conv.scene_indices():
            path = out / f"{conv.scene_id(j)}.json.gz"
            if not path.exists():
                try:
                    _write_json_gz(conv.scene_dict(j), path)
                except LogError as e:
                    errors.append(f"{conv.scene_id(j)}: {e}")
                    failed = True
                    continue
            mine.append(path)
        paths += mine
        if not failed and mine:
            from drive_jepa.atomic import write_text_atomic

            write_text_atomic(marker, "".join(f"{p.relative_to(out).as_posix()}\n" for p in mine))
    if not found:
        kind = "*.jsonl snapshot logs" if source == "carla-snapshots" else "clip folders with anno/"
        raise LogError(f"{root}: no {kind} found")
    return paths, errors

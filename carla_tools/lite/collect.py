"""`drive-jepa collect`: the privileged expert drives scenario routes in the lite world and writes training clips
in Bench2Drive's dataset layout (`training.data.bench2drive_reader` reads them as it reads Bench2Drive's release).

One clip per (route, lite-world seed)::

    <out>/clips/<Scenario>_<Town>_Route<id>_Weather0_Seed<seed>/
        anno/00000.json.gz            # every 10 Hz frame: ego, route command/target, actors, traffic lights
        camera/rgb_front/00000.jpg    # 1600×900 JPEG quality 20 (Bench2Drive's rig), every `image_every`-th frame
        expert_noise.json             # 10 Hz frames whose executed control was perturbed (see below)
        meta.json                     # route, seed, town, scenario, the route's leaderboard record, wall time

Annotation fields follow Bench2Drive's `docs/anno.md` (CARLA's left-handed world, metres, degrees; `rotation` is
(pitch, roll, yaw); `extent` half sizes; `theta` the compass; `acceleration` the IMU's, y right): `x`, `y`,
`theta`, `speed`, `acceleration`, `command_near`, `x_command_near`, `y_command_near` and `bounding_boxes` with the
ego first (`class: ego_vehicle`, `location`, `rotation`, `extent`, `world2ego`), vehicles (background cars,
parked / accident / cut-in / flow cars, emergency vehicles, cyclists as CARLA has them: `vehicle.*`), walkers,
static props (`class: traffic_sign`, `type_id: static.prop.*`, no trigger volume) and one traffic light per
signalled approach lane (state as CARLA's enum, 0 red / 1 yellow / 2 green; its trigger volume on the stop line,
rotation relative to the light). The command and target point are what the Drive-JEPA agent computes at run time
(`agent.route.RoutePlanner` on the leaderboard's global plan), from the ego's true rear axle.

Noise injection (DART / "learning by cheating" practice): in random bursts the executed steering (and sometimes
throttle / brake) is perturbed while the expert keeps planning, so the ego drifts and the expert recovers. The
burst frames go to `expert_noise.json`; the reader never takes a sample whose 4 s future holds a perturbed frame,
so every label is the expert's own unperturbed driving, while the frames just after a burst show the recovery.

Routes must keep away from the evaluation routes: each route is checked against `--exclude` (default: the 55 lite
evaluation routes) — no evaluation route id and no waypoint within `--min-distance` (50 m) of one of their
trigger points — and a route that fails stops the command before anything runs.

Resumable: a clip is written under `<out>/partial/` and moved into `<out>/clips/` when its route ends, so a rerun
skips finished clips and restarts unfinished ones. Routes run in worker processes (libsumo allows one
simulation per process), `--workers` at a time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carla_tools.lite.actors import BICYCLE, DEBRIS, EMERGENCY, PEDESTRIAN, PROP, VEHICLE
from carla_tools.lite.criteria import light_numeric_id
from carla_tools.lite.expert import LiteExpert
from drive_jepa import frames as F
from drive_jepa.atomic import write_json_atomic
from drive_jepa.frames import LINCOLN_MKZ_2020
from drive_jepa.routes import Route

PACKAGE_ROUTES = Path(__file__).resolve().parent / "routes"
EVAL_ROUTES = PACKAGE_ROUTES / "bench2drive220_lite.xml"
GENERATED_ROUTES = PACKAGE_ROUTES / "bench2drive_lite_generated.xml"  # scenario-routes --per-type 3 --seed 0
GENERATED_ROUTES_SEED1 = PACKAGE_ROUTES / "bench2drive_lite_generated_seed1.xml"  # the same with --seed 1
TRAINING_ROUTES = (GENERATED_ROUTES, GENERATED_ROUTES_SEED1)  # what the shipped lite checkpoint was trained on
ANNO_HZ = 10.0
ACTOR_RADIUS_M = 60.0  # actors written per frame (Bench2Drive writes those within 50 m)
EGO_HALF_HEIGHT = 0.75
_LIGHT_ENUM = {"r": 0, "y": 1, "g": 2}  # carla.TrafficLightState


@dataclass(frozen=True)
class NoiseConfig:
    """Perturbation bursts. rate_hz: mean burst starts per second while driving (≥ 1 m/s); a burst lasts
    `min_s`..`max_s`; steering offset |u| in [steer_min, steer_max] (normalized steer, random sign); with
    probability `longitudinal` the burst instead holds throttle or brake at `pedal`."""

    rate_hz: float = 0.12
    min_s: float = 0.4
    max_s: float = 1.0
    steer_min: float = 0.03
    steer_max: float = 0.08
    longitudinal: float = 0.25
    pedal: float = 0.4
    warmup_s: float = 2.0  # no burst before this time (the route start)

    def validate(self) -> None:
        if self.rate_hz < 0 or not 0 < self.min_s <= self.max_s or not 0 <= self.steer_min <= self.steer_max <= 1:
            raise ValueError(f"noise settings out of range: {self}")
        if not 0 <= self.longitudinal <= 1 or not 0 <= self.pedal <= 1:
            raise ValueError(f"noise settings out of range: {self}")


@dataclass(frozen=True)
class CollectJob:
    route_xml: str
    route_id: str
    seed: int
    out: str
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    num_vehicles: int = 60
    image_every: int = 5
    width: int = 1600
    height: int = 900
    jpeg_quality: int = 20
    max_route_m: float | None = None  # cut routes to their first N metres (smoke runs, tests)


# ------------------------------------------------------------------------------------------------- the expert
class NoisyExpert(LiteExpert):
    """The lite expert whose executed control is perturbed in bursts; `noisy_ticks` lists the perturbed ticks."""

    def __init__(self, noise: NoiseConfig, seed: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.noise = noise
        self._rng = np.random.default_rng(seed)
        self.noisy_ticks: list[int] = []
        self._burst_end = -1.0
        self._burst: tuple[float, float, float] = (0.0, 0.0, 0.0)  # steer offset, throttle, brake (<0: keep)

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        control = super().run_step(input_data, timestamp)
        w = self.world
        n = self.noise
        if w is None or n.rate_hz <= 0:
            return control
        starts = timestamp >= self._burst_end and timestamp > n.warmup_s and w.ego.speed > 1.0
        if starts and self._rng.random() < n.rate_hz * 0.05:
            self._burst_end = timestamp + float(self._rng.uniform(n.min_s, n.max_s))
            if self._rng.random() < n.longitudinal:
                hold_brake = bool(self._rng.random() < 0.5)
                self._burst = (0.0, 0.0 if hold_brake else n.pedal, n.pedal if hold_brake else 0.0)
            else:
                u = float(self._rng.uniform(n.steer_min, n.steer_max)) * float(self._rng.choice([-1.0, 1.0]))
                self._burst = (u, -1.0, -1.0)
        if timestamp < self._burst_end:
            du, thr, brk = self._burst
            control.steer = float(np.clip(control.steer + du, -1.0, 1.0))
            if thr >= 0:
                control.throttle, control.brake = thr, brk
            self.noisy_ticks.append(round(timestamp / 0.05))
        return control


# ------------------------------------------------------------------------------------------------ annotations
def _carla_rotation(heading: float) -> list[float]:
    """(pitch, roll, yaw°) as Bench2Drive writes `rotation`, from a WORLD heading (rad, CCW)."""
    return [0.0, 0.0, -math.degrees(heading)]


def _world2actor(x: float, y: float, z: float, yaw_deg: float) -> list[list[float]]:
    m = F.carla_transform_matrix(np.array([x, y, z]), np.array([0.0, yaw_deg, 0.0]))
    return np.linalg.inv(m).round(6).tolist()


def anno_record(world: Any, route_state: Any, route_links: dict[int, tuple[str, int]] | None = None) -> dict[str, Any]:
    """One Bench2Drive annotation of the lite world's current state (see the module docstring). `route_links`:
    from-lane -> (tls id, link index) of the connection the route takes there (`route_light_links`); such an
    approach's light shows that connection's state (what the expert obeys), any other approach is red when any of
    its connections is."""
    from carla_tools.lite.sensors import imu_reading

    p = world.ego_pose
    x, y, z = world.ego_carla_location()
    yaw = -math.degrees(float(p[2]))
    ego = world.ego
    imu = imu_reading(float(p[2]), ego.accel, ego.speed, ego.yaw_rate)
    g = LINCOLN_MKZ_2020
    boxes: list[dict[str, Any]] = [
        {
            "class": "ego_vehicle", "id": 0, "type_id": "vehicle.lincoln.mkz_2020",
            "location": [x, y, z], "center": [x, y, z + EGO_HALF_HEIGHT], "rotation": [0.0, 0.0, yaw],
            "extent": [g.length / 2, g.width / 2, EGO_HALF_HEIGHT], "speed": float(ego.speed),
            "world2ego": _world2actor(x, y, z, yaw),
        }
    ]  # fmt: skip
    a = world.actors
    near = np.hypot(*(a.xy - p[:2]).T) <= ACTOR_RADIUS_M if len(a) else np.zeros(0, bool)
    for i in np.flatnonzero(near):
        kind = int(a.kind[i])
        if kind == DEBRIS:
            continue  # flat debris: drawn, never an obstacle (as the criteria treat it)
        cx, cy = float(a.xy[i, 0]), float(-a.xy[i, 1])
        h = float(a.height[i])
        box = {
            "id": int(a.ids[i]), "type_id": str(a.type_ids[i]), "center": [cx, cy, z + h / 2],
            "location": [cx, cy, z], "rotation": _carla_rotation(float(a.heading[i])),
            "extent": [float(a.length[i]) / 2, float(a.width[i]) / 2, h / 2], "speed": float(a.speed[i]),
            "distance": float(np.hypot(*(a.xy[i] - p[:2]))),
        }  # fmt: skip
        if kind in (VEHICLE, EMERGENCY, BICYCLE):
            box.update({"class": "vehicle", "state": "dynamic" if a.speed[i] > 0.01 else "static"})
        elif kind == PEDESTRIAN:
            box["class"] = "walker"
        elif kind == PROP:
            box.update({"class": "traffic_sign", "state": "static"})
        boxes.append(box)
    ahead_lanes = _route_lanes_ahead(world)
    approaches: dict[tuple[str, int], list[Any]] = {}
    for lv in world.lights():  # one light per signalled approach lane, as CARLA has one per approach
        approaches.setdefault((lv.tls_id, lv.from_lane), []).append(lv)
    for (tls_id, from_lane), views in approaches.items():
        lv = views[0]
        states = [o.state for o in views]  # any red connection makes the approach red (the straight one in CARLA)
        state = "r" if "r" in states else "y" if "y" in states else "g"
        if route_links and from_lane in route_links:
            state = world.light_state(*route_links[from_lane])
        sx, sy = float(lv.stop_xy[0]), float(-lv.stop_xy[1])
        right = np.array([math.sin(lv.heading), -math.cos(lv.heading)])
        pole = lv.stop_xy + right * (lv.width / 2 + 0.6)
        boxes.append({
            "class": "traffic_light", "id": light_numeric_id(tls_id) * 1000 + from_lane % 1000,
            "type_id": "traffic.traffic_light",
            "state": _LIGHT_ENUM[state], "center": [float(pole[0]), float(-pole[1]), z + 2.5],
            "location": [float(pole[0]), float(-pole[1]), z], "rotation": _carla_rotation(lv.heading),
            "extent": [0.3, 0.3, 2.5], "trigger_volume_location": [sx, sy, z],
            "trigger_volume_rotation": [0.0, 0.0, 0.0], "trigger_volume_extent": [1.5, lv.width / 2, 1.0],
            "affects_ego": lv.from_lane in ahead_lanes,
            "distance": float(np.hypot(*(lv.stop_xy - p[:2]))),
        })  # fmt: skip
    tx, ty = (float(v) for v in route_state.target_world)
    return {
        "x": x, "y": y, "z": z, "theta": float(imu[6]), "speed": float(ego.speed),
        "acceleration": [float(imu[0]), float(imu[1]), float(imu[2])],
        "angular_velocity": [0.0, 0.0, float(imu[5])],
        "command_near": int(route_state.command), "x_command_near": tx, "y_command_near": -ty,
        "command_far": int(route_state.command), "x_command_far": tx, "y_command_far": -ty,
        "throttle": float(world.last_control.throttle), "steer": float(world.last_control.steer),
        "brake": float(world.last_control.brake), "weather": "lite", "bounding_boxes": boxes,
    }  # fmt: skip


def _route_lanes_ahead(world: Any, ahead_m: float = 60.0) -> set[int]:
    r = world.route
    d = np.hypot(*(r.world_xy - world.ego_pose[:2]).T)
    k = int(d.argmin())
    s = r.accum[k]
    sel = (r.accum >= s) & (r.accum <= s + ahead_m)
    return {int(v) for v in np.unique(r.lanes[sel])}


class ClipWriter:
    """`on_step` hook of `run_route`: writes one annotation per 10 Hz frame and the front camera image of every
    `image_every`-th one into `folder` (Bench2Drive layout)."""

    def __init__(self, folder: Path, world_plan: tuple[list[Any], list[Any]], job: CollectJob) -> None:
        from agent.localization import plan_to_arrays
        from agent.route import RouteConfig, RoutePlanner
        from carla_tools.lite.sensors import parse_sensors

        self.folder = folder
        self.job = job
        (folder / "anno").mkdir(parents=True, exist_ok=True)
        (folder / "camera" / "rgb_front").mkdir(parents=True, exist_ok=True)
        _, xy_carla, options = plan_to_arrays(*world_plan)
        self.planner = RoutePlanner(RouteConfig())
        self.planner.set_route(F.carla_points_to_world(xy_carla), options)
        self.camera = parse_sensors([_front_camera(job.width, job.height)])
        self.route_links: dict[int, tuple[str, int]] | None = None
        self.frames = 0

    def __call__(self, world: Any, input_data: Any = None) -> None:
        ticks_per_frame = round(1.0 / (ANNO_HZ * 0.05))
        state = self.planner.update(F.center_to_rear_axle(world.ego_pose, LINCOLN_MKZ_2020.rear_axle_to_center))
        if world.frame % ticks_per_frame:
            return
        n = world.frame // ticks_per_frame
        if self.route_links is None:
            from carla_tools.lite.route import route_light_links

            links = [world.town.tl_links[k] for _, k in route_light_links(world.route, world.town, 3.0, math.inf)]
            self.route_links = {lk.from_lane: (lk.tls_id, lk.link_index) for lk in links}
        rec = anno_record(world, state, self.route_links)
        with gzip.open(self.folder / "anno" / f"{n:05d}.json.gz", "wt", compresslevel=3) as f:
            json.dump(rec, f, separators=(",", ":"))
        if n % self.job.image_every == 0:
            import cv2

            bgra = world.read_sensors(self.camera)["rgb_front"][1]
            ok, buf = cv2.imencode(".jpg", bgra[:, :, :3], [cv2.IMWRITE_JPEG_QUALITY, self.job.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            (self.folder / "camera" / "rgb_front" / f"{n:05d}.jpg").write_bytes(buf.tobytes())
        self.frames += 1


def _front_camera(width: int, height: int) -> dict[str, Any]:
    """The Drive-JEPA agent's front camera (Bench2Drive's rgb_front), at the given size."""
    from agent.sensors import SensorRigConfig, leaderboard_sensors

    cam = next(s for s in leaderboard_sensors(SensorRigConfig()) if s["type"] == "sensor.camera.rgb")
    return {**cam, "id": "rgb_front", "width": width, "height": height}


# ------------------------------------------------------------------------------------------------------ routes
def clip_name(route: Route, seed: int) -> str:
    stype = route.scenarios[0].type if route.scenarios else "NoScenario"
    return f"{stype}_{route.town}_Route{route.id}_Weather0_Seed{seed}"


def check_routes(routes: Sequence[Route], exclude: Sequence[Route], min_distance: float = 50.0) -> list[str]:
    """Problems (one line each) of training routes that touch the evaluation routes: a shared route id, or a
    waypoint within `min_distance` metres of an evaluation trigger point (same town)."""
    ids = {r.id for r in exclude}
    problems = []
    for r in routes:
        if r.id in ids:
            problems.append(f"route {r.id}: is an evaluation route id")
            continue
        trig = np.array([sc.trigger[:2] for e in exclude if e.town == r.town for sc in e.scenarios]).reshape(-1, 2)
        if len(trig):
            d = np.hypot(*(r.waypoints[:, None, :2] - trig[None]).transpose(2, 0, 1))
            if d.min() < min_distance:
                problems.append(f"route {r.id} ({r.town}): a waypoint {d.min():.1f} m from an evaluation trigger point")
    return problems


def collect_one(job: CollectJob) -> dict[str, Any]:
    """Drive one route with the noisy expert and write its clip (run in a worker process)."""
    from carla_tools.lite.route import build_dense_route, global_plan
    from carla_tools.lite.runner import LiteConfig, run_route
    from carla_tools.lite.town import load_town
    from drive_jepa.routes import load_routes

    route = next(r for r in load_routes(job.route_xml) if r.id == job.route_id)
    name = clip_name(route, job.seed)
    out = Path(job.out)
    final = out / "clips" / name
    if final.is_dir():
        return {"clip": name, "skipped": True}
    part = out / "partial" / name
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)
    t0 = time.monotonic()
    town = load_town(route.town)
    dense = build_dense_route(route, town)
    writer = ClipWriter(part, global_plan(dense, town), job)
    expert = NoisyExpert(job.noise, seed=int(job.seed) * 1_000_003 + int(route.id) % 1_000_003)
    cfg = LiteConfig(seed=job.seed, num_vehicles=job.num_vehicles, metric_info=False, max_route_m=job.max_route_m)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        record = run_route(route, expert, part / "run", "", cfg, on_step=writer)
    shutil.rmtree(part / "run", ignore_errors=True)
    noisy = sorted({t // 2 for t in expert.noisy_ticks})
    write_json_atomic(part / "expert_noise.json", {"fps": ANNO_HZ, "frames": noisy, "noise": asdict(job.noise)})
    summary = {
        "clip": name, "route_id": route.id, "town": route.town, "seed": job.seed,
        "scenario": route.scenarios[0].type if route.scenarios else "", "frames": writer.frames,
        "noisy_frames": len(noisy), "status": record["status"],
        "driving_score": record["scores"]["score_composed"],
        "infractions": {k: len(v) for k, v in record["infractions"].items() if v and k != "min_speed_infractions"},
        "wall_s": round(time.monotonic() - t0, 2), "sim_s": record["meta"]["duration_game"],
    }  # fmt: skip
    write_json_atomic(part / "meta.json", summary)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)
    return summary


def clip_frames_ok(clip: Path) -> bool:
    return (clip / "meta.json").is_file() and (clip / "anno").is_dir()


def collect(
    routes_xml: Sequence[Path],
    out: Path,
    seeds: Sequence[int],
    workers: int = 2,
    exclude: Sequence[Path] = (EVAL_ROUTES,),
    min_distance: float = 50.0,
    noise: NoiseConfig | None = None,
    num_vehicles: int = 60,
    image_every: int = 5,
    limit: int = 0,
    progress: bool = True,
    max_route_m: float | None = None,
) -> list[dict[str, Any]]:
    """Run every (route, seed) not yet in `<out>/clips`; returns the summaries of the clips made now. The
    manifest `<out>/collect.jsonl` gets one line per clip made."""
    from drive_jepa.routes import load_routes

    noise = noise or NoiseConfig()
    noise.validate()
    excluded = [r for p in exclude for r in load_routes(p)]
    jobs = []
    for path in routes_xml:
        routes = load_routes(path)
        problems = check_routes(routes, excluded, min_distance)
        if problems:
            raise ValueError(f"{path}: {len(problems)} route(s) touch the evaluation routes; first: {problems[0]}")
        for seed in seeds:
            for r in routes:
                if not (out / "clips" / clip_name(r, seed)).is_dir():
                    jobs.append(
                        CollectJob(
                            str(path),
                            r.id,
                            int(seed),
                            str(out),
                            noise,
                            num_vehicles,
                            image_every,
                            max_route_m=max_route_m,
                        )
                    )
    if limit > 0:
        jobs = jobs[:limit]
    out.mkdir(parents=True, exist_ok=True)
    made: list[dict[str, Any]] = []
    if not jobs:
        return made
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="collect", unit="clip", disable=not progress, dynamic_ncols=True)
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(collect_one, j): j for j in jobs}
        for fut in as_completed(futures):
            j = futures[fut]
            try:
                s = fut.result()
            except Exception as exc:  # one broken route never loses the others
                s = {"clip": f"route {j.route_id} seed {j.seed}", "error": f"{type(exc).__name__}: {exc}"}
                print(f"collect: route {j.route_id} seed {j.seed} failed: {s['error']}", file=sys.stderr)
            if not s.get("skipped"):
                made.append(s)
                with (out / "collect.jsonl").open("a") as f:
                    f.write(json.dumps(s) + "\n")
            bar.update(1)
            if "driving_score" in s:
                bar.set_postfix_str(f"{s['clip'][:40]} DS {s['driving_score']:.0f}")
    bar.close()
    return made


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa collect", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "routes",
        type=Path,
        nargs="*",
        default=list(TRAINING_ROUTES),
        help="route XML files (default: the shipped generated scenario routes; make more with "
        "`drive-jepa scenario-routes --exclude …`)",
    )
    p.add_argument("--out", type=Path, required=True, help="dataset folder (clips go to OUT/clips)")
    p.add_argument("--seeds", default="0", help="comma-separated lite-world seeds; every route runs once per seed")
    p.add_argument("--workers", type=int, default=2, help="routes driven at once (one process each)")
    p.add_argument("--exclude", type=Path, action="append", default=None,
                   help="evaluation route XML to keep away from (default: the 55 lite evaluation routes)")  # fmt: skip
    p.add_argument("--min-distance", type=float, default=50.0, help="metres from any evaluation trigger point")
    p.add_argument("--vehicles", type=int, default=60, help="background cars")
    p.add_argument("--image-every", type=int, default=5, help="a camera image every N 10 Hz frames (5: 2 Hz)")
    p.add_argument("--noise-rate", type=float, default=NoiseConfig.rate_hz, help="noise bursts per second (0: off)")
    p.add_argument("--limit", type=int, default=0, help="run at most N clips (0: all)")
    p.add_argument("--max-route-m", type=float, default=None, help="cut routes to their first N metres (smoke runs)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    try:
        seeds = [int(s) for s in ns.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"drive-jepa collect: --seeds {ns.seeds!r}: expected comma-separated integers", file=sys.stderr)
        return 2
    if not seeds or ns.workers < 1 or ns.image_every < 1:
        print("drive-jepa collect: need at least one seed, --workers ≥ 1 and --image-every ≥ 1", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        made = collect(
            ns.routes,
            ns.out,
            seeds,
            ns.workers,
            ns.exclude or [EVAL_ROUTES],
            ns.min_distance,
            NoiseConfig(rate_hz=ns.noise_rate),
            ns.vehicles,
            ns.image_every,
            ns.limit,
            not ns.no_progress,
            ns.max_route_m,
        )
    except ValueError as exc:
        print(f"drive-jepa collect: {exc}", file=sys.stderr)
        return 2
    bad = [m for m in made if "error" in m]
    clips = sorted((ns.out / "clips").glob("*/meta.json")) if (ns.out / "clips").is_dir() else []
    print(f"collect: {len(made) - len(bad)} clips made now, {len(clips)} in {ns.out / 'clips'} "
          f"({time.monotonic() - t0:.0f} s)")  # fmt: skip
    return 1 if bad else 0

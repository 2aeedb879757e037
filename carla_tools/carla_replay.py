"""`drive-jepa carla-replay LOG`: replay a CARLA recorder log in a running CARLA server and film the hero.

The evaluation harness writes one recorder log per route attempt with eval `record=true`
(`<eval>/agent/carla_recorder/<key>/attempt<N>/*.log`; `drive-jepa replay EVAL --list` lists them beside the
agent's recordings). This command connects to a running server (CARLA 0.9.15), reads the log's header
(`Client.show_recorder_file_info`: map, duration, the actor whose `role_name` is `hero`), starts
`Client.replay_file`, attaches a chase camera to the hero, ticks the world synchronously at `--fps` and writes
the camera frames to an MP4.

The log is read by the SERVER: pass a path the server can open (the same machine, or a shared folder).

Examples:
    drive-jepa carla-replay runs/eval1/agent/carla_recorder/RouteScenario_7_rep0/attempt1/RouteScenario_7_rep0.log
    drive-jepa carla-replay LOG --port 2000 --start 60 --duration 20 --out crash.mp4
"""

from __future__ import annotations

import argparse
import queue
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class CarlaReplayError(RuntimeError):
    """Anything that stops a replay; the message is the one line shown to the user."""


@dataclass
class RecorderInfo:
    """What the header of `show_recorder_file_info(path, False)` says about a log."""

    map_name: str | None = None
    duration_s: float | None = None
    frames: int | None = None
    actors: dict[int, str] = field(default_factory=dict)  # recorded id → type id
    hero_id: int | None = None


_CREATE = re.compile(r"^\s*Create (\d+): (\S+)")
_ROLE = re.compile(r"^\s*role_name = (\S+)")


def parse_recorder_info(text: str) -> RecorderInfo:
    """Parse CARLA's recorder info text ("Map: …", " Create <id>: <type> …" with indented attributes such as
    "role_name = hero", "Frames: …", "Duration: … seconds")."""
    info = RecorderInfo()
    current: int | None = None
    for line in text.splitlines():
        if line.startswith("Map:"):
            info.map_name = line.split(":", 1)[1].strip() or None
        elif line.startswith("Duration:"):
            m = re.search(r"([\d.]+)", line)
            info.duration_s = float(m.group(1)) if m else None
        elif line.startswith("Frames:"):
            m = re.search(r"(\d+)", line)
            info.frames = int(m.group(1)) if m else None
        elif m := _CREATE.match(line):
            current = int(m.group(1))
            info.actors[current] = m.group(2)
        elif (m := _ROLE.match(line)) and current is not None:
            if m.group(1) == "hero" and info.hero_id is None:
                info.hero_id = current
        elif line.strip() and not line.startswith("  "):
            current = None
    return info


def connect(host: str, port: int, timeout_s: float) -> Any:
    """A carla.Client that answered `get_server_version` within `timeout_s`, else CarlaReplayError."""
    try:
        import carla
    except ImportError:
        raise CarlaReplayError("the CARLA client is not installed: `uv sync --extra carla`") from None
    client = carla.Client(host, port)
    client.set_timeout(timeout_s)
    try:
        client.get_server_version()
    except RuntimeError:
        raise CarlaReplayError(
            f"no CARLA server reachable at {host}:{port} within {timeout_s:g} s (start one, or pass --host/--port)"
        ) from None
    return client


def _find_hero(world: Any, info: RecorderInfo) -> Any:
    vehicles = world.get_actors().filter("vehicle.*")
    for v in vehicles:
        if v.attributes.get("role_name") == "hero":
            return v
    if info.hero_id is not None:  # the replayer may keep the recorded id
        actor = world.get_actor(info.hero_id)
        if actor is not None:
            return actor
    return None


def replay_frames(client: Any, log: str, ns: argparse.Namespace, info: RecorderInfo) -> Iterator[np.ndarray]:
    """Start the replay and yield the chase camera's BGR frames, one per synchronous tick."""
    import carla

    world = client.get_world()
    original = world.get_settings()
    settings = world.get_settings()
    settings.synchronous_mode, settings.fixed_delta_seconds = True, 1.0 / ns.fps
    world.apply_settings(settings)
    camera = None
    try:
        client.set_replayer_time_factor(1.0)
        reply = client.replay_file(log, ns.start, ns.duration, 0, False)
        if reply and "not found" in reply.lower():
            raise CarlaReplayError(f"{log}: the server could not open the log ({reply.strip()})")
        world = client.get_world()  # replay_file may load the log's map
        world.tick()
        hero = _find_hero(world, info)
        if hero is None:
            raise CarlaReplayError(f"{log}: no hero vehicle (role_name=hero) appeared in the replay")
        bp = world.get_blueprint_library().find("sensor.camera.rgb")
        bp.set_attribute("image_size_x", str(ns.width))
        bp.set_attribute("image_size_y", str(ns.height))
        bp.set_attribute("fov", str(ns.fov))
        chase = carla.Transform(carla.Location(x=-6.5, z=3.0), carla.Rotation(pitch=-12.0))
        camera = world.spawn_actor(bp, chase, attach_to=hero)
        frames: queue.Queue[Any] = queue.Queue()
        camera.listen(frames.put)
        total = ns.duration if ns.duration > 0 else max((info.duration_s or 0.0) - ns.start, 0.0)
        for _ in range(max(int(total * ns.fps), 1)):
            world.tick()
            try:
                image = frames.get(timeout=ns.timeout)
            except queue.Empty:
                raise CarlaReplayError("the chase camera produced no frame (server stalled?)") from None
            bgra = np.frombuffer(image.raw_data, dtype=np.uint8).reshape(image.height, image.width, 4)
            yield np.ascontiguousarray(bgra[..., :3])
    finally:
        if camera is not None:
            camera.stop()
            camera.destroy()
        client.stop_replayer(False)
        world.apply_settings(original)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa carla-replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("log", type=Path, help="a CARLA recorder log (.log) written by the harness's record=true")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the server / a frame")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the log (negative: from the end)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to replay (0: to the end)")
    p.add_argument("--fps", type=float, default=20.0)
    p.add_argument("--width", type=int, default=960)
    p.add_argument("--height", type=int, default=540)
    p.add_argument("--fov", type=float, default=90.0)
    p.add_argument("--out", type=Path, default=None, help="video path (default: LOG with .mp4)")
    return p


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    try:
        if not ns.log.is_file():
            raise CarlaReplayError(f"{ns.log}: no such recorder log")
        if ns.fps <= 0 or ns.width <= 0 or ns.height <= 0 or ns.width % 2 or ns.height % 2:
            raise CarlaReplayError("--fps must be > 0 and --width/--height positive even numbers")
        log = str(ns.log.resolve())
        client = connect(ns.host, ns.port, ns.timeout)
        info = parse_recorder_info(client.show_recorder_file_info(log, False))
        if info.map_name is None:
            raise CarlaReplayError(f"{log}: the server could not read it as a CARLA recorder log")
        print(f"{log}: map {info.map_name}, {info.duration_s} s, hero id {info.hero_id}")
        from agent.replay.render import write_video

        out = ns.out or ns.log.with_suffix(".mp4")
        n = write_video(replay_frames(client, log, ns, info), out, fps=ns.fps)
        print(f"wrote {out} ({n} frames)")
        return 0
    except CarlaReplayError as exc:
        print(f"drive-jepa carla-replay: {exc}", file=sys.stderr)
        return 2

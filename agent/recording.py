"""Per-route recordings of the agent (`.djr` files): the writer the leaderboard adapter uses, and the reader.

A recording holds, per model step (10 Hz): the front camera image (downscaled JPEG), the ego state, the route
target and command, the model inputs' scalars, every proposal with its scores and sub-scores, the selection
(index, final scores, momentum term), the plan being driven, the control sent, timings and warnings; plus
events (e.g. the evaluator's infractions) and a summary at the end. Format (little-endian; docs/replays.md):

    file   := b"DJREPLAY" u16 version u16 0  record*
    record := tag[4] u32 payload_len u32 crc32(payload)  payload
    payload:= u32 header_len  header(JSON, UTF-8)  blobs

`tag` is META (first; header only), STEP, EVNT or ENDR. A STEP header's `arrays` maps a name to
`[dtype, shape, offset, nbytes]` into the blobs that follow; `jpeg` is `[offset, nbytes]`. Records are appended
and the file is flushed every `flush_period_s` of simulation time, so a crash loses at most that much; the
reader stops at the first truncated or corrupt record and reports it (`Replay.truncated`).

Frames and units: poses in the right-handed WORLD frame (x, y, heading rad) or EGO_REAR_AXLE (x forward, y left)
as named; speeds m/s; times s (the leaderboard's timestamp); timings ms.

The world around the ego (`WORLD_ARRAYS`, when the world gives it: the lite world's `world_view`; never an input
of the policy) rides in each STEP's arrays as `world/<name>`: `actor_ids` (N,) int32, `actor_kind` (N,) int8
(index into `WORLD_KINDS`), `actor_boxes` (N, 6) float32 WORLD x, y, heading, length, width, speed;
`lights` (L, 5) float32 stop-line centre x, y, lane heading, state (index into `LIGHT_STATES`), lane width;
`light_governs_ego` (L,) bool (the light of the ego's lane); `light_ids` (L,) int32 (the id the evaluator's
red-light messages name). Evaluator infractions arrive as EVNT records with
`source = "evaluator"` and the simulation time of the tick that raised them (`other_id` for collisions).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"DJREPLAY"
VERSION = 1
FILE_HEADER = struct.Struct("<8sHH")
RECORD_HEADER = struct.Struct("<4sII")
_U32 = struct.Struct("<I")
TAGS = (b"META", b"STEP", b"EVNT", b"ENDR")
SUFFIX = ".djr"
WORLD_KINDS = ("vehicle", "pedestrian", "bicycle", "prop", "emergency", "debris")
LIGHT_STATES = ("red", "yellow", "green")
WORLD_ARRAYS = ("actor_ids", "actor_kind", "actor_boxes", "lights", "light_governs_ego", "light_ids")


class ReplayFormatError(ValueError):
    """A file is not a drive-jepa recording, or is of an unsupported version."""


@dataclass
class RecordingConfig:
    """How recordings are written (`AgentConfig.record_options`)."""

    # The front image is downscaled to this width (aspect kept; 0 keeps the source size) and JPEG-encoded. The
    # defaults meet ≈5 MB per minute at 10 Hz (docs/PERFORMANCE.md); counterfactual re-runs feed the model an
    # upscaled copy, so raise the width (or 0) when re-runs must see what the agent saw.
    image_width: int = 384
    jpeg_quality: int = 35
    proposals_dtype: str = "float16"  # float16: ≈2 cm resolution at 40 m; "float32" to keep them exactly
    flush_period_s: float = 1.0  # simulation seconds between flushes: a crash loses at most this much


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray | np.generic):
        return _jsonable(x.tolist())
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):  # not JSON
            return None
        return float(f"{x:.7g}")  # 7 significant digits: mm at 10 km, and a third smaller headers
    return x


def _pack(header: dict[str, Any], blobs: list[tuple[str, np.ndarray]], jpeg: bytes | None = None) -> bytes:
    parts: list[bytes] = []
    offset = 0
    arrays: dict[str, list[Any]] = {}
    for name, arr in blobs:
        a = np.ascontiguousarray(arr)
        raw = a.tobytes()
        arrays[name] = [a.dtype.str, list(a.shape), offset, len(raw)]
        parts.append(raw)
        offset += len(raw)
    if arrays:
        header["arrays"] = arrays
    if jpeg is not None:
        header["jpeg"] = [offset, len(jpeg)]
        parts.append(jpeg)
    head = json.dumps(_jsonable(header), separators=(",", ":"), allow_nan=False).encode()
    return _U32.pack(len(head)) + head + b"".join(parts)


class RecordingWriter:
    """Append-only writer for one route. Use `step(...)` per model step, `event(...)`, then `close(...)`."""

    def __init__(self, path: str | Path, meta: dict[str, Any], cfg: RecordingConfig | None = None) -> None:
        self.cfg = cfg or RecordingConfig()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO | None = self.path.open("xb")  # never overwrite an existing recording
        self._f.write(FILE_HEADER.pack(MAGIC, VERSION, 0))
        self.bytes_written = FILE_HEADER.size
        self.steps = 0
        self._last_flush_t: float | None = None
        self._write(b"META", _pack({"version": VERSION, "recording": dataclasses.asdict(self.cfg), **meta}, []))
        self._f.flush()

    @staticmethod
    def unique_path(path: str | Path) -> Path:
        """`path`, or `path` with `_1`, `_2`, … before the suffix when it exists (a retried route)."""
        p = Path(path)
        k = 1
        while p.exists():
            p = Path(path).with_name(f"{Path(path).stem}_{k}{Path(path).suffix}")
            k += 1
        return p

    def _write(self, tag: bytes, payload: bytes) -> None:
        if self._f is None:
            raise ValueError(f"{self.path}: recording already closed")
        self._f.write(RECORD_HEADER.pack(tag, len(payload), zlib.crc32(payload)))
        self._f.write(payload)
        self.bytes_written += RECORD_HEADER.size + len(payload)

    def encode_image(self, bgr_or_bgra: np.ndarray) -> tuple[bytes, tuple[int, int]]:
        """Camera frame (H, W, 3|4) BGR(A) uint8 → JPEG bytes at the recording's width and quality, (w, h).

        Downscaling: Gaussian pyramid halvings while the image is at least twice the target width, then area
        interpolation (≈3 ms for 1600×900 → 384 on the dev VM, against ≈19 ms for one area resize of a strided
        view); the JPEG uses optimized Huffman tables (≈18 % smaller, lossless).
        """
        img = np.ascontiguousarray(bgr_or_bgra)
        h, w = img.shape[:2]
        target = int(self.cfg.image_width)
        if target and target < w:
            while img.shape[1] >= 2 * target:
                img = cv2.pyrDown(img)
            nh = max(2, round(h * target / w))
            img = cv2.resize(img, (target, nh), interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img[..., :3])
        params = [cv2.IMWRITE_JPEG_QUALITY, int(self.cfg.jpeg_quality), cv2.IMWRITE_JPEG_OPTIMIZE, 1]
        ok, buf = cv2.imencode(".jpg", img, params)
        if not ok:
            raise ValueError("JPEG encoding of the camera frame failed")
        return buf.tobytes(), (img.shape[1], img.shape[0])

    def step(
        self,
        header: dict[str, Any],
        arrays: dict[str, np.ndarray],
        image_bgra: np.ndarray | None = None,
    ) -> None:
        """One model step: `header` must hold `t` (s); arrays are stored with their dtype (proposals converted)."""
        blobs: list[tuple[str, np.ndarray]] = []
        for name, arr in arrays.items():
            a = np.asarray(arr)
            if name == "proposals":
                a = a.astype(self.cfg.proposals_dtype)
            blobs.append((name, a))
        jpeg = None
        if image_bgra is not None:
            jpeg, (w, h) = self.encode_image(image_bgra)
            header["image_size"] = [w, h]
        self._write(b"STEP", _pack({"step": self.steps, **header}, blobs, jpeg))
        self.steps += 1
        t = float(header["t"])
        if self._last_flush_t is None or t - self._last_flush_t >= self.cfg.flush_period_s or t < self._last_flush_t:
            self.flush()
            self._last_flush_t = t

    def event(self, t: float, kind: str, message: str = "", **extra: Any) -> None:
        """An event at time `t` (e.g. an infraction); flushed at once (events are rare and precious)."""
        self._write(b"EVNT", _pack({"t": float(t), "kind": kind, "message": message, **extra}, []))
        self.flush()

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._f is None:
            return
        self._write(b"ENDR", _pack({"steps": self.steps, **(summary or {})}, []))
        self._f.close()
        self._f = None


# ------------------------------------------------------------------------------------------------- reading


@dataclass
class Step:
    """One recorded model step. `header` is the JSON header; `arrays` the decoded arrays; `jpeg` the image bytes."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    jpeg: bytes | None

    @property
    def t(self) -> float:
        return float(self.header["t"])

    def image_bgr(self) -> np.ndarray | None:
        if self.jpeg is None:
            return None
        return cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)

    def get(self, name: str) -> np.ndarray | None:
        return self.arrays.get(name)


@dataclass
class Replay:
    path: Path
    meta: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    truncated: str | None = None  # why reading stopped early (a crash while writing), else None

    @property
    def times(self) -> np.ndarray:
        return np.array([s.t for s in self.steps], dtype=np.float64)

    @property
    def duration(self) -> float:
        return float(self.steps[-1].t - self.steps[0].t) if self.steps else 0.0


def _unpack(payload: bytes, where: str) -> tuple[dict[str, Any], dict[str, np.ndarray], bytes | None]:
    (hlen,) = _U32.unpack_from(payload, 0)
    header = json.loads(payload[4 : 4 + hlen])
    body = memoryview(payload)[4 + hlen :]
    arrays: dict[str, np.ndarray] = {}
    for name, (dtype, shape, off, nbytes) in header.pop("arrays", {}).items():
        if off + nbytes > len(body):
            raise ReplayFormatError(f"{where}: array {name!r} runs past the record")
        arrays[name] = np.frombuffer(body[off : off + nbytes], dtype=np.dtype(dtype)).reshape(shape)
    jpeg = None
    if "jpeg" in header:
        off, nbytes = header.pop("jpeg")
        jpeg = bytes(body[off : off + nbytes])
    return header, arrays, jpeg


def iter_records(f: BinaryIO, path: Path) -> Iterator[tuple[bytes, bytes] | str]:
    """Yield (tag, payload) per intact record; a final str says why reading stopped early."""
    index = 0
    while True:
        head = f.read(RECORD_HEADER.size)
        if not head:
            return
        if len(head) < RECORD_HEADER.size:
            yield f"record {index}: truncated header"
            return
        tag, n, crc = RECORD_HEADER.unpack(head)
        if tag not in TAGS:
            yield f"record {index}: unknown tag {tag!r}"
            return
        payload = f.read(n)
        if len(payload) < n:
            yield f"record {index} ({tag.decode()}): truncated payload ({len(payload)} of {n} bytes)"
            return
        if zlib.crc32(payload) != crc:
            yield f"record {index} ({tag.decode()}): checksum mismatch"
            return
        yield tag, payload
        index += 1


def read_replay(path: str | Path) -> Replay:
    """Read a `.djr` recording. Raises ReplayFormatError (one line naming the file) when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise ReplayFormatError(f"{p}: no such recording file")
    with p.open("rb") as f:
        head = f.read(FILE_HEADER.size)
        if len(head) < FILE_HEADER.size or head[:8] != MAGIC:
            raise ReplayFormatError(f"{p}: not a drive-jepa recording (expected the {MAGIC.decode()} header)")
        _, version, _ = FILE_HEADER.unpack(head)
        if version != VERSION:
            raise ReplayFormatError(f"{p}: recording format version {version}, this reader supports {VERSION}")
        replay: Replay | None = None
        for item in iter_records(f, p):
            if isinstance(item, str):
                if replay is None:
                    raise ReplayFormatError(f"{p}: {item} before the META record")
                replay.truncated = item
                log.warning("%s: %s; keeping the %d steps before it", p, item, len(replay.steps))
                break
            tag, payload = item
            try:
                header, arrays, jpeg = _unpack(payload, f"{p} {tag.decode()}")
            except (ValueError, KeyError, struct.error) as exc:
                if replay is None:
                    raise ReplayFormatError(f"{p}: unreadable META record ({exc})") from None
                replay.truncated = f"unreadable {tag.decode()} record: {exc}"
                break
            if replay is None:
                if tag != b"META":
                    raise ReplayFormatError(f"{p}: first record is {tag.decode()}, expected META")
                replay = Replay(p, header)
            elif tag == b"STEP":
                if "final_scores" not in arrays and "scores" in arrays and "selected" in header:
                    arrays["final_scores"] = arrays["scores"]  # stored once when selection maximised the scores
                replay.steps.append(Step(header, arrays, jpeg))
            elif tag == b"EVNT":
                replay.events.append(header)
            elif tag == b"ENDR":
                replay.summary = header
        if replay is None:
            raise ReplayFormatError(f"{p}: empty recording (no META record)")
        if replay.summary is None and replay.truncated is None:
            replay.truncated = "no end record (the run stopped without closing the recording)"
    return replay


# ------------------------------------------------------------------------------------------------- the agent side


def step_fields(info: Any, control: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A policy `StepInfo` (+ the control sent) → the STEP header and arrays (see the module docstring)."""
    header: dict[str, Any] = {
        "t": float(info.timestamp),
        "timings_ms": dict(info.timings_ms),
        "warnings": list(info.warnings),
        "control": {
            "throttle": float(control.throttle),
            "steer": float(control.steer),
            "brake": float(control.brake),
            "reason": str(getattr(control, "reason", "")),
        },
    }
    arrays: dict[str, np.ndarray] = {}
    if info.ego is not None:
        header["ego"] = {
            "center": info.ego.center,  # WORLD (x, y, heading)
            "rear_axle": info.ego.rear_axle,
            "speed": float(info.ego.speed),
            "yaw_rate": float(info.ego.yaw_rate),
        }
    if info.route is not None:
        header["route"] = {
            "target_world": info.route.target_world,
            "target_ego": info.route.target_ego,
            "command": int(info.route.command),
            "remaining_m": float(info.route.remaining_m),
            "done": bool(info.route.done),
        }
    if info.inputs is not None:
        header["inputs"] = {
            "command": info.inputs.command,
            "speed": float(info.inputs.speed),
            "acceleration": info.inputs.acceleration,
            "target_point": info.inputs.target_point,
        }
    if info.outputs is not None:
        header["dt"] = float(info.outputs.dt)
        arrays["proposals"] = np.asarray(info.outputs.proposals)  # (N, T, 3) EGO_REAR_AXLE
        arrays["scores"] = np.asarray(info.outputs.scores, dtype=np.float32)
        for name, sub in info.outputs.subscores.items():
            arrays[f"sub/{name}"] = np.asarray(sub, dtype=np.float32)
    if info.selection is not None:
        header["selected"] = int(info.selection.index)
        final = np.asarray(info.selection.scores, dtype=np.float32)
        if "scores" not in arrays or not np.array_equal(final, arrays["scores"]):  # argmax: the reader restores it
            arrays["final_scores"] = final
        if info.selection.comfort is not None:
            arrays["momentum_scores"] = np.asarray(info.selection.comfort, dtype=np.float32)
    if info.plan is not None:
        arrays["plan"] = np.asarray(info.plan, dtype=np.float32)  # (T, 3) EGO_REAR_AXLE, driven now
    return header, arrays

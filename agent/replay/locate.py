"""Find a route's recordings, CARLA recorder logs and evaluator infractions in an evaluation folder, and place the
infractions on the recording's timeline.

Evaluation folder layout (written by `drive-jepa eval`, docs/evaluation.md):

    records/<key>.json                         the route's record store entry; `record` = leaderboard record
    agent/<save_name>/replay*.djr              the agent's recordings (record=true), save_name from the record
    agent/carla_recorder/<key>/attempt<N>/*.log  CARLA recorder logs (eval record=true)

`key` = `RouteScenario_<route>_rep<k>`. `route_artifacts` is the one function that knows this layout.

Infraction times: the evaluator's own where it gave them (the lite world records each infraction with its
simulation time in the recording and in the record's `meta.infraction_events`); otherwise the messages' CARLA
location ("… at (x=…, y=…, z=…)") is matched to the recorded step whose ego box centre is nearest (WORLD = CARLA
with y flipped), and the event says so (`time_source`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.recording import SUFFIX, Replay
from drive_jepa import frames as F

log = logging.getLogger(__name__)

_LOCATION = re.compile(r"at \(x=(-?[\d.]+), y=(-?[\d.]+), z=(-?[\d.]+)\)")
MATCH_MAX_M = 10.0  # an infraction farther than this from every recorded ego position is left untimed


@dataclass
class RouteArtifacts:
    key: str
    record: dict[str, Any] | None = None
    recordings: list[Path] = field(default_factory=list)  # best first (the deciding attempt's, else newest)
    carla_logs: list[Path] = field(default_factory=list)


def route_key(route_id: str) -> str:
    """'7', 'RouteScenario_7' or 'RouteScenario_7_rep0' → 'RouteScenario_7_rep0'."""
    rid = str(route_id).strip()
    if re.fullmatch(r"RouteScenario_\w+_rep\d+", rid):
        return rid
    rid = rid.removeprefix("RouteScenario_")
    return f"RouteScenario_{rid}_rep0"


def route_artifacts(eval_dir: Path, route_id: str) -> RouteArtifacts:
    """Everything stored for one route of an evaluation folder (see the module docstring for the layout)."""
    key = route_key(route_id)
    out = RouteArtifacts(key)
    store = eval_dir / "records" / f"{key}.json"
    if store.is_file():
        try:
            doc = json.loads(store.read_text())
        except (OSError, json.JSONDecodeError) as exc:  # the recording is still worth showing
            log.warning("%s: unreadable route record (%s); infractions will not be placed", store, exc)
            doc = None
        out.record = doc.get("record") if isinstance(doc, dict) else None
    agent_dir = eval_dir / "agent"
    found = sorted(
        {*agent_dir.glob(f"{key}_*/*{SUFFIX}"), *agent_dir.glob(f"{key}_*{SUFFIX}")},
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    save_name = (out.record or {}).get("save_name")
    if save_name:
        found.sort(key=lambda p: save_name not in (p.parent.name, p.stem))  # the deciding attempt's first
    out.recordings = found
    out.carla_logs = sorted((agent_dir / "carla_recorder" / key).glob("attempt*/*.log"))
    return out


def list_routes(eval_dir: Path) -> list[RouteArtifacts]:
    keys = {p.stem for p in (eval_dir / "records").glob("RouteScenario_*.json")}
    for p in (eval_dir / "agent").glob("RouteScenario_*"):
        m = re.match(r"(RouteScenario_\w+?_rep\d+)", p.name)
        if m:
            keys.add(m.group(1))
    return [route_artifacts(eval_dir, k) for k in sorted(keys, key=_natural)]


def _natural(key: str) -> tuple[int, str]:
    m = re.match(r"RouteScenario_(\d+)", key)
    return (int(m.group(1)) if m else -1, key)


def infraction_events(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The leaderboard record's infraction messages as events (kind = the infraction list's name)."""
    events = []
    for kind, messages in ((record or {}).get("infractions") or {}).items():
        for msg in messages or []:
            ev: dict[str, Any] = {"kind": str(kind), "message": str(msg), "source": "evaluator"}
            m = _LOCATION.search(str(msg))
            if m:
                ev["location_carla"] = [float(v) for v in m.groups()]
            events.append(ev)
    return events


def _timed_events(replay: Replay, record: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """The evaluator's own timestamped infractions per kind, in order: the recording's EVNT records with
    `source = "evaluator"`, else the record's `meta.infraction_events` (the lite world writes both)."""
    recorded = [e for e in replay.events if e.get("source") == "evaluator" and "t" in e]
    if not recorded:
        recorded = [dict(e) for e in ((record or {}).get("meta") or {}).get("infraction_events") or [] if "t" in e]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in recorded:
        by_kind.setdefault(str(e.get("kind")), []).append(e)
    return by_kind


CONTACT_MARGIN_M = 0.3  # boxes this close count as touching (10 Hz steps can straddle the first contact)
CONTACT_GAP_S = 1.0  # contact spans with the same actor closer than this are one collision
_OTHER_ID = re.compile(r"\bid=(\d+)")


def _corners(b: np.ndarray, margin: float) -> np.ndarray:
    """(S, 5) boxes x, y, heading, length, width → (S, 4, 2) corners, grown by `margin` on every side."""
    c, s = np.cos(b[:, 2]), np.sin(b[:, 2])
    hl, hw = b[:, 3] / 2 + margin, b[:, 4] / 2 + margin
    sx = np.array([1.0, 1.0, -1.0, -1.0])
    sy = np.array([1.0, -1.0, -1.0, 1.0])
    dx, dy = sx[None] * hl[:, None], sy[None] * hw[:, None]
    return np.stack(
        [b[:, None, 0] + c[:, None] * dx - s[:, None] * dy, b[:, None, 1] + s[:, None] * dx + c[:, None] * dy], -1
    )


def contact_times(replay: Replay, other_id: int, margin: float = CONTACT_MARGIN_M) -> list[float]:
    """Start times of the spans in which the ego's box touches the recorded box of actor `other_id` (recordings
    with the world around the ego): where the evaluator gave no time, a collision with that actor happened at one
    of these."""
    ts, ego_b, oth_b = [], [], []
    g = F.LINCOLN_MKZ_2020
    length = float(replay.meta.get("ego_length", g.length))
    width = float(replay.meta.get("ego_width", g.width))
    for st in replay.steps:
        ids, ego = st.arrays.get("world/actor_ids"), st.header.get("ego")
        if ids is None or ego is None:
            continue
        k = np.nonzero(np.asarray(ids) == other_id)[0]
        if len(k):
            ts.append(st.t)
            ego_b.append([*ego["center"][:3], length, width])
            oth_b.append(np.asarray(st.arrays["world/actor_boxes"], np.float64)[k[0], :5])
    if not ts:
        return []
    a, b = _corners(np.asarray(ego_b, np.float64), margin / 2), _corners(np.asarray(oth_b, np.float64), margin / 2)
    axes = np.concatenate([a[:, 1:3] - a[:, 0:2], b[:, 1:3] - b[:, 0:2]], 1)  # (S, 4, 2): both boxes' edge directions
    pa = np.einsum("skd,sad->sak", a, axes)
    pb = np.einsum("skd,sad->sak", b, axes)
    touch = ~((pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))).any(1)
    starts, last = [], -np.inf
    for t, hit in zip(ts, touch, strict=True):
        if hit:
            if t - last > CONTACT_GAP_S:
                starts.append(float(t))
            last = t
    return starts


_LIGHT_ID = re.compile(r"red light (\d+)")


def red_light_crossings(replay: Replay, light_id: int) -> list[float]:
    """Times at which the ego's rear crosses the stop line of a red light `light_id` (recordings with the world):
    the step at which the tail first lies past a stop line of that light, within its lane, the light red."""
    g = F.LINCOLN_MKZ_2020
    half = float(replay.meta.get("ego_length", g.length)) / 2
    out: list[float] = []
    prev: dict[tuple[float, float], float] = {}  # per stop line (its position): the tail's distance past it
    for st in replay.steps:
        ids, ego = st.arrays.get("world/light_ids"), st.header.get("ego")
        if ids is None or ego is None:
            continue
        rows = np.nonzero(np.asarray(ids) == light_id)[0]
        if not len(rows):
            continue
        lights = np.asarray(st.arrays["world/lights"], np.float64)[rows]
        cx, cy, ch = (float(v) for v in ego["center"][:3])
        # scenario_runner's RunningRedLightTest: the point 0.8 half-lengths behind the centre crosses the line
        tail = np.array([cx - 0.8 * half * np.cos(ch), cy - 0.8 * half * np.sin(ch)])
        u = np.stack([np.cos(lights[:, 2]), np.sin(lights[:, 2])], -1)
        rel = tail[None] - lights[:, :2]
        along = (rel * u).sum(-1)
        lateral = np.abs(rel[:, 0] * u[:, 1] - rel[:, 1] * u[:, 0])
        for row, a, lat in zip(lights, along, lateral, strict=True):
            key = (round(float(row[0]), 1), round(float(row[1]), 1))
            crossed = prev.get(key, np.inf) <= 0.0 < a and lat <= row[4] / 2 + 1.5 and int(row[3]) == 0
            if crossed and (not out or st.t - out[-1] > CONTACT_GAP_S):
                out.append(float(st.t))
            prev[key] = float(a)
    return out


def attach_infractions(replay: Replay, record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Put the record's infractions on the recording's timeline and add them to `replay.events`.

    The time is the evaluator's own (`time_source = "evaluator"`): the k-th message of a kind takes the k-th
    timestamped event of that kind (a message the evaluator rewrites in place, the outside-lanes percentage, keeps
    the time it first appeared). Without one, a collision naming its other party (`id=N`) in a recording with the
    world takes the start of the j-th span in which the recorded boxes touch, for the j-th collision with N
    (`time_source = "contact"`, CARLA runs), and a red light naming its light (`red light N`) the j-th time the
    ego's rear crosses a red stop line of N (`time_source = "crossing"`). Only otherwise is it the time of the
    recorded step whose ego box centre is nearest to the message's location (`time_source = "nearest position"`,
    drawn as approximate).
    Returns the events (sorted by time); unlocated or unmatched ones are returned without `t`.
    """
    centers = np.array(
        [s.header["ego"]["center"][:2] if s.header.get("ego") else [np.nan, np.nan] for s in replay.steps]
    )
    timed = _timed_events(replay, record)
    used: dict[str, int] = {}
    per_other: dict[int, int] = {}
    added: list[dict[str, Any]] = []
    for ev in infraction_events(record):
        kind = ev["kind"]
        k = used.get(kind, 0)
        other = _OTHER_ID.search(ev["message"]) if kind.startswith("collisions") else None
        light = _LIGHT_ID.search(ev["message"]) if kind == "red_light" else None
        contacts: list[float] = []
        source = ""
        if k >= len(timed.get(kind, [])) and (other is not None or light is not None):
            oid = int((other or light).group(1))  # type: ignore[union-attr]
            contacts = contact_times(replay, oid) if other is not None else red_light_crossings(replay, oid)
            source = "contact" if other is not None else "crossing"
            j = per_other.get(oid, 0)
            per_other[oid] = j + 1
            contacts = contacts[j : j + 1]  # the j-th infraction with this actor / light: its j-th contact / crossing
        if k < len(timed.get(kind, [])):
            src = timed[kind][k]
            used[kind] = k + 1
            ev["t"] = float(src["t"])
            ev["time_source"] = "evaluator"
            if "other_id" in src:
                ev["other_id"] = int(src["other_id"])
        elif contacts:
            ev["t"] = contacts[0]
            ev["time_source"] = source  # the recorded boxes first touch / the ego's rear crosses the red stop line
            if other is not None:
                ev["other_id"] = int(other.group(1))
        else:
            loc = ev.get("location_carla")
            if loc is not None and len(centers):
                world = F.carla_points_to_world(np.array([loc[:2]]))[0, :2]
                d = np.hypot(centers[:, 0] - world[0], centers[:, 1] - world[1])
                if np.isfinite(d).any() and np.nanmin(d) <= MATCH_MAX_M:
                    i = int(np.nanargmin(d))
                    ev["t"] = replay.steps[i].t
                    ev["match_m"] = float(d[i])
                    ev["time_source"] = "nearest position"
        if "t" in ev:
            # the recording's own evaluator event for it is replaced by this one (same time, more fields)
            replay.events = [
                e for e in replay.events
                if not (e.get("source") == "evaluator" and e.get("kind") == kind and e.get("t") == ev["t"])
                and e.get("message") != ev["message"]
            ]  # fmt: skip
            replay.events.append(ev)
        added.append(ev)
    replay.events.sort(key=lambda e: float(e.get("t", 0.0)))
    return sorted(added, key=lambda e: float(e.get("t", np.inf)))

"""Render recorded steps into video frames: the front camera with the proposals (coloured by final score, red →
yellow → green) and the selected plan (magenta), a bird's-eye inset, and speed / control / score timelines.

Frame layout (BGR uint8, `FRAME_W` × `FRAME_H`): camera view CAM_W × CAM_H on top (inset in its top-right
corner), timelines below. Everything is drawn with OpenCV; one frame per recorded model step (10 fps = real time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from agent.recording import Replay, Step
from agent.replay.project import project_ego_points
from drive_jepa import frames as F

CAM_W, CAM_H = 960, 540
TIMELINE_H = 180
FRAME_W, FRAME_H = CAM_W, CAM_H + TIMELINE_H
BEV_SIZE = 240  # px, square inset
BEV_M_PER_PX = 0.2  # 48 m across
SELECTED_BGR = (255, 0, 255)  # magenta: the plan the agent chose
TARGET_BGR = (255, 255, 0)  # cyan: the route target point
ROUTE_BGR = (160, 160, 160)
EVENT_BGR = (0, 0, 255)
COMMANDS = {-1: "void", 1: "left", 2: "right", 3: "straight", 4: "follow", 5: "change L", 6: "change R"}


def score_colours(scores: np.ndarray) -> np.ndarray:
    """(N,) scores → (N, 3) BGR uint8 by score rank: worst red, middle yellow, best green (NaN counts as worst).

    Ranks rather than values, so one outlier (e.g. a proposal that reverses) does not wash out the rest.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    n = len(s)
    rank = np.empty(n)
    rank[np.argsort(s, kind="stable")] = np.arange(n)
    u = rank / max(n - 1, 1)
    red = np.clip(2.0 * (1.0 - u), 0, 1) * 255
    green = np.clip(2.0 * u, 0, 1) * 255
    return np.stack([np.zeros_like(u), green, red], -1).astype(np.uint8)


def _with_origin(traj: np.ndarray) -> np.ndarray:
    """(…, T, 2+) → (…, T+1, 2) with the ego origin (0, 0) first, so a plan is drawn from the ego."""
    xy = np.asarray(traj, dtype=np.float64)[..., :2]
    zero = np.zeros((*xy.shape[:-2], 1, 2))
    return np.concatenate([zero, xy], -2)


def _polyline(img: np.ndarray, uv: np.ndarray, valid: np.ndarray, colour: tuple[int, ...], thickness: int) -> None:
    pts = np.round(uv - 0.5).astype(np.int32)  # continuous pixel coordinates → OpenCV's pixel centres
    run: list[np.ndarray] = []
    for ok, p in zip(valid, pts, strict=True):
        if ok:
            run.append(p)
        elif run:
            cv2.polylines(img, [np.array(run)], False, colour, thickness, cv2.LINE_AA)
            run = []
    if len(run) > 1:
        cv2.polylines(img, [np.array(run)], False, colour, thickness, cv2.LINE_AA)


def _scores(step: Step) -> np.ndarray | None:
    final = step.get("final_scores")
    return final if final is not None else step.get("scores")


# the world around the ego (recordings with `world/*` arrays): colours by kind (agent.recording.WORLD_KINDS)
KIND_BGR = ((235, 175, 95), (0, 165, 255), (90, 230, 90), (0, 215, 235), (255, 110, 255), (130, 130, 130))
KIND_HEIGHT_M = (1.5, 1.8, 1.7, 1.0, 2.2, 0.2)
LIGHT_BGR = ((0, 0, 255), (0, 215, 255), (0, 220, 0))  # red, yellow, green (agent.recording.LIGHT_STATES)
HIGHLIGHT_BGR = (0, 0, 255)
# infractions the evaluator measures at route checkpoints (not moments): ticks on the timeline, no caption
PERIODIC_KINDS = ("min_speed_infractions",)


@dataclass
class WorldLocal:
    """A step's recorded world in its EGO_REAR_AXLE frame: actor boxes (N, 4, 2) corners, kind (N,), ids (N,);
    lights: stop-line ends (L, 2, 2), state (L,), governs the ego's lane (L,)."""

    corners: np.ndarray
    kind: np.ndarray
    ids: np.ndarray
    light_ends: np.ndarray
    light_state: np.ndarray
    light_governs: np.ndarray

    @classmethod
    def of(cls, step: Step) -> WorldLocal | None:
        boxes, ego = step.get("world/actor_boxes"), step.header.get("ego")
        if boxes is None or ego is None:
            return None
        origin = np.asarray(ego["rear_axle"], np.float64)
        b = np.asarray(boxes, np.float64).reshape(-1, 6)
        c, s = np.cos(b[:, 2]), np.sin(b[:, 2])
        hl, hw = b[:, 3] / 2, b[:, 4] / 2
        offs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], np.float64)
        dx, dy = offs[None, :, 0] * hl[:, None], offs[None, :, 1] * hw[:, None]
        world = np.stack([b[:, None, 0] + c[:, None] * dx - s[:, None] * dy,
                          b[:, None, 1] + s[:, None] * dx + c[:, None] * dy], -1)  # fmt: skip
        corners = F.points_to_local(world.reshape(-1, 2), origin).reshape(-1, 4, 2)
        lights = step.get("world/lights")
        lt = np.zeros((0, 5)) if lights is None else np.asarray(lights, np.float64).reshape(-1, 5)
        n = np.stack([-np.sin(lt[:, 2]), np.cos(lt[:, 2])], -1) * (lt[:, 4:5] / 2)  # across the lane
        ends = np.stack([lt[:, :2] + n, lt[:, :2] - n], 1)
        ends = F.points_to_local(ends.reshape(-1, 2), origin).reshape(-1, 2, 2)
        gov = step.get("world/light_governs_ego")
        return cls(
            corners=corners,
            kind=np.asarray(step.get("world/actor_kind"), np.int64).reshape(-1),
            ids=np.asarray(step.get("world/actor_ids"), np.int64).reshape(-1),
            light_ends=ends,
            light_state=lt[:, 3].astype(np.int64),
            light_governs=np.zeros(len(lt), bool) if gov is None else np.asarray(gov, bool).reshape(-1),
        )


def _others(events_near: list[dict[str, object]] | None) -> set[int]:
    """Ids of the other parties of the collisions being shown."""
    return {int(e["other_id"]) for e in events_near or [] if e.get("other_id") is not None}  # type: ignore[call-overload]


def _draw_world_in_camera(
    img: np.ndarray, replay: Replay, w: WorldLocal, others: set[int], cam: dict[str, object], r2c: float
) -> None:
    """Actor boxes (3D, by kind) and the stop lines of the lights governing the ego's lane, projected."""
    h, wid = img.shape[:2]
    for ends, state, gov in zip(w.light_ends, w.light_state, w.light_governs, strict=True):
        if gov:
            uv, ok = project_ego_points(ends, cam, r2c, wid, h)
            if ok.all():
                colour = LIGHT_BGR[int(state) % 3]
                cv2.line(img, tuple(int(v) for v in uv[0]), tuple(int(v) for v in uv[1]), colour, 5, cv2.LINE_AA)
    order = np.argsort(-np.hypot(w.corners[:, :, 0].mean(1), w.corners[:, :, 1].mean(1)))  # far first
    for i in order:
        k = int(w.kind[i]) if 0 <= int(w.kind[i]) < len(KIND_BGR) else 0
        base = np.concatenate([w.corners[i], np.zeros((4, 1))], 1)
        top = base.copy()
        top[:, 2] = KIND_HEIGHT_M[k]
        uv, ok = project_ego_points(np.concatenate([base, top]), cam, r2c, wid, h)
        if not ok.all():
            continue
        hit = int(w.ids[i]) in others
        colour, thick = (HIGHLIGHT_BGR, 3) if hit else (KIND_BGR[k], 1)
        p = np.round(uv).astype(np.int32)
        for a, b in ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)):
            cv2.line(img, tuple(int(v) for v in p[a]), tuple(int(v) for v in p[b]), colour, thick, cv2.LINE_AA)


def camera_view(replay: Replay, step: Step, events_near: list[dict[str, object]] | None = None) -> np.ndarray:
    """The recorded image scaled to CAM_W × CAM_H with proposals and the selected plan projected on the ground,
    and (recordings with the world) the actors' boxes, the ego lane's light and the collision's other party."""
    img = step.image_bgr()
    if img is None:
        img = np.zeros((CAM_H, CAM_W, 3), np.uint8)
        cv2.putText(img, "no camera frame", (20, CAM_H // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    else:
        img = cv2.resize(img, (CAM_W, CAM_H), interpolation=cv2.INTER_LINEAR)
    cam = replay.meta["camera"]
    r2c = float(replay.meta.get("rear_axle_to_center", F.LINCOLN_MKZ_2020.rear_axle_to_center))
    world = WorldLocal.of(step)
    if world is not None:
        _draw_world_in_camera(img, replay, world, _others(events_near), cam, r2c)
    props, scores = step.get("proposals"), _scores(step)
    if props is not None and scores is not None:
        uv, valid = project_ego_points(_with_origin(props), cam, r2c, CAM_W, CAM_H)
        colours = score_colours(scores)
        for i in np.argsort(np.nan_to_num(scores, nan=-np.inf)):  # best drawn last (on top)
            _polyline(img, uv[i], valid[i], tuple(int(c) for c in colours[i]), 2)
        sel = step.header.get("selected")
        if sel is not None:
            _polyline(img, uv[sel], valid[sel], SELECTED_BGR, 5)
            for p, ok in zip(uv[sel][1:], valid[sel][1:], strict=True):
                if ok:
                    cv2.circle(img, tuple(int(v) for v in np.round(p - 0.5)), 6, SELECTED_BGR, -1, cv2.LINE_AA)
    route = step.header.get("route")
    if route is not None:
        tuv, tok = project_ego_points(np.asarray(route["target_ego"])[None], cam, r2c, CAM_W, CAM_H)
        if tok[0]:
            cv2.drawMarker(img, tuple(int(v) for v in tuv[0]), TARGET_BGR, cv2.MARKER_TILTED_CROSS, 18, 3)
    return img


def bev_inset(replay: Replay, step: Step, events_near: list[dict[str, object]] | None = None) -> np.ndarray:
    """Top view around the ego (forward = up, left = left): route, the recorded world (actor boxes by kind, the
    lights' stop lines by state, the ego lane's thicker; a collision's other party filled red, the infraction's
    location ringed), proposals, selected plan, target, ego box."""
    size = BEV_SIZE
    img = np.full((size, size, 3), 30, np.uint8)
    origin = np.array([size / 2.0, size * 0.8])  # ego rear axle in pixels

    def px(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        u = origin[0] - xy[..., 1] / BEV_M_PER_PX  # y left → pixels left
        v = origin[1] - xy[..., 0] / BEV_M_PER_PX  # x forward → up
        return np.round(np.stack([u, v], -1)).astype(np.int32)

    ego = step.header.get("ego")
    route_world = replay.meta.get("route", {}).get("world")
    if ego is not None and route_world is not None and len(route_world):
        local = F.points_to_local(np.asarray(route_world, dtype=np.float64), np.asarray(ego["rear_axle"]))
        near = np.hypot(local[:, 0], local[:, 1]) < 60
        if near.sum() > 1:
            cv2.polylines(img, [px(local[near])], False, ROUTE_BGR, 2, cv2.LINE_AA)
    world = WorldLocal.of(step)
    others = _others(events_near)
    if world is not None:
        for ends, state, gov in zip(world.light_ends, world.light_state, world.light_governs, strict=True):
            a, b = px(ends)
            cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), LIGHT_BGR[int(state) % 3], 4 if gov else 2)
        for i in range(len(world.ids)):
            k = int(world.kind[i]) if 0 <= int(world.kind[i]) < len(KIND_BGR) else 0
            if int(world.ids[i]) not in others:
                cv2.polylines(img, [px(world.corners[i])], True, KIND_BGR[k], 1 if k == 5 else 2, cv2.LINE_AA)
    props, scores = step.get("proposals"), _scores(step)
    if props is not None and scores is not None:
        colours = score_colours(scores)
        lines = px(_with_origin(props))
        for i in np.argsort(np.nan_to_num(scores, nan=-np.inf)):
            cv2.polylines(img, [lines[i]], False, tuple(int(c) for c in colours[i]), 1, cv2.LINE_AA)
        sel = step.header.get("selected")
        if sel is not None:
            cv2.polylines(img, [lines[sel]], False, SELECTED_BGR, 2, cv2.LINE_AA)
    route = step.header.get("route")
    if route is not None:
        cv2.drawMarker(
            img, tuple(int(v) for v in px(np.asarray(route["target_ego"]))), TARGET_BGR, cv2.MARKER_CROSS, 10, 2
        )
    if world is not None:  # a collision's other party, on top of everything and at least a 12 px disc
        for j in np.nonzero(np.isin(world.ids, list(others)))[0]:
            poly = px(world.corners[j])
            c = poly.mean(0).round().astype(int)
            cv2.circle(img, (int(c[0]), int(c[1])), 8, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.circle(img, (int(c[0]), int(c[1])), 6, HIGHLIGHT_BGR, -1)
            cv2.fillPoly(img, [poly], HIGHLIGHT_BGR)
    if ego is not None:
        for ev in events_near or []:
            loc = ev.get("location_carla")
            if loc is not None:  # the infraction's location (CARLA → WORLD: y flipped)
                world_xy = F.carla_points_to_world(np.array([list(loc)[:2]], np.float64))[0, :2]  # type: ignore[call-overload]
                p = px(F.points_to_local(world_xy[None], np.asarray(ego["rear_axle"]))[0])
                cv2.circle(img, (int(p[0]), int(p[1])), 9, (255, 255, 255), 2, cv2.LINE_AA)
    # ego box (Lincoln MKZ footprint), rear axle at the origin
    g = F.LINCOLN_MKZ_2020
    r2c = float(replay.meta.get("rear_axle_to_center", g.rear_axle_to_center))
    box = np.array([[r2c + g.length / 2, g.width / 2], [r2c + g.length / 2, -g.width / 2]])
    box = np.concatenate([box, [[r2c - g.length / 2, -g.width / 2], [r2c - g.length / 2, g.width / 2]]])
    cv2.polylines(img, [px(box)], True, (255, 255, 255), 1)
    cv2.rectangle(img, (0, 0), (size - 1, size - 1), (200, 200, 200), 1)
    return img


@dataclass
class Series:
    """Per-step values for the timelines (NaN where a step lacks them)."""

    t: np.ndarray
    speed: np.ndarray
    throttle: np.ndarray
    brake: np.ndarray
    steer: np.ndarray
    selected_score: np.ndarray
    best_score: np.ndarray

    @classmethod
    def of(cls, steps: list[Step]) -> Series:
        def col(fn: object) -> np.ndarray:
            out = []
            for s in steps:
                try:
                    out.append(float(fn(s)))  # type: ignore[operator]
                except (KeyError, TypeError, IndexError):
                    out.append(np.nan)
            return np.array(out)

        def sel(s: Step) -> float:
            sc = _scores(s)
            return float(sc[s.header["selected"]]) if sc is not None else np.nan

        def best(s: Step) -> float:
            sc = _scores(s)
            return float(np.nanmax(sc)) if sc is not None else np.nan

        return cls(
            t=col(lambda s: s.t),
            speed=col(lambda s: s.header["ego"]["speed"]),
            throttle=col(lambda s: s.header["control"]["throttle"]),
            brake=col(lambda s: s.header["control"]["brake"]),
            steer=col(lambda s: s.header["control"]["steer"]),
            selected_score=col(sel),
            best_score=col(best),
        )


class Timelines:
    """Speed, control and score plots over the rendered range; `draw(t)` adds the cursor for one frame."""

    def __init__(self, steps: list[Step], events: list[dict[str, object]]) -> None:
        self.series = Series.of(steps)
        s = self.series
        self.t0, self.t1 = (float(s.t[0]), float(s.t[-1])) if len(s.t) else (0.0, 1.0)
        if self.t1 <= self.t0:
            self.t1 = self.t0 + 0.1
        self.base = np.full((TIMELINE_H, FRAME_W, 3), 18, np.uint8)
        rows = [(0, 60), (60, 120), (120, 180)]
        x = self._x(s.t)
        vmax = max(float(np.nanmax(s.speed)) if np.isfinite(s.speed).any() else 1.0, 1.0)
        self._plot(x, s.speed / vmax, rows[0], (255, 255, 255))
        self._plot(x, s.throttle, rows[1], (0, 200, 0))
        self._plot(x, s.brake, rows[1], (0, 0, 230))
        self._plot(x, (s.steer + 1) / 2, rows[1], (230, 120, 0))
        finite = np.concatenate(
            [s.selected_score[np.isfinite(s.selected_score)], s.best_score[np.isfinite(s.best_score)]]
        )
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        span = max(hi - lo, 1e-6)
        self._plot(x, (s.best_score - lo) / span, rows[2], (0, 160, 0))
        self._plot(x, (s.selected_score - lo) / span, rows[2], SELECTED_BGR)
        labels = [
            (f"speed (max {vmax:.1f} m/s)", rows[0]),
            ("throttle / brake / steer", rows[1]),
            (f"score: selected, best [{lo:.2f}, {hi:.2f}]", rows[2]),
        ]
        for text, (top, _) in labels:
            cv2.putText(self.base, text, (6, top + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (200, 200, 200), 1, cv2.LINE_AA)
        for top, _ in rows[1:]:
            cv2.line(self.base, (0, top), (FRAME_W - 1, top), (70, 70, 70), 1)
        for ev in events:
            et = float(ev["t"])  # type: ignore[arg-type]
            if self.t0 <= et <= self.t1:
                ex = int(self._x(np.array([et]))[0])
                if ev.get("kind") in PERIODIC_KINDS:  # checkpoint measurements, not moments: a small tick
                    cv2.line(self.base, (ex, 0), (ex, 8), (150, 150, 150), 1)
                elif ev.get("time_source") == "nearest position":  # no time from the evaluator: approximate
                    for y in range(0, TIMELINE_H, 8):
                        cv2.line(self.base, (ex, y), (ex, min(y + 4, TIMELINE_H - 1)), EVENT_BGR, 2)
                    cv2.putText(self.base, "~t", (ex + 3, TIMELINE_H - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                                EVENT_BGR, 1, cv2.LINE_AA)  # fmt: skip
                else:
                    cv2.line(self.base, (ex, 0), (ex, TIMELINE_H - 1), EVENT_BGR, 2)

    def _x(self, t: np.ndarray) -> np.ndarray:
        return 4 + (t - self.t0) / (self.t1 - self.t0) * (FRAME_W - 8)

    def _plot(self, x: np.ndarray, u: np.ndarray, row: tuple[int, int], colour: tuple[int, int, int]) -> None:
        top, bottom = row
        y = bottom - 4 - np.clip(u, 0, 1) * (bottom - top - 20)
        ok = np.isfinite(y)
        pts = np.stack([x, y], -1)[ok].round().astype(np.int32)
        if len(pts) > 1:
            cv2.polylines(self.base, [pts], False, colour, 1, cv2.LINE_AA)

    def draw(self, t: float) -> np.ndarray:
        img = self.base.copy()
        x = int(self._x(np.array([t]))[0])
        cv2.line(img, (x, 0), (x, TIMELINE_H - 1), (0, 255, 255), 1)
        return img


def _text(
    img: np.ndarray, lines: list[str], org: tuple[int, int], colour: tuple[int, int, int] = (255, 255, 255)
) -> None:
    """Lines of text on a dark box (an outline drawn with a thicker stroke would shift OpenCV's glyph advance)."""
    if not lines:
        return
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.55
    width = max(cv2.getTextSize(line, font, scale, 1)[0][0] for line in lines)
    x0, y0 = org[0] - 4, org[1] - 16
    box = img[max(y0, 0) : org[1] + 20 * (len(lines) - 1) + 6, max(x0, 0) : org[0] + width + 4]
    box[:] = (box * 0.35).astype(np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(img, line, (org[0], org[1] + 20 * k), font, scale, colour, 1, cv2.LINE_AA)


def step_caption(step: Step) -> list[str]:
    h = step.header
    ego, ctl, route = h.get("ego") or {}, h.get("control") or {}, h.get("route") or {}
    scores = _scores(step)
    sel = h.get("selected")
    score = f"{float(scores[sel]):.3f}" if scores is not None and sel is not None else "-"
    lines = [
        f"t {step.t:7.2f} s   step {h.get('step', '?')}",
        f"speed {ego.get('speed', float('nan')):5.2f} m/s   cmd {COMMANDS.get(route.get('command', -9), '?')}",
        f"thr {ctl.get('throttle', 0):.2f}  brk {ctl.get('brake', 0):.2f}  str {ctl.get('steer', 0):+.2f}",
        f"selected #{sel}  score {score}",
    ]
    if "momentum_scores" in step.arrays and sel is not None:
        lines.append(f"momentum {float(step.arrays['momentum_scores'][sel]):.3f}")
    if h.get("warnings"):
        lines.append(f"! {h['warnings'][0][:60]}")
    return lines


def compose_frame(
    replay: Replay, step: Step, timelines: Timelines, events_near: list[dict[str, object]] | None = None
) -> np.ndarray:
    """One FRAME_W × FRAME_H BGR video frame for `step`."""
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    frame[:CAM_H] = camera_view(replay, step, events_near)
    frame[8 : 8 + BEV_SIZE, CAM_W - BEV_SIZE - 8 : CAM_W - 8] = bev_inset(replay, step, events_near)
    frame[CAM_H:] = timelines.draw(step.t)
    _text(frame, step_caption(step), (10, 24))
    for k, ev in enumerate(events_near or []):
        approx = "~ " if ev.get("time_source") == "nearest position" else ""
        msg = f"{approx}{ev.get('kind', 'event')}: {str(ev.get('message', ''))[:70]}"
        _text(frame, [msg], (10, CAM_H - 16 - 20 * k), EVENT_BGR)
    return frame


def frames(replay: Replay, steps: list[Step], event_window_s: float = 1.0) -> Iterator[np.ndarray]:
    """Video frames for `steps`; an event is captioned for `event_window_s` after it happens."""
    timelines = Timelines(steps, replay.events)
    shown = [e for e in replay.events if e.get("kind") not in PERIODIC_KINDS]
    for step in steps:
        near = [e for e in shown if 0.0 <= step.t - float(e["t"]) <= event_window_s]
        yield compose_frame(replay, step, timelines, near)


SIDE_W, SIDE_H = 800, 450  # each camera view of the counterfactual video; the frame is 2 * SIDE_W wide


def side_by_side(replay: Replay, recorded: Step, other: Step, label: str, panel: np.ndarray) -> np.ndarray:
    """Recorded (left) vs counterfactual (right) camera views above `panel` (2 * SIDE_W wide; for the video,
    `agent.replay.cf_panel.CounterfactualPanel.draw`: caption and both runs' timelines)."""
    if panel.shape[1] != 2 * SIDE_W:
        raise ValueError(f"panel is {panel.shape[1]} px wide, expected {2 * SIDE_W}")
    left = cv2.resize(camera_view(replay, recorded), (SIDE_W, SIDE_H), interpolation=cv2.INTER_AREA)
    right = cv2.resize(camera_view(replay, other), (SIDE_W, SIDE_H), interpolation=cv2.INTER_AREA)
    _text(left, ["recorded agent"], (10, 24))
    _text(right, [label[:60]], (10, 24))
    return np.vstack([np.hstack([left, right]), panel])


def write_video(frames_iter: Iterator[np.ndarray], path: Path, fps: float = 10.0) -> int:
    """Encode BGR frames (all the size of the first; even sizes) to an H.264 MP4 with PyAV (yuv420p, plays
    everywhere), written to a temporary name and renamed at the end; returns the frame count."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    count = 0
    stream = None
    with av.open(str(tmp), mode="w") as container:
        for img in frames_iter:
            if stream is None:
                stream = container.add_stream("libx264", rate=round(fps))
                stream.height, stream.width = img.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "23", "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
            count += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    if count == 0:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{path}: no frames to write (empty frame range?)")
    tmp.replace(path)
    return count

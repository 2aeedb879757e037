"""A recording → a Rerun `.rrd` file for interactive inspection (`rerun FILE.rrd`; no viewer needed to write it).

Timeline `t` (seconds, the leaderboard's timestamp). Entities:
    camera/image                 the recorded front image (JPEG, as stored)
    camera/proposals, camera/selected   proposals (coloured by score rank) and the chosen plan, projected (pixels)
    ego/proposals, ego/selected, ego/target   the same in EGO_REAR_AXLE (x forward, y left, metres; 3D view)
    world/route, world/ego       the route and the ego's rear-axle path in WORLD (right-handed)
    plots/speed, plots/throttle, plots/brake, plots/steer, plots/score/selected, plots/score/best
    events                       text log of events (infractions)
    step                         the step's header (warnings, timings, command) as text
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agent.recording import Replay, Step
from agent.replay.project import project_ego_points
from agent.replay.render import SELECTED_BGR, _scores, _with_origin, score_colours
from drive_jepa import frames as F


def _rgb(bgr: np.ndarray) -> np.ndarray:
    return np.asarray(bgr)[..., ::-1]


def write_rrd(replay: Replay, steps: list[Step], path: Path) -> None:
    import rerun as rr

    path.parent.mkdir(parents=True, exist_ok=True)
    rec = rr.RecordingStream("drive-jepa-replay")
    tmp = path.with_name(f".{path.name}.tmp")
    rec.save(tmp)
    cam = replay.meta["camera"]
    r2c = float(replay.meta.get("rear_axle_to_center", F.LINCOLN_MKZ_2020.rear_axle_to_center))
    route_world = replay.meta.get("route", {}).get("world")
    if route_world is not None and len(route_world):
        rec.log(
            "world/route", rr.LineStrips3D([np.c_[np.asarray(route_world), np.zeros(len(route_world))]]), static=True
        )
    sel_rgb = _rgb(np.array(SELECTED_BGR))
    path_xy: list[np.ndarray] = []
    for step in steps:
        rec.set_time("t", duration=step.t)
        h = step.header
        if step.jpeg is not None:
            rec.log("camera/image", rr.EncodedImage(contents=step.jpeg, media_type="image/jpeg"))
        size = h.get("image_size") or [cam["width"], cam["height"]]
        props, scores, sel = step.get("proposals"), _scores(step), h.get("selected")
        if props is not None and scores is not None:
            colours = _rgb(score_colours(scores))
            lines = _with_origin(props)
            uv, valid = project_ego_points(lines, cam, r2c, int(size[0]), int(size[1]))
            strips = [u[v] for u, v in zip(uv, valid, strict=True)]
            rec.log("camera/proposals", rr.LineStrips2D(strips, colors=colours))
            rec.log("ego/proposals", rr.LineStrips3D([np.c_[ln, np.zeros(len(ln))] for ln in lines], colors=colours))
            if sel is not None:
                rec.log("camera/selected", rr.LineStrips2D([strips[sel]], colors=[sel_rgb], radii=2.0))
                rec.log(
                    "ego/selected", rr.LineStrips3D([np.c_[lines[sel], np.zeros(len(lines[sel]))]], colors=[sel_rgb])
                )
                rec.log("plots/score/selected", rr.Scalars(float(scores[sel])))
            rec.log("plots/score/best", rr.Scalars(float(np.nanmax(scores))))
        route = h.get("route")
        if route is not None:
            rec.log("ego/target", rr.Points3D([[*route["target_ego"], 0.0]], colors=[[0, 255, 255]], radii=0.5))
        ego = h.get("ego")
        if ego is not None:
            rec.log("plots/speed", rr.Scalars(float(ego["speed"])))
            path_xy.append(np.asarray(ego["rear_axle"][:2], dtype=np.float64))
            rec.log("world/ego", rr.LineStrips3D([np.c_[np.array(path_xy), np.zeros(len(path_xy))]]))
        ctl = h.get("control") or {}
        for key in ("throttle", "brake", "steer"):
            if key in ctl:
                rec.log(f"plots/{key}", rr.Scalars(float(ctl[key])))
        info = {k: h.get(k) for k in ("step", "tick", "selected", "warnings", "timings_ms", "control")}
        rec.log("step", rr.TextDocument(json.dumps(info, indent=1)))
    for ev in replay.events:
        rec.set_time("t", duration=float(ev["t"]))
        rec.log("events", rr.TextLog(f"{ev.get('kind', 'event')}: {ev.get('message', '')}", level="WARN"))
    rec.flush()
    rec.disconnect()
    tmp.replace(path)

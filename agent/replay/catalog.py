"""What an evaluation folder holds for replays, for `drive-jepa replay --list` and the HTML report.

- `scan_recording`: is a `.djr` complete or partial (an interrupted attempt), from its record headers only (it
  seeks over the payloads, so it reads a few bytes per record, not the images).
- Rendered replays live where `drive-jepa replay EVAL --route-id K` writes them by default: `replay_dir(rec)` =
  `<recording>_replay/` beside the route's first recording (`locate.route_artifacts`), i.e.
  `EVAL/agent/<save_name>/replay_replay/{replay.mp4, replay.rrd}`.
- `collect_routes`: per route, its recording, rendered replay (when there), and the record's infractions with
  their time on the recording's timeline (`locate.attach_infractions`) and a thumbnail of the recorded camera frame
  nearest that time (a small JPEG written into the report folder).
- `routes_html`: the report's per-route section, with links relative to the report folder.
"""

from __future__ import annotations

import html
import os
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np

from agent.recording import FILE_HEADER, MAGIC, RECORD_HEADER, TAGS, VERSION, ReplayFormatError, read_replay
from agent.replay.locate import RouteArtifacts, attach_infractions, infraction_events, list_routes

VIDEO = "replay.mp4"
RRD = "replay.rrd"
THUMB_WIDTH = 240
THUMB_QUALITY = 75
# the evaluator's periodic min-speed reports (route checkpoints, not moments; not penalised by Bench2Drive): counted
MIN_SPEED_KIND, MIN_SPEED_PREFIX = "min_speed_infractions", "Average speed is"


def replay_dir(recording: Path) -> Path:
    """Default output folder of `drive-jepa replay` for a recording: `<recording stem>_replay/` beside it."""
    return recording.with_name(f"{recording.stem}_replay")


@dataclass(frozen=True)
class RecordingScan:
    """A recording's state from its record headers: `partial` is None for a complete recording (it ends with
    its end record), else why it is not (the run was interrupted). Checksums are not verified here."""

    path: Path
    steps: int
    partial: str | None

    @property
    def complete(self) -> bool:
        return self.partial is None


def scan_recording(path: Path) -> RecordingScan:
    """Walk the record headers of a `.djr` (seeking over payloads). Raises ReplayFormatError for a file that is
    not a recording of this version; a truncated or unknown record makes it partial, as `read_replay` would."""
    size = path.stat().st_size
    steps, last = 0, b""
    with path.open("rb") as f:
        head = f.read(FILE_HEADER.size)
        if len(head) < FILE_HEADER.size or head[:8] != MAGIC:
            raise ReplayFormatError(f"{path}: not a drive-jepa recording (expected the {MAGIC.decode()} header)")
        if FILE_HEADER.unpack(head)[1] != VERSION:
            raise ReplayFormatError(f"{path}: recording format version {FILE_HEADER.unpack(head)[1]}")
        pos, index = FILE_HEADER.size, 0
        while pos < size:
            rec = f.read(RECORD_HEADER.size)
            if len(rec) < RECORD_HEADER.size:
                return RecordingScan(path, steps, f"record {index}: truncated header")
            tag, n, _ = RECORD_HEADER.unpack(rec)
            if tag not in TAGS:
                return RecordingScan(path, steps, f"record {index}: unknown tag {tag!r}")
            pos += RECORD_HEADER.size + n
            if pos > size:
                return RecordingScan(path, steps, f"record {index} ({tag.decode()}): truncated payload")
            f.seek(pos)
            steps += tag == b"STEP"
            last, index = tag, index + 1
    if last != b"ENDR":
        return RecordingScan(path, steps, "no end record (the run stopped without closing the recording)")
    return RecordingScan(path, steps, None)


def video_frames(path: Path) -> int | None:
    """Frame count of an MP4 from its container index (no decoding), or None when unreadable."""
    import av

    try:
        with av.open(str(path)) as c:
            return int(c.streams.video[0].frames) or None
    except (OSError, IndexError, ValueError, av.error.FFmpegError):
        return None


@dataclass
class Infraction:
    kind: str
    message: str
    t: float | None = None  # seconds from the recording's first step; None: time unknown
    approximate: bool = False  # t is that of the nearest recorded position, not the evaluator's own
    thumbnail: Path | None = None


@dataclass
class RouteReplay:
    key: str
    status: str | None
    recording: Path | None = None
    scan: RecordingScan | None = None
    video: Path | None = None
    rrd: Path | None = None
    video_frames: int | None = None  # == scan.steps when the video is the whole recording
    infractions: list[Infraction] = field(default_factory=list)
    min_speed_reports: int = 0
    note: str | None = None  # e.g. an unreadable recording

    @property
    def video_is_whole(self) -> bool:
        return self.video_frames is not None and self.scan is not None and self.video_frames == self.scan.steps


def render_command(eval_dir: Path, key: str) -> str:
    return f"drive-jepa replay {shlex.quote(str(eval_dir))} --route-id {key}"


def _thumbnail(img: np.ndarray, path: Path) -> Path | None:
    h, w = img.shape[:2]
    small = cv2.resize(img, (THUMB_WIDTH, max(2, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path if cv2.imwrite(str(path), small, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY]) else None


def collect_route(art: RouteArtifacts, thumbs_dir: Path | None) -> RouteReplay:
    """One route of `locate.list_routes`: its artefacts, infractions (timed when located) and their thumbnails
    (`<key>_infraction<k>.jpg` in `thumbs_dir`). Only routes with infractions have their recording read whole."""
    record = art.record
    out = RouteReplay(art.key, (record or {}).get("status"))
    events = infraction_events(record)
    images: list[np.ndarray | None] = [None] * len(events)
    t0 = 0.0
    if art.recordings:
        out.recording = art.recordings[0]
        try:
            out.scan = scan_recording(out.recording)
        except (OSError, ReplayFormatError) as exc:
            out.note = f"unreadable recording ({exc})"
        folder = replay_dir(out.recording)
        out.video = folder / VIDEO if (folder / VIDEO).is_file() else None
        out.rrd = folder / RRD if (folder / RRD).is_file() else None
        if out.video is not None:
            out.video_frames = video_frames(out.video)
        if events and out.scan is not None and out.scan.steps:
            try:
                replay = read_replay(out.recording)
            except (OSError, ReplayFormatError) as exc:
                out.note = f"unreadable recording ({exc})"
            else:
                events = attach_infractions(replay, record)
                times = replay.times
                t0 = float(times[0]) if len(times) else 0.0
                for k, ev in enumerate(events):
                    if "t" in ev and len(times):
                        images[k] = replay.steps[int(np.argmin(np.abs(times - float(ev["t"]))))].image_bgr()
    for ev, img in zip(events, images, strict=True):
        timed = "t" in ev and out.scan is not None
        if ev["kind"] == MIN_SPEED_KIND or str(ev["message"]).startswith(MIN_SPEED_PREFIX):
            out.min_speed_reports += 1
            continue
        inf = Infraction(str(ev["kind"]), str(ev["message"]), float(ev["t"]) - t0 if timed else None)
        inf.approximate = timed and ev.get("time_source") == "nearest position"
        if img is not None and thumbs_dir is not None:
            inf.thumbnail = _thumbnail(img, thumbs_dir / f"{art.key}_infraction{len(out.infractions) + 1}.jpg")
        out.infractions.append(inf)
    return out


def collect_routes(eval_dir: Path, thumbs_dir: Path | None) -> list[RouteReplay]:
    """Every route of an evaluation folder (records/ and agent/), in route order."""
    return [collect_route(art, thumbs_dir) for art in list_routes(eval_dir)]


def render_missing(eval_dir: Path, progress: bool = True) -> list[Path]:
    """Render `replay.mp4` + `replay.rrd` of the whole recording for every route that has a recording but no
    rendered video in its default folder; returns the folders written. A tqdm bar on stderr shows progress."""
    from tqdm import tqdm

    from agent.replay import render
    from agent.replay.rerun_export import write_rrd

    todo = [a for a in list_routes(eval_dir) if a.recordings and not (replay_dir(a.recordings[0]) / VIDEO).is_file()]
    done: list[Path] = []
    for art in tqdm(todo, desc="rendering replays", unit="route", disable=not progress or not todo):
        replay = read_replay(art.recordings[0])
        if not replay.steps:
            continue
        attach_infractions(replay, art.record)
        folder = replay_dir(replay.path)
        render.write_video(render.frames(replay, replay.steps), folder / VIDEO)
        write_rrd(replay, replay.steps, folder / RRD)
        done.append(folder)
    return done


# ------------------------------------------------------------------------------------------------- HTML


def _href(target: Path, base: Path, fragment: str = "") -> str:
    """A URL relative to the report folder `base` (so the report and the eval folder can move together)."""
    rel = os.path.relpath(target.resolve(), base.resolve())
    return html.escape(quote(Path(rel).as_posix()) + fragment, quote=True)


def _route_cell(r: RouteReplay, eval_dir: Path, base: Path) -> str:
    e = html.escape
    if r.recording is None:
        return "<span class='muted'>no recording (evaluate with the agent's <code>record=true</code>)</span>"
    parts: list[str] = []
    if r.scan is not None and not r.scan.complete:
        parts.append(f"<span class='partial'>partial recording (interrupted attempt): {e(r.scan.partial or '')}</span>")
    if r.note:
        parts.append(f"<span class='bad'>{e(r.note)}</span>")
    if r.video is not None:
        extent = "" if r.video_is_whole or r.scan is None else f" (a window: {r.video_frames} of {r.scan.steps} steps)"
        parts.append(f"<a class='video' href='{_href(r.video, base)}'>{VIDEO}</a>{e(extent)}")
        if r.rrd is not None:
            parts.append(f"<a class='rrd' href='{_href(r.rrd, base)}'>{RRD}</a> (open with <code>rerun</code>)")
        parts.append(f"<video controls preload='none' width='480' src='{_href(r.video, base)}'></video>")
    else:
        cmd = render_command(eval_dir, r.key)
        parts.append(f"not rendered yet: <code>{e(cmd)}</code> (or <code>drive-jepa report … --render-replays</code>)")
    parts.append(f"<span class='muted'>recording {e(str(r.recording))}</span>")
    return "<br>".join(parts)


def _infractions_cell(r: RouteReplay, base: Path) -> str:
    e = html.escape
    if not r.infractions:
        extra = f" ({r.min_speed_reports} min-speed reports)" if r.min_speed_reports else ""
        return f"<span class='muted'>none{e(extra)}</span>"
    items = []
    for inf in r.infractions:
        text = "time unknown" if inf.t is None else f"t {'≈' if inf.approximate else '='} {inf.t:.1f} s"
        when = e(text)
        if inf.t is not None and r.video is not None and r.video_is_whole:  # the video starts at the recording's start
            when = f"<a class='seek' href='{_href(r.video, base, f'#t={inf.t:.1f}')}'>{when}</a>"
        img = ""
        if inf.thumbnail is not None:
            img = f"<img class='thumb' src='{_href(inf.thumbnail, base)}' alt='{e(r.key)}, {e(text)}'>"
        items.append(
            f"<figure class='infraction'>{img}<figcaption><b>{when}</b> · {e(inf.kind)}: {e(inf.message)}"
            "</figcaption></figure>"
        )
    if r.min_speed_reports:
        n = r.min_speed_reports
        items.append(f"<div class='muted'>+ {n} min-speed reports (route checkpoint measurements, not listed)</div>")
    return "".join(items)


def routes_html(routes: Sequence[RouteReplay], eval_dir: Path, base: Path) -> str:
    """The report's "Replays and infractions" section for one evaluation folder; links relative to `base`."""
    rows = "".join(
        f"<tr id='replay-{html.escape(r.key)}'><td>{html.escape(r.key)}</td><td>{html.escape(r.status or '-')}</td>"
        f"<td>{_route_cell(r, eval_dir, base)}</td><td>{_infractions_cell(r, base)}</td></tr>"
        for r in routes
    )
    times = (
        "Infraction times are seconds from the start of the route's recording: the evaluator's own time where it "
        "gave one, else (≈) that of the recorded step nearest the location in the leaderboard's message; "
        "thumbnails are the recorded camera frame there."
    )
    return (
        "<h3>Replays and infractions</h3>"
        f"<div class='muted'>{html.escape(times)}</div>"
        "<table class='text replays'><thead><tr><th>route</th><th>status</th><th>replay</th><th>infractions</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def count_summary(routes: Iterable[RouteReplay]) -> str:
    """One line for stdout: how many routes have a recording, a rendered video, a partial recording."""
    rs = list(routes)
    rec = sum(r.recording is not None for r in rs)
    vid = sum(r.video is not None for r in rs)
    part = sum(r.scan is not None and not r.scan.complete for r in rs)
    return f"{len(rs)} routes: {rec} recorded ({part} partial), {vid} with a rendered replay"

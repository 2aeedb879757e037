"""Replays in the evaluation report: links to each route's rendered replay, infractions with their time and a
thumbnail of the recorded frame, partial recordings marked (report and `drive-jepa replay --list`)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import cv2
import pytest

from agent.recording import read_replay
from agent.replay import catalog
from agent.replay.cli import main as replay_main
from drive_jepa.cli import main as cli_main
from tests.replay.evalfolder import COLLISION_STEP, SAVE, frame_value, make_eval_folder, write_recording


class _Links(HTMLParser):
    """href/src of <a>, <img>, <video> in the replays section."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and tag in ("a", "img", "video"):
                self.links.append((tag, value))


def _links(page: str) -> list[tuple[str, str]]:
    p = _Links()
    p.feed(page[page.index("<h3>Replays and infractions</h3>") :])
    return p.links


def _target(out: Path, url: str) -> Path:
    parts = urlsplit(url)
    assert not parts.scheme and not parts.netloc and not parts.path.startswith("/"), url  # relative
    return out / unquote(parts.path)


@pytest.fixture()
def eval_dir(tmp_path: Path) -> Path:
    return make_eval_folder(tmp_path / "eval")


def test_scan_tells_complete_from_partial_without_reading_payloads(eval_dir: Path) -> None:
    full = eval_dir / "agent" / SAVE.format(key="RouteScenario_3_rep0") / "replay.djr"
    cut = eval_dir / "agent" / SAVE.format(key="RouteScenario_4_rep0") / "replay.djr"
    s = catalog.scan_recording(full)
    assert s.complete and s.steps == 30 and read_replay(full).truncated is None
    p = catalog.scan_recording(cut)
    assert not p.complete and "truncated payload" in (p.partial or "")
    assert p.steps == len(read_replay(cut).steps)  # the same steps as the reader keeps
    unclosed = write_recording(eval_dir / "unclosed" / "replay.djr", 5, close=False)  # stopped, not cut
    u = catalog.scan_recording(unclosed)
    assert u.steps == 5 and (u.partial or "").startswith("no end record")
    assert read_replay(unclosed).truncated == u.partial


def test_list_marks_partial_recordings(eval_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_main([str(eval_dir), "--list"]) == 0
    out = capsys.readouterr().out
    lines = {m.group(1): m.group(2) for m in re.finditer(r"(RouteScenario_\d)_rep0_\S+/replay\.djr\s+\[(.*)\]", out)}
    assert lines["RouteScenario_3"] == "complete, 30 steps"
    assert lines["RouteScenario_4"].startswith("PARTIAL (interrupted attempt): record ")
    assert "RouteScenario_5_rep0" in out and "RouteScenario_5_rep0_" not in out  # a record, no recording


def test_report_links_thumbnails_and_render_command(eval_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert cli_main(["report", str(eval_dir), "--out", str(out), "--mode", "strict"]) == 0
    assert "3 routes: 2 recorded (1 partial), 0 with a rendered replay" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    section = page[page.index("<h3>Replays and infractions</h3>") :]
    # not rendered yet: the exact command that renders it
    assert f"drive-jepa replay {eval_dir} --route-id RouteScenario_3_rep0" in section
    assert "partial recording (interrupted attempt)" in section
    assert re.search(r"t [=≈] 1\.2 s</b> · collisions_vehicle", section)  # step 12 of a 10 Hz recording
    assert "time unknown</b> · outside_route_lanes" in section
    assert "1 min-speed reports (route checkpoint" in section and "Average speed" not in section
    thumbs = [_target(out, u) for tag, u in _links(page) if tag == "img"]
    assert len(thumbs) == 1 and thumbs[0].is_file() and thumbs[0].parent == out / "replay_thumbs"
    img = cv2.imread(str(thumbs[0]))
    assert img is not None and img.shape[1] == catalog.THUMB_WIDTH
    assert abs(float(img.mean()) - frame_value(COLLISION_STEP)) < 3  # the frame at the infraction, not a neighbour


def test_report_renders_missing_replays_and_links_them_relatively(eval_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert cli_main(["report", str(eval_dir), "--out", str(out), "--render-replays"]) == 0
    assert "2 recorded (1 partial), 2 with a rendered replay" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    links = _links(page)
    videos = {_target(out, u) for tag, u in links if tag in ("a", "video") and ".mp4" in u}
    rendered = {
        eval_dir / "agent" / SAVE.format(key=k) / "replay_replay" / "replay.mp4"
        for k in ("RouteScenario_3_rep0", "RouteScenario_4_rep0")
    }
    assert {v.resolve() for v in videos} == {v.resolve() for v in rendered}
    rrds = [_target(out, u) for tag, u in links if u.endswith(".rrd")]
    assert len(rrds) == 2 and all(p.is_file() for p in rrds)
    assert catalog.video_frames(min(rendered)) == 30  # the whole recording: one frame per step
    # the infraction time links into the video at that time (the video is the whole recording)
    seek = [u for tag, u in links if tag == "a" and "#t=" in u]
    assert len(seek) == 1 and seek[0].endswith("replay_replay/replay.mp4#t=1.2") and "RouteScenario_3" in seek[0]
    assert "not rendered yet" not in page
    # the report folder and the eval folder moved together: every link still resolves
    moved = tmp_path / "moved"
    moved.mkdir()
    eval_dir.rename(moved / eval_dir.name)
    out.rename(moved / out.name)
    assert all(_target(moved / out.name, u).exists() for _, u in links)

"""The report's replay links in a real browser: headless Chromium opens report.html, each route's video link points
at that route's rendered replay, the <video> loads its metadata, following an infraction's time link opens the
video at that time, and the frame shown there is the recorded frame of the infraction. Screenshots are saved
beside the report (report_replays.png, infraction_link.png).

Needs the `playwright` package (a dev-only extra, not in pyproject: `uv pip install playwright`) and a Chromium
with H.264 (Debian's `apt-get install chromium`); skipped otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np
import pytest

from drive_jepa.cli import main as cli_main
from tests.replay.evalfolder import COLLISION_STEP, SAVE, frame_value, make_eval_folder

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed (dev-only: pip install playwright)"
)

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
H264 = 'video/mp4; codecs="avc1.64001f"'

LOAD_METADATA = """async (v) => {
    v.preload = "metadata"; v.load();
    await new Promise((ok, bad) => {
        v.onloadedmetadata = ok; v.onerror = () => bad(String(v.error && v.error.code));
    });
    return {duration: v.duration, width: v.videoWidth, height: v.videoHeight, src: v.currentSrc};
}"""
SEEK = """async (v, t) => {
    await new Promise((ok) => { v.onseeked = ok; v.currentTime = t; });
    return v.currentTime;
}"""
OPENED_AT = """async () => {
    const v = document.querySelector("video");
    if (v.readyState < 2) await new Promise((ok) => { v.onloadeddata = ok; });
    return {t: v.currentTime, src: v.currentSrc};
}"""


def _path(url: str) -> Path:
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    return Path(unquote(parts.path))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
def test_report_video_links_open_the_right_videos(tmp_path: Path) -> None:
    eval_dir = make_eval_folder(tmp_path / "eval")
    out = tmp_path / "report"
    assert cli_main(["report", str(eval_dir), "--out", str(out), "--render-replays"]) == 0
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((out / "report.html").resolve().as_uri())
        if not page.evaluate(f"document.createElement('video').canPlayType('{H264}')"):
            browser.close()
            pytest.skip(f"{CHROMIUM} has no H.264 decoder")
        for key in ("RouteScenario_3_rep0", "RouteScenario_4_rep0"):
            row = page.locator(f"tr[id='replay-{key}']")
            expected = (eval_dir / "agent" / SAVE.format(key=key) / "replay_replay").resolve()
            link = row.locator("a.video")
            assert _path(link.evaluate("a => a.href")) == expected / "replay.mp4"
            assert _path(row.locator("a.rrd").evaluate("a => a.href")) == expected / "replay.rrd"
            meta = row.locator("video").evaluate(LOAD_METADATA)
            assert _path(meta["src"]) == expected / "replay.mp4"
            assert (meta["width"], meta["height"]) == (960, 720)
            if key == "RouteScenario_3_rep0":  # 30 steps at 10 Hz, one frame each
                assert meta["duration"] == pytest.approx(3.0, abs=0.11)
        # the recorded frame at the infraction, seen in the report's own player
        row = page.locator("tr[id='replay-RouteScenario_3_rep0']")
        video = row.locator("video")
        video.scroll_into_view_if_needed()
        video.evaluate(SEEK, COLLISION_STEP / 10)
        shot = cv2.imdecode(np.frombuffer(video.screenshot(), np.uint8), cv2.IMREAD_COLOR)
        y, x = int(shot.shape[0] * 300 / 720), int(shot.shape[1] * 50 / 960)  # left of the camera view, no overlay
        grey = float(shot[y - 3 : y + 3, x : x + 6].mean())
        assert abs(grey - frame_value(COLLISION_STEP)) < 8, grey
        page.locator("table.replays").screenshot(path=str(out / "report_replays.png"))
        # follow the infraction's time link: the browser opens that route's video at the infraction's time
        seek = row.locator("a.seek")
        assert seek.inner_text() in ("t = 1.2 s", "t ≈ 1.2 s")
        seek.click()
        page.wait_for_load_state()
        opened = page.evaluate(OPENED_AT)
        route3 = eval_dir.resolve() / "agent" / SAVE.format(key="RouteScenario_3_rep0")
        assert _path(opened["src"].split("#")[0]) == route3 / "replay_replay" / "replay.mp4"
        assert opened["t"] == pytest.approx(1.2, abs=0.11)
        page.screenshot(path=str(out / "infraction_link.png"))
        browser.close()
    assert (out / "report_replays.png").stat().st_size > 0
    print(f"screenshots: {out / 'report_replays.png'} {out / 'infraction_link.png'}")

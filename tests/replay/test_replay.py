"""`drive-jepa replay` on a synthetic recorded run: video frames and overlays, Rerun file, ranges, evaluation-folder
lookup with infraction timing, counterfactual re-runs, and bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from agent.model_api import ModelInputs, ModelOutputs
from agent.recording import Step, read_replay
from agent.replay import counterfactual as cf
from agent.replay import render
from agent.replay.cli import main as replay_main
from agent.replay.locate import route_artifacts, route_key
from agent.replay.project import project_ego_points
from drive_jepa import frames as F
from drive_jepa.cli import main as cli_main
from tests.replay.helpers import SAVE_NAME, record_run

pytestmark = pytest.mark.carla  # the run is recorded through the adapter with the real carla client's types

INFRACTION_T = 8.0


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory) -> Path:
    """An evaluation folder as `drive-jepa eval` lays it out, with one recorded route that collided at 8 s."""
    root = tmp_path_factory.mktemp("eval")
    path, _, _ = record_run(root, seconds=12.0)
    replay = read_replay(path)
    at = next(s for s in replay.steps if abs(s.t - INFRACTION_T) < 1e-6)
    x, y = F.carla_points_to_world(np.asarray(at.header["ego"]["center"][:2]))  # WORLD → CARLA (own inverse)
    msg = f"Agent collided against object with type=static.prop.bin and id=0 at (x={x:.3f}, y={y:.3f}, z=0.1)"
    record = {
        "route_id": "RouteScenario_7_rep0",
        "save_name": SAVE_NAME,
        "status": "Failed",
        "num_infractions": 2,
        "scores": {"score_composed": 21.5, "score_route": 43.0, "score_penalty": 0.5},
        "infractions": {"collisions_layout": [msg], "outside_route_lanes": ["Agent went outside its route lanes"]},
    }
    (root / "records").mkdir()
    doc = {"key": "RouteScenario_7_rep0", "state": "done", "record": record, "attempts": []}
    (root / "records" / "RouteScenario_7_rep0.json").write_text(json.dumps(doc))
    log = root / "agent" / "carla_recorder" / "RouteScenario_7_rep0" / "attempt1" / "RouteScenario_7_rep0.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"CARLA recorder log stand-in")
    return root


@pytest.fixture(scope="module")
def replay_path(eval_dir) -> Path:
    return eval_dir / "agent" / SAVE_NAME / "replay.djr"


def _count_frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


def test_frame_overlays_land_where_the_plan_projects(replay_path):
    replay = read_replay(replay_path)
    step = replay.steps[60]
    blank = Step(step.header, step.arrays, None)  # black background: every coloured pixel is an overlay
    timelines = render.Timelines(replay.steps, replay.events)
    frame = render.compose_frame(replay, blank, timelines)
    assert frame.shape == (render.FRAME_H, render.FRAME_W, 3)
    sel = step.header["selected"]
    plan = step.arrays["proposals"][sel].astype(np.float64)
    uv, ok = project_ego_points(plan, replay.meta["camera"], replay.meta["rear_axle_to_center"], 960, 540)
    hits = 0
    for (u, v), good in zip(uv, ok, strict=True):
        if good and 260 < u < 700 and 120 < v < 530:  # away from the caption and the inset
            patch = frame[int(v) - 3 : int(v) + 4, int(u) - 3 : int(u) + 4].reshape(-1, 3)
            hits += bool(np.any(np.all(patch == render.SELECTED_BGR, axis=1)))
    assert hits >= 2, "the selected plan is not drawn where it projects"
    cam = frame[: render.CAM_H, : render.CAM_W - render.BEV_SIZE - 8]
    b, g, r = (cam[..., k].astype(int) for k in range(3))
    green = ((g > 200) & (r < 90) & (b < 60)).sum()
    red = ((r > 200) & (g < 90) & (b < 60)).sum()
    assert green > 50 and red > 20, "best (green) and worst (red) proposals should both be visible"
    inset = frame[8 : 8 + render.BEV_SIZE, render.CAM_W - render.BEV_SIZE - 8 : render.CAM_W - 8]
    assert np.all(inset == render.SELECTED_BGR, axis=-1).sum() > 20
    timeline = frame[render.CAM_H :]
    assert (timeline.max(axis=-1) > 100).sum() > 500  # curves were plotted


def test_score_colours_by_rank():
    c = render.score_colours(np.array([0.1, np.nan, 5.0, 0.2]))
    assert tuple(c[2]) == (0, 255, 0) and tuple(c[1]) == (0, 0, 255)  # best green, NaN worst red
    assert c[3, 1] > c[0, 1]


def test_replay_command_writes_video_and_rerun(replay_path, tmp_path):
    out = tmp_path / "out"
    rc = cli_main(["replay", str(replay_path), "--from", "2", "--to", "4", "--out", str(out)])
    assert rc == 0
    assert _count_frames(out / "replay.mp4") == (21, render.FRAME_W, render.FRAME_H)
    rerun = shutil.which("rerun") or str(Path(sys.executable).with_name("rerun"))
    subprocess.run([rerun, "rrd", "verify", str(out / "replay.rrd")], check=True, capture_output=True, timeout=120)
    printed = subprocess.run(
        [rerun, "rrd", "print", "-v", str(out / "replay.rrd")], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    for entity in ("/camera/image", "/camera/proposals", "/camera/selected", "/ego/proposals", "/plots/speed"):
        assert entity in printed


def test_last_seconds(replay_path, tmp_path):
    assert replay_main([str(replay_path), "--last", "2", "--no-rrd", "--out", str(tmp_path)]) == 0
    assert _count_frames(tmp_path / "replay.mp4")[0] == 21


def test_from_an_evaluation_folder_before_the_infraction(eval_dir, tmp_path, capsys):
    art = route_artifacts(eval_dir, "7")
    assert art.key == "RouteScenario_7_rep0" and art.recordings[0].name == "replay.djr"
    assert art.carla_logs and art.carla_logs[0].suffix == ".log"
    rc = replay_main([str(eval_dir), "--route-id", "7", "--before-infraction", "3", "--no-rrd", "--out", str(tmp_path)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "infraction (t≈8.0 s, nearest position): Agent collided" in printed  # a CARLA-like record: no time
    assert "infraction (not located): Agent went outside" in printed
    assert _count_frames(tmp_path / "replay.mp4")[0] == 41  # 3 s before + 1 s after, at 10 Hz
    assert replay_main([str(eval_dir), "--list"]) == 0
    listed = capsys.readouterr().out
    assert "RouteScenario_7_rep0" in listed and "replay.djr" in listed and "carla-replay" in listed


def test_unreadable_route_record_still_finds_the_recording(eval_dir, tmp_path):
    copy = tmp_path / "eval"
    shutil.copytree(eval_dir, copy)
    (copy / "records" / "RouteScenario_7_rep0.json").write_text("{ truncated")
    art = route_artifacts(copy, "RouteScenario_7")
    assert art.record is None and art.recordings and art.recordings[0].name == "replay.djr"


def test_route_keys():
    assert route_key("7") == route_key("RouteScenario_7") == "RouteScenario_7_rep0"
    assert route_key("RouteScenario_7_rep2") == "RouteScenario_7_rep2"


def test_same_model_rerun_reproduces_the_recorded_choices(replay_path, tmp_path):
    out = tmp_path / "cf"
    rc = replay_main([str(replay_path), "--from", "5", "--to", "6", "--no-video", "--no-rrd", "--rerun", "route_follow",
                      "--out", str(out)])  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader((out / "counterfactual.csv").open()))
    assert len(rows) == 11 and _count_frames(out / "counterfactual.mp4")[0] == 11
    for r in rows:
        assert r["rec_index"] == r["cf_index"] and float(r["fde_m"]) < 0.05 and r["differs"] == "False"
        assert float(r["rec_score"]) == pytest.approx(float(r["cf_score"]), abs=1e-3)


class _HardLeft:
    """A model whose best proposal is always the sharpest left turn of the recorded proposal set."""

    def __init__(self, props: np.ndarray) -> None:
        self.props = props.astype(np.float64)

    def plan(self, inputs: ModelInputs) -> ModelOutputs:
        assert inputs.video.shape[:2] == (3, 2) and np.isfinite(inputs.video).all()
        left = self.props[:, -1, 1]
        return ModelOutputs(self.props, left / 10.0, {"leftness": left}, 0.5)


def test_a_different_model_is_flagged_and_explained(replay_path, tmp_path):
    from agent.leaderboard_agent import load_agent_config

    replay = read_replay(replay_path)
    conf = tmp_path / "a.yaml"
    conf.write_text(replay.meta["config_yaml"])
    policy = load_agent_config(conf).policy
    model = _HardLeft(replay.steps[0].arrays["proposals"])
    comps = cf.compare(replay, list(range(20, 30)), model, policy)
    assert len(comps) == 10
    for c in comps:
        r = c.row
        assert r["differs"] and r["fde_m"] > 1.0
        assert r["cf_score"] >= r["cf_score_of_recorded_like"]
        assert "leftness" in cf.why(r)
    from agent.replay.cf_panel import PANEL_H, CounterfactualPanel

    panel = CounterfactualPanel([c.row for c in comps], replay.events, None, 2 * render.SIDE_W)
    frame = render.side_by_side(replay, comps[0].step, comps[0].as_step(), "other", panel.draw(0, ["caption"]))
    assert frame.shape == (render.SIDE_H + PANEL_H, 1600, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{root}/nothing_here"], "no such recording or evaluation folder"),
        (["{root}"], "pass --route-id"),
        (["{root}", "--route-id", "99"], "no recording for RouteScenario_99_rep0"),
        (["{bad}"], "not a drive-jepa recording"),
        (["{rec}", "--from", "100"], "no steps in"),
        (["{rec}", "--before-infraction", "5"], "no infraction with a time"),
        (["{rec}", "--rerun", "no_such_model"], "expected a checkpoint folder"),
    ],
)
def test_bad_input_is_one_clear_line(eval_dir, replay_path, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.djr"
    bad.write_bytes(b"garbage")
    args = [a.format(root=eval_dir, bad=bad, rec=replay_path) for a in argv]
    assert replay_main([*args, "--no-video", "--no-rrd", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err

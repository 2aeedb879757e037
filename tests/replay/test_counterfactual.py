"""Counterfactual re-run: the divergence point (rule, CSV column, printed line) and the bottom panel of
counterfactual.mp4 (both runs' timelines, cursor, divergence marker, events) on a short synthetic recorded run."""

from __future__ import annotations

import csv

import av
import numpy as np
import pytest

from agent.leaderboard_agent import build_model
from agent.model_api import ModelInputs, ModelOutputs, PlanModel
from agent.recording import Replay, read_replay
from agent.replay import counterfactual as cf
from agent.replay import render
from agent.replay.cf_panel import BACKGROUND, CAPTION_H, CURSOR_BGR, DIVERGE_BGR, PANEL_H, CounterfactualPanel
from agent.replay.cli import main as replay_main
from tests.replay.helpers import record_run

pytestmark = pytest.mark.carla  # recorded through the adapter with the real carla client's types, as test_replay

EVENT_T = 5.0
WINDOW = list(range(30, 50))  # 3.0 .. 4.9 s of the recording
SWITCH = 8  # the synthetic other model leaves the recorded plan from the 9th frame of the window on


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Replay:
    path, _, _ = record_run(tmp_path_factory.mktemp("cf"), seconds=7.0, events={EVENT_T: "hit a bin"})
    return read_replay(path)


@pytest.fixture(scope="module")
def route_follow(replay) -> tuple[PlanModel, object]:
    cfg = cf.load_rerun_config("route_follow", replay)
    return build_model(cfg), cfg.policy


class _ShiftAfter:
    """The recorded model, but from call `after` on (for `calls` calls) every plan is shifted 3 m to the left."""

    def __init__(self, inner: PlanModel, after: int, calls: int = 10_000) -> None:
        self.inner, self.after, self.calls, self.n = inner, after, calls, 0

    def plan(self, inputs: ModelInputs) -> ModelOutputs:
        out = self.inner.plan(inputs)
        self.n += 1
        if self.after < self.n <= self.after + self.calls:
            out.proposals = out.proposals + np.array([0.0, 3.0, 0.0], dtype=out.proposals.dtype)
        return out


def test_find_divergence_rule():
    ade = np.array([0.1, 2.0, 0.2, 2.0, 2.0, 0.1, 1.5, 1.5, 1.5, 1.5, 0.0])
    assert cf.find_divergence(ade, 1.0, 3) == 6  # the flicker at 1 and the pair at 3-4 are too short
    assert cf.find_divergence(ade, 1.0, 2) == 3
    assert cf.find_divergence(ade, 1.0, 1) == 1
    assert cf.find_divergence(ade, 1.5, 3) is None  # strictly above the threshold
    assert cf.find_divergence(np.array([0.0, np.nan, 5.0, 5.0]), 1.0, 3) is None  # NaN is not "apart"
    assert cf.find_divergence(np.array([5.0, 5.0]), 1.0, 3) is None  # a run cut by the window's end does not count
    assert cf.find_divergence(np.zeros(0), 1.0, 1) is None
    with pytest.raises(ValueError, match="at least 1"):
        cf.find_divergence(ade, 1.0, 0)


def test_plan_speed_is_the_mean_speed_over_the_first_second():
    plans = np.zeros((2, 8, 3))
    plans[0, :, 0] = 2.0 * np.arange(1, 9)  # 4 m/s straight, poses every 0.5 s
    plans[1, :, 1] = 1.0 * np.arange(1, 9)  # 2 m/s sideways
    assert cf.plan_speed(plans, 0.5) == pytest.approx([4.0, 2.0])
    assert cf.plan_speed(plans[:, :1], 0.5) == pytest.approx([4.0, 2.0])  # shorter than 1 s: what there is


def test_divergence_found_where_the_runs_part(replay, route_follow):
    model, policy = route_follow
    rows = [c.row for c in cf.compare(replay, WINDOW, _ShiftAfter(model, SWITCH), policy)]
    assert len(rows) == len(WINDOW)
    div = cf.divergence(rows)
    assert div is not None and div.k == SWITCH
    assert div.t == rows[SWITCH]["t"] and div.ade_m == pytest.approx(3.0, abs=0.05)
    assert div.threshold_m == cf.DIVERGE_ADE_M and div.min_frames == cf.DIVERGE_MIN_FRAMES
    assert "plans diverge at t=" in div.line() and "ADE 3.0" in div.line()
    cf.mark_divergence(rows, div)
    assert [k for k, r in enumerate(rows) if r["divergence_point"]] == [SWITCH]
    for k, r in enumerate(rows):  # both runs' timeline values; shifted plans start with a 3 m sideways jump
        same = r["cf_plan_speed_mps"] == pytest.approx(r["rec_plan_speed_mps"], rel=0.02)
        assert r["rec_plan_speed_mps"] > 0 and same == (k < SWITCH) and np.isfinite(r["rec_ego_speed_mps"])
    assert rows[-1]["cf_end_y_m"] - rows[-1]["rec_end_y_m"] == pytest.approx(3.0, abs=0.05)


def test_identical_runs_and_a_short_flicker_do_not_diverge(replay, route_follow):
    model, policy = route_follow
    same = [c.row for c in cf.compare(replay, WINDOW[:10], model, policy)]
    assert max(r["ade_m"] for r in same) < 0.05 and cf.divergence(same) is None
    flicker = [c.row for c in cf.compare(replay, WINDOW[:10], _ShiftAfter(model, 3, calls=2), policy)]
    assert sum(r["ade_m"] > 1.0 for r in flicker) == 2 and cf.divergence(flicker) is None
    assert cf.divergence(flicker, min_frames=2) is not None
    cf.mark_divergence(same, None)
    assert not any(r["divergence_point"] for r in same)


def _cursor_x(panel_img: np.ndarray) -> int:
    plots = panel_img[CAPTION_H + 2 :]
    cols = np.flatnonzero((plots == CURSOR_BGR).all(-1).sum(0) > 0.8 * plots.shape[0])
    assert len(cols) == 1
    return int(cols[0])


def test_bottom_panel_shows_both_runs(replay, route_follow, tmp_path):
    model, policy = route_follow
    comps = cf.compare(replay, WINDOW + list(range(50, 56)), _ShiftAfter(model, SWITCH), policy)
    rows = [c.row for c in comps]
    div = cf.divergence(rows)
    assert div is not None
    panel = CounterfactualPanel(rows, replay.events, div, 2 * render.SIDE_W)
    first, last = panel.draw(0, ["caption"]), panel.draw(len(rows) - 1, ["caption"])
    assert first.shape == (PANEL_H, 2 * render.SIDE_W, 3)

    def drawn(img: np.ndarray) -> float:  # plot area only: the caption alone made the old panel look busy
        return float((img[CAPTION_H:] != BACKGROUND).any(-1).mean())

    assert drawn(np.full_like(first, BACKGROUND)) == 0.0
    assert drawn(panel.base) > 0.08 and drawn(first) > 0.08
    x0, x1 = _cursor_x(first), _cursor_x(last)
    assert x0 < 20 and x1 > first.shape[1] - 20  # the cursor runs across the window
    dx = int(panel._x(np.array(div.t)))
    assert (first[CAPTION_H:, dx - 1 : dx + 2] == DIVERGE_BGR).all(-1).any()  # the divergence marker
    ev = next(e for e in replay.events if abs(e["t"] - EVENT_T) < 0.2)
    ex = int(panel._x(np.array(ev["t"])))
    assert (first[CAPTION_H:, ex - 1 : ex + 2] == render.EVENT_BGR).all(-1).sum() > 100  # the event line
    frame = render.side_by_side(replay, comps[0].step, comps[0].as_step(), "other", first)
    assert frame.shape == (render.SIDE_H + PANEL_H, 2 * render.SIDE_W, 3) and frame.shape[0] % 2 == 0
    with pytest.raises(ValueError, match="px wide"):
        render.side_by_side(replay, comps[0].step, comps[0].as_step(), "other", first[:, :100])


def test_cli_prints_and_writes_the_divergence(replay, tmp_path, capsys):
    out = tmp_path / "o"
    argv = [str(replay.path), "--from", "3", "--to", "3.5", "--no-video", "--no-rrd", "--rerun", "route_follow"]
    assert replay_main([*argv, "--diverge-ade", "0.5", "--diverge-frames", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "plans do not diverge in the window (never ADE > 0.5 m for 2 frames in a row)" in text
    rows = list(csv.DictReader((out / "counterfactual.csv").open()))
    assert len(rows) == 6 and {r["divergence_point"] for r in rows} == {"False"}
    for key in ("rec_ego_speed_mps", "rec_plan_speed_mps", "cf_plan_speed_mps", "cf_end_x_m", "cf_end_y_m"):
        assert np.isfinite(float(rows[0][key]))
    with av.open(str(out / "counterfactual.mp4")) as c:
        f = next(c.decode(video=0))
    assert (f.height, f.width) == (render.SIDE_H + PANEL_H, 2 * render.SIDE_W)
    assert replay_main([*argv, "--diverge-frames", "0", "--out", str(out)]) == 2
    assert "--diverge-frames 0" in capsys.readouterr().err

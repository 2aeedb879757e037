"""Infraction times on a replay's timeline (issue 16): the evaluator's own times, never collapsed by a slow ego; the
nearest-position guess only where no time exists, and marked as such."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.recording import Replay, Step
from agent.replay.locate import attach_infractions
from agent.replay.render import FRAME_W, TIMELINE_H, Timelines

MSG = "Agent collided against object with type=vehicle.lite.sumo and id=7 at (x=100.0, y=-50.0, z=0.0)"


def _crawling_replay(events: list[dict] | None = None) -> Replay:
    """20 s at 10 Hz; the ego creeps 1 m in all (WORLD y = 50, CARLA y = -50), so both collisions happen at almost
    the same place: the nearest-position guess would put them at the same step."""
    steps = [
        Step({"t": 0.1 * k, "ego": {"center": [99.5 + 0.005 * k, 50.0, 0.0], "rear_axle": [98.0, 50.0, 0.0]}}, {}, None)
        for k in range(200)
    ]
    return Replay(Path("x.djr"), {}, steps, list(events or []))


def _record(with_times: bool) -> dict:
    rec: dict = {"infractions": {"collisions_vehicle": [MSG, MSG.replace("x=100.0", "x=100.2")]}, "meta": {}}
    if with_times:
        rec["meta"]["infraction_events"] = [
            {"t": 10.0, "kind": "collisions_vehicle", "message": MSG, "other_id": 7},
            {"t": 15.0, "kind": "collisions_vehicle", "message": MSG.replace("x=100.0", "x=100.2"), "other_id": 7},
        ]
    return rec


def test_two_collisions_five_seconds_apart_land_five_seconds_apart() -> None:
    placed = attach_infractions(_crawling_replay(), _record(with_times=True))
    assert [e["t"] for e in placed] == [10.0, 15.0]
    assert {e["time_source"] for e in placed} == {"evaluator"} and {e["other_id"] for e in placed} == {7}


def test_times_recorded_in_the_recording_win_and_are_not_duplicated() -> None:
    ev = {"kind": "collisions_vehicle", "source": "evaluator", "other_id": 7}
    recorded = [{"t": 10.05, "message": MSG, **ev}, {"t": 15.05, "message": "x", **ev}]
    replay = _crawling_replay(recorded)
    placed = attach_infractions(replay, _record(with_times=True))
    assert [e["t"] for e in placed] == [10.05, 15.05]  # the k-th message of a kind takes the k-th timed event
    assert len([e for e in replay.events if e["kind"] == "collisions_vehicle"]) == 2


def test_without_evaluator_times_the_guess_is_marked_on_the_timeline() -> None:
    replay = _crawling_replay()
    placed = attach_infractions(replay, _record(with_times=False))
    assert {e["time_source"] for e in placed} == {"nearest position"}
    assert abs(placed[0]["t"] - placed[1]["t"]) < 5.0  # what exact times fix: the guess collapses them
    dashed = Timelines(replay.steps, replay.events).base
    x = int(4 + (placed[0]["t"] - 0.0) / (19.9 - 0.0) * (FRAME_W - 8))
    column = dashed[:, x - 1 : x + 2]
    red = np.all(column == np.array([0, 0, 255], np.uint8), axis=-1).any(axis=1)
    assert 0.2 < red.mean() < 0.9  # dashed, not a full line
    assert red.shape[0] == TIMELINE_H


@pytest.mark.parametrize("kind", ["min_speed_infractions"])
def test_periodic_measurements_are_ticks_not_events(kind: str) -> None:
    replay = _crawling_replay([{"t": 5.0, "kind": kind, "message": "Average speed is 50%", "source": "evaluator"}])
    base = Timelines(replay.steps, replay.events).base
    x = int(4 + 5.0 / 19.9 * (FRAME_W - 8))
    assert not np.all(base[20:, x - 1 : x + 2] == np.array([0, 0, 255], np.uint8), axis=-1).any()


def test_without_evaluator_times_collisions_take_the_recorded_contact_with_their_other_party() -> None:
    """CARLA runs (no times from the leaderboard): the recorded world gives them. The same car (id 7) touches the
    creeping ego at 10.0–10.4 s and again at 15.0–15.3 s: the two messages naming it land 5 s apart."""
    replay = _crawling_replay()
    for st in replay.steps:
        t = st.t
        touching = 10.0 - 1e-9 <= t <= 10.4 + 1e-9 or 15.0 - 1e-9 <= t <= 15.3 + 1e-9
        x = st.header["ego"]["center"][0] + (4.0 if touching else 9.0)  # the car's centre ahead of the ego's
        st.arrays["world/actor_ids"] = np.array([7, 8], np.int32)
        st.arrays["world/actor_boxes"] = np.array([[x, 50.0, 0.0, 4.5, 1.9, 0.0], [0, 0, 0, 1, 1, 0]], np.float32)
    placed = attach_infractions(replay, _record(with_times=False))
    assert [round(e["t"], 2) for e in placed] == [10.0, 15.0]
    assert {e["time_source"] for e in placed} == {"contact"} and {e["other_id"] for e in placed} == {7}

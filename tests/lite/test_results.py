"""Checkpoint format A as the leaderboard's statistics manager writes it, checked against real files."""

from __future__ import annotations

import json

import pytest

from carla_tools.lite.criteria import INFRACTION_KEYS, penalty_of
from carla_tools.lite.results import checkpoint, make_record, read_records
from drive_jepa.atomic import write_json_atomic
from tests.conftest import fixtures_dir

CASES = ("completed_min_speed_only", "agent_crashed", "simulation_crashed", "perfect", "missing_routes")


@pytest.mark.parametrize("case", CASES)
def test_global_record_values_and_status_match_real_checkpoints(case: str) -> None:
    folder = fixtures_dir("bench2drive", "edge_cases", case, "input")
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "_checkpoint" not in data or "index" not in data["_checkpoint"]["records"][0]:
            continue
        records = data["_checkpoint"]["records"]
        total = data["_checkpoint"]["progress"][1]
        ours = checkpoint(records, total, data["sensors"])
        want = data["_checkpoint"]["global_record"]
        got = ours["_checkpoint"]["global_record"]
        assert got["status"] == want["status"]
        assert got["scores_mean"] == pytest.approx(want["scores_mean"], abs=1e-6)
        assert got["scores_std_dev"] == pytest.approx(want["scores_std_dev"], abs=1e-3)
        assert got["infractions"] == pytest.approx(want["infractions"], abs=1e-3)
        assert [list(e) for e in got["meta"]["exceptions"]] == [list(e) for e in want["meta"]["exceptions"]]
        assert ours["labels"] == data["labels"]
        assert [float(v) for v in ours["values"]] == pytest.approx([float(v) for v in data["values"]], abs=1e-3)
        if len(records) == total:
            assert ours["entry_status"] == data["entry_status"] and ours["eligible"] == data["eligible"]


def test_records_rebuilt_from_their_infractions_match_the_published_ones() -> None:
    data = json.loads(fixtures_dir("bench2drive", "results", "UniAD-Base.json").read_text())
    checked = 0
    for rec in data["_checkpoint"]["records"]:
        if "crashed" in rec["status"] or "set up" in rec["status"] or "TickRuntime" in rec["status"]:
            continue
        infr = rec["infractions"]
        failure = ""
        if infr["route_dev"]:
            failure = "Agent deviated from the route"
        elif infr["vehicle_blocked"]:
            failure = "Agent got blocked"
        elif infr["route_timeout"]:
            failure = "Agent timed out"
        ours = make_record(
            index=0, route_id=rec["route_id"].split("_")[1], rep=0, scenario_name=rec["scenario_name"],
            weather_id=rec["weather_id"], save_name=rec["save_name"], town=rec["town_name"], infractions=infr,
            score_route=rec["scores"]["score_route"], score_penalty=penalty_of(infr),
            route_length=rec["meta"]["route_length"], duration_game=rec["meta"]["duration_game"],
            duration_system=rec["meta"]["duration_system"], failure=failure,
        )  # fmt: skip
        assert ours["status"] == rec["status"], rec["route_id"]
        assert ours["num_infractions"] == rec["num_infractions"]
        assert ours["scores"]["score_penalty"] == pytest.approx(rec["scores"]["score_penalty"], abs=2e-4)
        assert ours["scores"]["score_composed"] == pytest.approx(rec["scores"]["score_composed"], abs=2e-2)
        assert list(ours["infractions"]) == list(INFRACTION_KEYS)
        checked += 1
    assert checked > 100


def test_atomic_write_and_resume_read(tmp_path) -> None:
    rec = make_record(
        index=0, route_id="24211", rep=0, scenario_name="X_1", weather_id="0", save_name="s", town="Town01",
        infractions={}, score_route=100.0, score_penalty=1.0, route_length=134.0, duration_game=20.0,
        duration_system=3.0,
    )  # fmt: skip
    assert rec["status"] == "Perfect" and rec["scores"]["score_route"] == 100
    path = tmp_path / "ck.json"
    write_json_atomic(path, checkpoint([rec], 2, ["carla_speedometer"]))
    data = json.loads(path.read_text())
    assert data["entry_status"] == "Started" and data["_checkpoint"]["progress"] == [1, 2]
    assert read_records(path) == [rec]
    assert not list(tmp_path.glob(".*tmp"))
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a leaderboard checkpoint"):
        read_records(path)

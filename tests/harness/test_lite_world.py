"""`drive-jepa eval world=lite` and `drive-jepa demo`: the real harness, the real Drive-JEPA agent file, the lite
world (SUMO on a CARLA town), then the report — the README's main command, on one short route."""

from __future__ import annotations

import json
from pathlib import Path

from drive_jepa import cli


def test_demo_runs_one_route_end_to_end_and_eval_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    # the weight-free baseline keeps this harness test fast; the default (learned) model is checked in
    # tests/agent/test_leaderboard_agent.py::test_default_agent_drives_the_shipped_drive_jepa_checkpoint
    argv = ["demo", "--out", str(out), "--routes", "1", "--vehicles", "5", "--no-video", "--model", "route_follow"]
    assert cli.main(argv) == 0
    merged = json.loads((out / "eval" / "merged.json").read_text())
    (rec,) = merged["_checkpoint"]["records"]
    assert rec["route_id"] == "RouteScenario_25975_rep0"  # the shortest lite route (49 m, Town07)
    assert rec["status"] in ("Completed", "Perfect") and rec["scores"]["score_route"] == 100
    # the lite runner keeps the agent's own per-route figures (frame-to-frame plan change)
    stats = rec["meta"]["agent_stats"]
    assert stats["plan_changes"] > 10 and 0.0 <= stats["mean_plan_change_m"] < 5.0
    assert (out / "eval" / "report" / "report.html").is_file()
    # the agent recorded its replay where the harness points SAVE_PATH
    assert list((out / "eval" / "agent").glob("RouteScenario_25975_rep0_*/replay.djr"))
    store = json.loads((out / "eval" / "records" / "RouteScenario_25975_rep0.json").read_text())
    attempts = len(store["attempts"])
    # rerunning the same evaluation does not run the finished route again
    routes_file = Path(__import__("carla_tools.lite.routes_data", fromlist=["x"]).LITE_ROUTES)
    agent_file = Path(__import__("agent.leaderboard_agent", fromlist=["x"]).__file__)
    capsys.readouterr()
    assert cli.main([
        "eval", "world=lite", "--routes", str(routes_file), "--route-ids", "25975", "--agent", str(agent_file),
        "--agent-config", str((out / "agent.yaml").resolve()), "--out", str(out / "eval"), "--no-ray",
        "--no-progress",
    ]) == 0  # fmt: skip
    assert "1 already done" in capsys.readouterr().out
    again = json.loads((out / "eval" / "records" / "RouteScenario_25975_rep0.json").read_text())
    assert len(again["attempts"]) == attempts

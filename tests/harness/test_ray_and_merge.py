"""Ray fan-out smoke test (one actor per server, local instance) and the final merge step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench2drive.harness.run import evaluate, finish
from tests.conftest import fixtures_dir
from tests.harness.harness_helpers import fast_config

ROUTES = ("bench2drive", "routes", "drivetransformer_bench2drive_dev10.xml")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ray_actors_run_routes(tmp_path: Path, b2d_root: Path) -> None:
    pytest.importorskip("ray")
    import ray

    cfg = fast_config(tmp_path, b2d_root, fixtures_dir(*ROUTES), {"*": ["segfault", "finish"]}, servers=2)
    cfg.ray.enabled = True
    # Ray starts each evaluator in a worker process: on a loaded machine its first progress comes later than the
    # threads' (one CI run on a 2-core VM running 5 jobs retried a route once more than planned)
    cfg.watchdog.no_progress_s *= 5
    cfg.select.route_ids = ["2091", "3255", "3514"]
    try:
        summary, store = evaluate(cfg)
    finally:
        ray.shutdown()
    assert summary.finished == 3 and summary.retried == 3 and summary.left == 0
    servers = {a["server"] for d in store.docs.values() for a in d["attempts"]}
    assert servers <= {"g0s0", "g1s0"}
    assert all([a["outcome"] for a in d["attempts"]] == ["sim_crash", "finished"] for d in store.docs.values())


def test_final_merge_writes_merged_json(tmp_path: Path, b2d_root: Path) -> None:
    from bench2drive import results

    cfg = fast_config(tmp_path, b2d_root, fixtures_dir(*ROUTES), {"*": ["finish"], "2091": ["agent_crash"]})
    _, store = evaluate(cfg)
    out = Path(cfg.out)
    line = finish(store, out)
    merged = json.loads((out / "merged.json").read_text())
    assert merged == results.merge_records(store.leaderboard_records())
    assert len(merged["_checkpoint"]["records"]) == 10
    h = results.headline(store.leaderboard_records())
    assert h is not None and h.evaluated == 10
    # the headline is the strict mean over the evaluated routes, the /220 figure only labelled beside it
    assert f"driving score {h.driving_score:.2f}" in line and "10 of 10 routes evaluated" in line
    assert f"/220 compat DS {merged['driving score']:.2f}" in line


def test_an_out_of_another_agent_config_is_refused_unless_new_run(tmp_path: Path, b2d_root: Path) -> None:
    from bench2drive.harness.run import EvalSetupError

    (tmp_path / "a.yaml").write_text("model: route_follow\n")
    (tmp_path / "b.yaml").write_text("model: checkpoint\n")
    cfg = fast_config(tmp_path, b2d_root, fixtures_dir(*ROUTES), {"*": ["finish"]})
    cfg.select.route_ids = ["2091"]
    cfg.agent_config = str(tmp_path / "a.yaml")
    evaluate(cfg)
    out = Path(cfg.out)
    ident = json.loads((out / "agent.json").read_text())
    assert ident["agent_config"] == str(tmp_path / "a.yaml") and Path(ident["agent"]).is_absolute()
    evaluate(cfg)  # the same agent resumes
    other = fast_config(tmp_path, b2d_root, fixtures_dir(*ROUTES), {"*": ["finish"]})
    other.select.route_ids = ["2091"]
    other.agent_config = str(tmp_path / "b.yaml")
    with pytest.raises(EvalSetupError, match=r"holds a run of agent .* with agent config .*a\.yaml .*--new-run"):
        evaluate(other)
    assert (out / "records").is_dir() and not (out / "previous").exists()  # nothing touched
    (tmp_path / "a.yaml").write_text("model: checkpoint\ncheckpoint: x\n")  # same path, other content
    with pytest.raises(EvalSetupError, match="holds a run of"):
        evaluate(cfg)
    other.new_run = True
    _, store = evaluate(other)
    (moved,) = (out / "previous").iterdir()
    assert (moved / "records").is_dir() and (moved / "agent.json").is_file()
    assert json.loads((out / "agent.json").read_text())["agent_config"] == str(tmp_path / "b.yaml")
    assert len(store.leaderboard_records()) == 1

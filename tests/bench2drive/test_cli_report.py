"""`drive-jepa report` end to end: headline, merged.json, Markdown, HTML with plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench2drive.results import load_results_file
from drive_jepa.cli import COMMANDS, main
from tests.conftest import fixtures_dir


def test_report_registered() -> None:
    assert COMMANDS["report"].module == "bench2drive.cli_report"


def test_uniad_headline_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = fixtures_dir("bench2drive", "results", "UniAD-Base.json")
    rc = main(["report", str(results), "--out", str(tmp_path), "--mode", "compat"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "DS 45.81" in out and "SR 16.36" in out and "Efficiency 129.21" in out
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["driving score"] == 45.81316409999996
    assert merged["success rate"] == 0.16363636363636364 and merged["eval num"] == 218
    assert load_results_file(tmp_path / "merged.json").kind == "merged"
    md = (tmp_path / "report.md").read_text()
    assert "| DS (compat, /220) | 45.81 |" in md
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 6 and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary[0]["compat"]["driving score"] == 45.81316409999996


def test_two_runs_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fixtures_dir("bench2drive")
    rc = main(
        [
            "report",
            str(root / "results" / "UniAD-Base.json"),
            str(root / "results" / "VAD.json"),
            "--routes",
            str(root / "routes" / "bench2drive220.xml"),
            "--junctions",
            str(root / "routes" / "ts_junction_completion.json"),
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "VAD [compat]: DS 42.35  SR 15.00" in out
    assert "UniAD-Base [strict]: DS 45.81  SR 16.36  routes 218/220 (2 missing" in out
    for name in ("UniAD-Base", "VAD"):
        assert (tmp_path / name / "merged.json").is_file()
        assert (tmp_path / name / "merged_strict.json").is_file()
    page = (tmp_path / "report.html").read_text()
    assert ">UniAD-Base</text>" in page and ">VAD</text>" in page  # both runs in the plot legends


def test_one_run_from_split_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fixtures_dir("bench2drive", "edge_cases", "duplicate_records_two_files", "input")
    files = sorted(str(p) for p in folder.glob("*.json"))
    rc = main(["report", *files, "--one-run", "--out", str(tmp_path), "--mode", "strict"])
    out = capsys.readouterr().out
    assert rc == 0 and "1 duplicated" in out
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["eval num"] == 6  # strict merged.json is de-duplicated
    # the HTML card's big figures are the strict ones over the evaluated routes; /220 only in small print
    page = (tmp_path / "report.html").read_text()
    strict_ds = sum(r["scores"]["score_composed"] for r in merged["_checkpoint"]["records"]) / 6
    assert f'<span class="big">DS {strict_ds:.2f}</span>' in page
    # the tools count the duplicated record too: 2.066728090909091 (tests/bench2drive/test_results.py)
    assert "compat (Bench2Drive tools, /220): DS 2.07" in page


def test_bad_input_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "eval.json"
    bad.write_text('{"_checkpoint": {"records": [')
    rc = main(["report", str(bad), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "eval.json: truncated JSON" in err


def test_report_on_a_running_eval_folder_and_on_an_empty_folder(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "eval"
    (folder / "records").mkdir(parents=True)
    done = {"route_id": "RouteScenario_1_rep0", "status": "Completed", "infractions": {}, "meta": {},
            "scores": {"score_route": 100.0, "score_penalty": 0.8, "score_composed": 80.0}}  # fmt: skip
    (folder / "records" / "RouteScenario_1_rep0.json").write_text(json.dumps({"state": "done", "record": done}))
    (folder / "records" / "RouteScenario_2_rep0.json").write_text(json.dumps({"state": "pending", "record": None}))
    assert main(["report", str(folder), "--out", str(tmp_path / "r"), "--mode", "strict"]) == 0
    out = capsys.readouterr().out
    assert "DS 80.00" in out  # from the record that exists, not DS 0 from no records
    assert "no merged.json yet (eval running or interrupted): 1 route records read, 1 routes started" in out
    assert "RouteScenario_2_rep0" in out
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty: no results here (expected a drive-jepa eval folder" in err
    (folder / "records" / "RouteScenario_1_rep0.json").write_text("{")
    assert main(["report", str(folder), "--out", str(tmp_path / "r3")]) == 2
    assert "RouteScenario_1_rep0.json: unreadable route record" in capsys.readouterr().err


def test_more_names_than_runs_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    results = fixtures_dir("bench2drive", "results", "VAD.json")
    assert main(["report", str(results), "--name", "a", "--name", "b", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2 --name for 1 run(s)" in err


def test_lite_world_runs_are_marked_beside_carla_runs(tmp_path: Path, capsys) -> None:
    from bench2drive.results import merge_records

    lite_rec = {"route_id": "RouteScenario_1711_rep0", "status": "Completed", "infractions": {},
                "scores": {"score_route": 100.0, "score_penalty": 1.0, "score_composed": 100.0},
                "meta": {"world": "lite", "route_length": 100.0, "duration_game": 20.0}}  # fmt: skip
    lite = tmp_path / "lite.json"
    lite.write_text(json.dumps({"_checkpoint": {"records": [lite_rec]}}))
    assert merge_records([lite_rec])["world"] == "lite"
    uniad = fixtures_dir("bench2drive", "results", "UniAD-Base.json")
    rc = main(["report", str(uniad), str(lite), "--name", "UniAD", "--name", "ours", "--out", str(tmp_path / "r")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "ours (lite world) [strict]" in out and "UniAD [strict]" in out and "UniAD (lite" not in out
    md = (tmp_path / "r" / "report.md").read_text()
    page = (tmp_path / "r" / "report.html").read_text()
    assert "ours (lite world)" in md and "ours (lite world)" in page
    assert json.loads((tmp_path / "r" / "ours" / "merged.json").read_text())["world"] == "lite"

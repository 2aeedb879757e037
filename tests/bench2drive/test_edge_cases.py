"""Every edge case of fixtures/bench2drive/edge_cases: merge, ability v0.0.4/v0.0.3, efficiency, reader."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench2drive.abilities import load_junction_table
from bench2drive.results import ResultsFileError, expand_inputs, load_results_file
from bench2drive.summary import RunSummary, summarize
from drive_jepa.routes import load_routes
from tests.bench2drive.cases import EDGE_CASES
from tests.conftest import fixtures_dir


def _case(case: str) -> tuple[dict[str, Any], RunSummary]:
    root = fixtures_dir("bench2drive")
    expected = json.loads((root / "edge_cases" / case / "expected.json").read_text())
    order = expected["merge_route_json"]["glob_order_observed"]
    xml = root / "routes" / "bench2drive220.xml"
    s = summarize(
        case,
        [root / "edge_cases" / case / "input" / n for n in order],  # the tool's observed glob order
        load_routes(xml),
        xml,
        load_junction_table(root / "routes" / "ts_junction_completion.json", "bench2drive220.xml"),
    )
    return expected, s


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_case_all_tools(case: str) -> None:
    exp, s = _case(case)
    top = exp["merge_route_json"]["merged_json_top_level"]
    assert (s.compat.driving_score, s.compat.success_rate, s.compat.eval_num) == (
        top["driving score"],
        top["success rate"],
        top["eval num"],
    )
    got_records = [
        [r["route_id"], r["status"], r["scores"]["score_composed"]] for r in s.merged_compat["_checkpoint"]["records"]
    ]
    assert got_records == exp["merge_route_json"]["merged_records"]
    for version, res in (("v0.0.4", s.compat.ability_v004), ("v0.0.3", s.compat.ability_v003)):
        tool = exp.get(f"ability_benchmark_{version}")
        assert tool is not None
        if tool["written_ability_json"] is None:
            assert res.error is not None and tool["stderr_last_line"].startswith("ZeroDivisionError")
        else:
            assert res.error is None and res.exact
            assert res.as_tool_json() == tool["written_ability_json"], version
    eff = exp["efficiency_smoothness_benchmark"]
    if eff["returncode"] == 0:
        m = re.search(r"Driving Efficiency=(\S+)", eff["stdout"])
        assert m is not None
        assert s.compat.efficiency == pytest.approx(float(m.group(1)), abs=1e-9)
        assert s.compat.efficiency_error is None
    else:
        assert s.compat.efficiency is None
        assert eff["stderr_last_line"].startswith("ZeroDivisionError")
        assert s.compat.efficiency_error is not None and "ZeroDivisionError" in s.compat.efficiency_error


def test_duplicates_reported_and_latest_wins_in_strict() -> None:
    _, s = _case("duplicate_records_single_file")
    entries = s.reader.duplicates["RouteScenario_28093_rep0"]
    assert [(e.status, e.kept) for e in entries] == [("Failed - TickRuntime", False), ("Completed", True)]
    assert s.by_route["28093"].status == "Completed"
    assert s.strict.scores.present == 6
    assert s.strict.scores.driving_score == pytest.approx((2.066728090909091 * 220 - 30.86) / 220, abs=1e-9)
    assert s.strict.scores.success_rate == 3 / 220
    # two files in name order: the _rerun file is read last and wins
    root = fixtures_dir("bench2drive", "edge_cases", "duplicate_records_two_files", "input")
    s2 = summarize("two", [root])
    assert [p.name for p in s2.inputs] == ["eval_bench2drive220_0.json", "eval_bench2drive220_0_rerun.json"]
    assert s2.by_route["28093"].status == "Completed"
    assert s2.reader.duplicates["RouteScenario_28093_rep0"][-1].file.endswith("_rerun.json")


def test_missing_routes_listed_and_zero_in_strict() -> None:
    _, s = _case("missing_routes")
    assert s.strict.scores.expected == 220 and s.strict.scores.present == 6
    assert len(s.missing) == 214
    assert s.strict.scores.driving_score == pytest.approx(s.compat.driving_score, abs=1e-12)
    assert len(s.compat.ability_v004.crashed) == 214
    # strict abilities count missing routes as failures: denominators are the full route set
    assert s.strict.ability.counts["Overtaking"][1] == 45


def test_simulation_crashed_checkpoint_flags() -> None:
    _, s = _case("simulation_crashed")
    assert any("progress [7, 9]" in w for w in s.reader.warnings)
    assert any("entry_status Crashed" in w for w in s.reader.warnings)
    assert s.compat.ability_v004.ts_passes["27494"] is True  # 0.6102 > jc 0.4576


def test_already_merged_input_is_read() -> None:
    """merge_route_json.py dies with KeyError 'index' on a merged file; we read format B directly."""
    path = fixtures_dir("bench2drive", "edge_cases", "already_merged_input", "input", "merged_results.json")
    f = load_results_file(path)
    assert f.kind == "merged" and len(f.records) > 0
    s = summarize("merged", [path])
    assert s.compat.eval_num == len(f.records)


def test_rerun_with_merged_ability_present(tmp_path: Path) -> None:
    """The tool reads merged_ability.json as a checkpoint (KeyError '_checkpoint'); we skip it in folders and
    name it in a one-line error when given explicitly."""
    src = fixtures_dir("bench2drive", "edge_cases", "rerun_with_merged_ability_present", "input")
    (tmp_path / "eval_bench2drive220_0.json").write_text((src / "eval_bench2drive220_0.json").read_text())
    (tmp_path / "merged.json").write_text("{}")
    (tmp_path / "merged_ability.json").write_text(json.dumps({"Overtaking": 1.0, "crashed": []}))
    assert [p.name for p in expand_inputs([tmp_path])] == ["eval_bench2drive220_0.json"]
    with pytest.raises(ResultsFileError, match=r"merged_ability\.json: no '_checkpoint' object"):
        load_results_file(tmp_path / "merged_ability.json")


def test_unknown_status_and_foreign_route_flagged(tmp_path: Path) -> None:
    src = fixtures_dir("bench2drive", "edge_cases", "missing_routes", "input", "eval_bench2drive220_0.json")
    data = json.loads(src.read_text())
    recs = data["_checkpoint"]["records"]
    recs[0]["status"] = "Failed - Gremlins"
    foreign = json.loads(json.dumps(recs[1]))
    foreign["route_id"] = "RouteScenario_99999_rep0"
    recs.append(foreign)
    path = tmp_path / "ckpt.json"
    path.write_text(json.dumps(data))
    xml = fixtures_dir("bench2drive", "routes", "bench2drive220.xml")
    s = summarize("x", [path], load_routes(xml), xml)
    assert s.reader.unknown_statuses == [(recs[0]["route_id"], "Failed - Gremlins")]
    assert s.reader.not_in_routes == ["RouteScenario_99999_rep0"]
    assert "99999" not in s.by_route
    assert s.compat.eval_num == 7  # the tool would count it
    assert s.strict.scores.present == 6


def test_junction_table_formats(tmp_path: Path) -> None:
    from bench2drive.abilities import JunctionTableError

    table = load_junction_table(
        fixtures_dir("bench2drive", "routes", "ts_junction_completion.json"), "bench2drive220.xml"
    )
    assert len(table) == 14 and table["28035"] == 0.6746031746031746
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"1": 0.5, "2": {"junction_completion": 0.25}, "3": None}))
    assert load_junction_table(flat) == {"1": 0.5, "2": 0.25}
    flat.write_text(json.dumps({"1": "x"}))
    with pytest.raises(JunctionTableError, match="route 1"):
        load_junction_table(flat)


def test_duplicate_order_contradicting_timestamps_warned(tmp_path: Path) -> None:
    folder = fixtures_dir("bench2drive", "edge_cases", "duplicate_records_two_files", "input")
    rerun, first = folder / "eval_bench2drive220_0_rerun.json", folder / "eval_bench2drive220_0.json"
    s = summarize("x", [first, rerun])  # rerun (started later) read last: no warning
    assert not any("timestamps" in w for w in s.reader.warnings)
    s = summarize("x", [rerun, first])  # the earlier attempt would win: warned
    assert any("RouteScenario_28093_rep0" in w and "timestamps" in w for w in s.reader.warnings)
    assert s.by_route["28093"].status == "Failed - TickRuntime"


def test_wrong_route_file_warned() -> None:
    root = fixtures_dir("bench2drive")
    xml = root / "routes" / "bench2drive_0.0.4_val.xml"
    s = summarize("x", [root / "results" / "UniAD-Base.json"], load_routes(xml), xml)
    assert any("wrong --routes" in w for w in s.reader.warnings)

"""Reader / merge / write parity with merge_route_json.py outputs recorded in the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench2drive.results import (
    ResultsFileError,
    expand_inputs,
    headline,
    load_results_file,
    merge_records,
    write_merged,
)
from tests.bench2drive.cases import EDGE_CASES
from tests.conftest import fixtures_dir


def _edge(case: str) -> tuple[dict, list[dict]]:
    root = fixtures_dir("bench2drive", "edge_cases", case)
    expected = json.loads((root / "expected.json").read_text())
    order = expected["merge_route_json"]["glob_order_observed"]
    records: list[dict] = []
    for name in order:
        records += load_results_file(root / "input" / name).records
    return expected, records


@pytest.mark.parametrize("case", EDGE_CASES)
def test_merge_matches_tool_on_edge_cases(case: str) -> None:
    expected, records = _edge(case)
    exp = expected["merge_route_json"]
    merged = merge_records(records, deduplicate_ids=False)
    assert {k: merged[k] for k in ("driving score", "success rate", "eval num")} == exp["merged_json_top_level"]
    got = [[r["route_id"], r["status"], r["scores"]["score_composed"]] for r in merged["_checkpoint"]["records"]]
    assert got == exp["merged_records"]
    assert all("index" not in r for r in merged["_checkpoint"]["records"])


@pytest.mark.parametrize("name", ["UniAD-Base", "VAD"])
def test_merge_matches_tool_on_published_files(name: str) -> None:
    root = fixtures_dir("bench2drive", "results")
    expected = json.loads((root / f"expected_{name}.json").read_text())["merge_route_json"]
    merged = merge_records(load_results_file(root / f"{name}.json").records)
    assert {k: merged[k] for k in ("driving score", "success rate", "eval num")} == expected["merged_json_top_level"]
    assert [r["route_id"] for r in merged["_checkpoint"]["records"]] == expected["merged_records_order"]


def test_merge_deduplicates_later_wins() -> None:
    _, records = _edge("duplicate_records_single_file")
    merged = merge_records(records)
    ids = [r["route_id"] for r in merged["_checkpoint"]["records"]]
    assert len(ids) == len(set(ids)) == merged["eval num"] == 6
    kept = next(r for r in merged["_checkpoint"]["records"] if r["route_id"] == "RouteScenario_28093_rep0")
    assert kept["status"] == "Completed"  # the re-run (later) record wins
    # tool value 2.066728090909091 counted 30.86 + 100 for 28093; de-duplicated it counts 100 only.
    assert merged["driving score"] == pytest.approx(2.066728090909091 - 30.86 / 220, abs=1e-12)
    assert merged["success rate"] == 3 / 220


def test_headline_is_strict_over_the_evaluated_routes() -> None:
    _, records = _edge("duplicate_records_single_file")
    merged = merge_records(records)
    h = headline(records)
    assert h is not None and h.evaluated == 6
    assert h.driving_score == pytest.approx(merged["driving score"] * 220 / 6)
    assert h.success_rate == pytest.approx(100 * 3 / 6)
    assert h.compat_220 == pytest.approx(merged["driving score"])
    text = h.text(10)
    assert text.startswith(f"driving score {h.driving_score:.2f}, success rate 50.00 %")
    assert "6 of 10 routes evaluated" in text and f"/220 compat DS {merged['driving score']:.2f}" in text
    perfect = {"route_id": "RouteScenario_1_rep0", "status": "Completed", "infractions": {},
               "scores": {"score_composed": 100.0, "score_route": 100.0, "score_penalty": 1.0}}  # fmt: skip
    one = headline([perfect])
    assert one is not None and (one.driving_score, one.success_rate) == (100.0, 100.0)
    assert one.text().startswith("driving score 100.00, success rate 100.00 % (strict, 1 route evaluated")
    assert headline([]) is None


def test_write_merged_roundtrip_and_layout(tmp_path: Path) -> None:
    _, records = _edge("missing_routes")
    merged = merge_records(records)
    out = tmp_path / "sub" / "merged.json"
    write_merged(merged, out)
    assert json.loads(out.read_text()) == merged
    assert out.read_text() == json.dumps(merged, indent=4)
    assert [p.name for p in out.parent.iterdir()] == ["merged.json"]  # no temp file left behind
    # our merged output is readable back as format B
    again = load_results_file(out)
    assert again.kind == "merged" and len(again.records) == 6


def test_truncated_and_invalid_files_one_line_errors(tmp_path: Path) -> None:
    src = fixtures_dir("bench2drive", "edge_cases", "missing_routes", "input", "eval_bench2drive220_0.json")
    trunc = tmp_path / "trunc.json"
    trunc.write_text(src.read_text()[:5000])
    with pytest.raises(ResultsFileError, match=r"trunc\.json: truncated JSON") as ei:
        load_results_file(trunc)
    assert "\n" not in str(ei.value)
    bad = tmp_path / "ability.json"
    bad.write_text(json.dumps({"Overtaking": 1.0, "crashed": []}))
    with pytest.raises(ResultsFileError, match=r"ability\.json: no '_checkpoint' object"):
        load_results_file(bad)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(ResultsFileError, match="empty file"):
        load_results_file(empty)
    with pytest.raises(ResultsFileError, match="not found"):
        load_results_file(tmp_path / "nope.json")
    rec = json.loads(src.read_text())
    rec["_checkpoint"]["records"][2]["scores"]["score_composed"] = "12"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(rec))
    with pytest.raises(ResultsFileError, match=r"wrong\.json: record 2 \(RouteScenario_\w+\): 'scores.score_composed'"):
        load_results_file(wrong)


def test_expand_inputs_skips_merged_and_ability(tmp_path: Path) -> None:
    for name in ("b.json", "a.json", "merged.json", "merged_ability.json", "x.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.json", "b.json"]


def test_written_merged_is_byte_identical_to_tool(tmp_path: Path) -> None:
    root = fixtures_dir("bench2drive", "comfort")
    records = load_results_file(root / "input" / "eval_comfort.json").records
    out = tmp_path / "merged.json"
    write_merged(merge_records(records, deduplicate_ids=False), out)
    assert out.read_bytes() == (root / "merged.json").read_bytes()

"""Property tests over real records: duplicates never change the result; removing a route never raises the
strict DS."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench2drive.metrics import route_result, strict_scores
from bench2drive.results import deduplicate, merge_records
from drive_jepa.routes import load_routes
from tests.conftest import fixtures_dir


@cache
def _pool() -> tuple[list[dict[str, Any]], list[str]]:
    root = fixtures_dir("bench2drive")
    data = json.loads((root / "results" / "UniAD-Base.json").read_text())
    routes = [r.id for r in load_routes(root / "routes" / "bench2drive220.xml")]
    return data["_checkpoint"]["records"], routes


def _strict(records: list[dict[str, Any]], routes: list[str]) -> tuple[float, float, int]:
    kept, _ = deduplicate(records)
    by_route = {r.route: r for r in (route_result(rec) for rec in kept)}
    s = strict_scores(by_route, routes)
    return s.driving_score, s.success_rate, s.present


record_sets = st.lists(st.integers(0, 217), min_size=1, max_size=60, unique=True)


@settings(max_examples=60, deadline=None)
@given(idx=record_sets, dup=st.integers(0, 10_000), pos=st.integers(0, 10_000))
def test_adding_a_duplicate_never_changes_the_result(idx: list[int], dup: int, pos: int) -> None:
    pool, routes = _pool()
    records = [pool[i] for i in idx]
    copy = json.loads(json.dumps(records[dup % len(records)]))
    extended = list(records)
    extended.insert(pos % (len(records) + 1), copy)
    assert _strict(extended, routes) == _strict(records, routes)
    a, b = merge_records(records), merge_records(extended)
    assert b["eval num"] == a["eval num"] and b["success rate"] == a["success rate"]
    assert b["driving score"] == pytest.approx(a["driving score"], abs=1e-12)
    assert b["_checkpoint"]["records"] == a["_checkpoint"]["records"]


@settings(max_examples=60, deadline=None)
@given(idx=record_sets, drop=st.integers(0, 10_000))
def test_removing_a_route_never_raises_strict_ds(idx: list[int], drop: int) -> None:
    pool, routes = _pool()
    records = [pool[i] for i in idx]
    fewer = [r for k, r in enumerate(records) if k != drop % len(records)]
    ds_all, sr_all, n_all = _strict(records, routes)
    ds_less, sr_less, n_less = _strict(fewer, routes)
    assert ds_less <= ds_all and sr_less <= sr_all and n_less == n_all - 1

"""Route selection and expected durations on the real bench2drive220.xml and route_durations.csv."""

from __future__ import annotations

import pytest

from bench2drive.harness.selection import (
    SelectionError,
    expected_durations,
    read_durations,
    select_routes,
)
from drive_jepa.routes import load_routes
from tests.conftest import fixtures_dir


@pytest.fixture(scope="module")
def b220():  # type: ignore[no-untyped-def]
    return load_routes(fixtures_dir("bench2drive", "routes", "bench2drive220.xml"))


@pytest.mark.parametrize(
    ("ability", "count"),
    [("Overtaking", 45), ("Merging", 80), ("Emergency_Brake", 60), ("Give_Way", 10), ("Traffic_Signs", 95)],
)
def test_ability_counts_match_bench2drive(b220, ability: str, count: int) -> None:  # type: ignore[no-untyped-def]
    assert len(select_routes(b220, abilities=[ability])) == count  # README: routes per ability in b220


def test_filters_combine(b220) -> None:  # type: ignore[no-untyped-def]
    assert len(b220) == 220
    assert [r.id for r in select_routes(b220, ids=["1711", "1773"])] == ["1711", "1773"]
    town12 = select_routes(b220, towns=["Town12"])
    assert town12 and all(r.town == "Town12" for r in town12)
    parking = select_routes(b220, scenario_types=["ParkingCutIn"])
    assert len(parking) == 5  # 44 types x 5 routes
    both = select_routes(b220, towns=["Town12"], scenario_types=["ParkingCutIn"])
    assert {r.id for r in both} == {r.id for r in parking if r.town == "Town12"}
    with pytest.raises(SelectionError, match="99999"):
        select_routes(b220, ids=["99999"])
    with pytest.raises(SelectionError, match="Flying"):
        select_routes(b220, abilities=["Flying"])


def test_expected_durations_use_history_then_length(b220) -> None:  # type: ignore[no-untyped-def]
    durations = read_durations([fixtures_dir("bench2drive", "route_durations.csv")])
    exp = expected_durations(b220, durations)
    assert len(exp) == 220 and all(v > 0 for v in exp.values())
    import statistics

    assert exp["1773"] == pytest.approx(statistics.fmean(durations["1773"]))
    without = expected_durations(b220, {k: v for k, v in durations.items() if k != "1773"})
    assert without["1773"] != exp["1773"] and without["1773"] > 0  # from route length x median s/m
    lengths = expected_durations(b220, {})
    assert lengths["1773"] == pytest.approx(next(r.length_m for r in b220 if r.id == "1773"))

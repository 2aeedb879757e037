"""`drive-jepa bench scorer` end to end on a few vocabulary rows (the figures themselves are in PERFORMANCE.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import fixtures_dir
from training.scoring import bench, scorer
from training.scoring.vocab import SHIPPED


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Iterator[None]:
    n = torch.get_num_threads()  # the bench sets its own thread count
    yield
    torch.set_num_threads(n)


def test_bench_scorer_reports_sections_and_restores_the_scorer(capsys: pytest.CaptureFixture[str]) -> None:
    score_fn = scorer.PDMScorer.score
    argv = ["--scene", str(fixtures_dir("navsim_scorer", "scene_03.json.gz"))]
    argv += ["--vocab", str(SHIPPED["navsim_8192"])]
    rc = bench.main([*argv, "--rows", "64", "--repeats", "2", "--json", "--sections", "--default-malloc"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["rows"] == 64 and res["scene"] == "scene_03" and not res["malloc_tuned"]
    stages = res["sections_ms"]
    assert set(stages) == {label for label, *_ in bench._SectionTimer.STAGES}
    assert stages["total"] > 0 and stages["simulation"] > 0 and stages["collisions + TTC"] > 0
    assert stages["total"] >= stages["simulation"] + stages["ego areas"]
    assert scorer.PDMScorer.score is score_fn  # the stage wrappers are removed again


def test_bench_scorer_missing_scene_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert bench.main(["--scene", str(tmp_path / "nope.json.gz"), "--json"]) == 2
    assert "need --scene" in capsys.readouterr().out


def test_bench_scorer_cuda_without_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the bench runs there instead")
    assert bench.main(["--device", "cuda", "--json"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().out

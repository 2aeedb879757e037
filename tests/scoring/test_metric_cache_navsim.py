"""Teachers from navsim's own metric caches: real `MetricCache` objects of all 24 scorer fixture scenes (built by
navsim's classes, `tests/scoring/navsim_caches.py`) convert to scenes that score every fixture candidate as NAVSIM
does, Extended Comfort included through navsim's adjacent-frame pairing; `drive-jepa teachers --source navsim-cache`
writes the same teachers as from the JSON scenes. Needs navsim + nuplan-devkit (`navsim` marker, see
docs/datasets.md) and ../shared (the fixtures and navsim's reference tool)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import fixtures_dir
from tests.scoring.navsim_caches import SCENES, build_fixture_caches
from tests.scoring.test_scorer_parity import DISCRETE_V2
from training.scoring import teachers
from training.scoring.from_metric_cache import metric_cache_files, scene_from_metric_cache, scenes_from_cache_folder
from training.scoring.scorer import PDMScorer
from training.scoring.vocab import DEFAULT_VOCABULARY, vocabulary_file

pytestmark = pytest.mark.navsim

DISCRETE = DISCRETE_V2  # every v2 sub-score NAVSIM reports per row, EC included (the JSON parity suite's)
CONTINUOUS = ("ego_progress", "epdms_no_ec", "epdms")
BAR = 0.995  # the bar: ≥ 99.5 % of rows agree


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("navsim_metric_cache")
    build_fixture_caches(root)
    return root


def _agreement(scene, sid: str) -> dict[str, float]:
    root = fixtures_dir("navsim_scorer")
    cand = np.load(root / f"{sid}_candidates.npz")
    e2 = np.load(root / f"{sid}_expected_v2.npz")
    scorer = PDMScorer(scene)
    agree: dict[str, float] = {}
    for form, dt in (("p8", 0.5), ("p40", 0.1)):
        r = scorer.score(torch.from_numpy(cand["poses_8" if form == "p8" else "poses_40"]), dt, version=2)
        for k in DISCRETE:
            if k in r:
                agree[f"{form} {k}"] = float((r[k].numpy() == e2[f"{form}_{k}"]).mean())
        for k in CONTINUOUS:
            agree[f"{form} {k}"] = float((np.abs(r[k].numpy() - e2[f"{form}_{k}"]) <= 1e-4).mean())
    return agree


def test_caches_of_all_fixture_scenes_score_as_navsim(caches: Path) -> None:
    files = metric_cache_files(caches)
    assert len(files) == 48  # navsim's metadata csv lists every cache: 24 scenes + their previous frames
    seen = set()
    for path, scene in scenes_from_cache_folder(caches):
        sid = path.parent.name
        if sid.endswith("_prev"):
            continue
        seen.add(sid)
        assert scene.previous is not None, f"{sid}: not paired with its previous frame"
        agree = _agreement(scene, sid)
        assert "p8 extended_comfort" in agree and "p40 extended_comfort" in agree
        bad = {k: round(v, 4) for k, v in agree.items() if v < BAR}
        assert not bad, f"{sid}: {bad}"
    assert seen == set(SCENES)


def test_a_cache_without_its_previous_frame_leaves_ec_out(caches: Path) -> None:
    """One cache alone (no adjacent earlier frame): EPDMS without EC, as navsim reports it (weights /14)."""
    sid = "scene_12"
    path = caches / next(p for p in metric_cache_files(caches) if p.parent.name == sid).relative_to(caches)
    scene = scene_from_metric_cache(path)
    assert scene.previous is None
    root = fixtures_dir("navsim_scorer")
    plans = torch.from_numpy(np.load(root / f"{sid}_candidates.npz")["poses_8"])
    r = PDMScorer(scene).score(plans, 0.5, version=2)
    assert "extended_comfort" not in r
    want = np.load(root / f"{sid}_expected_v2.npz")["p8_epdms_no_ec"]
    assert (np.abs(r["epdms"].numpy() - want) <= 1e-4).mean() >= BAR
    paired = scene_from_metric_cache(path, previous=path.parent.parent / f"{sid}_prev" / "metric_cache.pkl")
    assert paired.previous is not None


def test_teachers_from_caches_equal_teachers_from_json_scenes(caches: Path, tmp_path: Path) -> None:
    vocab = tmp_path / "vocab_1024.npy"
    np.save(vocab, np.load(vocabulary_file(DEFAULT_VOCABULARY))[:1024])
    common = ["--vocab", str(vocab), "--no-progress", "--threshold", "0.9"]
    assert (
        teachers.main(["--source", "navsim-cache", "--scenes", str(caches), "--out", str(tmp_path / "c"), *common]) == 0
    )
    assert teachers.main(["--scenes", str(fixtures_dir("navsim_scorer")), "--out", str(tmp_path / "j"), *common]) == 0
    from_cache = teachers.load_index(tmp_path / "c" / teachers.INDEX_NAME)
    from_json = teachers.load_index(tmp_path / "j" / teachers.INDEX_NAME)
    assert set(from_json) == set(SCENES) and set(SCENES) <= set(from_cache)
    assert sum(len(from_json[s]["teachers"]) for s in SCENES) > 0
    for sid in SCENES:
        a, b = dict(from_cache[sid]), dict(from_json[sid])
        a.pop("file"), b.pop("file")  # <log>/unknown/<token>/metric_cache.pkl vs scene_XX.json.gz
        assert a["extended_comfort"] and b["extended_comfort"], sid
        assert a["teachers"] == b["teachers"], sid
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-9, err_msg=sid)
        assert a["labels"] == b["labels"], sid
        assert {k: v for k, v in a.items() if k not in ("scores",)} == {
            k: v for k, v in b.items() if k not in ("scores",)
        }, sid
    lines = (tmp_path / "c" / teachers.INDEX_NAME).read_text().splitlines()
    assert all(json.loads(line)["scene_id"] == Path(json.loads(line)["file"]).parent.name for line in lines)

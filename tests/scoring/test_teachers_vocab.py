"""Teacher generation end to end on fixture scenes, and the vocabulary k-means / loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import fixtures_dir
from training.scoring.scene import load_scene_json
from training.scoring.scorer import PDMScorer
from training.scoring.teachers import TeacherConfig, read_index, run, select_teachers
from training.scoring.vocab import SHIPPED, build_vocabulary, kmeans, load_vocabulary
from training.scoring.vocab import main as vocab_main


def _dataset(tmp_path: Path, n_rows: int = 96) -> tuple[Path, Path]:
    root = fixtures_dir("navsim_scorer")
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for sid in ("scene_16", "scene_04"):
        shutil.copy(root / f"{sid}.json.gz", scenes / f"{sid}.json.gz")
    vocab = load_vocabulary(SHIPPED["navsim_8192"])
    # rows that include passing ones: the fixture candidates' vocabulary rows plus the first rows
    rows = np.unique(np.concatenate([np.load(root / "scene_16_candidates.npz")["vocab_index"], np.arange(32)]))
    rows = rows[rows >= 0][:n_rows]
    vpath = tmp_path / "vocab.npy"
    np.save(vpath, vocab[rows])
    return scenes, vpath


def test_teachers_end_to_end_and_resume(tmp_path: Path) -> None:
    scenes, vpath = _dataset(tmp_path)
    out = tmp_path / "out"
    cfg = TeacherConfig(threshold=0.95, cap=8, batch=40)
    index = run(scenes, vpath, out, cfg, progress=False)
    recs = read_index(index)
    assert [r["scene_id"] for r in recs] == ["scene_04", "scene_16"]  # sorted, deterministic
    vocab = torch.from_numpy(np.load(vpath).astype(np.float64))
    for r in recs:
        scores = PDMScorer(load_scene_json(scenes / r["file"])).score(vocab, 0.1)["epdms"]
        expect = [i for i in torch.argsort(-scores, stable=True).tolist() if scores[i] >= 0.95][:8]
        assert r["teachers"] == expect
        assert r["num_pass"] == int((scores >= 0.95).sum())
        assert all(s >= 0.95 for s in r["scores"]) and len(r["teachers"]) <= 8
    # interrupted write: truncated tail is dropped and the scene redone, others kept
    text = index.read_text().splitlines()
    index.write_text(text[0] + "\n" + text[1][: len(text[1]) // 2])
    run(scenes, vpath, out, cfg, progress=False)
    again = read_index(index)
    assert [json.dumps(r, sort_keys=True) for r in again] == [json.dumps(r, sort_keys=True) for r in recs]


def test_select_teachers_order_and_cap() -> None:
    s = torch.tensor([0.2, 0.96, 1.0, 0.95, 1.0, 0.5], dtype=torch.float64)
    rows, vals, n = select_teachers(s, 0.95, 3)
    assert rows == [2, 4, 1] and n == 4 and vals == [1.0, 1.0, 0.96]


def test_kmeans_recovers_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 6, generator=g, dtype=torch.float64) * 20
    data = (centres[:, None] + 0.1 * torch.randn(5, 200, 6, generator=g, dtype=torch.float64)).reshape(-1, 6)
    found, assign = kmeans(data, 5, iters=30, seed=1)
    d = torch.cdist(found, centres)
    assert (d.min(1).values < 0.1).all() and len(set(d.argmin(1).tolist())) == 5
    assert len(torch.unique(assign)) == 5


def test_build_vocabulary_shape_and_cli(tmp_path: Path) -> None:
    vocab = load_vocabulary(SHIPPED["navsim_8192"], verify=True)
    assert vocab.shape == (8192, 40, 3)
    v = build_vocabulary(vocab[:300], k=16, iters=10, seed=0)
    assert v.shape == (16, 40, 3) and v.dtype == np.float32
    np.save(tmp_path / "traj.npy", vocab[:200])
    assert (
        vocab_main(
            [
                "build",
                "--trajectories",
                str(tmp_path / "traj.npy"),
                "--out",
                str(tmp_path / "v.npy"),
                "--k",
                "8",
                "--iters",
                "5",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "v.npy").shape == (8, 40, 3)


def test_teachers_write_scorer_labels_that_training_reads(tmp_path: Path) -> None:
    from agent.planner.config import EPDMS_SUBSCORES
    from training.data.dataset import load_score_labels
    from training.scoring.teachers import LABEL_KEYS, label_rows

    scenes, vpath = _dataset(tmp_path)
    out = tmp_path / "out"
    index = run(scenes, vpath, out, TeacherConfig(cap=8, batch=40, label_rows=12, label_top=4), progress=False)
    vocab = torch.from_numpy(np.load(vpath).astype(np.float64))
    labels = load_score_labels(out)
    for r in read_index(index):
        lab = r["labels"]
        assert lab["names"] == list(LABEL_KEYS) and len(lab["rows"]) == 12 == len(set(lab["rows"]))
        res = PDMScorer(load_scene_json(scenes / r["file"])).score(vocab, 0.1)
        best = torch.argsort(-res["epdms"], stable=True)[:4].tolist()
        assert lab["rows"][:4] == best  # the best rows first, then seeded random ones
        assert lab["rows"] == label_rows(res["epdms"], r["scene_id"], 12, 4)  # the same rows on every run
        for row, sub in zip(lab["rows"], lab["subscores"], strict=True):
            for name, value in zip(lab["names"], sub, strict=True):
                expect = 1.0 if not LABEL_KEYS[name] else float(res[LABEL_KEYS[name]][row])
                assert abs(value - expect) < 1e-4, (name, row)
        rows, subs = labels[r["scene_id"]]
        assert rows.tolist() == lab["rows"] and subs.shape == (12, len(EPDMS_SUBSCORES))
        assert np.allclose(subs[:, EPDMS_SUBSCORES.index("nc")], [s[0] for s in lab["subscores"]])


def test_planner_collate_masks_samples_without_labels() -> None:
    from training.planner.data import PlannerSample, collate

    def sample(rows: list[int]) -> PlannerSample:
        r = torch.tensor(rows)
        return PlannerSample(
            video=torch.zeros(3, 2, 4, 8), status=torch.zeros(8), trajectory=torch.zeros(8, 3),
            teacher_indices=torch.zeros(0, dtype=torch.long), score_candidates=r.clamp(min=0),
            score_labels=torch.ones(len(rows), 9), score_mask=r >= 0,
        )  # fmt: skip

    b = collate([sample([3, 5]), sample([-1, -1]), sample([7, 1])])
    assert b.score_candidates is not None and b.score_candidates.shape == (3, 2)
    assert b.score_mask is not None and b.score_mask.tolist() == [True, False, True]


def test_teachers_time_budget_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    scenes, vpath = _dataset(tmp_path)
    out = tmp_path / "out"
    cfg = TeacherConfig(cap=8, batch=40, label_rows=0)
    index = run(scenes, vpath, out, cfg, progress=False, max_seconds=1e-9)  # budget spent after the first scene
    assert [r["scene_id"] for r in read_index(index)] == ["scene_04"]
    run(scenes, vpath, out, cfg, progress=False)
    assert [r["scene_id"] for r in read_index(index)] == ["scene_04", "scene_16"]


def test_teachers_cli_threads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.scoring.teachers import main as teachers_main

    scenes, vpath = _dataset(tmp_path)
    args = ["--scenes", str(scenes), "--vocab", str(vpath), "--out", str(tmp_path / "o"), "--no-progress"]
    assert teachers_main([*args, "--threads", "0"]) == 2
    assert "--threads must be ≥ 1, got 0" in capsys.readouterr().err and not (tmp_path / "o").exists()
    before = torch.get_num_threads()
    try:
        assert teachers_main([*args, "--threads", "1", "--cap", "8"]) == 0
        assert torch.get_num_threads() == 1  # one scorer thread per process (the pipeline runs one per core)
    finally:
        torch.set_num_threads(before)
    assert len(read_index(tmp_path / "o" / "teachers.jsonl")) == 2


def test_teachers_bad_inputs_are_one_line_errors_and_keep_what_was_scored(tmp_path, capsys):
    import gzip
    import json

    from drive_jepa.cli import main

    vocab = tmp_path / "v64.npy"
    np.save(vocab, load_vocabulary(SHIPPED["navsim_8192"])[:64])
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    good = fixtures_dir("navsim_scorer", "scene_03.json.gz")
    (scenes / "a_good.json.gz").write_bytes(good.read_bytes())
    (scenes / "manifest.json").write_text('{"scenes": ["a_good"]}')  # not a scene: skipped, not an abort
    out = tmp_path / "out"
    base = ["teachers", "--scenes", str(scenes), "--out", str(out), "--no-progress"]
    assert main([*base, "--vocab", str(vocab)]) == 0
    capsys.readouterr()

    def fails(extra: list[str], expected: str) -> None:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and expected in err, err
        assert len((out / "teachers.jsonl").read_text().splitlines()) == 1  # the scored scene is kept

    data = json.loads(gzip.decompress(good.read_bytes()))
    data["ego"]["initial_state"]["state"][0] = float("nan")
    (scenes / "b_nan_ego.json.gz").write_bytes(gzip.compress(json.dumps(data).encode()))
    fails(["--vocab", str(vocab)], "b_nan_ego.json.gz.ego.initial_state[0]: NaN or infinite value")
    (scenes / "b_nan_ego.json.gz").unlink()
    (scenes / "c_trunc.json.gz").write_bytes(good.read_bytes()[:2000])
    fails(["--vocab", str(vocab)], "c_trunc.json.gz: truncated file (interrupted write?) (1 scenes scored so far")
    (scenes / "c_trunc.json.gz").unlink()
    npz = tmp_path / "v.npz"
    np.savez(npz, vocab=np.load(vocab))
    fails(["--vocab", str(npz)], "v.npz: a .npz archive (vocab); expected one (N, T, 3) .npy array")
    bad = np.load(vocab)
    bad[7, 3, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    fails(["--vocab", str(tmp_path / "nan.npy")], "nan.npy: rows [7] hold NaN/inf; expected finite poses")
    fails(["--vocab", str(tmp_path / "missing.npy")], "missing.npy: vocabulary file not found")

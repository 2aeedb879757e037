"""Realistic mistakes, per command: each ends in exit 2 and one line on stderr that names the file or field and
what was expected (argparse's own usage errors: the last line), and nothing is written or lost. The deeper cases
of each command (truncated scene files, partial eval folders, another agent's --out, …) live in its own tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drive_jepa.cli import main
from tests.conftest import REPO_ROOT

AGENT = str(REPO_ROOT / "agent" / "leaderboard_agent.py")


@pytest.fixture
def files(tmp_path: Path, monkeypatch) -> Path:
    """A folder of broken inputs; the working directory for the commands."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trunc.json").write_text('{"_checkpoint": {"records": [')
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "badrec.json").write_text('{"_checkpoint": {"records": [{"route_id": "x"}]}}')
    (tmp_path / "noscore.json").write_text(
        '{"_checkpoint": {"records": [{"route_id": "RouteScenario_1_rep0", "status": "Completed", '
        '"infractions": {}, "scores": {"score_route": 100, "score_penalty": 1}}]}}'
    )
    (tmp_path / "ok.json").write_text('{"_checkpoint": {"records": []}}')
    (tmp_path / "ability.json").write_text('{"crashed": false}')
    (tmp_path / "empty").mkdir()
    (tmp_path / "text.npy").write_text("not numpy")
    (tmp_path / "garbage.djr").write_bytes(b"garbage")
    np.save(tmp_path / "flat.npy", np.zeros((5, 3)))
    np.save(tmp_path / "nan.npy", np.full((3, 40, 3), np.nan))
    np.save(tmp_path / "traj.npy", np.zeros((4, 40, 3)))
    np.savez(tmp_path / "arch.npz", v=np.zeros((4, 40, 3)))
    (tmp_path / "bad_agent.yaml").write_text("modle: checkpoint\n")
    return tmp_path


CASES = {
    "report": [
        (["report", "trunc.json"], "trunc.json: truncated JSON"),
        (["report", "list.json"], "list.json: expected a JSON object at top level, got list"),
        (["report", "badrec.json"], "'route_id' must be a string 'RouteScenario_<id>_rep<k>', got 'x'"),
        (["report", "noscore.json"], "'scores.score_composed' must be a number"),
        (["report", "missing.json"], "missing.json: results file not found"),
        (["report", "ability.json"], "looks like an *_ability.json output"),
        (["report", "ok.json", "--routes", "nope.xml"], "nope.xml: route file not found"),
        (["report", "ok.json", "--junctions", "nope.json"], "nope.json: junction table not found"),
        (["report", "ok.json", "--mode", "loose"], "argument --mode: invalid choice: 'loose'"),
        (["report", "ok.json", "--metric-dir", "a", "--metric-dir", "b"], "give --metric-dir once, or once per run"),
        (["report", "ok.json", "--name", "a", "--name", "b"], "2 --name for 1 run(s)"),
        (["report", "empty"], "empty: no results here (expected a drive-jepa eval folder"),
    ],
    "vocab": [
        (["vocab", "show", "missing.npy"], "missing.npy: vocabulary file not found"),
        (["vocab", "show", "text.npy"], "text.npy: not a .npy file (no NumPy header)"),
        (["vocab", "show", "flat.npy"], "expected a (N, T, 3) vocabulary of x, y, heading poses, got shape (5, 3)"),
        (["vocab", "show", "nan.npy"], "nan.npy: rows [0, 1, 2] hold NaN/inf"),
        (["vocab", "show", "arch.npz"], "arch.npz: a .npz archive (v)"),
        (["vocab", "show", "traj.npy", "--verify"], "is not the published vocabulary's"),
        (["vocab", "build", "--trajectories", "missing.npy", "--out", "o.npy"], "missing.npy: trajectories file"),
        (["vocab", "build", "--trajectories", "nan.npy", "--out", "o.npy", "--k", "2"], "hold NaN/inf"),
        (["vocab", "build", "--trajectories", "traj.npy", "--out", "o.npy", "--k", "9"], "--k 9: expected 1 … 4"),
        (["vocab", "build", "--trajectories", "traj.npy", "--out", "o.npy", "--k", "0"], "--k 0: expected 1 … 4"),
        (["vocab", "build", "--trajectories", "traj.npy", "--out", "o.npy", "--k", "2", "--iters", "0"], "--iters 0"),
        (["vocab", "build", "--trajectories", "flat.npy", "--out", "o.npy"], "got shape (5, 3)"),
    ],
    "replay": [
        (["replay", "missing.djr"], "missing.djr: no such recording or evaluation folder"),
        (["replay", "garbage.djr"], "garbage.djr: not a drive-jepa recording (expected the DJREPLAY header)"),
        (["replay", "garbage.djr", "--out", "x.mp4"], "not a drive-jepa recording"),
    ],
    "teachers": [
        (["teachers", "--scenes", "nowhere", "--out", "t"], "nowhere"),
        (["teachers", "--scenes", "empty", "--out", "t"], "empty: no scene files (.json.gz, .json) found"),
        (["teachers", "--scenes", "empty", "--out", "t", "--vocab", "text.npy"], "text.npy: not a .npy file"),
        (["teachers", "--scenes", "empty", "--out", "t", "--vocab", "nan.npy"], "hold NaN/inf"),
        (["teachers", "--scenes", "empty", "--out", "t", "--vocab", "traj.npy", "--threshold", "x"], "--threshold"),
        (["teachers", "--source", "navsim-cache", "--scenes", "nowhere", "--out", "t"],
         "nowhere: not a folder of navsim metric caches"),
        (["teachers", "--source", "navsim-cache", "--scenes", "empty", "--out", "t"],
         "empty: no navsim metric caches (metric_cache.pkl) found"),
        (["teachers", "--source", "navsim-caches", "--scenes", "empty", "--out", "t"],
         "invalid choice: 'navsim-caches'"),
    ],
    "train": [
        (["train", "steps=-5"], "steps=-5: expected an integer ≥ 1"),
        (["train", "stepz=3"], "unknown key 'stepz'"),
        (["train", "modle.dt=1"], "did you mean 'model.dt'?"),
        (["train", "data=navsm"], "Could not find 'data/navsm'"),
        (["train", "batch_size=many"], "'many' of type 'str' could not be converted to Integer"),
        (["train", "standing_keep=0"], "standing_keep=0.0: expected a fraction in (0, 1]"),
        (["train", "optim.schedule=linear"], "optim.schedule='linear': expected 'constant' or 'cosine'"),
        (["train", "vocabulary=missing.npy", "steps=1"], "missing.npy: not found (set `vocabulary=` to a (V, 40, 3)"),
        (["train", "init=nowhere", "steps=1"], "init=nowhere: nowhere: no planner checkpoint"),
        (["train", "data=bench2drive", "data.root=empty", "steps=1"], "empty"),
    ],
    "pretrain": [
        (["pretrain", "run.steps=0"], "run.steps=0: expected an integer ≥ 1"),
        (["pretrain", "run.batch_size=-1"], "run.batch_size=-1: expected an integer ≥ 1"),
        (["pretrain", "model=huge"], "Could not find 'model/huge'"),
        (["pretrain", "optim.ref_lr=abc"], "could not be converted to Float"),
        (["pretrain", "data.root=nowhere", "run.steps=1"], "data.root nowhere: folder not found"),
        (["pretrain", "data.root=empty", "run.steps=1"], "empty: no bench2drive sequence"),
        (["pretrain", "run.log_every=0"], "run.log_every=0: expected an integer ≥ 1"),
        (["pretrain", "run.ckpt_every=-1"], "run.ckpt_every=-1: expected an integer ≥ 1"),
        (["pretrain", "run.stop_after_steps=-2"], "run.stop_after_steps=-2: expected ≥ 0"),
        (["pretrain", "run.stepz=3"], "did you mean 'run.steps'?"),
    ],
    "eval": [
        (["eval", "--gpus", "abc", "--agent", AGENT], "--gpus 'abc': expected a comma list of GPU indices"),
        (["eval", "world=lite", "--agent", "missing.py"], "agent: missing.py is not a file"),
        (["eval", "world=lite", "--agent", AGENT, "--routes", "nope.xml"], "nope.xml: route file not found"),
        (["eval", "world=lite", "--agent", AGENT, "--route-ids", "99999"], "route ids not in the route file: 99999"),
        (["eval", "world=lite", "--agent", AGENT, "--repetitions", "0"], "repetitions: expected >= 1, got 0"),
        (["eval", "world=lite", "--agent", AGENT, "--abilities", "Flying"], "unknown abilities ['Flying']"),
        (["eval", "world=lite", "--agent", AGENT, "--towns", "Town99"], "towns not in the route file: Town99"),
        (["eval", "world=lite", "--agent", AGENT, "--retry", "finished"], "invalid choice: 'finished'"),
        (["eval", "world=lite", "--agent", AGENT, "--agent-config", "bad_agent.yaml"],
         "bad_agent.yaml: ConfigError: config 'agent': unknown key 'modle' in the config file"),
        (["eval", "world=lite", "--agent", AGENT, "watchdog.no_progres_s=3"], "did you mean 'watchdog.no_progress_s'?"),
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"),
    [case for cases in CASES.values() for case in cases],
    ids=[f"{cmd}-{i}" for cmd, cases in CASES.items() for i in range(len(cases))],
)
def test_a_mistake_is_one_line_and_exit_2(files: Path, argv: list[str], expected: str, capsys) -> None:
    before = sorted(p.name for p in files.iterdir())
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, (argv, err)
    assert err and expected in err[-1], (argv, err)
    assert not any(line.startswith("Traceback") for line in err), err
    if not err[0].startswith("usage:"):  # one error line (progress lines such as "data: preparing …" may precede)
        assert sum(1 for line in err if ":" in line and not line.startswith(("data: ", "train: "))) == 1, err
    assert sorted(p.name for p in files.iterdir()) == before  # nothing written, nothing lost


def test_every_listed_command_has_at_least_ten_mistakes_or_its_own_tests():
    own_tests = {"replay": "tests/replay", "teachers": "tests/scoring/test_teachers_vocab.py"}
    for command, cases in CASES.items():
        assert len(cases) >= 10 or command in own_tests, command

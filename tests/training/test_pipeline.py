"""`drive-jepa learn`: stage commands, the state file, skipping finished stages, shipping a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.pipeline import LearnConfig, Pipeline, eval_commands, main, stage_commands


def test_dry_run_lists_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path / "p"), "--dry-run", "--ablations", "--eval-argmax", "--eval-seeds", "0,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    stages = [ln.split("]")[0][1:] for ln in lines]
    assert stages.count("collect") == 1 and stages.count("train") == 3
    collect = next(ln for ln in lines if ln.startswith("[collect]"))
    assert "--exclude" in collect and "bench2drive220_lite.xml" in collect
    train = [ln for ln in lines if ln.startswith("[train]")]
    assert sum("vjepa_checkpoint=" in ln for ln in train) == 2  # the not-pretrained ablation has none
    assert sum("loss.mtd_weight=0" in ln for ln in train) == 1
    lite = [ln for ln in lines if " lite " in ln]
    assert len(lite) == 6 * 2 * 2  # 3 models + argmax + route follower + expert, 2 seeds, 2 route shards
    assert sum("--agent " not in ln for ln in lite) == 2 * 2  # the lite expert is `lite`'s own default agent
    assert not (tmp_path / "p").exists()  # a dry run writes nothing


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--stages", "colect"]) == 2
    assert "unknown stage" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--seeds", "a,b"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--vocab", str(tmp_path / "none.npy")]) == 2
    assert "not found" in capsys.readouterr().err


def test_finished_stages_are_skipped_and_failures_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from drive_jepa import config as dj_config
    from training.planner.train import TrainConfig, tiny_overrides, train

    cfg = LearnConfig(out=tmp_path / "p")
    # a tiny planner stands in for the train stage's output
    tcfg = dj_config.compose("train", TrainConfig, [*tiny_overrides(), "steps=2", f"out={cfg.out / 'planner'}"])
    train(tcfg)
    pipe = Pipeline(cfg)
    assert pipe.run_stage("ship")
    ship = cfg.out / "ship"
    assert (ship / "model.safetensors").is_file() and not (ship / "trainer.pt").exists()
    card = json.loads((ship / "card.json").read_text())
    assert card["stages"]["ship"]["status"] == "running"  # the card is written while shipping
    state = json.loads((cfg.out / "pipeline.json").read_text())
    assert state["stages"]["ship"]["status"] == "done" and state["stages"]["ship"]["wall_s"] >= 0
    capsys.readouterr()
    assert Pipeline(cfg).run_stage("ship")
    assert "skipped" in capsys.readouterr().out
    # a stage whose command fails is marked failed (no clips: teachers cannot run)
    assert not Pipeline(cfg).run_stage("teachers")
    state = json.loads((cfg.out / "pipeline.json").read_text())
    assert state["stages"]["teachers"]["status"] == "failed"
    assert "teachers: failed" in capsys.readouterr().out
    assert "not found" in (cfg.out / "logs" / "teachers_shard0.log").read_text()


def test_eval_runs_every_model_and_seed(tmp_path: Path) -> None:
    cfg = LearnConfig(out=tmp_path, eval_seeds=(0, 2), eval_argmax=True, eval_baselines=False)
    cmds = eval_commands(cfg)
    configs = [c for c in cmds if c[3] == "agent-config"]
    assert len(configs) == 2 and any("selection=argmax" in c for c in configs[1])
    with_baselines = eval_commands(LearnConfig(out=tmp_path, eval_seeds=(0, 2)))
    assert [c[4] for c in with_baselines if c[3] == "agent-config"] == ["model=checkpoint", "model=route_follow"]
    runs = [c for c in cmds if c[3] == "lite"]
    names = [Path(c[c.index("--out") + 1]).name for c in runs]
    assert names == ["seed0_part0.json", "seed0_part1.json", "seed2_part0.json", "seed2_part1.json"] * 2
    metric = [Path(c[c.index("--metric-dir") + 1]).name for c in runs]
    assert metric == ["metric_seed0", "metric_seed0", "metric_seed2", "metric_seed2"] * 2  # comfort, per seed
    # the two shards of a seed split the routes between them
    ids = [set(c[c.index("--route-ids") + 1].split(",")) for c in runs[:2]]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 55
    assert stage_commands(cfg, "eval") == []  # built when the stage runs


def test_eval_table_merges_route_shards_and_counts_missing_routes(tmp_path: Path) -> None:
    from bench2drive.seed_table import main as table_main
    from bench2drive.seed_table import seed_table as eval_table
    from carla_tools.lite.criteria import INFRACTION_KEYS
    from carla_tools.lite.results import checkpoint, make_record
    from drive_jepa.routes import load_routes
    from training.pipeline import EVAL_ROUTES

    ids = [r.id for r in load_routes(EVAL_ROUTES)]

    def rec(rid: str, rc: float, hit: bool) -> dict:
        inf = {k: [] for k in INFRACTION_KEYS}
        if hit:
            inf["collisions_vehicle"] = ["Agent collided against object with type=vehicle.lite.sumo and id=1"]
        return make_record(
            index=0, route_id=rid, rep=0, scenario_name="X", weather_id="0", save_name=f"RouteScenario_{rid}",
            town="Town01", route_length=1000.0, infractions=inf, score_route=rc, score_penalty=0.6 if hit else 1.0,
            duration_game=10.0, duration_system=1.0, failure="",
        )  # fmt: skip

    run = tmp_path / "eval" / "model"
    run.mkdir(parents=True)
    a = [rec(ids[0], 100.0, False), rec(ids[1], 100.0, True)]
    b = [rec(ids[2], 50.0, False)]
    a[0]["meta"]["red_lights"] = {"encountered": 3, "run": 1}
    a[1]["meta"]["red_lights"] = {"encountered": 0, "run": 1}  # run without a registered encounter: met as well
    (run / "seed0_part0.json").write_text(json.dumps(checkpoint(a, 55, [])))
    (run / "seed0_part1.json").write_text(json.dumps(checkpoint(b, 55, [])))
    smooth = {"acceleration": [0.0, 0.0, 0.0], "angular_velocity": [0.0, 0.0, 0.0], "forward_vector": [1.0, 0.0, 0.0],
              "right_vector": [0.0, 1.0, 0.0]}  # fmt: skip
    jerky = [{**smooth, "acceleration": [6.0 * (-1) ** i, 0.0, 0.0]} for i in range(40)]  # ±6 m/s² every step
    for rec_, steps in ((a[0], [smooth] * 40), (a[1], jerky)):  # two routes' metric_info.json of seed 0
        (run / "metric_seed0" / rec_["save_name"]).mkdir(parents=True)
        info = {str(i): e for i, e in enumerate(steps)}
        (run / "metric_seed0" / rec_["save_name"] / "metric_info.json").write_text(json.dumps(info))
    rows, table = eval_table(tmp_path / "eval", EVAL_ROUTES)
    (row,) = rows
    assert row["comfort_pct"] == 50.0  # mean over the routes with a file: 100 % and 0 % of comfortable windows
    assert row["seeds"] == 1 and row["routes_done"] == 3 and row["routes"] == 55
    assert abs(row["ds"] - (100 + 60 + 50) / 55) < 1e-9  # missing routes count 0
    assert abs(row["sr"] - 100 / 55) < 1e-9
    assert abs(row["per_km"]["collisions_vehicle"] - 1 / 2.5) < 1e-3  # 1 collision over 2.5 km driven
    assert (row["red_lights_met"], row["red_lights_run"]) == (4, 2) and row["red_lights_obeyed_pct"] == 50.0
    assert "| model | 1 |" in table and "| 50 % of 4 |" in table
    assert table_main([str(tmp_path / "eval"), "--routes", str(EVAL_ROUTES)]) == 0
    assert json.loads((tmp_path / "eval" / "table.json").read_text())[0]["routes_done"] == 3


def test_report_command_puts_runs_side_by_side(tmp_path: Path) -> None:
    from training.pipeline import report_command

    cfg = LearnConfig(out=tmp_path)
    assert report_command(cfg) is None  # nothing evaluated yet
    for name, files in {
        "expert": ["seed0.json"],
        "planner": ["seed0_part0.json", "seed0_part1.json", "seed1_part0.json"],
    }.items():
        (tmp_path / "eval" / name).mkdir(parents=True)
        for f in files:
            (tmp_path / "eval" / name / f).write_text("{}")
    cmd = report_command(cfg)
    assert cmd is not None and cmd[3] == "report"
    runs = cmd[4:6]
    assert runs[0].endswith("expert/seed0.json")
    assert runs[1].count(",") == 1 and "seed1" not in runs[1]  # the first seed's shards, joined
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "eval" / "report")
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--name"] == ["expert", "planner"]
    assert "--metric-dir" not in cmd  # not every run wrote its metric_info files
    for name in ("expert", "planner"):
        (tmp_path / "eval" / name / "metric_seed0").mkdir()
    cmd = report_command(cfg)
    assert cmd is not None
    metric = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--metric-dir"]
    assert metric == [str(tmp_path / "eval" / n / "metric_seed0") for n in ("expert", "planner")]


def test_lite_training_defaults_give_way_to_overrides(tmp_path: Path) -> None:
    from training.pipeline import LearnConfig, train_command

    cmd = train_command(LearnConfig(out=tmp_path), "planner", ())
    assert "model.target_point_input=true" in cmd and "standing_keep=0.05" in cmd and "start_repeat=3" in cmd
    cfg = LearnConfig(out=tmp_path, extra_train=("standing_keep=1.0", "model.target_point_input=false"))
    cmd = train_command(cfg, "planner", ())
    assert "standing_keep=0.05" not in cmd and "model.target_point_input=true" not in cmd and "start_repeat=3" in cmd
    assert cmd[-2:] == ["standing_keep=1.0", "model.target_point_input=false"]


def test_a_retrained_model_gets_a_fresh_evaluation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.pipeline import Pipeline

    def weights(value: bytes) -> None:
        step = tmp_path / "planner" / "checkpoints" / "step_00000010"
        step.mkdir(parents=True, exist_ok=True)
        (step / "model.safetensors").write_bytes(value)
        (tmp_path / "planner" / "checkpoints" / "latest").write_text("step_00000010")

    cfg = LearnConfig(out=tmp_path, eval_baselines=False)
    pipe = Pipeline(cfg)
    weights(b"first")
    pipe._set_aside_stale_evaluations()
    run = tmp_path / "eval" / "planner"
    (run / "seed0_part0.json").write_text("{}")  # records of the first weights
    pipe._set_aside_stale_evaluations()  # same weights: the records stay and resume
    assert (run / "seed0_part0.json").is_file()
    weights(b"second")
    pipe._set_aside_stale_evaluations()
    (aside,) = (tmp_path / "eval_stale").iterdir()
    assert (aside / "seed0_part0.json").read_text() == "{}" and not (run / "seed0_part0.json").exists()
    assert "was evaluated with other weights" in capsys.readouterr().out
    assert json.loads((run / "evaluated.json").read_text())["checkpoint"].endswith("step_00000010")

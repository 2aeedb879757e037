"""The method claims on synthetic data: MTD covers a mode the human never shows; momentum steadies the plan."""

from __future__ import annotations

from drive_jepa.cli import main as cli_main
from training.planner.bench import fork_bench, momentum_bench
from training.scoring.vocab import SHIPPED


def test_mtd_covers_both_branches_where_human_only_supervision_collapses_to_one():
    vocab = str(SHIPPED["navsim_8192"])
    res = fork_bench(steps=150, eval_samples=16, seed=0, vocabulary=vocab)
    human, mtd = res["human_only"], res["mtd"]
    assert human["recall_left"] == 1.0 and human["recall_right"] == 0.0  # only the demonstrated branch
    assert mtd["coverage_both_modes"] == 1.0 and mtd["modes_covered_of_2"] == 2.0
    assert mtd["min_ade_to_human_m"] < 1.0  # and it still imitates the human


def test_momentum_reduces_plan_changes_at_a_small_score_cost(capsys):
    res = momentum_bench(frames=60, seed=0)
    assert res["momentum"]["mean_plan_change_m"] < 0.6 * res["argmax"]["mean_plan_change_m"]
    assert 0.0 <= res["mean_score_cost"] < 0.05
    # the plain-argmax run always picks the best raw score
    assert res["argmax"]["mean_selected_raw_score"] == res["argmax"]["mean_best_raw_score"]
    assert cli_main(["bench", "planner", "momentum", "--frames", "20"]) == 0
    assert "plan_change_reduction" in capsys.readouterr().out

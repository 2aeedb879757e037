"""Parity of the torch PDM scorer with NAVSIM's own scorer (oracle: ../shared/fixtures/navsim_scorer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import fixtures_dir
from training.scoring.scene import load_scene_json
from training.scoring.scorer import PDMScorer

SCENES = [f"scene_{i:02d}" for i in range(24)]
DISCRETE_V2 = (
    "no_at_fault_collisions",
    "drivable_area_compliance",
    "driving_direction_compliance",
    "traffic_light_compliance",
    "time_to_collision_within_bound",
    "lane_keeping",
    "history_comfort",
    "extended_comfort",
)
DISCRETE_V1 = (
    "no_at_fault_collisions",
    "drivable_area_compliance",
    "driving_direction_compliance",
    "time_to_collision_within_bound",
    "comfort",
)


@pytest.mark.parametrize("scene_id", SCENES)
def test_scene_parity(scene_id: str) -> None:
    _check_parity(scene_id, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("scene_id", ["scene_03", "scene_12", "scene_17", "scene_18"])
def test_scene_parity_cuda(scene_id: str) -> None:
    """The same scorer code on a CUDA device meets the same parity bars (red lights, dense agents, scene_18)."""
    _check_parity(scene_id, "cuda")


def _check_parity(scene_id: str, device: str) -> None:
    root = fixtures_dir("navsim_scorer")
    scene = load_scene_json(root / f"{scene_id}.json.gz")
    cand = np.load(root / f"{scene_id}_candidates.npz")
    e2 = np.load(root / f"{scene_id}_expected_v2.npz")
    e1 = np.load(root / f"{scene_id}_expected_v1.npz")
    scorer = PDMScorer(scene, device=device)
    for form, plan_dt in (("p8", 0.5), ("p40", 0.1)):
        plans = torch.from_numpy(cand["poses_8" if form == "p8" else "poses_40"])
        n = len(plans)
        r2 = {k: v.cpu() for k, v in scorer.score(plans, plan_dt, version=2, diagnostics=True).items()}
        for key in DISCRETE_V2 + tuple("raw_" + k for k in DISCRETE_V2[:-1]):
            agree = (r2[key].numpy() == e2[f"{form}_{key}"]).mean()
            # sub-scores are exact except a candidate sitting on a threshold (see docs/scorer.md)
            assert agree * n >= n - 1, f"{scene_id} {form} {key}: {agree:.4f}"
        for key in ("ego_progress", "epdms", "raw_epdms", "epdms_no_ec", "progress_raw"):
            close = np.abs(r2[key].numpy() - e2[f"{form}_{key}"]) <= 0.01
            assert close.sum() >= n - 1, f"{scene_id} {form} {key}"
        sim = r2["simulated_states"].numpy().copy()
        sim[..., :2] += scene.origin[:2].numpy()
        # simulated states: tight except for near-stationary rows whose curvature fit is ill-conditioned
        err = np.abs(sim - e2[f"{form}_simulated_states"]).max(axis=(1, 2))
        assert np.median(err) < 1e-6 and err.max() < 1e-2, f"{scene_id} {form} simulation"
        assert (r2["ego_areas"].numpy() == e2[f"{form}_ego_areas"].astype(bool)).mean() > 0.999
        states = r2["simulated_states"].to(device)
        r1 = {k: v.cpu() for k, v in scorer.score(plans, plan_dt, version=1, states=states).items()}  # same sim
        for key in DISCRETE_V1:
            agree = (r1[key].numpy() == e1[f"{form}_{key}"]).mean()
            assert agree * n >= n - 1, f"{scene_id} v1 {form} {key}: {agree:.4f}"
        for key in ("ego_progress", "pdms"):
            close = np.abs(r1[key].numpy() - e1[f"{form}_{key}"]) <= 0.01
            assert close.sum() >= n - 1, f"{scene_id} v1 {form} {key}"

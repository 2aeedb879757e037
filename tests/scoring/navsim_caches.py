"""Real navsim metric caches of the scorer fixture scenes, for the navsim-marked tests.

The caches are built by navsim's own classes through `../shared/tools/navsim_ref/ref_score.py` (`build_metric_cache`:
nuPlan `EgoState`s, PDM-Closed `InterpolatedTrajectory`, `PDMDrivableMap`, `PDMPath`, a `PDMObservation` updated
with 41 `DetectionsTracks` and the traffic lights, as navsim's `MetricCacheProcessor` builds them), pickled with lzma
like navsim's `MetricCache.dump`, in navsim's folder layout `<root>/<log>/unknown/<token>/metric_cache.pkl`, and
indexed with nuPlan's own `save_cache_metadata` (`<root>/metadata/*.csv`).

Each fixture scene also gets the cache of its previous frame (token `<scene>_prev`, 0.5 s earlier): the scene's
cache with the fixture's `previous_frame` state, time and logged plan (`plan_poses_8`) — all that navsim's
two-frame Extended Comfort reads of the previous token; the rest (map, objects, past) is the current frame's.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import lzma
import pickle
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import fixtures_dir

SCENES = [f"scene_{i:02d}" for i in range(24)]


def ref_tool() -> ModuleType:
    """`ref_score.py` of ../shared/tools/navsim_ref, imported with navsim's classes loaded."""
    path = fixtures_dir("navsim_scorer").parents[1] / "tools" / "navsim_ref" / "ref_score.py"
    if not path.is_file():
        pytest.skip(f"{path} not found (the navsim reference tool of ../shared)")
    spec = importlib.util.spec_from_file_location("navsim_ref_score", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod._imports()
    mod.PS = mod.TrajectorySampling(num_poses=40, interval_length=0.1)
    return mod


def write_cache(cache: object, root: Path, log: str, token: str) -> Path:
    path = root / log / "unknown" / token / "metric_cache.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lzma.compress(pickle.dumps(cache)))
    return path


def build_fixture_caches(root: Path, scenes: list[str] = SCENES, previous: bool = True) -> dict[str, Path]:
    """Write the caches of `scenes` (and their previous frames) under `root`; returns {token: path}."""
    from navsim.common.dataclasses import Trajectory
    from nuplan.common.actor_state.state_representation import TimePoint
    from nuplan.planning.training.experiments.cache_metadata_entry import CacheMetadataEntry, save_cache_metadata

    ref = ref_tool()
    fixtures = fixtures_dir("navsim_scorer")
    out: dict[str, Path] = {}
    for sid in scenes:
        with gzip.open(fixtures / f"{sid}.json.gz", "rt") as f:
            scene = json.load(f)
        log = f"{scene['name']}_{sid}"  # one log per fixture scene: no pairing across scenes
        cache = dataclasses.replace(ref.build_metric_cache(scene), log_name=log)
        out[sid] = write_cache(cache, root, log, sid)
        prev = scene["ego"].get("previous_frame")
        if previous and prev is not None:
            t_prev = int(prev["time_us"])
            earlier = dataclasses.replace(
                cache,
                timepoint=TimePoint(t_prev),
                ego_state=ref.ego_state(prev["state"], t_prev),
                human_trajectory=Trajectory(
                    np.asarray(prev["plan_poses_8"], np.float64),
                    ref.TrajectorySampling(time_horizon=4, interval_length=0.5),
                ),
            )
            out[f"{sid}_prev"] = write_cache(earlier, root, log, f"{sid}_prev")
    save_cache_metadata([CacheMetadataEntry(file_name=p) for p in out.values()], root, 0)
    return out

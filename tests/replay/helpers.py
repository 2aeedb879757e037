"""Record a short synthetic run: the leaderboard adapter driven by tests/agent/sim.py's BicycleSim."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from agent import leaderboard_agent as la
from tests.agent.sim import BicycleSim, l_shaped_route
from tests.replay.scene import street_scene

SAVE_NAME = "RouteScenario_7_rep0_Town01_X_0_01_01_00_00_00"
W, H = 400, 225  # a small camera keeps tests fast; projection uses the same FOV as the full rig

SMALL_RIG = (
    "policy:\n  rig:\n    camera: {width: 400, height: 225}\n"
    "  image: {source_width: 400, source_height: 225, crop_top: 12, crop_bottom: 212, crop_right: 400,"
    " out_width: 128, out_height: 64}\n"
)


@functools.lru_cache(maxsize=16)
def _scene(w: int, h: int, k: int) -> np.ndarray:
    return street_scene(w, h, shift=40.0 * k)  # 8 variants, cycled as the ego moves (drawing one is slow)


def record_run(
    root: Path,
    seconds: float = 6.0,
    extra: str = "",
    events: dict[float, str] | None = None,
    small: bool = True,
) -> tuple[Path, la.DriveJEPAAgent, BicycleSim]:
    """Drive `seconds` of the L-shaped route with recording on; returns (recording path, agent, sim)."""
    sim = BicycleSim()
    pts, opts = l_shaped_route()
    gps_plan, world_plan = sim.global_plan(pts, opts)
    conf = root / "agent.yaml"
    conf.write_text(
        f"model: route_follow\nsave_path: {root / 'agent'}\nrecord: true\n{SMALL_RIG if small else ''}{extra}"
    )
    agent = la.DriveJEPAAgent("localhost", 2000, False)
    agent.set_global_plan(gps_plan, world_plan)
    agent.setup(f"{conf}+{SAVE_NAME}")
    pending = dict(events or {})
    w, h = (W, H) if small else (1600, 900)
    for _ in range(round(seconds / sim.dt)):
        data = sim.input_data(w, h)
        data["CAM_FRONT"] = (sim.frame, _scene(w, h, int(sim.x) % 8))
        control = agent.run_step(data, sim.t)
        for te in [te for te in pending if te <= sim.t]:
            agent.record_event("collision", pending.pop(te), sim.t, location_carla=[sim.x, sim.y, 0.0])
        sim.apply(control)
    path = agent.recorder.path if agent.recorder is not None else None
    agent.destroy()
    assert path is not None
    return path, agent, sim

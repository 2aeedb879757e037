"""Closed loop: the runner drives agents through the leaderboard protocol and writes Bench2Drive results."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from carla_tools.lite.agent_api import AutonomousAgent, make_control
from carla_tools.lite.expert import LiteExpert
from carla_tools.lite.runner import LiteConfig, run_route
from drive_jepa.cli import main as cli_main
from drive_jepa.routes import load_routes
from tests.conftest import fixtures_dir

FAST = LiteConfig(num_vehicles=8, max_route_m=40.0, seed=1)


def _route(rid: str = "28111"):
    routes = load_routes(fixtures_dir("bench2drive", "routes", "bench2drive220.xml"))
    return next(r for r in routes if r.id == rid)


def test_expert_completes_a_route_segment(tmp_path: Path) -> None:
    rec = run_route(_route(), LiteExpert, tmp_path, config=FAST)
    assert rec["status"] in ("Completed", "Perfect"), rec
    assert rec["scores"]["score_route"] == 100 and rec["scores"]["score_composed"] == 100.0
    assert rec["route_id"] == "RouteScenario_28111_rep0" and rec["town_name"] == "Town04"
    assert rec["save_name"].startswith("RouteScenario_28111_rep0_Town04_T_Junction_1_0_")
    assert 20.0 < rec["meta"]["route_length"] <= 40.0 and 0 < rec["meta"]["duration_game"] < 30
    metric = json.loads((tmp_path / rec["save_name"] / "metric_info.json").read_text())
    first = metric["0"]
    assert set(first) == {
        "acceleration",
        "angular_velocity",
        "forward_vector",
        "right_vector",
        "location",
        "rotation",
    }
    assert len(metric) == round(rec["meta"]["duration_game"] / 0.05)


class _Crashing(AutonomousAgent):
    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sensor.speedometer", "reading_frequency": 20, "id": "speed"}]

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        if timestamp > 2.0:
            raise RuntimeError("boom")
        return make_control(throttle=0.5)


class _Lidar(AutonomousAgent):
    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sensor.lidar.ray_cast", "id": "LIDAR"}]


class _BadSetup(AutonomousAgent):
    def setup(self, path_to_conf_file: str) -> None:
        raise FileNotFoundError(path_to_conf_file)


def test_agent_failures_give_leaderboard_statuses(tmp_path: Path) -> None:
    rec = run_route(_route(), _Crashing, tmp_path, config=FAST)
    assert rec["status"] == "Failed - Agent crashed" and 0 < rec["scores"]["score_route"] < 100
    rec = run_route(_route(), _Lidar, tmp_path, config=FAST)
    assert rec["status"] == "Failed - Agent's sensors were invalid"
    rec = run_route(_route(), _BadSetup, tmp_path, config=FAST)
    assert rec["status"] == "Failed - Agent couldn't be set up" and rec["meta"]["duration_game"] == 0.0


AGENT_FILE = '''
from carla_tools.lite.agent_api import AutonomousAgent, make_control


def get_entry_point():
    return "Forward"


class Forward(AutonomousAgent):
    """Drives straight at low speed with the Bench2Drive front camera, checking the inputs it gets."""

    def setup(self, path_to_conf_file):
        self.conf = path_to_conf_file

    def sensors(self):
        return [
            {"type": "sensor.camera.rgb", "x": 0.8, "y": 0.0, "z": 1.6, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
             "width": 160, "height": 90, "fov": 70, "id": "CAM_FRONT"},
            {"type": "sensor.other.gnss", "x": -1.4, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0,
             "yaw": 0.0, "sensor_tick": 0.01, "id": "GPS"},
            {"type": "sensor.speedometer", "reading_frequency": 20, "id": "SPEED"},
        ]

    def run_step(self, input_data, timestamp):
        assert self.conf.split("+")[0] == "my.yaml" and "_rep0_Town0" in self.conf
        assert input_data["CAM_FRONT"][1].shape == (90, 160, 4)
        assert len(self._global_plan) == len(self._global_plan_world_coord) >= 2
        assert set(self._global_plan[0][0]) == {"lat", "lon", "z"}
        speed = input_data["SPEED"][1]["speed"]
        return make_control(throttle=0.5 if speed < 4 else 0.0)
'''


def test_cli_runs_an_agent_file_and_writes_a_checkpoint(tmp_path: Path) -> None:
    agent = tmp_path / "forward_agent.py"
    agent.write_text(textwrap.dedent(AGENT_FILE))
    routes = fixtures_dir("bench2drive", "routes", "bench2drive220.xml")
    out = tmp_path / "res" / "lite.json"
    args = [
        "lite", str(routes), "--out", str(out), "--agent", str(agent), "--agent-config", "my.yaml",
        "--route-ids", "24211,24224", "--max-route-m", "20", "--vehicles", "4",
    ]  # fmt: skip
    assert cli_main(args) == 0
    data = json.loads(out.read_text())
    assert data["entry_status"] == "Finished" and data["eligible"] is True
    assert data["_checkpoint"]["progress"] == [2, 2]
    assert [r["index"] for r in data["_checkpoint"]["records"]] == [0, 1]
    assert data["sensors"] == ["carla_camera", "carla_gnss", "carla_speedometer"]
    assert len(data["values"]) == len(data["labels"]) == 15
    # resuming skips finished routes and keeps the records
    assert cli_main(args) == 0
    assert json.loads(out.read_text())["_checkpoint"]["records"] == data["_checkpoint"]["records"]


def test_benchmark_runs_without_route_files() -> None:
    from carla_tools.lite.cli import benchmark

    r = benchmark(64, 48, 70.0, 10, vehicles=5)
    assert r["steps"] == 10 and r["steps_per_s"] > 0 and r["sensors_ms"] > 0


class _IgnoresLights(LiteExpert):
    def _light_gap(self, w: Any, s_ego: float, front: float) -> float:
        return float("inf")


def test_running_a_red_light_closed_loop(tmp_path: Path) -> None:
    """Route 25968 (Town07) crosses a signalled junction: ignoring the light is caught, the expert waits. Its
    scenario (VanillaSignalizedTurnEncounterGreenLight) would freeze the light green for the ego: not staged here,
    the light runs SUMO's own program."""
    cfg = LiteConfig(num_vehicles=20, seed=0, metric_info=False, scenarios=False)
    rec = run_route(_route("25968"), _IgnoresLights, tmp_path, config=cfg)
    assert len(rec["infractions"]["red_light"]) == 1
    assert rec["infractions"]["red_light"][0].startswith("Agent ran a red light ")
    assert rec["scores"]["score_penalty"] == 0.7 and rec["status"] == "Completed"
    assert rec["meta"]["red_lights"] == {"encountered": 1, "run": 1}
    rec = run_route(_route("25968"), LiteExpert, tmp_path, config=cfg)
    assert rec["infractions"]["red_light"] == [] and rec["scores"]["score_composed"] == 100.0
    assert rec["meta"]["red_lights"]["run"] == 0

"""Stand-in for Bench2Drive's `leaderboard_evaluator.py` in the harness tests (no CARLA, no agent).

It accepts exactly the evaluator's argument list (Bench2Drive 7ec25d1 `main()`), checks the job environment
the
harness must provide, connects to the server's RPC port, and then behaves as told for this route and attempt
(the attempt number is read from the `--checkpoint` path `.../attempt<N>/checkpoint.json`). The plan is the
JSON object in $FAKE_EVAL_PLAN: {"<route id>": [behaviour of attempt 1, of attempt 2, ...], "*": default};
the last behaviour repeats. Behaviours:

  "finish" / "finish:<status>"  run (heartbeat lines), write a record with that status (default Completed),
                                exit 0
  "sim_crash"     record "Failed - Simulation crashed", entry_status Crashed, exit 255 (sys.exit(-1))
  "agent_crash"   record "Failed - Agent crashed", exit 0
  "agent_setup"   record "Failed - Agent couldn't be set up", exit 0
  "segfault"      die with SIGSEGV, no record
  "hang"          print once, then sleep silently
  "exit3"         print a CARLA time-out error, exit 3, no record
  "partial"       write a truncated checkpoint, exit 1

Records follow results format A (fixtures/bench2drive/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from drive_jepa.leaderboard_format import INFRACTION_KEYS  # the same record format the real evaluator writes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", default=2000, type=int)
    p.add_argument("--traffic-manager-port", default=8000, type=int)
    p.add_argument("--traffic-manager-seed", default=0, type=int)
    p.add_argument("--debug", type=int, default=0)
    p.add_argument("--record", type=str, default="")
    p.add_argument("--timeout", default=600.0, type=float)
    p.add_argument("--routes", required=True)
    p.add_argument("--routes-subset", default="", type=str)
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("-a", "--agent", type=str, required=True)
    p.add_argument("--agent-config", type=str, default="")
    p.add_argument("--track", type=str, default="SENSORS")
    p.add_argument("--resume", type=bool, default=False)
    p.add_argument("--checkpoint", type=str, default="./simulation_results.json")
    p.add_argument("--debug-checkpoint", type=str, default="./live_results.txt")
    p.add_argument("--gpu-rank", type=int, default=0)
    return p


def record(route: ET.Element, status: str, save_name: str) -> dict:
    rid = route.get("id")
    sc = route.find("scenarios/scenario")
    completed = not status.startswith("Failed")
    rc = 100 if completed else 42.5
    msgs = ["Average speed is 87.5% of the surrounding traffic's one"] if completed else []
    return {
        "index": 0,
        "route_id": f"RouteScenario_{rid}_rep0",
        "scenario_name": sc.get("name") if sc is not None else "",
        "weather_id": "1",
        "save_name": save_name,
        "town_name": route.get("town"),
        "status": status,
        "num_infractions": len(msgs),
        "infractions": {k: (msgs if k == "min_speed_infractions" else []) for k in INFRACTION_KEYS},
        "scores": {"score_route": rc, "score_penalty": 1.0, "score_composed": rc},
        "meta": {"route_length": 120.5, "duration_game": 30.2, "duration_system": 0.3},
    }


def write_checkpoint(path: str, rec: dict | None, entry_status: str) -> None:
    data = {
        "_checkpoint": {"global_record": {}, "progress": [1, 1], "records": [rec] if rec else []},
        "entry_status": entry_status,
        "eligible": entry_status == "Finished",
        "sensors": ["carla_camera", "carla_imu", "carla_gnss", "carla_speedometer"],
        "values": [],
        "labels": [],
    }
    with open(path, "w") as f:  # in place, like the leaderboard's save_dict
        json.dump(data, f, indent=4)


def main() -> None:
    args = parser().parse_args()
    assert os.path.isfile("leaderboard/data/weather.xml"), f"cwd {os.getcwd()} is not a Bench2Drive root"
    pythonpath = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    cwd = os.getcwd()
    for sub in ("leaderboard", "scenario_runner"):
        assert os.path.join(cwd, sub) in pythonpath or any(p.endswith("/" + sub) for p in pythonpath), pythonpath
    save_path = os.environ["SAVE_PATH"]
    attempt = int(re.search(r"attempt(\d+)", args.checkpoint).group(1))  # type: ignore[union-attr]
    route = next(r for r in ET.parse(args.routes).getroot().iter("route") if r.get("id") == args.routes_subset)
    plan = json.loads(Path(os.environ["FAKE_EVAL_PLAN"]).read_text()) if os.environ.get("FAKE_EVAL_PLAN") else {}
    steps = plan.get(args.routes_subset, plan.get("*", ["finish"]))
    what = steps[min(attempt, len(steps)) - 1]
    duration = float(os.environ.get("FAKE_EVAL_DURATION_S", "0.2"))
    print(f"fake evaluator route {args.routes_subset} attempt {attempt}: {what}", flush=True)

    try:
        socket.create_connection((args.host, args.port), timeout=2).close()
    except OSError:
        print("RuntimeError: time-out of 2000ms while waiting for the simulator", flush=True)
        write_checkpoint(args.checkpoint, None, "Crashed")
        sys.exit(-1)

    write_checkpoint(args.checkpoint, None, "Started")
    save_name = f"RouteScenario_{args.routes_subset}_rep0_{route.get('town')}_x_1_{time.strftime('%m_%d_%H_%M_%S')}"
    if what == "hang":
        time.sleep(3600)
    if what == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if what == "exit3":
        print(
            "RuntimeError: time-out of 600000ms while waiting for the simulator, make sure the simulator is "
            "ready and connected to localhost:2000",
            flush=True,
        )
        sys.exit(3)
    if what == "partial":
        with open(args.checkpoint, "w") as f:
            f.write('{"_checkpoint": {"records": [{"route_id": "RouteSc')
        sys.exit(1)
    if what == "sim_crash":
        write_checkpoint(args.checkpoint, record(route, "Failed - Simulation crashed", save_name), "Crashed")
        sys.exit(-1)
    status = {
        "agent_crash": "Failed - Agent crashed",
        "agent_setup": "Failed - Agent couldn't be set up",
    }.get(what, what.split(":", 1)[1] if what.startswith("finish:") else "Completed")
    end = time.monotonic() + duration
    os.makedirs(os.path.join(save_path, save_name), exist_ok=True)
    while time.monotonic() < end:
        print("tick", flush=True)
        time.sleep(min(0.05, duration))
    with open(os.path.join(save_path, save_name, "metric_info.json"), "w") as f:
        json.dump({"0": {}}, f)
    if args.record:
        with open(os.path.join(args.record, f"RouteScenario_{args.routes_subset}_rep0.log"), "w") as f:
            f.write("fake recorder log\n")
    write_checkpoint(args.checkpoint, record(route, status, save_name), "Finished")
    sys.exit(0)


if __name__ == "__main__":
    main()

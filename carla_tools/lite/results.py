"""Bench2Drive / leaderboard checkpoint files (format A of fixtures/bench2drive/README.md), written by the
lite runner exactly as `leaderboard/utils/statistics_manager.py` does: one record per route, the global
record, `values` / `labels`, entry status and eligibility. Written atomically (temp file + rename) after
every route.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from carla_tools.lite.criteria import INFRACTION_KEYS

ROUND_DIGITS = 3
ROUND_DIGITS_SCORE = 6
LABELS = [
    "Avg. driving score",
    "Avg. route completion",
    "Avg. infraction penalty",
    "Collisions with pedestrians",
    "Collisions with vehicles",
    "Collisions with layout",
    "Red lights infractions",
    "Stop sign infractions",
    "Off-road infractions",
    "Route deviations",
    "Route timeouts",
    "Agent blocked",
    "Yield emergency vehicles infractions",
    "Scenario timeouts",
    "Min speed infractions",
]
_VALUE_KEYS = [
    "collisions_pedestrian",
    "collisions_vehicle",
    "collisions_layout",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "route_dev",
    "route_timeout",
    "vehicle_blocked",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "min_speed_infractions",
]


def make_record(
    *,
    index: int,
    route_id: str,
    rep: int,
    scenario_name: str,
    weather_id: str,
    save_name: str,
    town: str,
    infractions: dict[str, list[str]],
    score_route: float,
    score_penalty: float,
    route_length: float,
    duration_game: float,
    duration_system: float,
    failure: str = "",
) -> dict[str, Any]:
    """One route record with the statistics manager's status rule and rounding."""
    infr = {k: list(infractions.get(k, [])) for k in INFRACTION_KEYS}
    num = sum(len(v) for v in infr.values())
    if score_route >= 100:
        status = "Completed" if num > 0 else "Perfect"
    else:
        status = "Failed" + (f" - {failure}" if failure else "")
    sr = round(score_route, ROUND_DIGITS_SCORE)
    sp = round(score_penalty, ROUND_DIGITS_SCORE)
    return {
        "index": index,
        "route_id": f"RouteScenario_{route_id}_rep{rep}",
        "scenario_name": scenario_name,
        "weather_id": weather_id,
        "save_name": save_name,
        "status": status,
        "num_infractions": num,
        "infractions": infr,
        "scores": {
            "score_route": int(sr) if sr in (0, 100) else sr,
            "score_penalty": sp,
            "score_composed": round(max(score_route * score_penalty, 0.0), ROUND_DIGITS_SCORE),
        },
        "meta": {
            "route_length": round(route_length, ROUND_DIGITS),
            "duration_game": round(duration_game, ROUND_DIGITS),
            "duration_system": round(duration_system, ROUND_DIGITS),
        },
        "town_name": town,
    }


def _outside_km(record: dict[str, Any]) -> float:
    msgs = record["infractions"]["outside_route_lanes"]
    return float(msgs[0].split(" ")[8]) / 1000 if msgs else 0.0


def checkpoint(records: list[dict[str, Any]], total_routes: int, sensors: list[str]) -> dict[str, Any]:
    """The whole checkpoint dict (`_checkpoint` with global_record/progress/records, entry_status, ...)."""
    total = max(total_routes, 1)
    mean = {"score_composed": 0.0, "score_route": 0.0, "score_penalty": 0.0}
    meta: dict[str, Any] = {
        "total_length": 0.0,
        "duration_game": 0.0,
        "duration_system": 0.0,
        "exceptions": [],
    }
    status = "Perfect"
    for r in records:
        for k in mean:
            mean[k] += r["scores"][k] / total
        meta["total_length"] += r["meta"]["route_length"]
        meta["duration_game"] += r["meta"]["duration_game"]
        meta["duration_system"] += r["meta"]["duration_system"]
        res = "Failed" if "Failed" in r["status"] else r["status"]
        if res == "Failed":
            meta["exceptions"].append([r["route_id"], r["index"], r["status"]])
            status = "Failed"
        elif status == "Perfect" and res != "Perfect":
            status = res
    mean = {k: round(v, ROUND_DIGITS_SCORE) for k, v in mean.items()}
    std = dict.fromkeys(mean, 0.0)
    if total > 1:
        for r in records:
            for k in std:
                std[k] += (r["scores"][k] - mean[k]) ** 2
        std = {k: round(math.sqrt(v / (total - 1)), ROUND_DIGITS) for k, v in std.items()}
    km = max(sum(r["meta"]["route_length"] / 1000 * r["scores"]["score_route"] / 100 for r in records), 0.001)
    infr: dict[str, float] = {}
    for k in INFRACTION_KEYS:
        if k == "outside_route_lanes":
            infr[k] = round(sum(_outside_km(r) for r in records), ROUND_DIGITS)
        else:
            infr[k] = round(sum(len(r["infractions"][k]) for r in records) / km, ROUND_DIGITS)
    entry = "Finished"
    for r in records:
        if "Simulation crashed" in r["status"]:
            entry = "Crashed"
        elif "Agent's sensors were invalid" in r["status"]:
            entry = "Rejected"
    if entry == "Finished" and len(records) != total_routes:
        entry = "Started"
    values = [str(mean["score_composed"]), str(mean["score_route"]), str(mean["score_penalty"])]
    values += [str(infr[k]) for k in _VALUE_KEYS]
    return {
        "_checkpoint": {
            "global_record": {
                "index": -1,
                "route_id": -1,
                "status": status,
                "infractions": infr,
                "scores_mean": mean,
                "scores_std_dev": std,
                "meta": meta,
            },
            "progress": [len(records), total_routes],
            "records": records,
        },
        "entry_status": entry,
        "eligible": entry == "Finished",
        "sensors": sensors,
        "values": values,
        "labels": LABELS,
    }


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of an existing checkpoint (for resuming); [] when the file does not exist."""
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        return list(data["_checkpoint"]["records"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a leaderboard checkpoint ({exc}); move it away or pick another path") from None

"""`drive-jepa eval-table`: one row per evaluated run of a folder of lite / leaderboard checkpoints, over seeds.

Layout: `EVAL_DIR/<run>/seed<k>.json` or its route shards `seed<k>_part<j>.json` (as `drive-jepa learn` writes
them). Per run: strict DS / SR / RC over the route file's routes (missing routes count 0) as the mean and range
over seeds, infractions per km by kind (strict units), the share of red lights obeyed (lite records'
`meta.red_lights`: red stop lines of the ego's lane met within 15 m, and those run), Bench2Drive's driving
smoothness (strict: the share of comfortable 1 s windows, from `<run>/metric_seed<k>/<save_name>/metric_info.json`
where the run wrote them) and the agent's mean frame-to-frame plan change (lite records' `meta.agent_stats`).
Writes `EVAL_DIR/table.md` and `EVAL_DIR/table.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from drive_jepa.atomic import write_json_atomic, write_text_atomic


def seed_table(eval_dir: Path, routes_xml: Path) -> tuple[list[dict[str, Any]], str]:
    """One row per evaluated run (`<eval_dir>/<name>/seed<k>.json`): strict DS / SR / RC over the route file's
    routes (missing routes count 0) as mean and range over seeds, infractions per km by kind, and the agent's
    mean frame-to-frame plan change; plus the table as Markdown."""
    from bench2drive.comfort import driving_smoothness
    from bench2drive.metrics import infractions_per_km_strict, route_result, strict_scores
    from bench2drive.results import LITE_MARK, is_lite_record
    from drive_jepa.routes import load_routes

    expected = [r.id for r in load_routes(routes_xml)]
    rows: list[dict[str, Any]] = []
    for run_dir in sorted(p for p in eval_dir.iterdir() if p.is_dir()):
        seeds: dict[str, list[Path]] = {}  # seed<k>.json, or its shards seed<k>_part<j>.json
        for path in sorted(run_dir.glob("seed*.json")):
            seeds.setdefault(path.stem.split("_")[0], []).append(path)
        if not seeds:
            continue
        per_seed, results, changes, comfort = [], [], [], []
        red_met = red_run = 0  # a light run without a registered encounter still counts as met
        lite = False
        for seed_key, paths in seeds.items():
            records = [
                r for path in paths for r in json.loads(path.read_text()).get("_checkpoint", {}).get("records", [])
            ]
            res = {r["route_id"].split("_")[1]: route_result(r) for r in records}
            per_seed.append(strict_scores(res, expected))
            metric_dir = run_dir / f"metric_{seed_key}"  # `drive-jepa learn` passes lite --metric-dir there
            if metric_dir.is_dir():
                smooth = driving_smoothness(records, metric_dir).per_route_strict
                comfort += list(smooth.values())
            results += list(res.values())
            lite = lite or any(is_lite_record(r) for r in records)
            for r in records:
                red = (r.get("meta") or {}).get("red_lights")
                if red:
                    red_met += max(int(red["encountered"]), int(red["run"]))
                    red_run += int(red["run"])
            changes += [
                float(r["meta"]["agent_stats"]["mean_plan_change_m"])
                for r in records
                if (r.get("meta", {}).get("agent_stats") or {}).get("mean_plan_change_m") is not None
            ]
        ds = [x.driving_score for x in per_seed]
        per_km = infractions_per_km_strict(results)
        rows.append({
            "run": run_dir.name + (LITE_MARK if lite else ""), "world": "lite" if lite else "carla",
            "seeds": len(seeds), "ds": sum(ds) / len(ds), "ds_min": min(ds), "ds_max": max(ds),
            "sr": 100 * sum(x.success_rate for x in per_seed) / len(per_seed),
            "rc": sum(x.route_completion for x in per_seed) / len(per_seed),
            "routes_done": min(x.present for x in per_seed), "routes": len(expected),
            "per_km": {k: round(v, 3) for k, v in per_km.items() if v and k != "min_speed_infractions"},
            "plan_change_m": sum(changes) / len(changes) if changes else None,
            "comfort_pct": 100 * sum(comfort) / len(comfort) if comfort else None,
            "red_lights_met": red_met, "red_lights_run": red_run,
            "red_lights_obeyed_pct": 100 * (red_met - red_run) / red_met if red_met else None,
        })  # fmt: skip
    lines = [
        "| run | seeds | DS (range) | SR % | RC % | routes run | infractions per km | red lights obeyed | "
        "comfort % | plan change m |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        inf = ", ".join(f"{k.replace('collisions_', 'coll. ')} {v:.2f}" for k, v in r["per_km"].items()) or "none"
        pc = f"{r['plan_change_m']:.3f}" if r["plan_change_m"] is not None else "–"
        comf = f"{r['comfort_pct']:.1f}" if r["comfort_pct"] is not None else "–"
        red = "–"
        if r["red_lights_obeyed_pct"] is not None:
            red = f"{r['red_lights_obeyed_pct']:.0f} % of {r['red_lights_met']}"
        lines.append(
            f"| {r['run']} | {r['seeds']} | {r['ds']:.2f} ({r['ds_min']:.2f}–{r['ds_max']:.2f}) | {r['sr']:.1f} | "
            f"{r['rc']:.1f} | {r['routes_done']}/{r['routes']} | {inf} | {red} | {comf} | {pc} |"
        )
    return rows, "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="drive-jepa eval-table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("eval_dir", type=Path, help="folder of <run>/seed<k>[_part<j>].json")
    p.add_argument("--routes", type=Path, required=True, help="route XML of the evaluated set")
    ns = p.parse_args(argv)
    if not ns.eval_dir.is_dir() or not ns.routes.is_file():
        print(f"drive-jepa eval-table: need a folder ({ns.eval_dir}) and a route file ({ns.routes})", file=sys.stderr)
        return 2
    try:
        rows, table = seed_table(ns.eval_dir, ns.routes)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        print(f"drive-jepa eval-table: {ns.eval_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    write_text_atomic(ns.eval_dir / "table.md", table)
    write_json_atomic(ns.eval_dir / "table.json", rows)
    print(table, end="")
    return 0

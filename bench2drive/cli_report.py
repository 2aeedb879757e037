"""`drive-jepa report`: aggregate Bench2Drive results JSONs into merged.json + Markdown + HTML reports."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from bench2drive.abilities import JunctionTableError, load_junction_table
from bench2drive.comfort import MetricInfoError
from bench2drive.report import headline, html, markdown, summary_json
from bench2drive.results import LITE_MARK, ResultsFileError, is_eval_folder, is_partial_eval_folder, write_merged
from bench2drive.summary import RunSummary, summarize
from drive_jepa.atomic import write_json_atomic
from drive_jepa.routes import RouteFileError, load_routes

DESCRIPTION = """\
Aggregate Bench2Drive / CARLA-leaderboard results and write a report.

Each RESULTS argument is one run: a results JSON (leaderboard checkpoint or merged/published file), a folder
(all its *.json, name-sorted, are the per-split files of one parallel run), or several files joined by commas.
Use --one-run to treat all arguments as the files of a single run. Several runs are shown side by side.

Two modes: `compat` reproduces Bench2Drive's tools exactly (merge_route_json.py: DS = sum/220, SR =
successes/220, no de-duplication; ability_benchmark.py v0.0.4 and v0.0.3;
efficiency_smoothness_benchmark.py); `strict` fixes their quirks (route set from --routes, missing routes
count 0, duplicates de-duplicated with the latest record winning, no hard-coded 220, SI units in comfort).
The report shows both and lists where they differ; --mode only picks what is printed and which merged.json
is written (compat: exactly the tool's, strict: de-duplicated; both: merged.json as the tool's plus
merged_strict.json).

Writes into --out: merged.json (Bench2Drive format, their tools run on it), report.md, report.html (self-
contained, with plots) and summary.json; with several runs, each run's merged files go to OUT/<name>/.
A run given as a drive-jepa eval folder with agent recordings also gets, per route, links to its rendered
replay (relative to --out; --render-replays renders the missing ones) and its infractions with their time and
a thumbnail (OUT/replay_thumbs/); docs/replays.md.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa report",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results JSON, folder, or a,b,c (one run each)")
    p.add_argument("--routes", type=Path, help="route XML of the evaluated set (e.g. bench2drive220.xml)")
    p.add_argument("--out", type=Path, default=Path("bench2drive_report"), help="output folder")
    p.add_argument("--mode", choices=("compat", "strict", "both"), default="both", help="what to print/write")
    p.add_argument(
        "--junctions",
        type=Path,
        help="Traffic_Signs junction-completion table (format of ts_junction_completion.json)",
    )
    p.add_argument(
        "--metric-dir",
        type=Path,
        action="append",
        default=[],
        help="folder of <save_name>/metric_info.json for comfort; repeat once per run (in order)",
    )
    p.add_argument("--name", action="append", default=[], help="display name per run (repeat, in order)")
    p.add_argument("--one-run", action="store_true", help="all RESULTS are files of one run")
    p.add_argument(
        "--render-replays",
        action="store_true",
        help="for an eval folder: render replay.mp4 + .rrd of every recorded route that has none yet (slow)",
    )
    return p


def _run_name(arg: str) -> str:
    first = Path(arg.split(",")[0])
    return first.name if first.is_dir() else first.stem


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "run"


def _replay_sections(runs: list[RunSummary], groups: list[list[str]], out: Path, render: bool) -> dict[str, str]:
    """Per run that is one `drive-jepa eval` folder: its "Replays and infractions" HTML (thumbnails written to
    OUT/replay_thumbs/[<run>/]); with `render`, the missing replays are rendered first."""
    from agent.replay import catalog

    sections: dict[str, str] = {}
    for run, group in zip(runs, groups, strict=True):
        folder = Path(group[0]) if len(group) == 1 else None
        if folder is None or not (is_eval_folder(folder) or is_partial_eval_folder(folder)):
            continue
        if render:
            catalog.render_missing(folder)
        thumbs = out / "replay_thumbs" / ("" if len(runs) == 1 else _safe(run.name.removesuffix(LITE_MARK)))
        routes = catalog.collect_routes(folder, thumbs)
        if routes:
            sections[run.name] = catalog.routes_html(routes, folder, out)
            print(f"{run.name}: replays: {catalog.count_summary(routes)}")
    return sections


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    groups = [args.results] if args.one_run else [[a for a in r.split(",") if a] for r in args.results]
    if len(args.name) > len(groups):
        print(
            f"drive-jepa report: {len(args.name)} --name for {len(groups)} run(s): give at most one --name per run "
            "(runs are the positional arguments; comma-join the files of one run)",
            file=sys.stderr,
        )
        return 2
    names = list(args.name) + [_run_name(",".join(g)) for g in groups[len(args.name) :]]
    if len(set(names)) != len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    if args.metric_dir and len(args.metric_dir) not in (1, len(groups)):
        print("drive-jepa report: give --metric-dir once, or once per run", file=sys.stderr)
        return 2
    try:
        routes = load_routes(args.routes) if args.routes else None
        junctions = (
            load_junction_table(args.junctions, args.routes.name if args.routes else None) if args.junctions else None
        )
        runs: list[RunSummary] = []
        for i, (name, group) in enumerate(zip(names, groups, strict=True)):
            metric_dir = None
            if args.metric_dir:
                metric_dir = args.metric_dir[i] if len(args.metric_dir) > 1 else args.metric_dir[0]
            elif len(group) == 1 and (is_eval_folder(Path(group[0])) or is_partial_eval_folder(Path(group[0]))):
                metric_dir = Path(group[0]) / "agent"  # the eval folder's SAVE_PATH: metric_info.json per route
            runs.append(summarize(name, group, routes, args.routes, junctions, metric_dir))
    except (ResultsFileError, RouteFileError, JunctionTableError, MetricInfoError) as exc:
        print(f"drive-jepa report: {exc}", file=sys.stderr)
        return 2

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    replays = _replay_sections(runs, groups, out, args.render_replays)
    for run in runs:
        folder = out if len(runs) == 1 else out / _safe(run.name.removesuffix(LITE_MARK))
        if args.mode == "strict":
            write_merged(run.merged_strict, folder / "merged.json")
        else:
            write_merged(run.merged_compat, folder / "merged.json")
            if args.mode == "both":
                write_merged(run.merged_strict, folder / "merged_strict.json")
    (out / "report.md").write_text(markdown(runs), encoding="utf-8")
    (out / "report.html").write_text(html(runs, replays), encoding="utf-8")
    write_json_atomic(out / "summary.json", [summary_json(r) for r in runs], indent=2)
    for run in runs:
        print(headline(run, args.mode))
        for warning in run.reader.warnings:
            print(f"  note: {warning}")
        if run.compat.tool_stdout_warning and args.mode != "strict":
            print(f"  note: merge_route_json.py would warn: {run.compat.eval_num} records ≠ 220")
    print(f"report: {out / 'report.html'} · {out / 'report.md'} · merged.json in {out}")
    return 0

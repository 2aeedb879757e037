"""Render one or several `RunSummary`s: headline text, Markdown summary, self-contained HTML page, JSON.

Percentages: DS and route completion are points (0–100); success rates, ability rates and comfort are shown
× 100 with 2 decimals (`round(x, 2)`, the rounding of the published tables); efficiency as the tool prints it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

from bench2drive.abilities import ABILITIES, TS, abilities_of
from bench2drive.plots import hbar_chart, vbar_chart
from bench2drive.summary import RunSummary, ability_table
from drive_jepa.leaderboard_format import INFRACTION_KEYS

RC_BINS: tuple[tuple[float, float, str], ...] = tuple(
    [(10.0 * i, 10.0 * (i + 1), f"{10 * i}–{10 * (i + 1)}") for i in range(10)] + [(100.0, math.inf, "100")]
)


def pct(x: float | None, scale: float = 100.0) -> str:
    return "n/a" if x is None else f"{round(x * scale, 2):.2f}"


def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{round(x, 2):.2f}"


def ts_text(s: RunSummary, scale: float = 100.0) -> str:
    """Traffic_Signs v0.0.4 value, as an interval when some partial credits need unknown junction data."""
    a = s.compat.ability_v004
    lo, hi = a.value(TS), a.value(TS, upper=True)
    if a.exact:
        return pct(lo, scale)
    return f"{pct(lo, scale)}–{pct(hi, scale)}"


def ability_mean_text(s: RunSummary) -> str:
    a = s.compat.ability_v004
    if a.error:
        return "tool fails"
    if a.exact:
        return pct(a.mean())
    return f"{pct(a.mean())}–{pct(a.mean(upper=True))}"


def comfort_value(s: RunSummary, strict: bool) -> tuple[float | None, str | None]:
    if s.comfort is None:
        return None, "no --metric-dir"
    if strict:
        return s.comfort.strict, None
    return s.comfort.compat, s.comfort.compat_error


def headline(s: RunSummary, mode: str) -> str:
    """One or two lines for stdout."""
    c, st = s.compat, s.strict
    eff = pts(c.efficiency) if c.efficiency is not None else f"n/a ({c.efficiency_error})"
    comf, comf_err = comfort_value(s, strict=False)
    comf_text = pct(comf) if comf is not None else f"n/a ({comf_err})"
    compat_line = (
        f"{s.name} [compat]: DS {pts(c.driving_score)}  SR {pct(c.success_rate)}  eval num {c.eval_num}  "
        f"Efficiency {eff}  Comfort {comf_text}  Ability(v0.0.4) mean {ability_mean_text(s)}"
        f" (TS {ts_text(s)})  v0.0.3 mean {pct(c.ability_v003.mean())}"
    )
    sc = st.scores
    strict_comf, _ = comfort_value(s, strict=True)
    strict_line = (
        f"{s.name} [strict]: DS {pts(sc.driving_score)}  SR {pct(sc.success_rate)}  routes "
        f"{sc.present}/{sc.expected} ({len(sc.missing)} missing, {len(s.reader.duplicates)} duplicated, "
        f"{len(s.reader.not_in_routes)} not in route set)  Efficiency {pts(st.efficiency)}  "
        f"Comfort {pct(strict_comf)}"
    )
    if mode == "compat":
        return compat_line
    if mode == "strict":
        return strict_line
    return compat_line + "\n" + strict_line


def differences(s: RunSummary) -> list[tuple[str, str, str, str]]:
    """(metric, compat, strict, why) where the two modes disagree at the displayed precision."""
    c, st = s.compat, s.strict
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, a: str, b: str, why: str) -> None:
        if a != b:
            rows.append((name, a, b, why))

    why_set = (
        f"compat divides by 220 and counts every record ({c.eval_num}); strict uses the "
        f"{s.strict.scores.expected} routes of the {s.route_set_source}, de-duplicated"
    )
    add("Driving Score", pts(c.driving_score), pts(st.scores.driving_score), why_set)
    add("Success Rate", pct(c.success_rate), pct(st.scores.success_rate), why_set)
    add(
        "Efficiency",
        pts(c.efficiency),
        pts(st.efficiency),
        "tool dies on all-dropped routes / no messages; strict skips them (and de-duplicates)",
    )
    table = ability_table(s)
    for a in [*ABILITIES, "mean"]:
        comp = ts_text(s) if a == TS else (ability_mean_text(s) if a == "mean" else pct(table[a]["v0.0.4"]))
        add(
            f"Ability {a}",
            comp,
            pct(table[a]["strict"]),
            "strict counts missing routes as failures and gives no Traffic_Signs partial credit",
        )
    cc, ce = comfort_value(s, strict=False)
    sc, _ = comfort_value(s, strict=True)
    if s.comfort is not None:
        add(
            "Comfort",
            pct(cc) if cc is not None else f"n/a ({ce})",
            pct(sc),
            "deg/s vs rad/s, 0.1 s vs 0.05 s step, yaw acceleration not differentiated (quirk 16)",
        )
    return rows


def ability_driving_scores(s: RunSummary) -> dict[str, float | None]:
    """Mean DS over each ability's routes (missing routes count 0), in points."""
    sums: dict[str, list[float]] = {a: [] for a in ABILITIES}
    for spec in s.specs:
        res = s.by_route.get(spec.route)
        for a in abilities_of(spec.scenario_type):
            sums[a].append(res.driving_score if res else 0.0)
    return {a: (math.fsum(v) / len(v) if v else None) for a, v in sums.items()}


def rc_histogram(s: RunSummary) -> list[int]:
    counts = [0] * len(RC_BINS)
    for res in s.by_route.values():
        for i, (lo, hi, _) in enumerate(RC_BINS):
            if lo <= res.route_completion < hi:
                counts[i] += 1
                break
    return counts


# ----------------------------------------------------------------------------------------------------------
# JSON


def summary_json(s: RunSummary) -> dict[str, Any]:
    c, st = s.compat, s.strict
    comfort = None
    if s.comfort is not None:
        comfort = {
            "compat": s.comfort.compat,
            "compat_error": s.comfort.compat_error,
            "strict": s.comfort.strict,
            "per_route_compat": s.comfort.per_route_compat,
            "per_route_strict": s.comfort.per_route_strict,
            "missing_metric_info": s.comfort.missing,
        }
    return {
        "name": s.name,
        "inputs": [str(p) for p in s.inputs],
        "route_file": str(s.route_file) if s.route_file else None,
        "route_set_source": s.route_set_source,
        "compat": {
            "driving score": c.driving_score,
            "success rate": c.success_rate,
            "eval num": c.eval_num,
            "driving efficiency": c.efficiency,
            "driving efficiency error": c.efficiency_error,
            "ability_v0.0.4": c.ability_v004.as_tool_json(),
            "ability_v0.0.4_error": c.ability_v004.error,
            "traffic_signs_v0.0.4_interval": [c.ability_v004.counts[TS][0], c.ability_v004.ts_num_hi],
            "traffic_signs_undetermined_routes": c.ability_v004.ts_undetermined,
            "ability_v0.0.3": c.ability_v003.as_tool_json(),
            "tool_warning": c.tool_stdout_warning,
        },
        "strict": {
            "driving score": st.scores.driving_score,
            "success rate": st.scores.success_rate,
            "route completion": st.scores.route_completion,
            "expected routes": st.scores.expected,
            "present routes": st.scores.present,
            "missing routes": list(st.scores.missing),
            "driving efficiency": st.efficiency,
            "ability": {a: st.ability.value(a) for a in ABILITIES},
            "ability counts": {a: st.ability.counts[a] for a in ABILITIES},
            "infractions per km": st.per_km,
        },
        "comfort": comfort,
        "infractions per km (leaderboard)": s.per_km_compat,
        "reader": {
            "files": s.reader.files,
            "duplicates": {rid: [e.__dict__ for e in entries] for rid, entries in s.reader.duplicates.items()},
            "unknown statuses": s.reader.unknown_statuses,
            "not in route set": s.reader.not_in_routes,
            "penalty mismatch": s.reader.penalty_mismatch,
            "warnings": s.reader.warnings,
        },
        "differences": [list(r) for r in differences(s)],
    }


# ----------------------------------------------------------------------------------------------------------
# Markdown


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def _reader_lines(s: RunSummary) -> list[str]:
    r = s.reader
    lines = []
    for w in r.warnings:
        lines.append(f"- warning: {w}")
    for rid, entries in r.duplicates.items():
        desc = "; ".join(
            f"{e.status} DS {pts(e.driving_score)} ({'kept' if e.kept else 'superseded'})" for e in entries
        )
        lines.append(f"- duplicate `{rid}` ×{len(entries)}: {desc}")
    for rid, status in r.unknown_statuses:
        lines.append(f"- unknown status `{status}` in `{rid}`")
    if r.not_in_routes:
        lines.append(f"- records not in the route set (excluded in strict): {', '.join(r.not_in_routes)}")
    for rid, stored, recomputed in r.penalty_mismatch:
        lines.append(f"- `{rid}`: stored penalty {stored} ≠ product of its infraction factors {recomputed}")
    if s.missing:
        lines.append(f"- missing routes ({len(s.missing)}): {', '.join(s.missing)}")
    if s.compat.ability_v004.error:
        lines.append(f"- ability_benchmark.py would fail: {s.compat.ability_v004.error}")
    und = s.compat.ability_v004.ts_undetermined
    if und:
        lines.append(
            f"- Traffic_Signs partial credit undetermined for {len(und)} route(s) without junction data "
            f"(give --junctions with their junction_completion): {', '.join(und)}"
        )
    return lines or ["- no issues"]


def markdown(runs: Sequence[RunSummary]) -> str:
    out = ["# Bench2Drive results", ""]
    out.append(f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `drive-jepa report`.")
    out.append("")
    hdr = ["metric", *[r.name for r in runs]]
    rows = [
        ["DS (compat, /220)", *[pts(r.compat.driving_score) for r in runs]],
        ["SR % (compat, /220)", *[pct(r.compat.success_rate) for r in runs]],
        ["eval num", *[str(r.compat.eval_num) for r in runs]],
        ["DS (strict)", *[pts(r.strict.scores.driving_score) for r in runs]],
        ["SR % (strict)", *[pct(r.strict.scores.success_rate) for r in runs]],
        ["mean RC % (strict)", *[pts(r.strict.scores.route_completion) for r in runs]],
        [
            "routes present / expected",
            *[f"{r.strict.scores.present}/{r.strict.scores.expected}" for r in runs],
        ],
        ["Efficiency (compat)", *[pts(r.compat.efficiency) for r in runs]],
        ["Efficiency (strict)", *[pts(r.strict.efficiency) for r in runs]],
        ["Comfort % (compat)", *[pct(comfort_value(r, False)[0]) for r in runs]],
        ["Comfort % (strict)", *[pct(comfort_value(r, True)[0]) for r in runs]],
    ]
    out += ["## Headline", "", _md_table(hdr, rows), ""]
    ab_rows = []
    for a in [*ABILITIES, "mean"]:
        cells = []
        for r in runs:
            t = ability_table(r)[a]
            v4 = ts_text(r) if a == TS else (ability_mean_text(r) if a == "mean" else pct(t["v0.0.4"]))
            cells.append(f"{v4} / {pct(t['v0.0.3'])} / {pct(t['strict'])}")
        ab_rows.append([a, *cells])
    out += [
        "## Abilities (success rate %: v0.0.4 / v0.0.3 / strict)",
        "",
        _md_table(["ability", *[r.name for r in runs]], ab_rows),
        "",
        "v0.0.4 and v0.0.3 are the two versions of `ability_benchmark.py` (every published table before "
        "v0.0.4 used v0.0.3, whose Traffic_Signs is double-counted). An interval means some Traffic_Signs "
        "partial credits need junction data that was not given.",
        "",
    ]
    for r in runs:
        out += [f"## {r.name}", "", f"Inputs: {', '.join(f'`{p}`' for p in r.inputs)}"]
        src = f"`{r.route_file}`" if r.route_file else "the records themselves (no --routes)"
        out += [f"Route set: {src}.", ""]
        diffs = differences(r)
        if diffs:
            out += ["### compat vs strict", "", _md_table(["metric", "compat", "strict", "why"], diffs), ""]
        out += ["### Reader", "", *_reader_lines(r), ""]
        out += ["### By status", "", _group_md(r.by_status), ""]
        out += ["### By town", "", _group_md(r.by_town), ""]
        out += ["### By scenario type", "", _group_md(r.by_scenario), ""]
        per_km = [[k, f"{r.strict.per_km[k]:.3f}", f"{r.per_km_compat[k]:.3f}"] for k in INFRACTION_KEYS]
        out += [
            "### Infractions per km driven",
            "",
            _md_table(["infraction", "strict", "leaderboard (off-lane: km, not per km)"], per_km),
            "",
        ]
    return "\n".join(out) + "\n"


_GROUP_HEADER = ["group", "routes", "present", "DS", "SR %", "RC %"]


def _group_rows(rows: Sequence[Any]) -> list[list[str]]:
    """One table row per breakdown group (status, town, scenario type): the Markdown and HTML reports share it."""
    return [
        [g.key, str(g.routes), str(g.present), pts(g.driving_score), pct(g.success_rate), pts(g.route_completion)]
        for g in rows
    ]


def _group_md(rows: Sequence[Any]) -> str:
    return _md_table(
        _GROUP_HEADER,
        _group_rows(rows),
    )


# ----------------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1100px;color:#222;padding:0 16px}
h1{font-size:26px;margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:230px;background:#fafafa}
.card h3{margin:0 0 6px 0;font-size:16px}.big{font-size:28px;font-weight:600}
.muted{color:#666;font-size:13px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
table.text td{text-align:left}
.fig{margin:18px 0}.ok{color:#1a7f37}.bad{color:#b42318}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
table.replays td{vertical-align:top}.partial{color:#b54708;font-weight:600}
figure.infraction{margin:4px 0}img.thumb{width:240px;display:block;border:1px solid #ccc}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _card(r: RunSummary) -> str:
    c, st = r.compat, r.strict
    return (
        f'<div class="card"><h3>{escape(r.name)}</h3>'
        f'<div><span class="big">DS {pts(st.scores.driving_score)}</span> &nbsp; '
        f'<span class="big">SR {pct(st.scores.success_rate)}</span></div>'
        f'<div class="muted">strict · {st.scores.present}/{st.scores.expected} routes</div>'
        f'<div class="muted">compat (Bench2Drive tools, /220): DS {pts(c.driving_score)} · '
        f"SR {pct(c.success_rate)} · eval num {c.eval_num}</div>"
        f"<div>Efficiency {pts(c.efficiency)} · Comfort {pct(comfort_value(r, False)[0])} · "
        f"Ability mean {escape(ability_mean_text(r))}</div></div>"
    )


def _series(runs: Sequence[RunSummary], fn: Any) -> list[tuple[str, list[float | None]]]:
    return [(r.name, fn(r)) for r in runs]


def _figures(runs: Sequence[RunSummary]) -> list[str]:
    abil = [*ABILITIES]
    figs = []
    figs.append(
        vbar_chart(
            "Success rate per ability (%, v0.0.4 tool; whisker: undetermined partial credit)",
            abil,
            _series(
                runs,
                lambda r: [
                    None if r.compat.ability_v004.value(a) is None else 100 * (r.compat.ability_v004.value(a) or 0)
                    for a in abil
                ],
            ),
            y_max=100,
            upper=[[100 * (r.compat.ability_v004.value(a, upper=True) or 0) for a in abil] for r in runs],
        )
    )
    figs.append(
        vbar_chart(
            "Driving score per ability (mean DS of the ability's routes, missing = 0)",
            abil,
            _series(runs, lambda r: [ability_driving_scores(r)[a] for a in abil]),
            y_max=100,
        )
    )
    inf_keys = [
        k for k in INFRACTION_KEYS if k != "min_speed_infractions" and any(r.strict.per_km[k] > 0 for r in runs)
    ] or [k for k in INFRACTION_KEYS if k != "min_speed_infractions"]
    figs.append(
        hbar_chart(
            "Infractions per km driven (off-lane: metres per km; min-speed, unpenalised, left out)",
            inf_keys,
            _series(runs, lambda r: [r.strict.per_km[k] for k in inf_keys]),
            fmt="{:.2f}",
        )
    )
    statuses = sorted({g.key for r in runs for g in r.by_status})
    figs.append(
        hbar_chart(
            "Routes per status (strict: de-duplicated, missing shown)",
            statuses,
            _series(runs, lambda r: [float(_group(r.by_status, s, "routes")) for s in statuses]),
            fmt="{:.0f}",
        )
    )
    towns = sorted({g.key for r in runs for g in r.by_town})
    figs.append(
        vbar_chart(
            "Driving score per town (strict, missing = 0)",
            towns,
            _series(runs, lambda r: [_group_opt(r.by_town, t) for t in towns]),
            y_max=100,
        )
    )
    figs.append(
        vbar_chart(
            "Route-completion distribution (number of routes per RC bin, %)",
            [b[2] for b in RC_BINS],
            _series(runs, lambda r: [float(v) for v in rc_histogram(r)]),
            fmt="{:.0f}",
        )
    )
    return figs


def _group(rows: Sequence[Any], key: str, attr: str) -> float:
    for g in rows:
        if g.key == key:
            return float(getattr(g, attr))
    return 0.0


def _group_opt(rows: Sequence[Any], key: str) -> float | None:
    for g in rows:
        if g.key == key:
            return float(g.driving_score)
    return None


def _per_route_rows(r: RunSummary) -> list[list[str]]:
    rows = []
    c4 = r.compat.ability_v004
    for spec in r.specs:
        res = r.by_route.get(spec.route)
        if res is None:
            rows.append([spec.route, spec.town, spec.scenario_type, "missing", "", "", "", "", "", ""])
            continue
        factors = "·".join(f"{k.split('_')[-1]}×{len(v)}" for k, v in res.penalty_factors.items())
        eff = res.route_efficiency_strict
        ts = c4.ts_passes.get(spec.route, "")
        rows.append(
            [
                spec.route,
                spec.town,
                spec.scenario_type,
                res.status,
                pts(res.route_completion),
                f"{res.penalty:.4f}" + (f" ({factors})" if factors else ""),
                pts(res.driving_score),
                "yes" if res.success else "no",
                pts(eff),
                "?" if ts is None else str(ts),
            ]
        )
    return rows


def html(runs: Sequence[RunSummary], replays: Mapping[str, str] | None = None) -> str:
    """The report page; `replays` maps a run's name to its "Replays and infractions" section (eval folders)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Bench2Drive results: {escape(', '.join(r.name for r in runs))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Bench2Drive results</h1>",
        f"<div class='muted'>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
        "<code>drive-jepa report</code>. compat = Bench2Drive's own tools (merge_route_json.py, "
        "ability_benchmark.py, efficiency_smoothness_benchmark.py); strict = their documented quirks "
        "fixed.</div>",
        "<div class='cards'>",
        *[_card(r) for r in runs],
        "</div>",
    ]
    hdr = ["metric", *[r.name for r in runs]]
    rows = [
        ["DS (compat, /220)", *[pts(r.compat.driving_score) for r in runs]],
        ["SR % (compat, /220)", *[pct(r.compat.success_rate) for r in runs]],
        ["DS (strict)", *[pts(r.strict.scores.driving_score) for r in runs]],
        ["SR % (strict)", *[pct(r.strict.scores.success_rate) for r in runs]],
        [
            "routes present / expected",
            *[f"{r.strict.scores.present}/{r.strict.scores.expected}" for r in runs],
        ],
        [
            "Efficiency (compat / strict)",
            *[f"{pts(r.compat.efficiency)} / {pts(r.strict.efficiency)}" for r in runs],
        ],
        [
            "Comfort % (compat / strict)",
            *[f"{pct(comfort_value(r, False)[0])} / {pct(comfort_value(r, True)[0])}" for r in runs],
        ],
    ]
    for a in [*ABILITIES, "mean"]:
        cells = []
        for r in runs:
            t = ability_table(r)[a]
            v4 = ts_text(r) if a == TS else (ability_mean_text(r) if a == "mean" else pct(t["v0.0.4"]))
            cells.append(f"{v4} / {pct(t['v0.0.3'])} / {pct(t['strict'])}")
        rows.append([f"{a} % (v0.0.4 / v0.0.3 / strict)", *cells])
    parts += ["<h2>Summary</h2>", _html_table(hdr, rows), "<h2>Plots</h2>"]
    parts += [f"<div class='fig'>{svg}</div>" for svg in _figures(runs)]
    for r in runs:
        parts.append(f"<h2>{escape(r.name)}</h2>")
        parts.append(f"<div class='muted'>Inputs: {escape(', '.join(str(p) for p in r.inputs))}</div>")
        diffs = differences(r)
        if diffs:
            parts += [
                "<h3>compat vs strict</h3>",
                _html_table(["metric", "compat", "strict", "why"], diffs, "text"),
            ]
        parts.append("<h3>Reader</h3><ul>")
        parts += [f"<li>{escape(line[2:])}</li>" for line in _reader_lines(r)]
        parts.append("</ul>")
        for title, grp in (("status", r.by_status), ("town", r.by_town), ("scenario type", r.by_scenario)):
            parts.append(f"<details><summary>By {title}</summary>")
            parts.append(_html_table(_GROUP_HEADER, _group_rows(grp)))
            parts.append("</details>")
        parts.append("<details><summary>Per route</summary>")
        parts.append(
            _html_table(
                [
                    "route",
                    "town",
                    "scenario",
                    "status",
                    "RC %",
                    "penalty",
                    "DS",
                    "success",
                    "efficiency",
                    "TS credit",
                ],
                _per_route_rows(r),
            )
        )
        parts.append("</details>")
        if replays and r.name in replays:
            parts.append(replays[r.name])
    parts.append("</body></html>")
    return "\n".join(parts)

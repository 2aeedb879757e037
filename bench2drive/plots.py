"""Hand-made inline SVG charts for the HTML report (no plotting dependency, no external assets).

Each function returns one `<svg>` element as a string. Several runs are drawn side by side as grouped bars,
one colour per run (legend on top). Values of None are drawn as a hatched "n/a" stub.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
FONT = "font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"

Series = tuple[str, Sequence[float | None]]


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for exp in range(-3, 7):
        for step in (1, 2, 2.5, 5):
            top = step * 10.0**exp
            if top >= v:
                return top
    return v


def _legend(series: Sequence[Series], x0: float, y: float) -> list[str]:
    out, x = [], x0
    for i, (name, _) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}" rx="2"/>')
        out.append(f'<text x="{x + 16:.1f}" y="{y:.1f}" font-size="12">{escape(name)}</text>')
        x += 28 + 7.2 * len(name)
    return out


def vbar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    y_max: float | None = None,
    unit: str = "",
    width: int = 760,
    height: int = 320,
    fmt: str = "{:.1f}",
    upper: Sequence[Sequence[float | None]] | None = None,
) -> str:
    """Vertical grouped bars: one group per category, one bar per series. `upper[s][c]`, when given and
    above the bar, is drawn as a whisker (the upper end of an interval)."""
    left, right, top, bottom = 52, 12, 48, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    vals = [v for _, s in series for v in s if v is not None]
    vmax = y_max if y_max is not None else _nice_max(max(vals, default=1.0))
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    group_w = plot_w / n_cat
    bar_w = min(40.0, group_w * 0.8 / n_ser)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" style="{FONT}">',
        f'<text x="{left}" y="18" font-size="15" font-weight="600">{escape(title)}</text>',
    ]
    parts += _legend(series, left, 38)
    for k in range(6):
        v = vmax * k / 5
        y = top + plot_h - plot_h * k / 5
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
            f"{fmt.format(v)}{escape(unit)}</text>"
        )
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + (group_w - bar_w * n_ser) / 2
        for si, (_, svals) in enumerate(series):
            val = svals[ci] if ci < len(svals) else None
            x = gx + si * bar_w
            color = PALETTE[si % len(PALETTE)]
            if val is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 4:.1f}" font-size="9" '
                    f'text-anchor="middle" fill="#999">n/a</text>'
                )
                continue
            h = plot_h * min(max(val, 0.0), vmax) / vmax
            y = top + plot_h - h
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(cat)}: {fmt.format(val)}{escape(unit)}</title></rect>'
            )
            hi = upper[si][ci] if upper is not None and ci < len(upper[si]) else None
            if hi is not None and hi > val:
                yh = top + plot_h - plot_h * min(hi, vmax) / vmax
                xm = x + bar_w / 2
                parts.append(
                    f'<path d="M{xm:.1f},{y:.1f}V{yh:.1f}M{xm - 5:.1f},{yh:.1f}H{xm + 5:.1f}" '
                    f'stroke="#333" stroke-width="1.2" fill="none"><title>{escape(cat)}: up to '
                    f"{fmt.format(hi)}{escape(unit)} (undetermined partial credits)</title></path>"
                )
            if bar_w >= 18:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle" '
                    f'fill="#333">{fmt.format(val)}</text>'
                )
        cx = left + ci * group_w + group_w / 2
        label = escape(cat if len(cat) <= 18 else cat[:17] + "…")
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 14:.1f}" font-size="11" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {top + plot_h + 14:.1f})">{label}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def hbar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    x_max: float | None = None,
    unit: str = "",
    width: int = 760,
    fmt: str = "{:.1f}",
    label_width: int = 250,
) -> str:
    """Horizontal grouped bars, for many or long category names."""
    n_ser = max(len(series), 1)
    bar_h = 14 if n_ser > 1 else 16
    row_h = bar_h * n_ser + 8
    top, bottom, right = 48, 24, 60
    height = top + bottom + row_h * max(len(categories), 1)
    plot_w = width - label_width - right
    vals = [v for _, s in series for v in s if v is not None]
    vmax = x_max if x_max is not None else _nice_max(max(vals, default=1.0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" style="{FONT}">',
        f'<text x="8" y="18" font-size="15" font-weight="600">{escape(title)}</text>',
    ]
    parts += _legend(series, 8, 38)
    for k in range(5):
        x = label_width + plot_w * k / 4
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" stroke="#e5e5e5"/>'
            f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle" fill="#555">'
            f"{fmt.format(vmax * k / 4)}{escape(unit)}</text>"
        )
    for ci, cat in enumerate(categories):
        y0 = top + ci * row_h + 4
        label = escape(cat if len(cat) <= 38 else cat[:37] + "…")
        parts.append(
            f'<text x="{label_width - 6}" y="{y0 + row_h / 2:.1f}" font-size="11" text-anchor="end">{label}</text>'
        )
        for si, (_, svals) in enumerate(series):
            v = svals[ci] if ci < len(svals) else None
            y = y0 + si * bar_h
            if v is None:
                parts.append(
                    f'<text x="{label_width + 4}" y="{y + bar_h - 3:.1f}" font-size="10" fill="#999">n/a</text>'
                )
                continue
            w = plot_w * min(max(v, 0.0), vmax) / vmax
            color = PALETTE[si % len(PALETTE)]
            parts.append(
                f'<rect x="{label_width}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}">'
                f"<title>{escape(cat)}: {fmt.format(v)}{escape(unit)}</title></rect>"
                f'<text x="{label_width + w + 4:.1f}" y="{y + bar_h - 4:.1f}" font-size="10" fill="#333">'
                f"{fmt.format(v)}</text>"
            )
    parts.append(f'<line x1="{label_width}" x2="{label_width}" y1="{top}" y2="{height - bottom}" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts)

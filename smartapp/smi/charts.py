"""Server-rendered SVG of body measures over time (weight, blood pressure, HbA1c) with their target line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

from smartapp.chart.trends import tick_step

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 340, 150, 40, 12, 10, 26
LINE_COLOURS = ("#12355b", "#8a3b12")


def measure_svg(title: str, unit: str, lines: Sequence[tuple[str, Sequence[tuple[date, float]]]], *,
                target: float | None = None, target_label: str = "") -> Markup:  # fmt: skip
    """One or two lines (BP: systolic and diastolic) of values by day, with a dashed target line; an accessible
    name that says the first and latest values, and a title per point."""
    points = [(day, value) for _, values in lines for day, value in values]
    if not points:
        return Markup("")
    days = [d.toordinal() for d, _ in points]
    start, end = min(days), max(days)
    values = [v for _, v in points] + ([target] if target is not None else [])
    low, high = min(values), max(values)
    pad = max((high - low) * 0.15, 1.0)
    low, high = max(0.0, low - pad), high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: date) -> float:
        return LEFT + (plot_w / 2 if end == start else (day.toordinal() - start) / (end - start) * plot_w)

    def y(value: float) -> float:
        return TOP + plot_h - (value - low) / (high - low) * plot_h

    summaries = []
    for name, series in lines:
        if series:
            summaries.append(f"{name} first {series[0][1]:g} {unit} on {series[0][0].isoformat()}, latest "
                             f"{series[-1][1]:g} {unit} on {series[-1][0].isoformat()}")  # fmt: skip
    label = f"{title}: " + "; ".join(summaries) + (f". Target {target_label}." if target_label else ".")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="measure" role="img" aria-label="{escape(label)}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">']  # fmt: skip
    step = tick_step(high - low)
    tick = (int(low) // step + 1) * step
    while tick < high:
        parts.append(
            f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" class="axis">{tick}</text>'
        )
        tick += step
    if target is not None:
        parts.append(f'<line x1="{LEFT}" y1="{y(target):.1f}" x2="{LEFT + plot_w}" y2="{y(target):.1f}" '
                     f'stroke="#1d5e20" stroke-dasharray="5 3"><title>{escape(target_label)}</title></line>')  # fmt: skip
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#555"/>'
    )
    first, last = min(points)[0], max(points)[0]
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" class="axis">{first.isoformat()}</text>')
    if last != first:
        parts.append(f'<text x="{LEFT + plot_w}" y="{HEIGHT - 8}" text-anchor="end" class="axis">'
                     f"{last.isoformat()}</text>")  # fmt: skip
    for (name, series), colour in zip(lines, LINE_COLOURS, strict=False):
        if not series:
            continue
        coordinates = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in series)
        parts.append(f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for day, value in series:
            parts.append(f'<circle cx="{x(day):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}"><title>'
                         f"{escape(day.isoformat())}: {escape(name)} {value:g} {escape(unit)}</title></circle>")  # fmt: skip
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above

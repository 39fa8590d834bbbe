"""Server-rendered SVG for the SMI patient page: body measures over time (weight, blood pressure, HbA1c) with their
target line, and symptom scores on their severity bands — small multiples, so the three panels (symptoms, body,
life) sit side by side in one screen of a 1024×700 frame (issue 28)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

from fhir_mappings.screening.history import ScorePoint
from smartapp.chart.trends import tick_step, trend_svg

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 340, 150, 40, 12, 10, 26
#: A small multiple's height: three stacked in a panel stay within one screen.
SMALL_HEIGHT = 104
LINE_COLOURS = ("#12355b", "#8a3b12")


def measure_svg(title: str, unit: str, lines: Sequence[tuple[str, Sequence[tuple[date, float]]]], *,
                target: float | None = None, target_label: str = "", height: int = HEIGHT) -> Markup:  # fmt: skip
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
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

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
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">']  # fmt: skip
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
    parts.append(f'<text x="{LEFT}" y="{height - 8}" class="axis">{first.isoformat()}</text>')
    if last != first:
        parts.append(f'<text x="{LEFT + plot_w}" y="{height - 8}" text-anchor="end" class="axis">'
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


def symptom_svg(points: Sequence[ScorePoint], series: str, height: int = SMALL_HEIGHT) -> Markup:
    """A symptom score series as a small multiple on its instrument's severity bands: the chart's own trend,
    drawn small (each band names itself in its title)."""
    return trend_svg(points, series, small=(WIDTH, height))

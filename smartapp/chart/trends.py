"""Server-rendered SVG trend charts with severity bands (no JavaScript, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

from fhir_mappings.screening.history import ScorePoint
from fhir_mappings.screening.instruments import CATALOGUE

#: Fills from the least to the most severe band, light enough for the line and labels to keep contrast.
SEVERITY_FILLS = ("#eef7ee", "#f7f6e4", "#fbeedd", "#f9e1d6", "#f5d5d5")


def series_bands(series: str) -> tuple[int, tuple[tuple[int, int, str, str], ...]] | None:
    """The scale top and (low, high, label, fill) bands of a score series, from its instrument's scoring file."""
    instrument = CATALOGUE.series_instrument(series)
    if instrument is None or instrument.max_total <= 0:
        return None
    count = len(instrument.bands)
    fills = [SEVERITY_FILLS[round(i * (len(SEVERITY_FILLS) - 1) / max(count - 1, 1))] for i in range(count)]
    if instrument.change is not None and instrument.change.better == "higher":
        fills.reverse()  # WHO-5: the low bands are the severe ones
    return instrument.max_total, tuple((b.low, b.high, b.label, fill) for b, fill in zip(instrument.bands, fills,
                                                                                        strict=True))  # fmt: skip


WIDTH, HEIGHT, LEFT, RIGHT, TOP_MARGIN, BOTTOM = 680, 220, 44, 170, 12, 28
#: The top margin of a titled chart: room for its name above the plot.
TITLE_TOP = 30


def tick_step(top: float) -> int:
    """A round axis step giving at most about seven labels (5 for PHQ-9's 27, 20 for WHO-5's 100)."""
    return next(step for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10**9) if top / step <= 7)


def trend_svg(points: Sequence[ScorePoint], instrument: str, *, compact: bool = False,
              titled: bool = False, small: tuple[int, int] | None = None) -> Markup:  # fmt: skip
    """A line of the scores over time on the instrument's severity bands; accessible name and a title per point.
    `compact`: half the width, for three trends side by side; each band names itself in its title, not a label.
    `titled`: the chart names itself ("PHQ-9 score") and its axes (score, date) in visible text, for a page that
    shows it without a caption (the case review). `small`: (width, height) of a small multiple (the SMI page's
    three panels side by side): bands name themselves in their titles, three axis ticks."""
    scale = series_bands(instrument)
    if scale is None or not points:
        return Markup("")
    top, bands = scale
    width, right = (WIDTH // 2, 12) if compact else (WIDTH, RIGHT)
    height = HEIGHT
    if small is not None:
        (width, height), right, compact = small, 12, True
    top_px = TITLE_TOP if titled else TOP_MARGIN
    plot_w, plot_h = width - LEFT - right, height - top_px - BOTTOM
    times = [p.when.timestamp() for p in points]
    start, end = min(times), max(times)
    span = (end - start) or 1.0

    def x(when: datetime) -> float:
        return LEFT + (plot_w / 2 if end == start else (when.timestamp() - start) / span * plot_w)

    def y(value: float) -> float:
        return top_px + plot_h - (value / top) * plot_h

    latest = points[-1]
    label = (f"{instrument} trend: {len(points)} scores from {points[0].day.isoformat()} to "
             f"{latest.day.isoformat()}; first {points[0].score}, latest {latest.score}.")  # fmt: skip
    css = "trend small-multiple" if small is not None else "trend"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" role="img" aria-label="{escape(label)}" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">']  # fmt: skip
    for low, high, name, fill in bands:
        y_top, y_bottom = y(high + (1 if high < top else 0)), y(low)
        parts.append(f'<rect x="{LEFT}" y="{y_top:.1f}" width="{plot_w}" height="{y_bottom - y_top:.1f}" '
                     f'fill="{fill}"><title>{escape(name)} ({low}–{high})</title></rect>')  # fmt: skip
        if not compact:
            parts.append(f'<text x="{LEFT + plot_w + 6}" y="{(y_top + y_bottom) / 2 + 4:.1f}" class="band">'
                         f"{escape(name)} ({low}–{high})</text>")  # fmt: skip
    ticks = (0, top // 2, top) if small is not None else range(0, top + 1, max(5, tick_step(top)))
    for tick in ticks:
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="axis">{tick}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{top_px + plot_h}" x2="{LEFT + plot_w}" y2="{top_px + plot_h}" stroke="#555"/>'
    )
    if titled:
        parts.append(f'<text x="{LEFT}" y="16" class="trend-title">{escape(instrument)} score, '
                     f"{points[0].day.isoformat()} to {latest.day.isoformat()}</text>")  # fmt: skip
        parts.append(f'<text x="12" y="{top_px + plot_h / 2:.1f}" class="axis" text-anchor="middle" '
                     f'transform="rotate(-90 12 {top_px + plot_h / 2:.1f})">Score</text>')  # fmt: skip
        parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{height - 8}" class="axis" '
                     f'text-anchor="middle">Date</text>')  # fmt: skip
    parts.append(f'<text x="{LEFT}" y="{height - 8}" class="axis">{points[0].day.isoformat()}</text>')
    if len(points) > 1:
        parts.append(f'<text x="{LEFT + plot_w}" y="{height - 8}" text-anchor="end" class="axis">'
                     f"{latest.day.isoformat()}</text>")  # fmt: skip
    coordinates = " ".join(f"{x(p.when):.1f},{y(p.score):.1f}" for p in points)
    parts.append(f'<polyline points="{coordinates}" fill="none" stroke="#12355b" stroke-width="2"/>')
    for point in points:
        shape = "rect" if point.source == "Tandem" else "circle"
        cx, cy = x(point.when), y(point.score)
        title = f"<title>{escape(point.day.isoformat())}: {point.score} ({escape(point.source)})</title>"
        if shape == "circle":
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="#12355b">{title}</circle>')
        else:
            parts.append(
                f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="#b35900">{title}</rect>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above

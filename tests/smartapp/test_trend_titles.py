"""The case review's trend names itself and its axes in visible text (issue 28: "a labelled trend per case"); the
other pages' trends, captioned by their page, keep their shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from fhir_mappings.screening.history import ScorePoint
from smartapp.chart.trends import trend_svg

POINTS = [ScorePoint("PHQ-9", datetime(2026, 9, 1, tzinfo=UTC), 16, "EHR", "44261-6"),
          ScorePoint("PHQ-9", datetime(2026, 11, 3, tzinfo=UTC), 9, "Tandem", "44261-6")]  # fmt: skip


def _texts(svg: str, css_class: str) -> list[str]:
    return re.findall(rf'<text[^>]*class="{css_class}"[^>]*>([^<]*)</text>', svg)


@pytest.mark.parametrize("compact", [False, True])
def test_a_titled_trend_names_its_instrument_dates_and_axes(compact: bool) -> None:
    svg = str(trend_svg(POINTS, "PHQ-9", compact=compact, titled=True))
    assert _texts(svg, "trend-title") == ["PHQ-9 score, 2026-09-01 to 2026-11-03"]
    axes = _texts(svg, "axis")
    assert "Score" in axes and "Date" in axes and "2026-09-01" in axes and "2026-11-03" in axes
    # The title sits above the plot: the top band starts below it.
    first_band_y = float(re.search(r'<rect x="\d+" y="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert first_band_y >= 20


def test_an_untitled_trend_is_as_before() -> None:
    svg = str(trend_svg(POINTS, "PHQ-9"))
    assert _texts(svg, "trend-title") == [] and "Score" not in _texts(svg, "axis")
    assert re.search(r'<rect x="\d+" y="12\.0"', svg)  # the top band at the old 12 px margin

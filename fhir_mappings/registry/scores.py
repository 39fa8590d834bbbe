"""A score series over an enrolment: its baseline, latest and change. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from fhir_mappings.screening.history import ScorePoint


@dataclass(frozen=True)
class Scores:
    """A score series over an enrolment: the baseline ("first"), the latest, and the change between them."""

    first: int | None
    latest: int | None
    change_pct: float | None  # negative = improvement
    first_point: ScorePoint | None = None
    latest_point: ScorePoint | None = None

    @classmethod
    def of(cls, points: list[ScorePoint], enrolled: date | None = None, before_days: int = 0,
           after_days: int = 0) -> Scores:  # fmt: skip
        """Without `enrolled`, the first point is the baseline. With it, the baseline is the point closest to the
        enrolment day within [enrolled - before_days, enrolled + after_days] (the earlier on a tie), else the
        first point after that window opens; points before the window are not this enrolment's."""
        if enrolled is not None:
            opens = enrolled - timedelta(days=before_days)
            points = [p for p in points if p.day >= opens]
        if not points:
            return cls(None, None, None)
        ordered = sorted(points, key=lambda p: p.when)
        baseline = ordered[0]
        if enrolled is not None:
            closes = enrolled + timedelta(days=after_days)
            in_window = [p for p in ordered if p.day <= closes]
            if in_window:
                baseline = min(in_window, key=lambda p: (abs((p.day - enrolled).days), p.when))
        latest = ordered[-1]
        first_score, latest_score = baseline.score, latest.score
        change = None if first_score == 0 else round((latest_score - first_score) / first_score * 100, 1)
        return cls(first_score, latest_score, change, baseline, latest)

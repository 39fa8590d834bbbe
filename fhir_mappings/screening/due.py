"""What screening is due for a patient today. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fhir_mappings.common.conditions import ConditionRow
from fhir_mappings.screening.history import ScorePoint


@dataclass(frozen=True)
class DueItem:
    instrument: str  # an instrument key: phq9, phq9-teen, gad7, epds
    reason: str


def _last(points: Iterable[ScorePoint], instrument: str, *, caregivers: bool = False) -> ScorePoint | None:
    """The latest of the patient's own scores (or, for caregiver screens, of any caregiver's) in a series."""
    matching = [p for p in points if p.instrument == instrument and (p.focus is not None) == caregivers]
    return max(matching, key=lambda p: p.when) if matching else None


def due_screenings(history: list[ScorePoint], conditions: list[ConditionRow], age_years: int | None,
                   age_days: int | None, today: date) -> list[DueItem]:  # fmt: skip
    """Measurement-based care: a PHQ-9 every 4 weeks while depression is active or the last PHQ-9 was ≥10; a
    yearly depression screen from age 12; GAD-7 every 4 weeks with active anxiety. A young child's visit
    screens (their own and their caregivers') come from the visit schedule (schedule.py), not from here."""
    due: list[DueItem] = []
    phq_key = "phq9-teen" if age_years is not None and 12 <= age_years < 18 else "phq9"
    last_phq = _last(history, "PHQ-9")
    depression = any(c.group == "depression" and c.active for c in conditions)
    if last_phq is not None and (depression or last_phq.score >= 10):
        days = (today - last_phq.day).days
        if days >= 28:
            due.append(DueItem(phq_key, f"Last PHQ-9 ({last_phq.score}) was {days} days ago; repeat every 4 weeks "
                                        "in treatment."))  # fmt: skip
    elif age_years is not None and age_years >= 12:
        if last_phq is None:
            due.append(DueItem(phq_key, "No PHQ-9 on record: yearly depression screening from age 12."))
        elif (today - last_phq.day).days >= 365:
            due.append(DueItem(phq_key, "Last PHQ-9 was over a year ago: yearly depression screening."))
    last_gad = _last(history, "GAD-7")
    if any(c.group == "anxiety" and c.active for c in conditions):
        if last_gad is None or (today - last_gad.day).days >= 28:
            due.append(DueItem("gad7", "Active anxiety: GAD-7 every 4 weeks."))
    return due

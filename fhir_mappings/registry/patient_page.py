"""What the care manager's patient page says first (issue 28, "Care manager"): which screening an open safety
follow-up refers to, beside the latest score of the same instrument, so "latest PHQ-9 0" and "item 9 positive at
the last visit" never stand side by side without their dates. Pure and total: missing data gives words, never an
exception."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from fhir_mappings.registry.resources import WorkTask
from fhir_mappings.registry.worklist import Row
from fhir_mappings.screening.history import ScorePoint


@dataclass(frozen=True)
class SafetySource:
    """An open safety follow-up and the screening it came from, as far as the registry knows it."""

    raised: date | None
    reason: str
    #: The instrument the follow-up names ("PHQ-9"); None when neither the record nor the reason says.
    instrument: str | None
    #: The screening that raised it, when its score is among the patient's scores (same submission).
    screening: ScorePoint | None
    #: The latest score of that instrument the registry holds (may be the same screening, or another one).
    latest: ScorePoint | None

    @property
    def explanation(self) -> str:
        """One or two sentences naming each screening by instrument and date."""
        name = self.instrument or "screening"
        raised = f" on {self.raised.isoformat()}" if self.raised else ""
        if self.screening is not None:
            said = (
                f"This follow-up comes from the {name} of {self.screening.day.isoformat()} "
                f"(score {self.screening.score}, {_source(self.screening)})."
            )
            later = self.latest
            if later is not None and later.when > self.screening.when:
                said += (
                    f" A later {name}, of {later.day.isoformat()}, scored {later.score} ({_source(later)}); "
                    "the follow-up stays open until someone closes it with an outcome."
                )
            return said
        if self.latest is not None:
            earlier = self.raised is not None and self.latest.day < self.raised
            kind = "an earlier screening" if earlier else "a different screening"
            return (
                f"Raised{raised}. The {name} it refers to is not among the scores Tandem holds for this patient: "
                f"the latest {name} here is {self.latest.score}, of {self.latest.day.isoformat()} "
                f"({_source(self.latest)}), {kind}. Check the chart for the one that raised it."
            )
        return f"Raised{raised}. Tandem holds no {name} score for this patient: check the chart for the screening."


def _source(point: ScorePoint) -> str:
    if point.patient_reported:
        return "patient-reported"
    return "from the EHR" if point.source == "EHR" else "recorded in Tandem"


def named_instrument(reason: str, instruments: Iterable[str]) -> str | None:
    """The first of the known instruments the reason names ("PHQ-9 item 9 positive …" → "PHQ-9"), longest first
    so "PHQ-9" is not read as "PHQ-2"'s prefix or the other way round."""
    for name in sorted(set(instruments), key=len, reverse=True):
        if name and name in reason:
            return name
    return None


def safety_source(
    raised: date | None,
    reason: str,
    submission: str | None,
    instrument: str | None,
    points: Sequence[ScorePoint],
    known_instruments: Iterable[str] = ("PHQ-9", "PHQ-9A", "PHQ-A", "EPDS", "C-SSRS", "GAD-7"),
) -> SafetySource:
    """The screening a safety follow-up refers to (by its submission, else the instrument its reason names) and
    the latest score of that instrument among the patient's own points."""
    screening = next((p for p in points if submission and p.submission == submission), None)
    name = (
        instrument
        or (screening.instrument if screening else None)
        or named_instrument(reason, [*known_instruments, *(p.instrument for p in points)])
    )
    same = [p for p in points if p.instrument == name and p.focus is None]
    latest = max(same, key=lambda p: p.when, default=None)
    return SafetySource(raised, reason, name, screening, latest)


@dataclass(frozen=True)
class DueItem:
    """One line of "Due now": what, by when (None: no date), and whether it is already late."""

    what: str
    day: date | None
    overdue: bool


#: How far ahead "Due now" looks for follow-ups and measures (days): the care manager's week.
DUE_SOON_DAYS = 7


def due_now(row: Row, tasks: Iterable[WorkTask], today: date) -> list[DueItem]:
    """What the care manager should do for this patient now or this week, most urgent first: overdue or soon
    follow-ups, the next program measure, a contact when none was logged for too long, a requested case review."""
    items: list[DueItem] = []
    for task in sorted(tasks, key=lambda t: t.due or date.max):
        if task.kind == "follow-up" and task.open and task.due and (task.due - today).days <= DUE_SOON_DAYS:
            items.append(DueItem(task.description or "Follow-up", task.due, task.due < today))
    if row.measure_due and (row.measure_due - today).days <= DUE_SOON_DAYS:
        items.append(
            DueItem(
                f"Next {row.measure_due_series or 'program measure'}",
                row.measure_due,
                row.measure_due < today,
            )
        )
    if "no-contact" in row.flags:
        since = (
            f"last contact {row.last_contact.isoformat()}" if row.last_contact else "no contact logged yet"
        )
        items.append(DueItem(f"Contact the patient ({since})", None, True))
    if "review" in row.flags:
        items.append(DueItem("Discuss with the psychiatric consultant (case review requested)", None, False))
    if "not-improving" in row.flags:
        items.append(
            DueItem(
                "Not improving as the program expects: consider a treatment change at case review",
                None,
                False,
            )
        )
    return sorted(items, key=lambda i: (not i.overdue, i.day or today))

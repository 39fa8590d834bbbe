"""Program outcomes from the registry: of the patients enrolled in a Collaborative Care program, how many
responded (a ≥ 50 % drop from baseline) and remitted (below 5) at 6 and 12 months from enrolment, how many had a
score in each month, and how long a response took. Pure and total; windows are parameters (Tandem's [K] choice:
"at 6 months" is the last score within 30 days either side of 6 months after enrolment)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.programs import program_or_default
from fhir_mappings.registry.resources import Enrolment
from fhir_mappings.registry.scores import Scores
from fhir_mappings.screening.history import ScorePoint, own

#: Remission: the score below this (PHQ-9 and GAD-7, clinical.md).
REMISSION_BELOW = {"PHQ-9": 5, "GAD-7": 5}


@dataclass(frozen=True)
class Window:
    months: int
    #: Days either side of the anniversary that count as "at N months".
    slack_days: int = 30

    def bounds(self, start: date) -> tuple[date, date]:
        middle = start + timedelta(days=round(self.months * 30.44))
        return middle - timedelta(days=self.slack_days), middle + timedelta(days=self.slack_days)


@dataclass
class Outcome:
    """One series at one time point: of the enrolments with a baseline whose window has closed."""

    series: str
    months: int
    eligible: int = 0
    measured: int = 0
    response: int = 0
    remission: int = 0
    #: Who has no score in the window (the gap list) and who responded, by patient.
    unmeasured: list[PatientKey] = field(default_factory=list)

    @staticmethod
    def pct(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None


@dataclass
class ProgramOutcomes:
    outcomes: list[Outcome]
    #: Month (first day) → (enrolled during the month, with a PHQ-9 that month).
    monthly: list[tuple[date, int, int]]
    median_days_to_response: float | None
    responders: int


def _month_starts(first: date, last: date) -> list[date]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = (day + timedelta(days=32)).replace(day=1)
    return months


def program_outcomes(enrolments: Iterable[Enrolment], scores: Mapping[PatientKey, list[ScorePoint]], today: date,
                     *, year: int, windows: Iterable[Window] = (Window(6), Window(12)),
                     series: Iterable[str] = ("PHQ-9", "GAD-7")) -> ProgramOutcomes:  # fmt: skip
    """Outcomes of the Collaborative Care enrolments (any phase) that began by `today`."""
    chosen = [e for e in enrolments if e.collaborative and e.start <= today]
    found: list[Outcome] = []
    for name in series:
        for window in windows:
            outcome = Outcome(name, window.months)
            for e in chosen:
                rules = program_or_default(e.program).outcome
                points = [p for p in own(scores.get(e.key, [])) if p.instrument == name]
                baseline = Scores.of(points, e.start, rules.baseline_days_before_enrolment,
                                     rules.baseline_days_after_enrolment)  # fmt: skip
                opens, closes = window.bounds(e.start)
                if baseline.first is None or closes > today:
                    continue
                outcome.eligible += 1
                inside = sorted((p for p in points if opens <= p.day <= closes), key=lambda p: p.when)
                if not inside:
                    outcome.unmeasured.append(e.key)
                    continue
                outcome.measured += 1
                last = inside[-1].score
                outcome.response += 1 if last * 2 <= baseline.first else 0
                outcome.remission += 1 if last < REMISSION_BELOW.get(name, 5) else 0
            found.append(outcome)
    monthly = []
    for month in _month_starts(date(year, 1, 1), min(date(year, 12, 31), today)):
        end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        enrolled = [e for e in chosen if e.start <= end and (e.end is None or e.end >= month)]
        scored = sum(1 for e in enrolled if any(p.instrument == "PHQ-9" and month <= p.day <= end
                                                for p in own(scores.get(e.key, []))))  # fmt: skip
        monthly.append((month, len(enrolled), scored))
    days: list[int] = []
    for e in chosen:
        rules = program_or_default(e.program).outcome
        points = sorted(
            (p for p in own(scores.get(e.key, [])) if p.instrument == "PHQ-9"), key=lambda p: p.when
        )
        baseline = Scores.of(
            points, e.start, rules.baseline_days_before_enrolment, rules.baseline_days_after_enrolment
        )
        if baseline.first:
            first = next((p for p in points if p.day > e.start and p.score * 2 <= baseline.first), None)
            if first is not None:
                days.append((first.day - e.start).days)
    return ProgramOutcomes(found, monthly, statistics.median(days) if days else None, len(days))


@dataclass(frozen=True)
class Figure:
    label: str
    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None


def smi_figures(rows: Iterable[Any]) -> list[Figure]:
    """The SMI program's body and life figures over its worklist rows (`Row.whole`): each over the patients for
    whom it can be said (an antipsychotic for the monitoring figures, a reading, an answer)."""
    views = [r.whole for r in rows if getattr(r, "whole", None) is not None]
    medical = [v.medical for v in views if v.medical is not None]
    on_drug = [m for m in medical if m.on_antipsychotic]

    def share(label: str, pool: list[Any], test: Any) -> Figure:
        return Figure(label, sum(1 for x in pool if test(x)), len(pool))

    def answered(domain: str) -> list[Any]:
        return [s for v in views for s in v.social if s.domain.key == domain and s.met_now is not None]

    who5 = [s for v in views for s in v.symptoms if s.series == "WHO-5" and s.verdict is not None]
    mania = [s for v in views for s in v.symptoms if s.series == "ASRM" and s.positive is not None]
    return [
        share("On an antipsychotic: glucose or HbA1c in the last 12 months", on_drug,
              lambda m: "no-glycaemia-12m" not in m.flags),
        share("On an antipsychotic: LDL in the last 12 months", on_drug, lambda m: "no-lipids-12m" not in m.flags),
        share("On an antipsychotic: metabolic monitoring up to date", on_drug,
              lambda m: "monitoring-overdue" not in m.flags),
        share("Latest blood pressure below target", [m for m in medical if m.bp_controlled is not None],
              lambda m: m.bp_controlled),
        share("Latest HbA1c below target", [m for m in medical if "hba1c" in m.latest],
              lambda m: "hba1c-out-of-target" not in m.flags),
        share("Weight gain under the limit since the antipsychotic started",
              [m for m in medical if m.weight_change_pct is not None], lambda m: "weight-gain" not in m.flags),
        share("Not a current smoker", [m for m in medical if m.smoking], lambda m: m.smoking != "current"),
        share("Stably housed now", answered("housing"), lambda s: s.met_now),
        share("Stably housed at enrolment", [s for s in answered("housing") if s.met_at_baseline is not None],
              lambda s: s.met_at_baseline),
        share("Employed or in school now", answered("employment"), lambda s: s.met_now),
        share("No jail stay reported", answered("justice"), lambda s: s.met_now),
        share("Sees people they care about 3 or more times a week", answered("connection"), lambda s: s.met_now),
        share("WHO-5 meaningfully better since enrolment", who5, lambda s: s.verdict == "improved"),
        share("Latest mania screen (ASRM) positive", mania, lambda s: s.positive),
    ]  # fmt: skip

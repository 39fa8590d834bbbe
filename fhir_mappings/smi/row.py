"""The whole-person part of an SMI worklist row: symptoms (each series' baseline, latest and meaningful change),
body (the medical summary from the EHR's copy) and life (social status now against enrolment), with the row
flags they raise. Pure and total: a series never scored, a patient whose EHR data was never read, or no social
answers give empty parts, never an exception."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_mappings.registry.programs import WholePerson
from fhir_mappings.registry.scores import Scores
from fhir_mappings.screening.history import ScorePoint
from fhir_mappings.screening.instruments import CATALOGUE
from fhir_mappings.smi import social
from fhir_mappings.smi.medical import MEDICAL, MedicalSummary, summarise
from fhir_mappings.smi.social import DomainStatus

#: The medical flags in words, with the targets of the medical outcomes file (and its gaps' own labels).
MEDICAL_FLAG_LABELS = {
    "bp-out-of-target": f"BP at or above {MEDICAL.systolic_below}/{MEDICAL.diastolic_below}",
    "hba1c-out-of-target": f"HbA1c {MEDICAL.hba1c_below:g} % or more",
    "weight-gain": f"Weight up {MEDICAL.weight_gain_pct:g} % or more since the antipsychotic started",
    "current-smoker": "Current smoker",
    "monitoring-overdue": "Metabolic monitoring overdue",
    **{gap.key: gap.label for gap in MEDICAL.gaps},
}
SOCIAL_FLAG_LABELS = {
    "social-housing": "Not stably housed",
    "social-justice": "Jail stay reported",
    "social-connection": "Sees people less than 3 times a week",
}


@dataclass(frozen=True)
class SymptomTrend:
    series: str
    scores: Scores
    #: "improved", "worsened", "no meaningful change" (the instrument's rule), or None without a rule or a baseline.
    verdict: str | None
    #: Whether the latest score is positive by the instrument's cutoff; None without a cutoff or a score.
    positive: bool | None

    @property
    def latest(self) -> int | None:
        return self.scores.latest


@dataclass(frozen=True)
class WholePersonView:
    symptoms: tuple[SymptomTrend, ...]
    #: None: the EHR's medical data for this patient has not been read yet (chart open or worker refresh).
    medical: MedicalSummary | None
    medical_read_at: datetime | None
    social: tuple[DomainStatus, ...]
    social_due: bool
    flags: tuple[str, ...]

    def symptom(self, series: str) -> SymptomTrend | None:
        return next((s for s in self.symptoms if s.series == series), None)

    def status(self, domain: str) -> DomainStatus | None:
        return next((s for s in self.social if s.domain.key == domain), None)

    @property
    def medical_flags(self) -> tuple[str, ...]:
        return tuple(self.medical.flags) if self.medical else ()

    @property
    def social_flags(self) -> tuple[str, ...]:
        return tuple(social.flags(self.social))


def _positive(series: str, score: int | None) -> bool | None:
    instrument = CATALOGUE.series_instrument(series)
    if instrument is None or score is None:
        return None
    if instrument.positive_at_most is not None:
        return score <= instrument.positive_at_most
    if instrument.positive_at is not None:
        return score >= instrument.positive_at
    return None


def symptom_trend(series: str, points: Iterable[ScorePoint], enrolled: date, before_days: int,
                  after_days: int) -> SymptomTrend:  # fmt: skip
    scores = Scores.of([p for p in points if p.instrument == series], enrolled, before_days, after_days)
    instrument = CATALOGUE.series_instrument(series)
    rule = instrument.change if instrument else None
    verdict = rule.meaningful(scores.first, scores.latest) if rule and scores.latest_point != scores.first_point \
        else None  # fmt: skip
    return SymptomTrend(series, scores, verdict, _positive(series, scores.latest))


def whole_person(
    plan: WholePerson,
    points: Sequence[ScorePoint],
    enrolled: date,
    today: date,
    *,
    window: tuple[int, int] = (30, 14),
    medical: tuple[Iterable[Any], Iterable[Any], datetime] | None = None,
    answers: Iterable[social.Answered] = (),
) -> WholePersonView:
    """`medical`: the EHR's medical Observations, MedicationRequests and when they were read (None: never read).
    `answers`: the patient's social answers from the registry."""
    symptoms = tuple(symptom_trend(s, points, enrolled, *window) for s in plan.symptoms)
    summary = summarise(medical[0], medical[1], today) if plan.medical and medical is not None else None
    answered = list(answers) if plan.social else []
    statuses = tuple(social.statuses(answered, enrolled)) if plan.social else ()
    flags = []
    mania = next((s for s in symptoms if s.series == plan.mania_series), None) if plan.mania_series else None
    if mania is None and plan.mania_series:
        mania = symptom_trend(plan.mania_series, points, enrolled, *window)
    if mania is not None and mania.positive:
        flags.append("mania")
    if summary is not None and summary.flags:
        flags.append("medical")
    if social.flags(statuses):
        flags.append("social")
    return WholePersonView(symptoms, summary, medical[2] if medical and plan.medical else None, statuses,
                           plan.social and social.due(answered, today), tuple(flags))  # fmt: skip

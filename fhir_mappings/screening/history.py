"""Screening history from EHR and registry Observations, merged without double counting."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_mappings.common.access import codes, field, obj, objs, text
from fhir_mappings.common.dates import parse_datetime
from fhir_mappings.screening.instruments import CATALOGUE, INSTRUMENT_SYSTEM, LOINC
from fhir_mappings.screening.resources import PATIENT_REPORTED_TAG, SUBMISSION_SYSTEM

#: Score series (PHQ-9, GAD-7, EPDS, WHO-5, …) → the codings of the results read into them; teen PHQ-9 counts as
#: PHQ-9. Series without a confirmed LOINC total (WHO-5, BPRS, ASRM) carry Tandem's instrument code.
SERIES_CODES = CATALOGUE.history_codings()
#: The `code` search parameter for every score series an EHR can hold (its LOINC totals).
SCORE_CODE_PARAM = CATALOGUE.score_code_param()
#: The same for the registry store, which also holds the series coded with Tandem's instrument codes.
REGISTRY_SCORE_CODE_PARAM = CATALOGUE.score_code_param(registry=True)
#: LOINC totals match by code alone (EHRs spell the system variously); Tandem's codes only within its system.
_CODE_TO_INSTRUMENT = {code: name for name, codings in SERIES_CODES.items() for system, code in codings
                       if system == LOINC}  # fmt: skip
_TANDEM_CODE_TO_INSTRUMENT = {code: name for name, codings in SERIES_CODES.items() for system, code in codings
                              if system == INSTRUMENT_SYSTEM}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScorePoint:
    instrument: str  # "PHQ-9", "GAD-7", "EPDS"
    when: datetime
    score: int
    source: str  # "EHR" or "Tandem"
    code: str
    submission: str | None = None
    #: The Observation's id where it was read (EHR points: patched by id when the EHR reports a change).
    resource_id: str | None = None
    #: A caregiver's screen recorded on the child (Observation.focus, RelatedPerson/…); None: the patient's own.
    focus: str | None = None
    #: The patient (or a parent) entered it themself (Tandem's patient-reported tag).
    patient_reported: bool = False

    @property
    def day(self) -> date:
        return self.when.date()


def _value(observation: Mapping[str, Any]) -> int | None:
    if isinstance(observation.get("valueInteger"), int) and not isinstance(
        observation.get("valueInteger"), bool
    ):
        return int(observation["valueInteger"])
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, Mapping) and isinstance(quantity.get("value"), int | float) \
            and not isinstance(quantity.get("value"), bool) and abs(quantity["value"]) < 10**6:  # fmt: skip
        return int(round(quantity["value"]))
    return None


def _submission(observation: Mapping[str, Any]) -> str | None:
    for identifier in objs(observation.get("identifier")):
        value = text(identifier.get("value"))
        if identifier.get("system") == SUBMISSION_SYSTEM and value:
            return value.split("#", 1)[0] or None
    return None


def focus_of(observation: Mapping[str, Any]) -> str | None:
    """The first focus that names someone other than the patient (a RelatedPerson)."""
    for reference in objs(observation.get("focus")):
        ref = text(reference.get("reference"))
        if ref and "RelatedPerson/" in ref:
            return ref[ref.index("RelatedPerson/") :]
    return None


def score_points(observations: Iterable[Any], source: str) -> list[ScorePoint]:
    points = []
    for observation in observations:
        if not isinstance(observation, Mapping) or observation.get("resourceType") != "Observation":
            continue
        if observation.get("status") in ("entered-in-error", "cancelled"):
            continue
        concept = observation.get("code")
        series_of = _CODE_TO_INSTRUMENT
        code = next((c for c in codes(concept) if c in _CODE_TO_INSTRUMENT), None)
        if code is None:
            series_of = _TANDEM_CODE_TO_INSTRUMENT
            code = next(
                (c for c in codes(concept, INSTRUMENT_SYSTEM) if c in _TANDEM_CODE_TO_INSTRUMENT), None
            )
        when = parse_datetime(observation.get("effectiveDateTime") or field(observation, "effectivePeriod", "start")
                              or observation.get("issued"))  # fmt: skip
        value = _value(observation)
        if code is None or when is None or value is None:
            continue
        points.append(
            ScorePoint(
                series_of[code],
                when,
                value,
                source,
                code,
                _submission(observation),
                text(observation.get("id")),
                focus_of(observation),
                is_patient_reported(observation),
            )
        )
    return points


def is_patient_reported(resource: Mapping[str, Any]) -> bool:
    tags = objs(obj(resource.get("meta")).get("tag"))
    return any(t.get("system") == PATIENT_REPORTED_TAG["system"] and t.get("code") == PATIENT_REPORTED_TAG["code"]
               for t in tags)  # fmt: skip


def merge_history(*sources: Iterable[ScorePoint]) -> list[ScorePoint]:
    """All points by date; one screening written to both the EHR and the registry counts once (same submission
    id, or else same instrument, score and minute). The registry's copy is kept."""
    merged: dict[tuple[Any, ...], ScorePoint] = {}
    for points in sources:
        for point in points:
            key: tuple[Any, ...] = (point.instrument, point.submission) if point.submission else (
                point.instrument, point.focus, point.score, point.when.replace(second=0, microsecond=0))  # fmt: skip
            if key not in merged or point.source == "Tandem":
                merged[key] = point
    # A point with a submission id and its id-less twin (same minute, score) are still one screening.
    by_minute: dict[tuple[Any, ...], ScorePoint] = {}
    for point in sorted(merged.values(), key=lambda p: (p.submission is None, p.when)):
        key = (point.instrument, point.focus, point.score, point.when.replace(second=0, microsecond=0))
        by_minute.setdefault(key, point)
    return sorted(by_minute.values(), key=lambda p: p.when)


def series(points: Iterable[ScorePoint], instrument: str, focus: str | None = None) -> list[ScorePoint]:
    """One score series: the patient's own (focus None), or one caregiver's screens recorded on the child."""
    return [p for p in points if p.instrument == instrument and p.focus == focus]


def own(points: Iterable[ScorePoint]) -> list[ScorePoint]:
    """The patient's own scores, without caregivers' screens recorded on their chart."""
    return [p for p in points if p.focus is None]

"""A measure's result as people and payers read it: population counts and the rate, by stratum, and as FHIR
MeasureReports (a summary, and a subject list naming each population's patients). Pure and total."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.measures.logic import Period

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_BASE = "https://tandem.health/fhir/Measure"


HEDIS_STYLE = "HEDIS-style (not certified)"
HEDIS_VERSION = "from public descriptions; unconfirmed windows are parameters (hedis_style.json)"


@dataclass(frozen=True)
class MeasureDef:
    key: str
    title: str
    #: "eCQM", "HEDIS-style (not certified)", or "program".
    kind: str
    version: str
    #: The row flag of the numerator (CMS159's response companion reads "response").
    numerator: str = "numerator"
    #: The row flag that puts a row in this rate's population (DSF-E's follow-up rate: a positive screen);
    #: None: every row.
    population: str | None = None
    #: The rows are patient-periods, not patients (DMS-E).
    unit: str = "patients"
    has_exceptions: bool = False
    note: str = ""
    #: The row's date that places it in a month of the trend (CMS2: the first qualifying visit).
    month_of: str | None = None


MEASURES: dict[str, MeasureDef] = {
    m.key: m
    for m in (
        MeasureDef(
            "cms2",
            "CMS2: Screening for Depression and Follow-Up Plan",
            "eCQM",
            "CMS2FHIR v0.4.001 (QI-Core), derived from CMS2v15",
            has_exceptions=True,
            month_of="visit_day",
        ),
        MeasureDef(
            "cms159",
            "CMS159: Depression Remission at Twelve Months",
            "eCQM",
            "CMS159FHIR v0.3.000 (QI-Core), derived from CMS159v14",
            month_of="index_day",
        ),
        MeasureDef(
            "cms159-response",
            "Depression Response at Twelve Months (CBE 1885 companion)",
            "eCQM",
            "CMS159FHIR v0.3.000 index and windows; response = last score at most half the index score [K]",
            numerator="response",
            note="Not a CMS eCQM; CMS159's population with a 50 % response as the numerator.",
            month_of="index_day",
        ),
        MeasureDef(
            "dsf-screening",
            "Depression screening (DSF-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="screened",
        ),
        MeasureDef(
            "dsf-follow-up",
            "Follow-up on a positive depression screen (DSF-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="followed_up",
            population="positive",
        ),
        MeasureDef(
            "drr-follow-up", "Follow-up PHQ-9 (DRR-E style)", HEDIS_STYLE, HEDIS_VERSION, numerator="followed"
        ),
        MeasureDef(
            "drr-remission",
            "Depression remission (DRR-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="remission",
        ),
        MeasureDef(
            "drr-response",
            "Depression response (DRR-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="response",
        ),
        MeasureDef(
            "dms",
            "PHQ-9 monitoring per assessment period (DMS-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="monitored",
            unit="patient-periods",
            note="Whether DMS-E is still a HEDIS measure is unconfirmed: a registry process metric.",
        ),
        MeasureDef(
            "pds-screening",
            "Postpartum depression screening (PDS-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="screened",
            unit="deliveries",
            month_of="delivery_day",
            note="Deliveries come from the site's delivery value set; none is shipped (NCQA's is licensed).",
        ),
        MeasureDef(
            "pds-follow-up",
            "Follow-up on a positive postpartum screen (PDS-E style)",
            HEDIS_STYLE,
            HEDIS_VERSION,
            numerator="followed_up",
            population="positive",
            unit="deliveries",
            month_of="delivery_day",
        ),
    )
}


#: What a patient with no value in a grouping is listed under (program and care manager: not enrolled).
MISSING_GROUP = {"clinic": "no clinic recorded"}


@dataclass
class Counts:
    initial_population: int = 0
    denominator: int = 0
    exclusions: int = 0
    exceptions: int = 0
    numerator: int = 0

    @property
    def performance_denominator(self) -> int:
        return self.denominator - self.exclusions - self.exceptions

    @property
    def rate(self) -> float | None:
        """Numerator over the denominator less exclusions and exceptions; None when that is empty."""
        whole = self.performance_denominator
        return round(self.numerator / whole, 4) if whole > 0 else None

    def add(self, row: Mapping[str, Any], numerator: str) -> None:
        self.initial_population += 1
        self.denominator += 1 if row.get("denominator") else 0
        self.exclusions += 1 if row.get("excluded") else 0
        self.exceptions += 1 if row.get("exception") else 0
        self.numerator += 1 if row.get(numerator) else 0


@dataclass
class Summary:
    measure: MeasureDef
    period: Period
    total: Counts = field(default_factory=Counts)
    strata: dict[str, Counts] = field(default_factory=dict)
    #: Population → the patient ids in it (the care gaps: denominator patients not in the numerator).
    subjects: dict[str, list[str]] = field(default_factory=dict)
    #: Value sets the result rests on that were not complete (the reader must know).
    incomplete_valuesets: tuple[str, ...] = ()
    #: The versioned canonical (`url|version`) of every value-set expansion the rate used.
    valueset_versions: tuple[str, ...] = ()
    #: "YYYY-MM" of each row's date (`MeasureDef.month_of`) → its counts: the trend.
    by_month: dict[str, Counts] = field(default_factory=dict)
    #: Registry grouping (program, care manager) → value → counts; patients not enrolled are "not enrolled".
    by_group: dict[str, dict[str, Counts]] = field(default_factory=dict)


def summarise(measure: MeasureDef, period: Period, rows: Iterable[Mapping[str, Any]],
              incomplete_valuesets: Sequence[str] = (),
              groups: Mapping[str, Mapping[str, str]] | None = None,
              valueset_versions: Sequence[str] = ()) -> Summary:  # fmt: skip
    """Counts overall, by stratum, by month and by each registry grouping (`groups`: name → patient id → value)."""
    summary = Summary(
        measure,
        period,
        incomplete_valuesets=tuple(incomplete_valuesets),
        valueset_versions=tuple(valueset_versions),
    )
    groups = groups or {}
    members: dict[str, list[str]] = {k: [] for k in ("initial-population", "denominator", "denominator-exclusion",
                                                     "denominator-exception", "numerator", "gap")}  # fmt: skip
    for row in sorted(rows, key=lambda r: str(r.get("patient_id"))):
        if measure.population and not row.get(measure.population):
            continue
        summary.total.add(row, measure.numerator)
        stratum = str(row.get("stratum") or "all")
        summary.strata.setdefault(stratum, Counts()).add(row, measure.numerator)
        pid = str(row["patient_id"])
        when = row.get(measure.month_of) if measure.month_of else None
        if when is not None and hasattr(when, "strftime"):
            summary.by_month.setdefault(when.strftime("%Y-%m"), Counts()).add(row, measure.numerator)
        for name, values in groups.items():
            value = values.get(pid, MISSING_GROUP.get(name, "not enrolled"))
            summary.by_group.setdefault(name, {}).setdefault(value, Counts()).add(row, measure.numerator)
        members["initial-population"].append(pid)
        if row.get("denominator"):
            members["denominator"].append(pid)
        if row.get("excluded"):
            members["denominator-exclusion"].append(pid)
        if row.get("exception"):
            members["denominator-exception"].append(pid)
        if row.get(measure.numerator):
            members["numerator"].append(pid)
        elif row.get("denominator") and not row.get("excluded") and not row.get("exception"):
            members["gap"].append(pid)
    summary.strata = dict(sorted(summary.strata.items()))
    summary.by_month = dict(sorted(summary.by_month.items()))
    summary.by_group = {name: dict(sorted(values.items())) for name, values in summary.by_group.items()}
    summary.subjects = {
        k: list(dict.fromkeys(v)) for k, v in members.items()
    }  # a patient once (DMS-E periods)
    return summary


def _population(code: str, count: int, subjects: str | None = None) -> dict[str, Any]:
    population: dict[str, Any] = {
        "code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]},
        "count": count,
    }
    if subjects:
        population["subjectResults"] = {"reference": subjects}
    return population


def _populations(counts: Counts, with_exceptions: bool, lists: Mapping[str, str] | None = None
                 ) -> list[dict[str, Any]]:  # fmt: skip
    lists = lists or {}
    found = [_population("initial-population", counts.initial_population, lists.get("initial-population")),
             _population("denominator", counts.denominator, lists.get("denominator")),
             _population("denominator-exclusion", counts.exclusions, lists.get("denominator-exclusion")),
             _population("numerator", counts.numerator, lists.get("numerator"))]  # fmt: skip
    if with_exceptions:
        found.insert(
            3, _population("denominator-exception", counts.exceptions, lists.get("denominator-exception"))
        )
    return found


#: Names one value-set expansion a rate used, as a versioned canonical (`url|version`).
VALUESET_VERSION = "https://tandem.health/fhir/StructureDefinition/valueset-version"


def report_id(measure: str, period: Period, kind: str, iss: str) -> str:
    """One report per measure, period, kind and EHR: running again replaces it."""
    return "mr-" + hashlib.sha256(f"{measure}|{period.year}|{kind}|{iss}".encode()).hexdigest()[:24]


def measure_report(summary: Summary, iss: str, generated: datetime, *, subject_lists: Mapping[str, str] | None = None
                   ) -> dict[str, Any]:  # fmt: skip
    """A MeasureReport: `summary` (counts and rate, by stratum) or, with `subject_lists` (population → a List
    reference), `subject-list`."""
    kind = "subject-list" if subject_lists else "summary"
    m = summary.measure
    group: dict[str, Any] = {
        "population": _populations(summary.total, m.has_exceptions, subject_lists),
        "stratifier": [{"code": [{"text": "age"}], "stratum": [
            {"value": {"text": name}, "population": _populations(counts, m.has_exceptions)}
            for name, counts in summary.strata.items()]}],
    }  # fmt: skip
    if summary.total.rate is not None:
        group["measureScore"] = {"value": summary.total.rate}
    return {
        "resourceType": "MeasureReport",
        "id": report_id(m.key, summary.period, kind, iss),
        "status": "complete",
        "type": kind,
        "measure": f"{MEASURE_BASE}/{m.key}",
        "date": generated.isoformat(),
        "period": {"start": summary.period.start.isoformat(), "end": summary.period.end.isoformat()},
        "reporter": {"identifier": {"system": "urn:ietf:rfc:3986", "value": iss}},
        "improvementNotation": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                                            "code": "increase"}]},
        "extension": [{"url": "https://tandem.health/fhir/StructureDefinition/measure-kind", "valueString": m.kind},
                      {"url": "https://tandem.health/fhir/StructureDefinition/measure-version", "valueString": m.version}]
        + [{"url": "https://tandem.health/fhir/StructureDefinition/incomplete-valueset", "valueString": v}
           for v in summary.incomplete_valuesets]
        + [{"url": VALUESET_VERSION, "valueCanonical": v} for v in summary.valueset_versions],
        "group": [group],
    }  # fmt: skip


def subject_list(summary: Summary, population: str, iss: str, generated: datetime) -> dict[str, Any]:
    """The List of one population's patients, each by (EHR issuer, id)."""
    return {
        "resourceType": "List",
        "id": report_id(summary.measure.key, summary.period, f"list-{population}", iss),
        "status": "current",
        "mode": "snapshot",
        "title": f"{summary.measure.title}, {summary.period.year}: {population}",
        "date": generated.isoformat(),
        "entry": [{"item": PatientKey(iss, pid).reference()} for pid in summary.subjects.get(population, [])],
    }

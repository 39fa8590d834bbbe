"""Measures end to end: the EHR's population by a Bulk Data `$export` of its Group (kick-off, polling with
`Retry-After`, NDJSON streamed into Parquet; resumable, since the status URL is kept until the files are read) plus
the registry's own score results; the measures run on an engine; the results kept for the page and written to the
registry store as MeasureReports (summary, and subject lists naming each population's patients)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis

from fhir_mappings.measures.hedis_style import dms, drr, dsf, pds
from fhir_mappings.measures.logic import Period, cms2, cms159, not_loaded
from fhir_mappings.measures.report import MEASURES, Summary, measure_report, subject_list, summarise
from fhir_mappings.measures.valuesets import VALUESETS, ValueSet, missing_sets
from fhir_mappings.registry.resources import PROGRAM_TITLES
from fhir_mappings.screening.history import REGISTRY_SCORE_CODE_PARAM
from launch import errors
from launch.bulk import BulkExport
from launch.fhir import FHIRClient
from launch.registrations import Registration
from smartapp.caseload.ehr_refresh import backend_client, state_key
from smartapp.measures.columnar import ParquetTables
from smartapp.measures.engines import connect, tables, to_arrow
from smartapp.outgoing import validated

if TYPE_CHECKING:
    from smartapp.services import Services

log = logging.getLogger(__name__)

EXPORT_TYPES = ("Patient", "Encounter", "Condition", "Observation", "ServiceRequest", "MedicationRequest",
                "Procedure", "MedicationDispense")  # fmt: skip
RESULT_TTL = 400 * 24 * 3600
#: The value sets each measure reads (a result names those that were not complete).
READS = {
    "cms2": ("cms2_encounter", "cms2_adolescent_screen", "cms2_adult_screen", "bipolar", "cms2_referral",
             "cms2_medication", "cms2_followup_procedure", "cms2_declined", "medical_reason",
             "cms2_referral_adolescent", "cms2_referral_adult", "cms2_medication_adolescent", "cms2_medication_adult",
             "cms2_followup_adolescent", "cms2_followup_adult"),
    "cms159": ("office_visit", "major_depression", "dysthymia", "phq9_total", "bipolar", "personality_labile",
               "psychosis", "pdd", "palliative_diagnosis", "hospice_diagnosis", "hospice_observation",
               "palliative_observation", "hospice_encounter", "hospice_care_ambulatory", "palliative_encounter",
               "palliative_intervention", "encounter_inpatient"),
}  # fmt: skip
READS["cms159-response"] = READS["cms159"]
READS["dsf-screening"] = READS["dsf-follow-up"] = ("hedis_depression_screen", "bipolar", "major_depression",
                                                   "dysthymia", "hedis_bh_encounter", "office_visit",
                                                   "mental_health_diagnosis", "cms2_medication")  # fmt: skip
READS["drr-follow-up"] = READS["drr-remission"] = READS["drr-response"] = (
    "phq9_total",
    "major_depression",
    "dysthymia",
    "bipolar",
    "personality_labile",
    "psychosis",
    "pdd",
)
READS["dms"] = ("phq9_total", "major_depression", "dysthymia", "office_visit", "bipolar", "personality_labile",
                "psychosis", "pdd")  # fmt: skip
READS["pds-screening"] = READS["pds-follow-up"] = ("delivery", "hedis_depression_screen", "hedis_bh_encounter",
                                                   "office_visit", "mental_health_diagnosis", "cms2_medication")  # fmt: skip
#: Each measure's rows come from one expression (several rates share one).
SOURCES = {"cms2": "cms2", "cms159": "cms159", "cms159-response": "cms159", "dsf-screening": "dsf",
           "dsf-follow-up": "dsf", "drr-follow-up": "drr", "drr-remission": "drr", "drr-response": "drr", "dms": "dms", "pds-screening": "pds", "pds-follow-up": "pds"}  # fmt: skip


@dataclass
class ExtractReport:
    folder: str
    rows: dict[str, int]
    registry_resources: int
    export_seconds: float
    seconds: float
    requests: int

    def summary(self) -> str:
        counts = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        return (f"{counts}; {self.registry_resources} registry results; {self.requests} EHR requests, "
                f"{self.seconds:.1f} s ({self.export_seconds:.1f} s for the EHR to build the export)")  # fmt: skip


def export_key(iss: str) -> str:
    """Where an unfinished export's status URL is kept (a later run resumes it)."""
    return state_key(iss) + ":measures-export"


def extract(services: Services, reg: Registration, folder: Path, zone: ZoneInfo, *, client: FHIRClient | None = None,
            on_progress: Callable[[str], None] = log.info, sleep: Callable[[float], None] = time.sleep
            ) -> ExtractReport:  # fmt: skip
    """Export the issuer's Group from the EHR into Parquet in `folder`, with the registry's score results of the
    same issuer's patients. Picks up an export this deployment started and did not finish reading."""
    if reg.backend is None or not reg.backend.group_id:
        raise errors.ConfigurationError(
            f"{reg.label}: measures need [issuer.backend] with a group_id (Bulk Data)"
        )
    started = time.perf_counter()
    client = client or backend_client(services, reg)
    bulk = BulkExport(client, sleep=sleep)
    status_url = services.store.get(export_key(reg.iss))
    if status_url:
        on_progress("resuming the export this deployment started")
    else:
        status_url = bulk.kick_off_group(reg.backend.group_id, types=list(EXPORT_TYPES))
        services.store.set(export_key(reg.iss), status_url, 7 * 24 * 3600)
        on_progress("export started")
    waiting = time.perf_counter()
    try:
        manifest = bulk.wait(status_url, on_progress=lambda p: on_progress(f"export: {p or 'in progress'}"))
    except errors.FHIRNotFound:
        services.store.delete(export_key(reg.iss))  # the server forgot it: start again next time
        raise
    export_seconds = time.perf_counter() - waiting
    registry_count = 0
    writer = ParquetTables(folder, zone)
    try:
        for resource_type in EXPORT_TYPES:
            on_progress(f"reading {resource_type}")
            writer.add(bulk.resources(manifest, resource_type))
        for observation in _registry_results(services, reg.iss):
            registry_count += 1
            writer.add([observation])
    finally:
        counts = writer.close()
    services.store.delete(export_key(reg.iss))
    try:
        bulk.cancel(status_url)  # the server may drop the files
    except errors.TandemError as error:
        log.info("measures export: the server did not take the completion DELETE (%s)", type(error).__name__)
    return ExtractReport(str(folder), counts, registry_count, round(export_seconds, 2),
                         round(time.perf_counter() - started, 2), client.counter.total)  # fmt: skip


def _registry_results(services: Services, iss: str) -> Iterable[dict[str, Any]]:
    """Score results Tandem recorded in the registry for this EHR's patients (a screening not yet written back
    still counts: the patient was screened)."""
    if services.registry is None:
        return
    for page in services.registry.iter_pages("Observation", {"code": REGISTRY_SCORE_CODE_PARAM, "_count": "1000"},
                                              max_pages=10_000):  # fmt: skip
        for entry in page.get("entry") or []:
            resource = entry.get("resource")
            subject = (resource or {}).get("subject") or {}
            if isinstance(resource, dict) and (subject.get("identifier") or {}).get("system") == iss:
                yield resource


@dataclass
class RunResult:
    engine: str
    period: Period
    summaries: dict[str, Summary]
    seconds: dict[str, float] = field(default_factory=dict)
    #: Name and MRN of each patient in a list (the lists behind the numbers are worked by name).
    people: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: Measures not computed, each with the value sets it reads that are missing or empty (never a rate from a
    #: partial list).
    refused: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "year": self.period.year, "seconds": self.seconds,
                "people": {pid: list(who) for pid, who in self.people.items()}, "measures": {
            key: {"total": vars(s.total), "strata": {k: vars(c) for k, c in s.strata.items()},
                  "months": {k: vars(c) for k, c in s.by_month.items()},
                  "groups": {g: {k: vars(c) for k, c in values.items()} for g, values in s.by_group.items()},
                  "subjects": s.subjects, "incomplete": list(s.incomplete_valuesets),
                  "valuesets": list(s.valueset_versions)}
            for key, s in self.summaries.items()}, "refused": self.refused}  # fmt: skip


def incomplete(key: str, valuesets: dict[str, ValueSet] = VALUESETS) -> list[str]:
    return [f"{valuesets[name].title} ({valuesets[name].status})" for name in READS.get(key, ())
            if valuesets[name].status != "complete"] + [
        f"{name} (not loaded)" for name in not_loaded(SOURCES.get(key, ""), valuesets)]  # fmt: skip


def used_versions(key: str, valuesets: Mapping[str, ValueSet] = VALUESETS) -> list[str]:
    """The versioned canonical (`url|version`) of every value-set expansion a measure reads."""
    return sorted({v for name in READS.get(key, ()) if name in valuesets for v in valuesets[name].versions})


def refusals(keys: Sequence[str], valuesets: Mapping[str, ValueSet] = VALUESETS) -> dict[str, list[str]]:
    """Each measure among `keys` that reads a value set that is missing or empty, with those sets."""
    found = {key: missing_sets(READS.get(key, ()), valuesets) for key in keys}
    return {key: sets for key, sets in found.items() if sets}


def clinics(data: Mapping[str, Any], period: Period) -> dict[str, str]:
    """Each patient's clinic: the service provider of their latest finished visit up to the period's end."""
    encounter = data["encounter"]
    visits = encounter.filter((encounter.status == "finished") & encounter.clinic.notnull()
                              & (encounter.start_day <= period.end))  # fmt: skip
    ranked = visits.mutate(_n=ibis.row_number().over(group_by=visits.patient_id,
                                                     order_by=[ibis.desc(visits.start_ts), ibis.desc(visits.encounter_id)]))  # fmt: skip
    latest = ranked.filter(ranked._n == 0).select("patient_id", "clinic")
    return {row["patient_id"]: row["clinic"] for row in to_arrow(latest).to_pylist()}


def run(folder: Path, period: Period, engine: str = "duckdb", keys: Sequence[str] | None = None,
        valuesets: dict[str, ValueSet] = VALUESETS,
        groups: Mapping[str, Mapping[str, str]] | None = None) -> RunResult:  # fmt: skip
    """Run the measures on one extraction (with a site's value-set expansions where it has them); each measure's
    time is measured (for the page's IT details)."""
    con = connect(engine)
    data = tables(con, folder)
    result = RunResult(engine, period, {})
    groups = {**(groups or {}), "clinic": clinics(data, period)}
    logic = {"cms2": cms2, "cms159": cms159, "dsf": dsf, "drr": drr, "dms": dms, "pds": pds}
    cached: dict[str, list[dict[str, Any]]] = {}
    wanted = list(keys or MEASURES)
    result.refused = refusals(wanted, valuesets)
    for key in wanted:
        base = SOURCES.get(key, "")
        if base not in logic:
            raise errors.ConfigurationError(f"unknown measure {key!r} (one of {', '.join(MEASURES)})")
        if key in result.refused:
            continue
        started = time.perf_counter()
        if base not in cached:
            cached[base] = to_arrow(logic[base](data, period, valuesets)).to_pylist()
        result.summaries[key] = summarise(
            MEASURES[key],
            period,
            cached[base],
            incomplete(key, valuesets),
            groups,
            used_versions(key, valuesets),
        )
        result.seconds[key] = round(time.perf_counter() - started, 3)
    listed = {pid for s in result.summaries.values() for pids in s.subjects.values() for pid in pids}
    patients = data["patient"].select("patient_id", "name", "mrn")
    for row in to_arrow(patients).to_pylist():
        if row["patient_id"] in listed:
            result.people[row["patient_id"]] = (row["name"], row["mrn"])
    return result


def result_key(iss: str, year: int) -> str:
    return state_key(iss) + f":measures:{year}"


def keep(services: Services, iss: str, result: RunResult) -> None:
    """The result for the quality page (the patient lists behind every number)."""
    services.store.set(result_key(iss, result.period.year), json.dumps(result.to_json()), RESULT_TTL)


def kept(services: Services, iss: str, year: int) -> dict[str, Any] | None:
    raw = services.store.get(result_key(iss, year))
    try:
        found = json.loads(raw) if raw else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def report_resources(iss: str, result: RunResult) -> Iterator[dict[str, Any]]:
    """Each measure's subject Lists and its summary and subject-list MeasureReports, validated against R4B (ids
    from measure, period and EHR, so a second run replaces the first)."""
    now = datetime.now(UTC).replace(microsecond=0)
    for summary in result.summaries.values():
        lists = {}
        for population in ("initial-population", "denominator", "denominator-exclusion", "denominator-exception",
                           "numerator"):  # fmt: skip
            listed = validated(subject_list(summary, population, iss, now))
            lists[population] = f"List/{listed['id']}"
            yield listed
        yield validated(measure_report(summary, iss, now))
        yield validated(measure_report(summary, iss, now, subject_lists=lists))


def write_reports(registry: FHIRClient, iss: str, result: RunResult) -> int:
    """The MeasureReports (with their Lists) in the registry store; running again replaces them."""
    written = 0
    for resource in report_resources(iss, result):
        registry.update(resource)
        written += 1
    return written


def registry_groups(services: Services, iss: str) -> dict[str, dict[str, str]]:
    """Program and care manager of each patient of this EHR enrolled in the registry (the latest enrolment)."""
    data = services.caseload.load().for_issuer(iss)
    program: dict[str, str] = {}
    manager: dict[str, str] = {}
    for e in sorted(data.enrolments, key=lambda e: e.start):
        program[e.patient_id] = PROGRAM_TITLES.get(e.program, e.program)
        member = e.member("care-manager")
        manager[e.patient_id] = member.name if member else "no care manager"
    return {"program": program, "care manager": manager}

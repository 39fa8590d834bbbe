"""SMI medical outcomes from the EHR, kept so the worklist never reads the EHR per patient.

Two writers fill the copy: a chart open of an enrolled patient (the launch's token: one Observation and one
MedicationRequest search for that patient) and the worker's refresh (backend services: searches naming up to
`patients_per_search` patients at once, so requests grow with N / batch, never one per patient). Only what the
summary reads is kept: the medical Observations (vitals, labs, smoking status) trimmed to the fields it uses and
antipsychotic orders. One hash per issuer, one field per patient, replaced by each read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_mappings.common.access import obj, reference_id
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.smi.medical import MEDICAL, MedicalConfig, antipsychotics
from launch import errors
from launch.fhir import FHIRClient
from launch.store import KeyValueStore
from smartapp.caseload.ready_marks import mark_dirty

log = logging.getLogger(__name__)

EHR_MEDICAL_TTL = 90 * 24 * 3600
EHR_MEDICAL_SCHEMA = 1
#: Pages followed per search (a batch of 50 patients with years of vitals stays well inside this).
MAX_PAGES = 50
_OBSERVATION_FIELDS = ("resourceType", "id", "status", "code", "effectiveDateTime", "effectivePeriod",
                       "valueQuantity", "valueCodeableConcept", "component")  # fmt: skip
_REQUEST_FIELDS = ("resourceType", "id", "status", "medicationCodeableConcept", "authoredOn")


@dataclass(frozen=True)
class MedicalRecord:
    """One patient's medical resources as last read from the EHR."""

    observations: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    read_at: datetime


def _trim(resource: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {name: resource[name] for name in fields if name in resource}


def _hash_key(iss: str) -> str:
    return f"ehr-medical:v{EHR_MEDICAL_SCHEMA}:{hashlib.sha256(iss.encode()).hexdigest()[:24]}"


class EhrMedical:
    """The copy of enrolled SMI patients' medical resources, by (issuer, patient)."""

    def __init__(self, store: KeyValueStore, config: MedicalConfig = MEDICAL) -> None:
        self.store = store
        self.config = config

    def remember(self, key: PatientKey, observations: Iterable[Any], requests: Iterable[Any], *,
                 read_at: datetime | None = None) -> MedicalRecord:  # fmt: skip
        """The patient's medical resources as just read (all of them: this replaces the earlier copy)."""
        kept_obs = [_trim(o, _OBSERVATION_FIELDS) for o in map(obj, observations)
                    if o.get("resourceType") == "Observation" and self.config.kind_of(o)]  # fmt: skip
        kept_req = [_trim(r, _REQUEST_FIELDS) for r in map(obj, requests) if antipsychotics([r], self.config)]
        record = MedicalRecord(kept_obs, kept_req, read_at or datetime.now(UTC))
        payload = {"read_at": record.read_at.isoformat(), "observations": kept_obs, "requests": kept_req}
        self.store.hash_set(_hash_key(key.iss), key.patient_id, json.dumps(payload, separators=(",", ":")),
                            EHR_MEDICAL_TTL)  # fmt: skip
        mark_dirty(self.store, key)  # the worklist rebuilds this patient's rows
        return record

    def for_issuer(self, iss: str) -> dict[PatientKey, MedicalRecord]:
        found = {}
        for patient_id, raw in self.store.hash_all(_hash_key(iss)).items():
            record = _record(raw)
            if record is not None:
                found[PatientKey(iss, patient_id)] = record
        return found

    def for_patient(self, key: PatientKey) -> MedicalRecord | None:
        return _record(self.store.hash_get(_hash_key(key.iss), key.patient_id))


def _record(raw: str | None) -> MedicalRecord | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return MedicalRecord(list(data["observations"]), list(data["requests"]),
                             datetime.fromisoformat(data["read_at"]))  # fmt: skip
    except (ValueError, TypeError, KeyError):
        log.warning("ignored a cached EHR medical entry of another shape")
        return None


def read_patient(ehr: FHIRClient, patient_id: str,
                 config: MedicalConfig = MEDICAL) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """One patient's medical Observations and MedicationRequests (the chart's read, with the launch's token)."""
    observations = ehr.search_all("Observation", {"patient": patient_id, "code": config.search_codes,
                                                  "_count": "200"}, max_pages=10)  # fmt: skip
    requests = ehr.search_all("MedicationRequest", {"patient": patient_id, "_count": "200"}, max_pages=10)
    return observations, requests


def read_batch(ehr: FHIRClient, patient_ids: Sequence[str], config: MedicalConfig = MEDICAL
               ) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:  # fmt: skip
    """Several patients' medical resources with one search per type (`patient=a,b,c`), split by patient."""
    found: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {p: ([], []) for p in patient_ids}
    patients = ",".join(patient_ids)
    searches = (("Observation", {"patient": patients, "code": config.search_codes, "_count": "1000"}, 0),
                ("MedicationRequest", {"patient": patients, "_count": "1000"}, 1))  # fmt: skip
    for resource_type, params, slot in searches:
        for resource in ehr.search_all(resource_type, params, max_pages=MAX_PAGES):
            subject = reference_id(resource.get("subject"), "Patient")
            if subject in found:
                found[subject][slot].append(resource)
    return found


@dataclass
class MedicalRefreshReport:
    patients: int = 0
    updated: int = 0
    failed: int = 0
    searches: int = 0


def refresh_medical(ehr: FHIRClient, copy: EhrMedical, iss: str, patient_ids: Sequence[str], *,
                    per_search: int) -> MedicalRefreshReport:  # fmt: skip
    """Read the medical resources of these patients in batches and replace each one's copy. A batch the EHR
    refuses is counted and skipped (its patients keep their last copy); a token the EHR no longer takes ends the
    refresh (no batch could be read)."""
    report = MedicalRefreshReport(patients=len(patient_ids))
    before = ehr.counter.total
    read_at = datetime.now(UTC)
    for start in range(0, len(patient_ids), per_search):
        batch = list(patient_ids[start : start + per_search])
        try:
            found = read_batch(ehr, batch, copy.config)
        except (errors.TokenError, errors.FHIRUnauthorized):
            raise
        except errors.TandemError as error:
            report.failed += len(batch)
            log.warning("EHR medical refresh: a batch of %d patients could not be read (%s)", len(batch),
                        type(error).__name__)  # fmt: skip
            continue
        for patient_id, (observations, requests) in found.items():
            copy.remember(PatientKey(iss, patient_id), observations, requests, read_at=read_at)
            report.updated += 1
    report.searches = ehr.counter.total - before
    return report

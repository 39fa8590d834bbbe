"""Who a patient is, as people tell them apart (name, date of birth, MRN): the registry's own copy, kept with the
resources that name a patient (an enrolment's CarePlan, a safety Task) so a list can name every patient without
reading the EHR per patient — a worklist launch may not be allowed to read Patient at all. Never a FHIR id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_mappings.common.access import obj, objs, text
from fhir_mappings.common.dates import parse_date
from fhir_mappings.common.patient import birth_date, display_name, identifier_value

#: The summary extension (birth date, MRN) on registry resources; the name is the subject reference's display.
PATIENT_SUMMARY_URL = "https://tandem.health/fhir/StructureDefinition/patient-summary"


@dataclass(frozen=True, slots=True)
class PatientLabel:
    name: str | None = None
    birth_date: date | None = None
    mrn: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.name or self.birth_date or self.mrn)


def kept_label(name: str | None, birth_date_text: str | None, mrn: str | None) -> PatientLabel | None:
    """A label kept as text (on a screening record, a kept form): None when it gives nothing to tell by."""
    label = PatientLabel(name, parse_date(birth_date_text), mrn)
    return label if label.known else None


def label_of_patient(patient: Mapping[str, Any] | None) -> PatientLabel | None:
    """The label of an EHR Patient resource; None when it gives nothing to tell the patient by."""
    label = PatientLabel(display_name(patient), birth_date(patient), identifier_value(patient))
    return label if label.known else None


def summary_extension(label: PatientLabel | None) -> dict[str, Any] | None:
    """The summary extension for a registry resource (None when there is no birth date or MRN to keep)."""
    if label is None:
        return None
    parts: list[dict[str, Any]] = []
    if label.birth_date:
        parts.append({"url": "birthDate", "valueDate": label.birth_date.isoformat()})
    if label.mrn:
        parts.append({"url": "mrn", "valueString": label.mrn})
    return {"url": PATIENT_SUMMARY_URL, "extension": parts} if parts else None


def label_from(resource: Any, subject_field: str) -> PatientLabel | None:
    """The label a registry resource keeps: its subject's display and the summary extension (total)."""
    resource = obj(resource)
    name = text(obj(resource.get(subject_field)).get("display"))
    summary = next((e for e in objs(resource.get("extension")) if e.get("url") == PATIENT_SUMMARY_URL), {})

    def part(url: str, key: str) -> Any:
        return next((e.get(key) for e in objs(obj(summary).get("extension")) if e.get("url") == url), None)

    label = PatientLabel(name, parse_date(part("birthDate", "valueDate")), text(part("mrn", "valueString")))
    return label if label.known else None

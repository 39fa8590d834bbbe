"""Caregivers of a child (dyadic care): RelatedPersons of the child, read from the EHR where it exposes them,
otherwise held in the registry store.

The child is the patient of record. A caregiver is a RelatedPerson whose `patient` is the child, with an HL7 v3
RoleCode relationship (MTH, FTH, GUARD…; healthysteps.md §5a). Registry-held caregivers name the child with the
issuer-scoped Reference every registry resource uses. A caregiver who is also a patient in the same EHR is linked
to their own chart: in FHIR that is the caregiver's Patient.link (type `seealso`) → the RelatedPerson, which only
the EHR can write; Tandem's registry RelatedPerson carries the link as an extension (CAREGIVER_PATIENT_URL), so
one caregiver of several children stays one link per child. Pure and total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappings.common.access import code, obj, objs, reference_id, text
from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.common.patient import display_name

ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CAREGIVER_SYSTEM = "https://tandem.health/fhir/caregiver"
#: On a registry RelatedPerson: the EHR's RelatedPerson it copies (a Reference), when it came from the EHR.
EHR_COPY_URL = "https://tandem.health/fhir/StructureDefinition/ehr-related-person"
#: On a registry RelatedPerson: the caregiver's own Patient in the same EHR (issuer-scoped Reference).
CAREGIVER_PATIENT_URL = "https://tandem.health/fhir/StructureDefinition/caregiver-patient"

#: HL7 v3 RoleCode personal relationships a care team records for a young child's caregivers.
RELATIONSHIPS: dict[str, str] = {
    "MTH": "Mother",
    "FTH": "Father",
    "PRN": "Parent",
    "STPMTH": "Stepmother",
    "STPFTH": "Stepfather",
    "GRMTH": "Grandmother",
    "GRFTH": "Grandfather",
    "AUNT": "Aunt",
    "UNCLE": "Uncle",
    "SIB": "Sibling",
    "FSTPAR": "Foster parent",
    "GUARD": "Guardian",
}
#: Pronoun used when the chart says whom answers are about ("about herself").
_SELF = {"MTH": "herself", "STPMTH": "herself", "GRMTH": "herself", "AUNT": "herself",
         "FTH": "himself", "STPFTH": "himself", "GRFTH": "himself", "UNCLE": "himself"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Caregiver:
    """One caregiver of one child. `reference` is what registry resources point at (RelatedPerson/<registry id>);
    `ehr_reference` the EHR's own RelatedPerson where it came from the EHR."""

    id: str
    child: PatientKey
    name: str | None
    relationship: str | None  # v3 RoleCode
    ehr_reference: str | None = None
    #: The caregiver's own patient id in the same EHR, when they are also a patient there.
    patient_id: str | None = None

    @property
    def reference(self) -> str:
        return f"RelatedPerson/{self.id}"

    @property
    def role(self) -> str:
        return RELATIONSHIPS.get(self.relationship or "", "Caregiver")

    @property
    def label(self) -> str:
        """What every page says: 'Mother (Ana Diaz)', or the role alone when no name is known."""
        return f"{self.role} ({self.name})" if self.name else self.role

    @property
    def self_word(self) -> str:
        return _SELF.get(self.relationship or "", "themself")

    @property
    def source(self) -> str:
        return "EHR" if self.ehr_reference else "Tandem"

    @property
    def patient_key(self) -> PatientKey | None:
        return PatientKey(self.child.iss, self.patient_id) if self.patient_id else None

    def refers_to(self, reference: str | None) -> bool:
        """Whether a focus/author reference (registry or EHR) names this caregiver."""
        return reference is not None and reference in (self.reference, self.ehr_reference)


def registry_id(child: PatientKey, ehr_related_person_id: str | None = None, nonce: str | None = None) -> str:
    """The registry id of a caregiver: derived from (issuer, EHR RelatedPerson id) for an EHR caregiver, so every
    copy lands on one resource; from the child and a nonce for one recorded in Tandem."""
    seed = (
        f"{child.iss}\n{ehr_related_person_id}"
        if ehr_related_person_id
        else f"{child.iss}\n{child.patient_id}\n{nonce}"
    )
    return "tandem-rp-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def _relationship(resource: Mapping[str, Any]) -> str | None:
    for concept in objs(resource.get("relationship")):
        found = code(concept, ROLE_CODE_SYSTEM)
        if found:
            return found
    return None


def _active_related_persons(resources: Iterable[Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(id, resource) of each active RelatedPerson; others, and malformed ones, are skipped."""
    for resource in resources:
        resource = obj(resource)
        rid = text(resource.get("id"))
        if (
            resource.get("resourceType") == "RelatedPerson"
            and rid is not None
            and resource.get("active") is not False
        ):
            yield rid, resource


def from_ehr(resources: Iterable[Any], child: PatientKey) -> list[Caregiver]:
    """The EHR's active RelatedPersons of the child."""
    return [Caregiver(registry_id(child, rid), child, display_name(resource), _relationship(resource),
                      f"RelatedPerson/{rid}")
            for rid, resource in _active_related_persons(resources)
            if reference_id(resource.get("patient"), "Patient") == child.patient_id]  # fmt: skip


def _extension_reference(resource: Mapping[str, Any], url: str) -> Mapping[str, Any]:
    ext = next((e for e in objs(resource.get("extension")) if e.get("url") == url), {})
    return obj(ext.get("valueReference"))


def from_registry(resources: Iterable[Any], child: PatientKey) -> list[Caregiver]:
    """The registry's active RelatedPersons of the child, named by (issuer, id); others are skipped."""
    caregivers = []
    for rid, resource in _active_related_persons(resources):
        if patient_key(resource.get("patient")) != child:
            continue
        ehr = text(_extension_reference(resource, EHR_COPY_URL).get("reference"))
        linked = patient_key(_extension_reference(resource, CAREGIVER_PATIENT_URL))
        caregivers.append(Caregiver(rid, child, display_name(resource), _relationship(resource), ehr,
                                    linked.patient_id if linked and linked.iss == child.iss else None))  # fmt: skip
    return caregivers


def merged(ehr: Iterable[Caregiver], registry: Iterable[Caregiver]) -> list[Caregiver]:
    """EHR caregivers, with what the registry adds (the patient link; a registry copy of an EHR caregiver shares
    its id), then those recorded only in Tandem. Ordered mother, father, others; then by name."""
    held = {c.id: c for c in registry}
    out: dict[str, Caregiver] = {}
    for caregiver in ehr:
        copy = held.pop(caregiver.id, None)
        out[caregiver.id] = Caregiver(caregiver.id, caregiver.child, caregiver.name, caregiver.relationship,
                                      caregiver.ehr_reference, copy.patient_id if copy else None)  # fmt: skip
    out.update(held)
    order = list(RELATIONSHIPS)
    return sorted(out.values(), key=lambda c: (order.index(c.relationship) if c.relationship in order else 99,
                                               c.name or ""))  # fmt: skip


def related_person(caregiver: Caregiver) -> dict[str, Any]:
    """The registry's RelatedPerson for a caregiver (a copy of the EHR's, or one recorded in Tandem)."""
    resource: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "id": caregiver.id,
        "identifier": [{"system": CAREGIVER_SYSTEM, "value": caregiver.id}],
        "active": True,
        "patient": caregiver.child.reference(),
    }
    if caregiver.relationship in RELATIONSHIPS:
        resource["relationship"] = [{"coding": [{"system": ROLE_CODE_SYSTEM, "code": caregiver.relationship,
                                                 "display": RELATIONSHIPS[caregiver.relationship]}]}]  # fmt: skip
    if caregiver.name:
        resource["name"] = [{"text": caregiver.name}]
    extensions = []
    if caregiver.ehr_reference:
        extensions.append({"url": EHR_COPY_URL, "valueReference": {"reference": caregiver.ehr_reference}})
    if caregiver.patient_key:
        extensions.append({"url": CAREGIVER_PATIENT_URL, "valueReference": caregiver.patient_key.reference()})
    if extensions:
        resource["extension"] = extensions
    return resource


def caregiver_record(caregiver: Caregiver) -> dict[str, Any]:
    """The caregiver as a screening record keeps it (the child is the record's own patient)."""
    return {"id": caregiver.id, "name": caregiver.name, "relationship": caregiver.relationship,
            "ehr_reference": caregiver.ehr_reference, "patient_id": caregiver.patient_id}  # fmt: skip


def caregiver_from_record(data: Mapping[str, Any], child: PatientKey) -> Caregiver | None:
    rid = text(obj(data).get("id"))
    if rid is None:
        return None
    return Caregiver(rid, child, text(data.get("name")), text(data.get("relationship")),
                     text(data.get("ehr_reference")), text(data.get("patient_id")))  # fmt: skip


def find(caregivers: Iterable[Caregiver], reference: str | None) -> Caregiver | None:
    return next((c for c in caregivers if c.refers_to(reference)), None)

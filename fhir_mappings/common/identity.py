"""A patient is (EHR issuer, patient id): ids are unique only within one EHR's FHIR server.

The registry store keeps one minimal Patient per (issuer, patient id): its id is derived from both
(`registry_patient_id`), and it holds only the EHR identity (an identifier whose system is the issuer). Every
resource Tandem writes to the registry names its patient with a Reference to that Patient (`Patient/tp-…`,
searchable, and resolvable on a store that enforces referential integrity, as HAPI FHIR JPA and Google Cloud
Healthcare do) and the identifier; readers trust the identifier, and a reference must agree with it.

Older data named the EHR's id (`Patient/<EHR id>`) beside the identifier: it is still read, and `tandem registry
migrate-patients` rewrites it. Resources written before issuers were recorded (no identifier) belong to nobody
until `tandem registry migrate-issuer` assigns them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from fhir_mappings.common.access import obj, objs, reference_id, text

#: A registry Patient's id: this prefix and 40 hex digits of SHA-256 over the issuer and the EHR's patient id.
REGISTRY_PATIENT_PREFIX = "tp-"
#: The tag on the registry's own Patients (they hold the EHR identity only, never demographics).
REGISTRY_PATIENT_TAG = {
    "system": "https://tandem.health/fhir/CodeSystem/registry",
    "code": "registry-patient",
}


def registry_patient_id(iss: str, patient_id: str) -> str:
    """The registry Patient's id for (issuer, EHR patient id): stable, unique per pair (the two are joined by a
    character no URL or FHIR id contains), a valid FHIR id (64 at most; not all digits, which HAPI refuses)."""
    digest = hashlib.sha256(f"{iss}\n{patient_id}".encode()).hexdigest()
    return f"{REGISTRY_PATIENT_PREFIX}{digest[:40]}"


@dataclass(frozen=True, order=True)
class PatientKey:
    iss: str
    patient_id: str

    @property
    def registry_id(self) -> str:
        """The id of this patient's Patient in the registry store."""
        return registry_patient_id(self.iss, self.patient_id)

    @property
    def relative(self) -> str:
        """The registry's relative reference to this patient (`Patient/tp-…`): what registry searches send."""
        return f"Patient/{self.registry_id}"

    @property
    def ehr_relative(self) -> str:
        """The EHR's relative reference to this patient (`Patient/<EHR id>`): for the EHR only."""
        return f"Patient/{self.patient_id}"

    def reference(self, display: str | None = None) -> dict[str, Any]:
        """The registry's Reference to this patient: the registry Patient plus the issuer-scoped identifier."""
        reference: dict[str, Any] = {
            "reference": self.relative,
            "identifier": {"system": self.iss, "value": self.patient_id},
        }
        if display:
            reference["display"] = display
        return reference


def patient_key(reference: Any) -> PatientKey | None:
    """The (issuer, id) a registry Reference names; None when it carries no issuer or is malformed."""
    identifier = obj(obj(reference).get("identifier"))
    system, value = text(identifier.get("system")), text(identifier.get("value"))
    if system is None or value is None:
        return None
    relative = reference_id(reference, "Patient")
    if relative is not None and relative not in (registry_patient_id(system, value), value):
        return None  # a reference and an identifier that disagree name nobody for sure
    return PatientKey(system, value)


def registry_patient(key: PatientKey) -> dict[str, Any]:
    """The registry's minimal Patient for (issuer, id): the EHR identity only (no name, birth date or MRN)."""
    return {
        "resourceType": "Patient",
        "id": key.registry_id,
        "meta": {"tag": [dict(REGISTRY_PATIENT_TAG)]},
        "identifier": [{"system": key.iss, "value": key.patient_id}],
    }


def registry_patient_key(resource: Any) -> PatientKey | None:
    """The (issuer, id) a registry Patient stands for; None when it is not one of Tandem's (its id does not
    derive from its identifier)."""
    resource = obj(resource)
    rid = text(resource.get("id"))
    for identifier in objs(resource.get("identifier")):
        system, value = text(identifier.get("system")), text(identifier.get("value"))
        if system and value and registry_patient_id(system, value) == rid:
            return PatientKey(system, value)
    return None


def is_registry_patient_reference(reference: Any) -> bool:
    """Whether a Reference names a registry Patient (`Patient/tp-…`) rather than an EHR's."""
    relative = reference_id(reference, "Patient")
    if relative is None or not relative.startswith(REGISTRY_PATIENT_PREFIX):
        return False
    digest = relative.removeprefix(REGISTRY_PATIENT_PREFIX)
    return len(digest) == 40 and all(c in "0123456789abcdef" for c in digest)


def legacy_patient_id(reference: Any) -> str | None:
    """The bare patient id of a Reference written without the issuer (before migration)."""
    if patient_key(reference) is not None:
        return None
    return reference_id(reference, "Patient")

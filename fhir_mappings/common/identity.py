"""A patient is (EHR issuer, patient id): ids are unique only within one EHR's FHIR server.

Every resource Tandem writes to the registry store names its patient with a Reference that carries both the
relative reference (`Patient/<id>`, searchable) and an identifier whose system is the issuer; readers trust only
the identifier. Resources written before that (no issuer) belong to nobody until `tandem registry
migrate-issuer` assigns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappings.common.access import obj, reference_id, text


@dataclass(frozen=True, order=True)
class PatientKey:
    iss: str
    patient_id: str

    @property
    def relative(self) -> str:
        return f"Patient/{self.patient_id}"

    def reference(self, display: str | None = None) -> dict[str, Any]:
        """The registry's Reference to this patient: relative reference plus the issuer-scoped identifier."""
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
    if relative is not None and relative != value:
        return None  # a reference and an identifier that disagree name nobody for sure
    return PatientKey(system, value)


def legacy_patient_id(reference: Any) -> str | None:
    """The bare patient id of a Reference written without the issuer (before migration)."""
    if patient_key(reference) is not None:
        return None
    return reference_id(reference, "Patient")

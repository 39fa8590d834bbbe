"""References in the registry store that hold on a server enforcing referential integrity.

HAPI FHIR JPA (by default) and Google Cloud Healthcare refuse a resource that references a resource the store does
not hold. Tandem's registry resources name things that live in the EHR: the patient, practitioners (care team,
authors, owners), encounters. So, at the one place where Tandem writes to the registry:

- the **patient** is the registry's own minimal Patient per (issuer, patient id) (`identity.registry_patient`),
  referenced as `Patient/tp-…` with the issuer-scoped identifier beside it; a bare EHR `Patient/<id>` (a contained
  CareTeam's or Goal's subject) is rewritten to it;
- **other EHR resources** (`EHR_TYPES`, and whatever a registry RelatedPerson's link to the EHR's original
  names) become logical references: `type` and an identifier whose system is the
  issuer and whose value is the EHR id, with no `reference` (FHIR R4 §2.3.0.3 "logical references"; the store
  never resolves them). `from_registry` restores `Type/<id>` on every read, so the domain reads what it wrote.

Registry-local references (CarePlan, Task, Observation, QuestionnaireResponse, ServiceRequest, Group, Goal,
Condition, RelatedPerson copies, contained `#…`, `urn:uuid:…`) are left alone: they resolve in the store.
All functions are pure and total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_mappings.common.access import obj, text
from fhir_mappings.common.caregivers import EHR_COPY_URL
from fhir_mappings.common.identity import REGISTRY_PATIENT_PREFIX, PatientKey, patient_key

#: Resource types that live in the EHR only: a registry resource references them logically.
EHR_TYPES = frozenset({"Practitioner", "PractitionerRole", "Encounter", "Organization", "Location", "Person"})
#: Extensions whose valueReference always names the EHR's resource (a registry RelatedPerson's EHR original).
EHR_REFERENCE_EXTENSIONS = frozenset({EHR_COPY_URL})
#: The elements where a registry resource names its patient.
PATIENT_ELEMENTS = ("subject", "for", "patient", "beneficiary")


def resource_issuer(resource: Any) -> str | None:
    """The EHR issuer a registry resource belongs to: the identifier system of its patient reference."""
    resource = obj(resource)
    for element in PATIENT_ELEMENTS:
        key = patient_key(resource.get(element))
        if key is not None:
            return key.iss
    return None


def resource_patients(resource: Any) -> list[PatientKey]:
    """Every registry patient a resource references (patient elements, extensions, contained resources)."""
    found: dict[PatientKey, None] = {}

    def visit(value: Any) -> None:
        if isinstance(value, Mapping):
            reference = text(value.get("reference"))
            if reference is not None and reference.startswith(f"Patient/{REGISTRY_PATIENT_PREFIX}"):
                key = patient_key(value)
                if key is not None:
                    found[key] = None
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(obj(resource))
    return list(found)


def _outgoing(reference: Mapping[str, Any], iss: str, *, ehr: bool = False) -> dict[str, Any] | None:
    """The registry form of one Reference, or None to keep it as it is (`ehr`: it names the EHR's resource
    whatever its type)."""
    ref = text(reference.get("reference"))
    if ref is None or ref.startswith(("#", "urn:")) or "://" in ref:
        return None
    parts = ref.split("/")
    if len(parts) != 2 or not parts[1]:
        return None
    kind, rid = parts
    if kind == "Patient":
        if rid.startswith(REGISTRY_PATIENT_PREFIX):
            return None
        key = patient_key(reference) or PatientKey(iss, rid)
        out = key.reference(text(reference.get("display")))
        return {**{k: v for k, v in reference.items() if k not in ("reference", "identifier")}, **out}
    if kind in EHR_TYPES or ehr:
        out = {k: v for k, v in reference.items() if k not in ("reference", "identifier", "type")}
        return {"type": kind, "identifier": {"system": iss, "value": rid}, **out}
    return None


def to_registry(resource: Mapping[str, Any], iss: str | None = None) -> dict[str, Any]:
    """A copy of `resource` whose references hold in a store with referential integrity (see the module doc).
    `iss` defaults to the resource's own patient's issuer; without one, EHR references are kept as they are."""
    issuer = iss or resource_issuer(resource)

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            if issuer is not None and "reference" in value:
                replaced = _outgoing(value, issuer)
                if replaced is not None:
                    return {k: walk(v) for k, v in replaced.items()}
            if issuer is not None and value.get("url") in EHR_REFERENCE_EXTENSIONS:
                ehr = _outgoing(obj(value.get("valueReference")), issuer, ehr=True)
                if ehr is not None:
                    return {**{k: walk(v) for k, v in value.items()}, "valueReference": ehr}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return dict(walk(resource))


def _incoming(reference: Mapping[str, Any]) -> dict[str, Any] | None:
    """`Type/<id>` again for a logical reference Tandem wrote (type, issuer-scoped identifier, no reference)."""
    kind = text(reference.get("type"))
    identifier = obj(reference.get("identifier"))
    rid = text(identifier.get("value"))
    if kind is None or rid is None or "reference" in reference or text(identifier.get("system")) is None:
        return None
    out = {k: v for k, v in reference.items() if k not in ("type", "identifier")}
    return {"reference": f"{kind}/{rid}", **out}


def from_registry(resource: Any) -> Any:
    """A registry resource (or Bundle) as the domain reads it: logical EHR references back to `Type/<id>`."""

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            restored = _incoming(value)
            if restored is not None:
                return restored
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(resource)


def bundle_patients(bundle: Mapping[str, Any]) -> list[PatientKey]:
    """The registry patients a transaction's entries reference, in first-seen order."""
    seen: dict[PatientKey, None] = {}
    for entry in bundle.get("entry") or []:
        for key in resource_patients(obj(entry).get("resource")):
            seen[key] = None
    return list(seen)

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

from collections.abc import Iterator, Mapping
from typing import Any

from fhir_mappings.common.access import obj, text
from fhir_mappings.common.caregivers import EHR_COPY_URL
from fhir_mappings.common.identity import PatientKey, is_registry_patient_reference, patient_key

#: Resource types that live in the EHR only: a registry resource references them logically.
EHR_TYPES = frozenset({"Practitioner", "PractitionerRole", "Encounter", "Organization", "Location", "Person"})
#: Extensions whose valueReference always names the EHR's resource (a registry RelatedPerson's EHR original).
EHR_REFERENCE_EXTENSIONS = frozenset({EHR_COPY_URL})
#: The elements where a registry resource names its patient.
PATIENT_ELEMENTS = ("subject", "for", "patient", "beneficiary")


def _patient_keys(value: Any, *, registry_only: bool = False) -> Iterator[PatientKey]:
    """Every (issuer, id) a Reference anywhere in `value` names with its issuer-scoped identifier (with
    `registry_only`, only those that reference the registry Patient itself)."""
    if isinstance(value, Mapping):
        if "reference" in value and "identifier" in value:
            key = patient_key(value)
            if key is not None and (not registry_only or is_registry_patient_reference(value)):
                yield key
        for item in value.values():
            yield from _patient_keys(item, registry_only=registry_only)
    elif isinstance(value, list):
        for item in value:
            yield from _patient_keys(item, registry_only=registry_only)


def resource_issuer(resource: Any) -> str | None:
    """The EHR issuer a registry resource belongs to: the identifier system of its patient reference, or of any
    patient it names elsewhere (a caregiver's referral Task names the child as an input; a measure's List names
    its patients in its entries)."""
    resource = obj(resource)
    for element in PATIENT_ELEMENTS:
        key = patient_key(resource.get(element))
        if key is not None:
            return key.iss
    return next((key.iss for key in _patient_keys(resource)), None)


def resource_patients(resource: Any) -> list[PatientKey]:
    """Every registry patient a resource references (patient elements, extensions, contained resources)."""
    return list(dict.fromkeys(_patient_keys(obj(resource), registry_only=True)))


def _relative(ref: str, iss: str) -> str | None:
    """`Type/id` for a relative reference, or for an absolute one on the issuer's own server (a SMART `fhirUser`
    is often absolute: HAPI refuses every absolute reference); None for anything else."""
    if ref.startswith(("#", "urn:")):
        return None
    if "://" in ref:
        base = iss.rstrip("/") + "/"
        if not ref.startswith(base):
            return None
        ref = ref[len(base) :]
    parts = ref.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return ref


def _outgoing(reference: Mapping[str, Any], iss: str, *, ehr: bool = False) -> dict[str, Any] | None:
    """The registry form of one Reference, or None to keep it as it is (`ehr`: it names the EHR's resource
    whatever its type)."""
    ref = text(reference.get("reference"))
    relative = None if ref is None else _relative(ref, iss)
    if relative is None:
        return None
    kind, rid = relative.split("/")
    if kind == "Patient" and not ehr:
        if "identifier" not in reference and is_registry_patient_reference({"reference": relative}):
            return None  # already the registry Patient
        key = patient_key(reference) or PatientKey(iss, rid)
        if rid == key.registry_id:
            return None  # already the registry Patient
        out = key.reference(text(reference.get("display")))
        return {**{k: v for k, v in reference.items() if k not in ("reference", "identifier")}, **out}
    if kind in EHR_TYPES or ehr:
        out = {k: v for k, v in reference.items() if k not in ("reference", "identifier", "type")}
        return {"type": kind, "identifier": {"system": iss, "value": rid}, **out}
    return None


def to_registry(resource: Mapping[str, Any], iss: str | None = None) -> dict[str, Any]:
    """A copy of `resource` whose references hold in a store with referential integrity (see the module doc).
    `iss` defaults to the issuer of the patients the resource names; without one, references are kept as
    they are (`needs_issuer` tells whether that leaves an EHR reference)."""
    issuer = resource_issuer(resource) or iss

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


def needs_issuer(resource: Mapping[str, Any]) -> bool:
    """Whether a resource without a known issuer references the EHR (its patient or another EHR resource): it
    cannot be written to a store with referential integrity until `tandem registry migrate-issuer` names its EHR."""
    if resource_issuer(resource) is not None:
        return False
    placeholder = "urn:tandem:unknown-issuer"
    return to_registry(resource, placeholder) != dict(resource)


def _incoming(reference: Mapping[str, Any], iss: str | None) -> dict[str, Any] | None:
    """`Type/<id>` again for a logical reference Tandem wrote: an EHR type (or a caregiver's EHR original), an
    identifier of the resource's own issuer, no reference. Any other identifier-only reference (an NPI, say) is
    left as it is."""
    kind = text(reference.get("type"))
    identifier = obj(reference.get("identifier"))
    rid = text(identifier.get("value"))
    if (
        iss is None
        or kind not in EHR_TYPES | {"RelatedPerson"}
        or rid is None
        or "reference" in reference
        or text(identifier.get("system")) != iss
    ):
        return None
    out = {k: v for k, v in reference.items() if k not in ("type", "identifier")}
    return {"reference": f"{kind}/{rid}", **out}


def from_registry(resource: Any) -> Any:
    """A registry resource (or a Bundle of them) as the domain reads it: logical EHR references back to
    `Type/<id>`."""
    resource_map = obj(resource)
    if resource_map.get("resourceType") == "Bundle":
        return {**resource_map, "entry": [
            {**obj(e), "resource": from_registry(obj(e).get("resource"))} if isinstance(obj(e).get("resource"), Mapping)
            else e for e in (resource_map.get("entry") or [])]}  # fmt: skip
    iss = resource_issuer(resource_map)

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            restored = _incoming(value, iss)
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

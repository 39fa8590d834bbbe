"""How the sandbox's FHIR endpoint behaves like an EHR: token, scope and vendor rules. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from launch.scopes import allows

MODES = ("generic", "epic", "oracle")

#: Types whose create each EHR refuses (../shared/reference/ehr-integration.md §1).
REFUSED_CREATES: dict[str, frozenset[str]] = {
    "generic": frozenset(),
    "epic": frozenset({"CarePlan", "Task", "Questionnaire", "QuestionnaireResponse"}),
    "oracle": frozenset({"CarePlan", "Task", "Questionnaire", "QuestionnaireResponse"}),
}
#: Observation categories each EHR accepts in a create (None: any).
OBSERVATION_CREATE_CATEGORIES: dict[str, frozenset[str] | None] = {
    "generic": None,
    "epic": frozenset({"vital-signs"}),
    "oracle": frozenset({"vital-signs", "laboratory"}),
}
VENDOR_NAMES = {
    "generic": "Sandbox EHR",
    "epic": "Sandbox EHR (Epic-like)",
    "oracle": "Sandbox EHR (Oracle-like)",
}


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    challenge: str | None = None


def interaction_for(method: str, path_parts: list[str]) -> tuple[str | None, str]:
    """(resource type, SMART interaction letter) of a FHIR REST request; type None for whole-system calls."""
    method = method.upper()
    if not path_parts or path_parts[0].startswith("$"):
        return None, "c" if method == "POST" else "s"
    resource_type = path_parts[0]
    if method == "GET":
        return resource_type, "r" if len(path_parts) >= 2 and not path_parts[1].startswith("_") else "s"
    if method == "POST":
        return resource_type, "s" if path_parts[-1] == "_search" else "c"
    if method in ("PUT", "PATCH"):
        return resource_type, "u"
    if method == "DELETE":
        return resource_type, "d"
    return resource_type, "r"


def _categories(resource: Mapping[str, Any]) -> set[str]:
    return {
        str(coding.get("code"))
        for category in resource.get("category") or []
        if isinstance(category, Mapping)
        for coding in category.get("coding") or []
        if isinstance(coding, Mapping)
    }


#: Types whose searches each EHR answers only with a `patient` (or `subject`) parameter. Epic's Observation and
#: Condition searches need one (so a population job reads per patient or by Bulk export); not assumed for Oracle.
PATIENT_REQUIRED_SEARCHES: dict[str, frozenset[str]] = {
    "generic": frozenset(),
    "epic": frozenset({"Observation", "Condition"}),
    "oracle": frozenset(),
}


def vendor_refusal(mode: str, method: str, path_parts: list[str], body: Any,
                   query: Mapping[str, list[str]] | None = None) -> Refusal | None:  # fmt: skip
    """What the EHR of this vendor refuses regardless of scopes."""
    resource_type, interaction = interaction_for(method, path_parts)
    if resource_type is None and method.upper() == "POST" and mode != "generic":
        return Refusal(405, "not-supported", "This EHR does not accept batch or transaction Bundles")
    if interaction == "s" and resource_type in PATIENT_REQUIRED_SEARCHES[mode] \
            and not any((query or {}).get(p) for p in ("patient", "subject", "_id")):  # fmt: skip
        return Refusal(400, "required", f"This EHR searches {resource_type} only with a patient parameter")
    if interaction != "c" or resource_type is None:
        return None
    if resource_type in REFUSED_CREATES[mode]:
        return Refusal(405, "not-supported", f"This EHR does not accept creates of {resource_type}")
    allowed = OBSERVATION_CREATE_CATEGORIES[mode]
    if resource_type == "Observation" and allowed is not None:
        categories = _categories(body) if isinstance(body, Mapping) else set()
        if not categories & allowed:
            return Refusal(
                422,
                "business-rule",
                f"This EHR accepts Observation creates only for {', '.join(sorted(allowed))}",
            )
    return None


def scope_refusal(
    scopes: set[str], patient: str | None, method: str, path_parts: list[str], query: Mapping[str, list[str]]
) -> Refusal | None:
    """403 when the granted scopes do not allow the interaction, or a patient-scoped token leaves its patient."""
    resource_type, interaction = interaction_for(method, path_parts)
    insufficient = Refusal(
        403, "forbidden", "The granted scopes do not allow this", 'Bearer error="insufficient_scope"'
    )
    if resource_type is None:
        return None  # transactions are checked entry by entry by the caller
    if allows(scopes, "system", resource_type, interaction):
        return None  # a backend services token (the authorization server grants system/ scopes only to those)
    if allows(scopes, "user", resource_type, interaction):
        return None
    if not allows(scopes, "patient", resource_type, interaction):
        return insufficient
    if patient is None:
        return insufficient
    # patient/ scopes: only this patient's compartment.
    if resource_type == "Patient":
        if interaction == "r" and path_parts[1:2] == [patient]:
            return None
        ids = [v for value in query.get("_id", []) for v in value.split(",")]
        if interaction == "s" and ids and all(i == patient for i in ids):
            return None
        return Refusal(403, "forbidden", "A patient-scoped token may only read its own patient")
    if interaction in ("c", "u"):
        return None  # the body's subject is checked by the caller
    targets = query.get("patient", []) + query.get("subject", [])
    if interaction == "s" and targets and all(t in (patient, f"Patient/{patient}") for t in targets):
        return None
    if interaction == "r":
        return None  # resolved against the compartment after the read
    return Refusal(403, "forbidden", "A patient-scoped search must name the patient in context")


def belongs_to(resource: Mapping[str, Any], patient: str) -> bool:
    """Whether a resource is in the patient's compartment (subject, patient, or the Patient itself)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient
    for field in ("subject", "patient"):
        reference = resource.get(field)
        if isinstance(reference, Mapping) and str(reference.get("reference", "")).endswith(
            f"Patient/{patient}"
        ):
            return True
    return False


def vendor_capability(capability: dict[str, Any], mode: str, base_url: str) -> dict[str, Any]:
    """The local server's CapabilityStatement, edited to say what this vendor's EHR accepts."""
    edited = dict(capability)
    edited["software"] = {"name": VENDOR_NAMES[mode], "version": "0.1"}
    edited["implementation"] = {"description": VENDOR_NAMES[mode], "url": base_url}
    rests = []
    for rest in capability.get("rest") or []:
        rest = dict(rest)
        resources = []
        declared = {r.get("type") for r in rest.get("resource") or []}
        # The local server accepts these but leaves them out of its CapabilityStatement (a known sekmet-fhir gap).
        extra = [{"type": t, "interaction": [{"code": c} for c in ("read", "create", "update", "search-type")]}
                 for t in ("Questionnaire", "QuestionnaireResponse") if t not in declared]  # fmt: skip
        for resource in [*(rest.get("resource") or []), *extra]:
            resource = dict(resource)
            if resource.get("type") in REFUSED_CREATES[mode]:
                resource["interaction"] = [
                    i for i in resource.get("interaction") or [] if i.get("code") != "create"
                ]
            resources.append(resource)
        rest["resource"] = resources
        if mode != "generic":
            rest["interaction"] = [
                i for i in rest.get("interaction") or [] if i.get("code") not in ("transaction", "batch")
            ]
        rest["security"] = {
            "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                     "code": "SMART-on-FHIR"}]}],
        }  # fmt: skip
        rests.append(rest)
    edited["rest"] = rests
    return edited

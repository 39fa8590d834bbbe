"""SMART scopes: vendor-profile defaults and the v1/v2 spellings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import StrEnum


class Vendor(StrEnum):
    EPIC = "epic"
    ORACLE = "oracle"
    GENERIC = "generic"


class LaunchMode(StrEnum):
    EHR = "ehr"
    STANDALONE = "standalone"


# Written once in the v2 spelling; translated to v1 for servers that only speak v1.
_CLINICAL_SCOPES = (
    "patient/Patient.r",
    "patient/Observation.rs",
    "patient/Condition.rs",
    # Antipsychotic orders (metabolic monitoring for serious mental illness).
    "patient/MedicationRequest.rs",
    # A child's caregivers (dyadic care), where the EHR exposes them; otherwise Tandem's registry holds them.
    "patient/RelatedPerson.rs",
    "patient/Observation.c",
    "patient/QuestionnaireResponse.c",
    "patient/DocumentReference.c",
    # The care team picker (PCP, care manager, psychiatric consultant) for enrolment.
    "user/Practitioner.rs",
)

PROFILE_SCOPES: dict[Vendor, tuple[str, ...]] = {
    Vendor.GENERIC: ("openid", "fhirUser", "online_access", *_CLINICAL_SCOPES),
    # Epic grants what the app's registration lists and issues refresh tokens by configuration.
    Vendor.EPIC: ("openid", "fhirUser", *_CLINICAL_SCOPES),
    # Oracle refuses wildcards: every resource is named.
    Vendor.ORACLE: ("openid", "fhirUser", "online_access", *_CLINICAL_SCOPES),
}

_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>[A-Za-z*]+)\.(?P<perm>[cruds]+|read|write|\*)(?P<query>\?.*)?$"
)


def launch_scopes(base: Sequence[str], mode: LaunchMode) -> list[str]:
    """Add the launch scope the mode needs: `launch` for an EHR launch, `launch/patient` for standalone."""
    without_launch = [s for s in base if s not in ("launch", "launch/patient")]
    return ["launch" if mode is LaunchMode.EHR else "launch/patient", *without_launch]


def to_v1(scope: str) -> list[str]:
    """The v1 spelling of one scope: `.rs` → `.read`, any of c/u/d → `.write`. Non-resource scopes pass."""
    match = _RESOURCE_SCOPE.match(scope)
    if match is None:
        return [scope]
    perm = match["perm"]
    if perm in ("read", "write", "*"):
        return [f"{match['context']}/{match['type']}.{perm}"]
    prefix = f"{match['context']}/{match['type']}"
    spelled = []
    if set(perm) & {"r", "s"}:
        spelled.append(f"{prefix}.read")
    if set(perm) & {"c", "u", "d"}:
        spelled.append(f"{prefix}.write")
    return spelled


def spell_scopes(scopes: Iterable[str], capabilities: Iterable[str]) -> list[str]:
    """Spell scopes for a server: v2 when it advertises `permission-v2`, else v1 (what every SMART server reads)."""
    scopes = list(scopes)
    if "permission-v2" in set(capabilities):
        spelled = scopes
    else:
        spelled = [v1 for scope in scopes for v1 in to_v1(scope)]
    return list(dict.fromkeys(spelled))


def granted(scope_string: str | None) -> set[str]:
    return set((scope_string or "").split())


def allows(granted_scopes: Iterable[str], context: str, resource_type: str, interaction: str) -> bool:
    """Whether granted scopes (either spelling) allow an interaction: one of c, r, u, d, s."""
    for scope in granted_scopes:
        match = _RESOURCE_SCOPE.match(scope)
        if match is None or match["context"] != context or match["type"] not in (resource_type, "*"):
            continue
        perm = match["perm"]
        if perm == "*":
            return True
        if perm == "read" and interaction in "rs":
            return True
        if perm == "write" and interaction in "cud":
            return True
        if perm not in ("read", "write") and interaction in perm:
            return True
    return False


def allows_create(granted_scopes: Iterable[str], resource_type: str) -> bool:
    """Whether a patient- or user-level scope lets the app create this resource type."""
    scopes = list(granted_scopes)
    return allows(scopes, "patient", resource_type, "c") or allows(scopes, "user", resource_type, "c")

"""SMART scopes: vendor-profile defaults and the v1/v2 spellings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


class LaunchKind(StrEnum):
    """How Tandem is opened. Chart and worklist launches are both EHR launches (one authorize request: the EHR,
    not Tandem, decides whether a patient is in context); the portal is the patient's own launch."""

    CHART = "chart"
    WORKLIST = "worklist"
    PORTAL = "portal"


@dataclass(frozen=True)
class ProfileScope:
    """A scope a vendor profile asks for beyond the clinical reads, with why and whether
    ../shared/reference/ehr-integration.md confirms the vendor grants it (unconfirmed ones are data: a
    registration's `write_scopes` replaces the list)."""

    scope: str
    why: str
    confirmed: bool


_WORKLIST_NOTE = (
    "the worklist's follow-up results and consult notes (a user-level create: no patient in context)"
)
_FIND_OWN = "finding Tandem's own write after a lost answer (identifier search), so it is never written twice"
_REVIEW_MEDS = "the psychiatric case review's current psychotropic medications (a user-level read: no patient in context)"

#: User-level creates for the worklist's write-backs and the reads that confirm a write whose answer was lost.
#: ehr-integration.md §1: Epic and Oracle accept DocumentReference creates (clinical notes); neither accepts
#: survey Observations or QuestionnaireResponses from apps, so those are not asked of them. Whether they grant the
#: user-level spelling (`user/DocumentReference.c`) and DocumentReference searches to this app is not stated
#: there: unconfirmed. Epic files notes only against an encounter, which a worklist launch has none of, so a
#: user-level note create would never be used there and is not asked for.
WRITE_SCOPES: dict[Vendor, tuple[ProfileScope, ...]] = {
    Vendor.GENERIC: (
        ProfileScope("user/QuestionnaireResponse.c", _WORKLIST_NOTE, True),
        ProfileScope("user/Observation.c", _WORKLIST_NOTE, True),
        ProfileScope("user/DocumentReference.c", _WORKLIST_NOTE, True),
        ProfileScope("patient/QuestionnaireResponse.rs", _FIND_OWN, True),
        ProfileScope("patient/DocumentReference.rs", _FIND_OWN, True),
        ProfileScope("user/QuestionnaireResponse.rs", _FIND_OWN, True),
        ProfileScope("user/DocumentReference.rs", _FIND_OWN, True),
        # Not asked of Epic or Oracle: ehr-integration.md does not say they grant user-level medication reads.
        ProfileScope("user/MedicationRequest.rs", _REVIEW_MEDS, True),
        ProfileScope("user/MedicationStatement.rs", _REVIEW_MEDS, True),
    ),
    Vendor.EPIC: (ProfileScope("patient/DocumentReference.rs", _FIND_OWN, False),),
    Vendor.ORACLE: (
        ProfileScope("user/DocumentReference.c", _WORKLIST_NOTE, False),
        ProfileScope("patient/DocumentReference.rs", _FIND_OWN, False),
        ProfileScope("user/DocumentReference.rs", _FIND_OWN, False),
    ),
}

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

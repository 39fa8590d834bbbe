"""Who may see what: decided once per request from the launch's `fhirUser` and the scopes the EHR granted.

- Only the care team uses Tandem: a user whose `fhirUser` is a Patient, RelatedPerson or Person (a portal launch)
  gets "Tandem is for the care team" on every `/app/…` route. Without `fhirUser`, only a token with `user/`
  scopes (which EHRs grant to their staff) counts as the care team.
- Registry access mirrors what the EHR granted: a launch with a patient in context whose token grants only
  patient-level access to patient data reads and writes that patient's registry data only. The caseload (worklist,
  case review, billing, other patients) needs user-level access: a launch without a patient in context (the
  EHR's worklist activity) or a token that grants `user/` read access to Patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappings.common.identity import PatientKey
from launch.scopes import allows, granted
from launch.sessions import LaunchSession
from smartapp import errors as app_errors

CARE_TEAM_TYPES = frozenset({"Practitioner", "PractitionerRole"})
#: Portal users: the patient themself, or a relative with the EHR's proxy access (a parent for a child).
PORTAL_TYPES = frozenset({"Patient", "RelatedPerson"})


@dataclass(frozen=True)
class Access:
    iss: str
    #: The patient in context (None for a worklist launch).
    patient: str | None
    #: User-level access: the issuer's whole caseload.
    caseload: bool

    def allows_patient(self, key: PatientKey | None) -> bool:
        """Whether this launch may see the patient: of its own EHR, and its own patient unless user-level."""
        return key is not None and key.iss == self.iss and (self.caseload or key.patient_id == self.patient)

    def check_patient(self, key: PatientKey) -> None:
        if not self.allows_patient(key):
            raise app_errors.NotPermitted("this launch gives access to its own patient only")

    def check_caseload(self) -> None:
        if not self.caseload:
            raise app_errors.NotPermitted("the caseload needs user-level access (the EHR's worklist launch)")

    @property
    def patient_key(self) -> PatientKey | None:
        return PatientKey(self.iss, self.patient) if self.patient else None


def access_for(session: LaunchSession) -> Access:
    """The launch's access, or NotCareTeam for a patient or related person."""
    scopes = granted(session.scope)
    user_type = session.context.fhir_user_type
    has_user_scopes = any(scope.startswith("user/") for scope in scopes)
    if user_type not in CARE_TEAM_TYPES and (user_type is not None or not has_user_scopes):
        raise app_errors.NotCareTeam("the signed-in user is not a member of the care team")
    patient = session.context.patient
    caseload = patient is None or allows(scopes, "user", "Patient", "r")
    return Access(iss=session.iss, patient=patient, caseload=caseload)


@dataclass(frozen=True)
class PortalAccess:
    """A patient (or a parent with proxy access) in the patient portal: their own questionnaires, nothing else."""

    iss: str
    #: The patient the answers are about (the child, when a parent answers).
    patient: str
    #: Who answers: `Patient/<id>` or `RelatedPerson/<id>` (relative, from `fhirUser`).
    answerer: str

    @property
    def patient_key(self) -> PatientKey:
        return PatientKey(self.iss, self.patient)

    @property
    def proxy(self) -> bool:
        return self.answerer.startswith("RelatedPerson/")


def portal_access_for(session: LaunchSession) -> PortalAccess:
    """The portal user's access, or NotPermitted: a Patient answers only for themself; a RelatedPerson only for
    the patient the EHR put in context for them (the EHR's proxy access decides who that may be)."""
    user_type = session.context.fhir_user_type
    if user_type not in PORTAL_TYPES or not session.context.fhir_user:
        raise app_errors.NotPermitted(
            "these pages are for patients and their families, from the patient portal"
        )
    user_id = session.context.fhir_user.rstrip("/").split("/")[-1]
    patient = session.context.patient
    if user_type == "Patient":
        if patient is not None and patient != user_id:
            raise app_errors.NotPermitted("a patient may answer only their own questionnaires")
        patient = user_id
    elif patient is None:
        raise app_errors.NotPermitted("the EHR gave no patient for this family member to answer for")
    return PortalAccess(iss=session.iss, patient=patient, answerer=f"{user_type}/{user_id}")


def _patient_id(reference: object, iss: str) -> str | None:
    """The id in a RelatedPerson's `patient.reference`: `Patient/<id>`, or absolute on the launch's own FHIR base
    (`<iss>/Patient/<id>`, a version suffix allowed); None for anything else (another server, a contained or
    logical reference)."""
    if not isinstance(reference, str) or not reference:
        return None
    base = iss.rstrip("/") + "/"
    if "://" in reference:
        if not reference.startswith(base):
            return None  # another EHR's patient is never this launch's
        reference = reference[len(base) :]
    parts = reference.split("/")
    if len(parts) not in (2, 4) or parts[0] != "Patient" or not parts[1]:
        return None
    if len(parts) == 4 and parts[2] != "_history":
        return None
    return parts[1]


def check_family_link(portal: PortalAccess, related_person: Mapping[str, Any] | None) -> None:
    """A family member's portal launch shows nothing until the EHR's own RelatedPerson (the `fhirUser`, read from
    the EHR) names the launch's patient as its `patient`, on the same EHR, and is not marked inactive. The EHR's
    launch context alone is not enough: a RelatedPerson launch for a child who is not theirs was accepted.
    `related_person` None: the EHR would not let Tandem read it (LinkNotConfirmed)."""
    if not portal.proxy:
        return
    if related_person is None or related_person.get("resourceType") != "RelatedPerson":
        raise app_errors.LinkNotConfirmed("the EHR did not return the family member's RelatedPerson")
    if related_person.get("id") != portal.answerer.split("/", 1)[1]:
        raise app_errors.LinkNotConfirmed("the EHR returned another RelatedPerson than the signed-in user")
    patient = related_person.get("patient")
    linked = _patient_id(patient.get("reference") if isinstance(patient, Mapping) else None, portal.iss)
    if related_person.get("active") is False or linked is None or linked != portal.patient:
        raise app_errors.NotLinkedToPatient("the family member's RelatedPerson is not linked to this patient")

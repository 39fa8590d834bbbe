"""The application's errors, in the one hierarchy rooted at `launch.errors.TandemError`."""

from __future__ import annotations

from launch.errors import TandemError


class AccessError(TandemError):
    """The signed-in user or this launch may not see or do what was asked."""


class NotCareTeam(AccessError):
    """The signed-in user is a patient or a related person on a care-team page (theirs are under `/me/`)."""


class NotPermitted(AccessError):
    """The launch does not give access to this (another patient, or the whole caseload from a chart launch)."""


class NotRecommendationMarker(AccessError):
    """Someone other than the patient's care manager or PCP tried to mark what became of a recommendation."""


class UnknownPatient(TandemError):
    """A chart launch's patient is not known to the EHR's FHIR server (Patient read 404): nothing may be opened or
    written under that id (a nameless chart would file screenings under a patient nobody can find)."""


class BadAddress(TandemError):
    """An id in the address or a form is not a valid id: refused before any request is sent."""


class FormExpired(TandemError):
    """A form came back without this launch's CSRF token, or with a wrong or stale one."""


class NotLinkedToPatient(NotPermitted):
    """A family member's portal launch for a child the EHR does not link them to: their RelatedPerson's `patient`
    is another patient (or none, or the RelatedPerson is no longer active)."""


class LinkNotConfirmed(NotPermitted):
    """A family member's portal launch whose RelatedPerson the EHR did not let Tandem read: the link to the child
    cannot be confirmed, so nothing is shown."""


class FormInProgress(TandemError):
    """The same form (its single-use id) is still being saved by an earlier request: nothing is saved twice."""


class CdsUnauthorized(TandemError):
    """A CDS Hooks call whose JWT is missing, malformed, unsigned, not allow-listed, expired, for another endpoint
    or replayed: answered with a bare 401 (the reason is logged without the token, never sent)."""


class CdsBadRequest(TandemError):
    """A CDS Hooks request whose body is not a usable `patient-view` call: a 400 with an OperationOutcome."""


class CdsUnknownCard(TandemError):
    """CDS feedback about a card Tandem did not issue to this EHR (or issued too long ago to remember): 404 with an
    OperationOutcome, nothing stored."""


class CdsDataUnavailable(TandemError):
    """The service cannot get the data it needs: prefetch missing and no FHIR server access (412)."""

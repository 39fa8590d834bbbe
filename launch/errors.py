"""One exception hierarchy for everything that can go wrong talking to an EHR or a FHIR store.

Every error carries a short message that is safe to show a clinician and safe to log (no PHI, no tokens).
Flask error handlers render them; nothing else catches them to hide them.
"""

from __future__ import annotations

from typing import Any


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""

    status_code = 500
    title = "Something went wrong"
    #: What a clinician can do about it.
    advice = "Try again. If it keeps happening, contact your IT help desk."

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigurationError(TandemError):
    """The deployment's configuration is invalid; raised at start-up."""

    title = "Tandem is not configured correctly"
    advice = "Contact your IT help desk: the Tandem configuration needs attention."


# --- Launch and OAuth -------------------------------------------------------------------------------


class LaunchError(TandemError):
    """A SMART launch could not be completed."""

    status_code = 400
    title = "The launch could not be completed"
    advice = "Close this window and launch Tandem again from the patient's chart."


class UnknownIssuer(LaunchError):
    title = "This EHR is not registered with Tandem"
    advice = "Ask your IT help desk to register this EHR with Tandem before launching it."


class InvalidLaunchRequest(LaunchError):
    title = "The launch request was incomplete"


class StateMismatch(LaunchError):
    title = "This sign-in link has expired or was already used"


class AuthorizationDenied(LaunchError):
    status_code = 403
    title = "The EHR did not authorize Tandem"


class DiscoveryError(LaunchError):
    status_code = 502
    title = "The EHR's sign-in service could not be found"
    advice = "Try again in a minute. If it keeps happening, contact your IT help desk."


class TokenError(LaunchError):
    status_code = 502
    title = "The EHR refused to sign Tandem in"


class IdTokenInvalid(LaunchError):
    status_code = 502
    title = "The EHR's identity token could not be verified"
    advice = "Launch Tandem again. If it keeps happening, contact your IT help desk."


class SessionExpired(LaunchError):
    status_code = 401
    title = "Your Tandem session has ended"
    advice = "Launch Tandem again from the EHR."


class RegistrationProblem(TokenError):
    """The EHR refused Tandem itself (invalid_client, invalid_scope, unauthorized_client, a redirect URI it does
    not know, a wrong secret): relaunching cannot fix it; the registration needs the IT team."""

    status_code = 502
    title = "Tandem's registration at this EHR needs attention"
    advice = (
        "Relaunching will not help. Ask your IT help desk to check Tandem's registration at this EHR "
        "(client id, secret or keys, redirect URI, allowed scopes); the details below are for them."
    )


class NotCareTeam(LaunchError):
    """The signed-in user is a patient or a related person: Tandem has no patient-facing pages yet."""

    status_code = 403
    title = "Tandem is for the care team"
    advice = (
        "Tandem is used by your care team inside the clinic's record system. Your care team can tell you "
        "about your results and your care plan."
    )


class NotPermitted(LaunchError):
    """The launch does not give access to this (another patient, or the whole caseload from a chart launch)."""

    status_code = 403
    title = "This launch does not give access to that"
    advice = (
        "You opened Tandem from one patient's chart, so it shows that patient only. Open the worklist from the "
        "EHR's Tandem worklist activity to see the caseload."
    )


class BadAddress(LaunchError):
    """An id in the address or a form is not a valid id: refused before any request is sent."""

    status_code = 400
    title = "This address is not right"
    advice = "Check the address, or go back and follow a link in Tandem."


class StoreUnavailable(TandemError):
    """Tandem's session store (Redis) does not answer."""

    status_code = 503
    title = "Tandem is temporarily unavailable"
    advice = (
        "Tandem's session store is not answering, so Tandem cannot check who you are right now. Nothing you "
        "already saved is lost. Try again in a minute; the EHR itself is not affected."
    )


class CSRFError(LaunchError):
    status_code = 403
    title = "This form has expired"
    advice = "Reload the page and try again."


# --- FHIR ------------------------------------------------------------------------------------------


class FHIRError(TandemError):
    """A FHIR server answered with an error, or did not answer."""

    status_code = 502
    title = "The FHIR server reported an error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        issues: list[str] | None = None,
        **detail: Any,
    ) -> None:
        super().__init__(message, **detail)
        self.http_status = http_status
        #: OperationOutcome issue diagnostics/text. May be logged; never contains tokens.
        self.issues = issues or []


class FHIRTransportError(FHIRError):
    """No usable HTTP answer: connection refused, DNS failure, TLS error."""

    status_code = 503
    title = "The FHIR server could not be reached"
    advice = "Try again in a minute. If it keeps happening, contact your IT help desk."


class FHIRTimeout(FHIRTransportError):
    status_code = 504
    title = "The FHIR server took too long to answer"


class FHIRBadRequest(FHIRError):
    title = "The FHIR server refused the request"


class FHIRUnauthorized(FHIRError):
    status_code = 401
    title = "The EHR no longer accepts this session"
    advice = "Launch Tandem again from the EHR."


class FHIRForbidden(FHIRError):
    status_code = 403
    title = "You do not have permission for this in the EHR"
    advice = "Ask your IT help desk whether Tandem has been granted this access."


class FHIRNotFound(FHIRError):
    status_code = 404
    title = "The record was not found"


class FHIRConflict(FHIRError):
    status_code = 409
    title = "Someone else changed this record"
    advice = "Reload the page to see the latest version, then make your change again."


class FHIRPreconditionFailed(FHIRConflict):
    """412: the If-Match version is stale."""


class FHIRUnprocessable(FHIRError):
    status_code = 422
    title = "The FHIR server rejected the data"


class FHIRRateLimited(FHIRError):
    status_code = 503
    title = "The FHIR server is busy"
    advice = "Try again in a minute."


class FHIRServerError(FHIRError):
    status_code = 502
    title = "The FHIR server had an internal error"
    advice = "Try again in a minute. If it keeps happening, contact your IT help desk."


class UnsafeURL(FHIRError):
    """A URL (e.g. Bundle.link[next]) points outside the server's origin; following it could leak a token."""

    status_code = 502
    title = "The FHIR server returned a link Tandem will not follow"


class MalformedResource(FHIRError):
    """The server answered 2xx with something that is not the FHIR JSON we asked for."""

    title = "The FHIR server returned data Tandem could not read"

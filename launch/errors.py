"""One exception hierarchy for everything that can go wrong talking to an EHR or a FHIR store.

Every error carries a short message that is safe to show a clinician and safe to log (no PHI, no tokens). The
words a person reads (title, advice, HTTP status of the page) are the application's: smartapp/error_pages.py.
The application's own errors (smartapp/errors.py) extend this hierarchy.
"""

from __future__ import annotations

from typing import Any


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigurationError(TandemError):
    """The deployment's configuration is invalid; raised at start-up."""


# --- Launch and OAuth -------------------------------------------------------------------------------


class LaunchError(TandemError):
    """A SMART launch could not be completed."""


class UnknownIssuer(LaunchError):
    """The `iss` of a launch is not in the deployment's registration file."""


class InvalidLaunchRequest(LaunchError):
    """The launch or callback request lacks a parameter, or carries one that is too long."""


class StateMismatch(LaunchError):
    """The callback's state is unknown, expired, already used, or belongs to another browser."""


class AuthorizationDenied(LaunchError):
    """The EHR's authorization server answered the callback with an error."""


class DiscoveryError(LaunchError):
    """The EHR's SMART configuration could not be read or does not meet Tandem's needs."""


class TokenError(LaunchError):
    """The token endpoint refused the code exchange or a refresh."""


class IdTokenInvalid(LaunchError):
    """The id_token's signature, issuer, audience or lifetime does not check out."""


class SessionExpired(LaunchError):
    """No launch session for this request: ended, expired, or not this browser's."""


class RegistrationProblem(TokenError):
    """The EHR refused Tandem itself (invalid_client, invalid_scope, unauthorized_client, a redirect URI it does
    not know, a wrong secret): relaunching cannot fix it; the registration needs the IT team."""


class StoreUnavailable(TandemError):
    """Tandem's session store (Redis) does not answer."""


# --- FHIR ------------------------------------------------------------------------------------------


class FHIRError(TandemError):
    """A FHIR server answered with an error, or did not answer."""

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


class FHIRTimeout(FHIRTransportError):
    """The server did not answer in time."""


class FHIRBadRequest(FHIRError):
    """400: the server refused the request as malformed."""


class FHIRUnauthorized(FHIRError):
    """401: the server no longer accepts the token."""


class FHIRForbidden(FHIRError):
    """403: the token does not allow this."""


class FHIRNotFound(FHIRError):
    """404 or 410: no such resource."""


class FHIRConflict(FHIRError):
    """409: the resource changed or a conditional create matched more than one."""


class FHIRPreconditionFailed(FHIRConflict):
    """412: the If-Match version is stale."""


class FHIRUnprocessable(FHIRError):
    """422: the server rejected the resource's content."""


class FHIRRateLimited(FHIRError):
    """429: the server asks Tandem to slow down."""


class FHIRServerError(FHIRError):
    """5xx: the server failed."""


class UnsafeURL(FHIRError):
    """A URL (e.g. Bundle.link[next]) points outside the server's origin; following it could leak a token."""


class MalformedResource(FHIRError):
    """The server answered 2xx with something that is not the FHIR JSON we asked for."""

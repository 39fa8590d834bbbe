"""The one HTTP layer: timeouts, retries with backoff, request counting, and status → typed error mapping.

Every call Tandem makes to an EHR, an authorization server or a FHIR store goes through `HttpTransport`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import requests

from . import errors

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
FHIR_JSON = "application/fhir+json"


@dataclass
class RetryPolicy:
    attempts: int = 3
    backoff_seconds: float = 0.5
    max_wait_seconds: float = 10.0

    def wait_for(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait_seconds)
        jitter: float = random.uniform(0, self.backoff_seconds)  # noqa: S311 - jitter, not security
        backoff = self.backoff_seconds * float(2 ** (attempt - 1))
        return min(backoff + jitter, self.max_wait_seconds)


@dataclass
class RequestCounter:
    """How many HTTP requests a client sent (including retries), for tests and benchmarks."""

    total: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def add(self, method: str) -> None:
        self.total += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1

    def reset(self) -> None:
        self.total = 0
        self.by_method.clear()


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def same_origin(url: str, base: str) -> bool:
    return origin(url) == origin(base)


def outcome_issues(body: Any) -> list[str]:
    """The human-readable parts of an OperationOutcome (diagnostics, details.text), for logs and pages."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return []
    texts = []
    issues = body.get("issue")
    for issue in issues if isinstance(issues, list) else []:
        if not isinstance(issue, Mapping):
            continue
        details = issue.get("details") if isinstance(issue.get("details"), Mapping) else {}
        text = _str(issue.get("diagnostics")) or _str((details or {}).get("text"))
        code = _str(issue.get("code"))
        if text or code:
            texts.append(f"{_str(issue.get('severity')) or 'error'} {code or ''}: {text or ''}".strip())
    return texts


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_FHIR_ERRORS: dict[int, type[errors.FHIRError]] = {
    400: errors.FHIRBadRequest,
    401: errors.FHIRUnauthorized,
    403: errors.FHIRForbidden,
    404: errors.FHIRNotFound,
    405: errors.FHIRBadRequest,
    409: errors.FHIRConflict,
    410: errors.FHIRNotFound,
    412: errors.FHIRPreconditionFailed,
    422: errors.FHIRUnprocessable,
    429: errors.FHIRRateLimited,
}


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


_HANDLED_BY_CALLERS = frozenset({400, 404, 409, 410, 412, 422})


def fhir_error_for(response: requests.Response, what: str) -> errors.FHIRError:
    """Map an error response from a FHIR server to the typed error; log its OperationOutcome (never PHI)."""
    status = response.status_code
    issues = outcome_issues(_json_or_none(response))
    cls = _FHIR_ERRORS.get(status) or (errors.FHIRServerError if status >= 500 else errors.FHIRError)
    challenge = response.headers.get("WWW-Authenticate", "")
    if status == 403 and "insufficient_scope" in challenge:
        issues.append("insufficient_scope: the granted scopes do not allow this interaction")
    # `what` names the interaction and resource type, never ids or query values that could carry PHI. Refusals
    # the caller handles (a condition the server does not support, a missing resource, a version conflict) are
    # INFO: the caller's own handling decides whether a person or IT needs to hear of it.
    level = logging.INFO if status in _HANDLED_BY_CALLERS else logging.WARNING
    log.log(level, "FHIR %s failed: HTTP %s %s", what, status, "; ".join(issues) or "(no OperationOutcome)")
    return cls(f"{what} failed with HTTP {status}", http_status=status, issues=issues)


def oauth_error_for(response: requests.Response, what: str) -> errors.TokenError:
    """Map an error answer from a token endpoint (RFC 6749 §5.2) to TokenError."""
    code, description = oauth_error_fields(_json_or_none(response))
    log.warning("%s failed: HTTP %s error=%s", what, response.status_code, code or "(none)")
    text = f"{what} failed (HTTP {response.status_code}"
    text += f", {code}" if code else ""
    text += f": {description})" if description else ")"
    cls = errors.RegistrationProblem if is_registration_problem(code, description, response.status_code) else (
        errors.TokenError)  # fmt: skip
    return cls(text, http_status=response.status_code, oauth_error=code)


def oauth_error_fields(body: Any) -> tuple[str | None, str | None]:
    """`error` and `error_description` of a token endpoint's error answer (RFC 6749 §5.2); None where absent or
    not text. Total over any JSON."""
    if not isinstance(body, Mapping):
        return None, None
    code, description = body.get("error"), body.get("error_description")
    return (code[:64] if isinstance(code, str) and code else None,
            description[:300] if isinstance(description, str) and description else None)  # fmt: skip


#: OAuth errors that mean the EHR refuses Tandem's registration, not this user's launch.
REGISTRATION_ERRORS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_response_type"}
)


def is_registration_problem(code: Any, description: Any = None, status: int | None = None) -> bool:
    """invalid_client / unauthorized_client / invalid_scope / unsupported_response_type, a 401 from the token endpoint (wrong secret or
    key), or an error that names the redirect URI: relaunching cannot fix any of them."""
    if code in REGISTRATION_ERRORS or status == 401:
        return True
    return isinstance(description, str) and "redirect" in description.lower()


class HttpTransport:
    """A requests session with Tandem's timeout, retry and counting rules."""

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        user_agent: str = "Tandem/0.1",
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.counter = RequestCounter()

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        idempotent: bool | None = None,
        headers: Mapping[str, str] | None = None,
        counter: RequestCounter | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request, retrying transient failures when it is safe; return any HTTP answer.

        Raises FHIRTimeout / FHIRTransportError when no answer came after the allowed attempts.
        """
        method = method.upper()
        may_retry = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            self.counter.add(method)
            if counter is not None:
                counter.add(method)
            started = time.perf_counter()
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    timeout=self.timeout,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.Timeout:
                log.warning("%s timed out after %.1fs (attempt %d/%d)", what, self.timeout, attempt, attempts)
                if attempt == attempts or not may_retry:
                    raise errors.FHIRTimeout(f"{what} timed out after {self.timeout:.0f} s") from None
                self.sleep(self.retry.wait_for(attempt, None))
                continue
            except requests.RequestException as error:
                log.warning(
                    "%s could not connect: %s (attempt %d/%d)", what, type(error).__name__, attempt, attempts
                )
                if attempt == attempts or not may_retry:
                    raise errors.FHIRTransportError(f"{what}: the server could not be reached") from None
                self.sleep(self.retry.wait_for(attempt, None))
                continue
            log.debug(
                "%s → %s in %.0f ms", what, response.status_code, (time.perf_counter() - started) * 1000
            )
            # A 429 was refused unprocessed, so any request may be replayed; 502-504 only when idempotent.
            retryable = response.status_code == 429 or (
                response.status_code in RETRYABLE_STATUS and may_retry
            )
            if retryable and attempt < attempts:
                wait = self.retry.wait_for(attempt, parse_retry_after(response.headers.get("Retry-After")))
                log.info("%s answered %s; retrying in %.1fs", what, response.status_code, wait)
                response.close()
                self.sleep(wait)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

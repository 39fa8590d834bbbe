"""SMART Backend Services: client_credentials with a fresh signed assertion per token request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from . import errors
from .keys import SigningKey
from .oauth import make_client_assertion, parse_token_response
from .transport import HttpTransport, oauth_error_for

log = logging.getLogger(__name__)


class BackendServicesAuth:
    """TokenSource for system-level access (population jobs, the registry store). Tokens are not refreshed:
    a new assertion (new `jti`) is signed for each one."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        token_url: str,
        client_id: str,
        signing_key: SigningKey,
        scopes: Sequence[str],
        margin_seconds: int = 30,
    ) -> None:
        self.transport = transport
        self.token_url = token_url
        self.client_id = client_id
        self.signing_key = signing_key
        self.scopes = list(scopes)
        self.margin_seconds = margin_seconds
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str | None:
        with self._lock:
            if self._token is None or self._expires_at - self.margin_seconds <= time.time():
                self._fetch()
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": " ".join(self.scopes),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": make_client_assertion(self.client_id, self.token_url, self.signing_key),
        }
        what = "backend services token"
        try:
            response = self.transport.send(
                "POST",
                self.token_url,
                what=what,
                idempotent=False,
                headers={"Accept": "application/json"},
                data=form,
            )
        except errors.FHIRTransportError as error:
            raise errors.TokenError(f"{what}: {error.message}") from None
        if response.status_code != 200:
            raise oauth_error_for(response, what)
        try:
            body = response.json()
        except ValueError:
            raise errors.TokenError(f"{what}: the token endpoint did not answer JSON") from None
        tokens = parse_token_response(body)
        self._token, self._expires_at = tokens.access_token, tokens.expires_at
        log.info("obtained a backend services token (expires in %.0f s)", tokens.expires_at - time.time())

"""SMART Backend Services: client_credentials with a fresh signed assertion per token request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from .keys import SigningKey
from .oauth import make_client_assertion, parse_token_response, token_request
from .transport import HttpTransport

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
        body = token_request(self.transport, self.token_url, form, "backend services token")
        tokens = parse_token_response(body)
        self._token, self._expires_at = tokens.access_token, tokens.expires_at
        log.info("obtained a backend services token (expires in %.0f s)", tokens.expires_at - time.time())

"""Launch-scoped server-side sessions.

Every launch has its own session: its id travels in the URL path (`/app/<id>/`) and its secret in a cookie scoped
to that path, so two launches in one browser (two patients, two iframes, started at the same moment) never share
or overwrite each other's state. Likewise each pending authorization is bound to a cookie named after its state.
The server stores only hashes of those cookie secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from . import errors
from .context import LaunchContext
from .discovery import Discovery
from .oauth import OAuthClient, TokenResponse
from .registrations import Registrations
from .store import KeyValueStore

log = logging.getLogger(__name__)

#: Refresh when less than this share of a token's lifetime is left, and at most this many seconds before expiry:
#: an Oracle token of 570 s is refreshed 60 s early, a 60 s token 12 s early, and a new token never at once.
REFRESH_SHARE = 0.2
REFRESH_MARGIN_SECONDS = 60
#: Bumped when a stored record's shape changes; older records still load (unknown fields are ignored).
SESSION_SCHEMA = 2


def refresh_margin(issued_at: float, expires_at: float) -> float:
    return min(REFRESH_MARGIN_SECONDS, max(0.0, expires_at - issued_at) * REFRESH_SHARE)


def fingerprint(secret: str) -> str:
    """What the server stores about a cookie secret: its hash, never the value itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class PendingAuthorization:
    """What /launch remembers until /callback: bound to the browser that started it, usable once."""

    binding: str
    iss: str
    code_verifier: str
    redirect_uri: str
    launch: str | None
    created_at: float
    #: An opaque value the app put in its launch URL (e.g. a CDS card's key), handed back at the callback.
    app_state: str | None = None


@dataclass(frozen=True)
class LaunchSession:
    id: str
    binding: str
    iss: str
    access_token: str
    expires_at: float
    refresh_token: str | None
    scope: str
    context: LaunchContext
    created_at: float = field(default_factory=time.time)
    #: When the current access token was issued (its lifetime decides how early it is refreshed).
    issued_at: float = field(default_factory=time.time)
    schema: int = SESSION_SCHEMA

    def to_json(self) -> str:
        data = asdict(self)
        data["context"] = self.context.to_dict()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> LaunchSession:
        """Tolerant: fields a newer or older release wrote are ignored or defaulted, never a 500."""
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["context"] = LaunchContext.from_dict(data.get("context") or {})
        if "issued_at" not in data:
            data["issued_at"] = data.get("created_at", time.time())
        return cls(**data)

    def with_tokens(self, tokens: TokenResponse) -> LaunchSession:
        """After a refresh; the old refresh token is kept when the server returns none (Oracle never rotates)."""
        return replace(
            self,
            access_token=tokens.access_token,
            expires_at=tokens.expires_at,
            refresh_token=tokens.refresh_token or self.refresh_token,
            scope=tokens.scope or self.scope,
            issued_at=tokens.issued_at or time.time(),
        )


class SessionStore:
    def __init__(self, store: KeyValueStore, *, pending_ttl: int = 600, session_ttl: int = 12 * 3600) -> None:
        self.store = store
        self.pending_ttl = pending_ttl
        self.session_ttl = session_ttl

    def save_pending(self, state: str, pending: PendingAuthorization) -> None:
        self.store.set(f"pending:{state}", json.dumps(asdict(pending)), self.pending_ttl)

    def take_pending(self, state: str, binding_secret: str | None) -> PendingAuthorization:
        """The pending authorization for `state`, consumed; a second use or another browser is refused."""
        raw = self.store.take(f"pending:{state}") if state else None
        if raw is None:
            raise errors.StateMismatch("the state parameter is unknown, expired or already used")
        pending = PendingAuthorization(**json.loads(raw))
        expected = fingerprint(binding_secret) if binding_secret else ""
        if not hmac.compare_digest(pending.binding, expected):
            raise errors.StateMismatch("the state parameter belongs to another browser session")
        return pending

    def create(
        self, *, secret: str, iss: str, tokens: TokenResponse, context: LaunchContext
    ) -> LaunchSession:
        """A new launch session, usable only with `secret` (which the browser keeps in a path-scoped cookie)."""
        session = LaunchSession(
            id=secrets.token_urlsafe(24),
            binding=fingerprint(secret),
            iss=iss,
            access_token=tokens.access_token,
            expires_at=tokens.expires_at,
            refresh_token=tokens.refresh_token,
            scope=tokens.scope,
            context=context,
            issued_at=tokens.issued_at or time.time(),
        )
        self.save(session)
        return session

    def save(self, session: LaunchSession) -> None:
        self.store.set(f"launch:{session.id}", session.to_json(), self.session_ttl)

    def load(self, session_id: str) -> LaunchSession | None:
        raw = self.store.get(f"launch:{session_id}") if session_id else None
        return LaunchSession.from_json(raw) if raw else None

    def get(self, session_id: str, secret: str | None) -> LaunchSession:
        """The launch session, only for the browser it was created in."""
        session = self.load(session_id)
        if session is None or not secret:
            raise errors.SessionExpired("no launch session for this request")
        if not hmac.compare_digest(session.binding, fingerprint(secret)):
            raise errors.SessionExpired("the launch session belongs to another browser")
        return session

    def end(self, session_id: str) -> None:
        self.store.delete(f"launch:{session_id}")


class SessionTokens:
    """TokenSource for the EHR client of one launch: refreshes before expiry, persists the result."""

    def __init__(
        self,
        sessions: SessionStore,
        session: LaunchSession,
        oauth: OAuthClient,
        discovery: Discovery,
        registrations: Registrations,
        *,
        clock: Any = time.time,
    ) -> None:
        self.sessions = sessions
        self.session = session
        self.oauth = oauth
        self.discovery = discovery
        self.registrations = registrations
        self.clock = clock
        self._rejected: str | None = None

    def _fresh(self, session: LaunchSession) -> bool:
        return (
            session.access_token != self._rejected
            and session.expires_at - refresh_margin(session.issued_at, session.expires_at) > self.clock()
        )

    def token(self) -> str | None:
        if not self._fresh(self.session):
            self._refresh()
        return self.session.access_token

    def invalidate(self) -> None:
        """The server answered 401 to this token: refresh on the next call even if it looks unexpired."""
        self._rejected = self.session.access_token

    def _refresh(self) -> None:
        lock = f"refresh-lock:{self.session.id}"
        if not self.sessions.store.set(lock, "1", 30, only_if_absent=True):
            # Another request of this launch is refreshing; rotating refresh tokens are single use, so wait.
            for _ in range(50):
                time.sleep(0.1)
                current = self.sessions.load(self.session.id)
                if current is None:
                    raise errors.SessionExpired("the launch session ended while another request refreshed it")
                if self._fresh(current):
                    self.session = current
                    return
            raise errors.SessionExpired("the token refresh did not finish in time")
        try:
            current = self.sessions.load(self.session.id)
            if current is None:
                # Ended (e.g. its refresh token was refused a moment ago, here or in another worker): never
                # refresh again with the copy this request loaded (the defect: three grants in 110 ms).
                raise errors.SessionExpired("the launch session has ended")
            if self._fresh(current):
                self.session = current
                return
            if not current.refresh_token:
                if current.access_token != self._rejected and current.expires_at > self.clock():
                    self.session = current  # nearly expired but still valid, and nothing to refresh it with
                    return
                raise errors.SessionExpired("the access token expired and the EHR issued no refresh token")
            reg = self.registrations.get(current.iss)
            if reg is None:
                raise errors.SessionExpired("the EHR for this launch is no longer registered")
            config = self.discovery.smart_configuration(reg.iss)
            try:
                tokens = self.oauth.refresh(reg, config, current.refresh_token)
            except errors.TokenError as error:
                status = error.detail.get("http_status")
                if not isinstance(status, int) or status == 429 or status >= 500:
                    # Not a refusal (no answer, 429 or 5xx after the transport's retries): the refresh token may
                    # still be good; the next request tries again.
                    raise
                # Refused (invalid_grant, a 401): the refresh token is spent; the session ends at once, so no
                # other request of this launch tries it again (the defect: three grants in 110 ms).
                self.sessions.end(current.id)
                raise errors.SessionExpired(
                    f"the EHR refused to refresh the session ({error.message})"
                ) from None
            self.session = current.with_tokens(tokens)
            self.sessions.save(self.session)
            log.info("refreshed the access token of a launch session")
        finally:
            self.sessions.store.delete(lock)

"""Questionnaire links for patients without portal access: single-use, expiring, unguessable (256 bits), with no
PHI in them; the patient confirms their date of birth before anything is shown. Kept in Redis by a hash of the
token (a leaked store does not give working links); the date of birth only as an HMAC. Framework-neutral."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import date

from fhir_mappings.common.identity import PatientKey
from launch.store import KeyValueStore

#: Wrong dates of birth before the link is void (a guesser gets five tries, then the care manager sends another).
MAX_ATTEMPTS = 5
#: A confirmed visit lasts this long (time to answer on a phone, with breaks).
VISIT_SECONDS = 45 * 60
#: The thank-you page of a spent link stays readable this long, for the visit that sent the answers only.
DONE_SECONDS = 15 * 60


@dataclass(frozen=True)
class QuestionnaireLink:
    iss: str
    patient: str
    instrument: str
    dob_mac: str
    created_by: str | None
    expires_at: float
    #: Kept so that links stored by earlier versions still load; the count and the visit now live in their own
    #: keys (an atomic counter, and a visit key that cannot bring back a voided link).
    attempts: int = 0
    visit: str | None = None
    visit_until: float = 0.0

    @property
    def key(self) -> PatientKey:
        return PatientKey(self.iss, self.patient)


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class QuestionnaireLinks:
    def __init__(self, store: KeyValueStore, secret_key: str, *, now: object = time.time) -> None:
        self.store = store
        self.secret_key = secret_key
        self.now = now if callable(now) else time.time

    def _dob_mac(self, born: date, token: str) -> str:
        message = f"link-dob\x1f{_fingerprint(token)}\x1f{born.isoformat()}".encode()
        return hmac.new(self.secret_key.encode(), message, hashlib.sha256).hexdigest()

    def _store_key(self, token: str) -> str:
        return f"selfreport:link:{_fingerprint(token)}"

    def create(
        self, key: PatientKey, instrument: str, born: date, created_by: str | None, days: int
    ) -> tuple[str, float]:
        """A new link's token (for the URL) and when it expires."""
        token = secrets.token_urlsafe(32)
        expires_at = self.now() + days * 86400
        link = QuestionnaireLink(
            key.iss, key.patient_id, instrument, self._dob_mac(born, token), created_by, expires_at
        )
        self.store.set(self._store_key(token), json.dumps(asdict(link)), days * 86400)
        return token, expires_at

    def get(self, token: str) -> QuestionnaireLink | None:
        if not token or len(token) > 128:
            return None
        raw = self.store.get(self._store_key(token))
        if raw is None:
            return None
        link = QuestionnaireLink(**json.loads(raw))
        return link if link.expires_at > self.now() else None

    def _attempts_key(self, token: str) -> str:
        return f"selfreport:link-attempts:{_fingerprint(token)}"

    def _visit_key(self, token: str) -> str:
        return f"selfreport:link-visit:{_fingerprint(token)}"

    def confirm(self, token: str, born: date | None) -> str | None:
        """The browser secret of a new confirmed visit when the date of birth matches; None otherwise (after
        MAX_ATTEMPTS wrong dates the link is void).

        The try is counted before the date is compared, with one atomic increment: concurrent guesses each get
        their own number, and only numbers up to MAX_ATTEMPTS are compared at all (a read-then-write counter let
        40 concurrent guesses through). A matching date gives its try back, so the count is of wrong dates."""
        link = self.get(token)
        if link is None:
            return None
        ttl = max(1, int(link.expires_at - self.now()))
        attempt = self.store.increment(self._attempts_key(token), ttl)
        if attempt > MAX_ATTEMPTS:
            self._void(token)
            return None
        if born is None or not hmac.compare_digest(self._dob_mac(born, token), link.dob_mac):
            if attempt >= MAX_ATTEMPTS:
                self._void(token)
            return None
        self.store.increment(self._attempts_key(token), ttl, by=-1)
        secret = secrets.token_urlsafe(32)
        # The visit is its own key, so confirming never rewrites (or brings back) a link voided meanwhile.
        self.store.set(self._visit_key(token), _fingerprint(secret), min(VISIT_SECONDS, ttl))
        return secret

    def _void(self, token: str) -> None:
        self.store.delete(self._store_key(token))
        self.store.delete(self._visit_key(token))

    def visit(self, token: str, secret: str | None) -> QuestionnaireLink | None:
        """The link, only for the browser that confirmed the date of birth, within its visit."""
        link = self.get(token)
        if link is None or not secret:
            return None
        visit = self.store.get(self._visit_key(token))
        return link if visit is not None and hmac.compare_digest(visit, _fingerprint(secret)) else None

    def use(self, token: str, secret: str | None) -> QuestionnaireLink | None:
        """Consume the link (atomically: a second submission finds nothing)."""
        if self.visit(token, secret) is None:
            return None
        raw = self.store.take(self._store_key(token))
        self.store.delete(self._visit_key(token))
        return QuestionnaireLink(**json.loads(raw)) if raw else None

    def remember_done(self, token: str, secret: str | None, record_id: str) -> None:
        """The record a visit's answers made, for its thank-you page (Post/Redirect/Get) and nothing else."""
        value = json.dumps({"visit": _fingerprint(secret or ""), "record": record_id})
        self.store.set(f"selfreport:link-done:{_fingerprint(token)}", value, DONE_SECONDS)

    def done(self, token: str, secret: str | None) -> str | None:
        """The record id of the answers this visit sent; None for any other browser, or after DONE_SECONDS."""
        raw = self.store.get(f"selfreport:link-done:{_fingerprint(token)}")
        if raw is None or not secret:
            return None
        saved = json.loads(raw)
        return str(saved["record"]) if hmac.compare_digest(saved["visit"], _fingerprint(secret)) else None

    def attempts_left(self, token: str) -> int:
        if self.get(token) is None:
            return 0
        return max(0, MAX_ATTEMPTS - int(self.store.get(self._attempts_key(token)) or 0))

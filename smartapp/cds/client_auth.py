"""Authenticating the EHR's CDS Hooks client (CDS Hooks 2.0 §Trusting CDS Clients; ../shared/reference/cds_hooks.md
§6): a JWT signed with an asymmetric key, issuer and `jku` allow-listed per EHR in the registration file, `aud` the
exact URL called, `exp`/`iat`/`nbf` within a minute of skew, and each `jti` used once (Redis `SET NX EX`).
Framework-neutral: the Flask view hands in the header and the public URL it was called at."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from launch.discovery import Discovery
from launch.errors import TandemError
from launch.registrations import Registration, Registrations, normalize_iss
from launch.store import KeyValueStore
from smartapp.errors import CdsUnauthorized

log = logging.getLogger(__name__)

#: Asymmetric only: `none` and every HMAC algorithm are refused before any key is looked at.
ALLOWED_ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
CLOCK_SKEW_SECONDS = 60
#: Best practice keeps CDS client JWTs short-lived; a token claiming a longer life is refused.
MAX_LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class CdsCaller:
    """A verified CDS client: the EHR it stands for, and the claims safe to log."""

    registration: Registration
    jti: str
    tenant: str | None


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


def _reject(reason: str) -> CdsUnauthorized:
    log.warning("CDS Hooks call refused: %s", reason)
    return CdsUnauthorized(reason)


class CdsClientVerifier:
    def __init__(
        self,
        registrations: Registrations,
        discovery: Discovery,
        store: KeyValueStore,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.registrations = registrations
        self.discovery = discovery
        self.store = store
        self.now = now

    def verify(self, authorization: str | None, audience: str) -> CdsCaller:
        """The caller behind `Authorization: Bearer <JWT>` for a call to `audience`, or CdsUnauthorized."""
        if not authorization or not authorization.startswith("Bearer "):
            raise _reject("no bearer JWT")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            compact = extract_compact(token.encode("ascii"))
            header = dict(compact.headers())
            claims: dict[str, Any] = json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeError):
            raise _reject("not a compact JWS") from None
        if not isinstance(claims, dict):
            raise _reject("the JWT payload is not an object")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _reject(f"algorithm {str(alg)[:16]!r} is not allowed")
        if header.get("typ", "JWT") != "JWT" or not isinstance(header.get("kid"), str):
            raise _reject("the JWT header needs typ JWT and a kid")
        tenant = claims.get("tenant") if isinstance(claims.get("tenant"), str) else None
        issuer = claims.get("iss") if isinstance(claims.get("iss"), str) else None
        registration = self.registrations.for_cds_client(issuer, tenant)
        if registration is None or registration.cds is None:
            raise _reject("the issuer (and tenant) is not a registered CDS client")
        if registration.cds.tenant is not None and tenant != registration.cds.tenant:
            raise _reject("the tenant is not the registered one")
        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or jku not in registration.cds.jwks_urls):
            raise _reject("the jku is not on the issuer's allow-list")
        jwks_url = jku or registration.cds.jwks_urls[0]
        verified = self._verify_signature(token, jwks_url, str(alg), str(header["kid"]))
        self._check_claims(verified, audience, registration)
        jti = str(verified["jti"])
        self._check_replay(registration, jti, float(verified["exp"]))
        log.info("CDS Hooks call from %s (tenant %s, jti %s)", registration.label, tenant or "-", jti[:64])
        return CdsCaller(registration=registration, jti=jti, tenant=tenant)

    def _verify_signature(self, token: str, jwks_url: str, alg: str, kid: str) -> dict[str, Any]:
        try:
            # A kid the cached set lacks re-fetches it at most once per interval (launch/discovery.py).
            keys = KeySet.import_key_set(self.discovery.jwks_for_kid(jwks_url, kid))  # type: ignore[arg-type]
        except (TandemError, JoseError, ValueError, KeyError, TypeError, AttributeError):
            raise _reject("the client's JWK Set could not be read") from None
        try:
            return dict(jwt.decode(token, keys, algorithms=[alg]).claims)
        except JoseError as error:
            raise _reject(f"the signature does not verify ({type(error).__name__})") from None
        except ValueError:
            raise _reject("the JWT could not be decoded") from None

    def _check_claims(self, claims: Mapping[str, Any], audience: str, registration: Registration) -> None:
        now = self.now()
        if normalize_iss(str(claims.get("iss", ""))) != registration.cds_issuer:
            raise _reject("the issuer changed under the signature")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if normalize_url(audience) not in {normalize_url(a) for a in audiences if isinstance(a, str)}:
            raise _reject("the audience is not this endpoint")
        for name in ("exp", "iat"):
            if not isinstance(claims.get(name), int | float) or isinstance(claims.get(name), bool):
                raise _reject(f"the JWT has no numeric {name}")
        if float(claims["exp"]) < now - CLOCK_SKEW_SECONDS:
            raise _reject("the JWT has expired")
        if float(claims["iat"]) > now + CLOCK_SKEW_SECONDS:
            raise _reject("the JWT was issued in the future")
        if float(claims["exp"]) > now + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
            raise _reject("the JWT lives longer than an hour")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or float(nbf) > now + CLOCK_SKEW_SECONDS):
            raise _reject("the JWT is not valid yet")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise _reject("the JWT has no jti")

    def _check_replay(self, registration: Registration, jti: str, exp: float) -> None:
        ttl = max(1, int(exp - self.now()) + CLOCK_SKEW_SECONDS)
        digest = hashlib.sha256(f"{registration.cds_issuer}\x1f{jti}".encode()).hexdigest()
        if not self.store.set(f"cds:jti:{digest}", "1", ttl, only_if_absent=True):
            raise _reject("the jti was used before (replay)")

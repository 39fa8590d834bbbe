"""SMART App Launch authorization: authorize request, code exchange, refresh, client auth, id_token."""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import errors
from .discovery import Discovery, SmartConfiguration
from .keys import KeyRing, SigningKey
from .registrations import ClientAuth, Registration
from .scopes import LaunchMode, launch_scopes, spell_scopes
from .transport import HttpTransport, oauth_error_for

log = logging.getLogger(__name__)

#: Beyond this length a GET authorize URL risks truncation in embedded browsers and proxies.
MAX_GET_URL = 2000
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"]
CLOCK_SKEW_SECONDS = 60


def new_state() -> str:
    """An opaque, single-use state value with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    """A PKCE code verifier: 64 url-safe characters (RFC 7636 allows 43–128)."""
    return secrets.token_urlsafe(48)


def code_challenge_s256(verifier: str) -> str:
    return str(create_s256_code_challenge(verifier))


@dataclass(frozen=True)
class AuthorizeRequest:
    endpoint: str
    params: dict[str, str]
    use_post: bool

    @property
    def url(self) -> str:
        separator = "&" if "?" in self.endpoint else "?"
        return f"{self.endpoint}{separator}{urlencode(self.params)}"


def requested_scopes(reg: Registration, config: SmartConfiguration, mode: LaunchMode) -> list[str]:
    """The exact scopes Tandem asks this server for, in the spelling it advertises."""
    return spell_scopes(launch_scopes(reg.base_scopes, mode), config.capabilities)


def build_authorize_request(
    reg: Registration,
    config: SmartConfiguration,
    *,
    redirect_uri: str,
    state: str,
    code_verifier: str,
    launch: str | None,
) -> AuthorizeRequest:
    mode = LaunchMode.EHR if launch else LaunchMode.STANDALONE
    params = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(requested_scopes(reg, config, mode)),
        "state": state,
        "aud": reg.iss,
        "code_challenge": code_challenge_s256(code_verifier),
        "code_challenge_method": "S256",
    }
    if launch:
        params["launch"] = launch
    request = AuthorizeRequest(config.authorization_endpoint, params, use_post=False)
    if config.supports_authorize_post and len(request.url) > MAX_GET_URL:
        return AuthorizeRequest(config.authorization_endpoint, params, use_post=True)
    return request


def make_client_assertion(
    client_id: str, token_url: str, signing_key: SigningKey, *, lifetime: int = 240
) -> str:
    """A private_key_jwt client assertion (RFC 7523) as SMART requires: iss = sub = client_id, unique jti."""
    now = int(time.time())
    header = {"alg": signing_key.alg, "kid": signing_key.kid, "typ": "JWT"}
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + min(lifetime, 300),
    }
    return jwt.encode(header, claims, signing_key.key, algorithms=[signing_key.alg])


def token_request(
    transport: HttpTransport,
    token_url: str,
    form: Mapping[str, str],
    what: str,
    *,
    headers: Mapping[str, str] | None = None,
    retry_unavailable: bool = False,
) -> Any:
    """POST to a token endpoint and return its JSON: the one helper for launches, refreshes and backend services.
    A 429 (refused unprocessed) is retried; 502-504 only with `retry_unavailable` (a refresh: its grant is
    answered again or refused); codes are single use, so an exchange never is. A refusal (400, 401) is never
    retried. Errors become TokenError."""
    try:
        response = transport.send(
            "POST", token_url, what=what, idempotent=retry_unavailable,
            headers={**(headers or {}), "Accept": "application/json"}, data=dict(form),
        )  # fmt: skip
    except errors.FHIRTransportError as error:
        raise errors.TokenError(f"{what}: {error.message}") from None
    if response.status_code != 200:
        raise oauth_error_for(response, what)
    try:
        return response.json()
    except ValueError:
        raise errors.TokenError(f"{what}: the token endpoint did not answer JSON") from None


@dataclass(frozen=True)
class TokenResponse:
    """A parsed, checked token endpoint answer. `raw` keeps every field (context, vendor extras)."""

    access_token: str
    expires_at: float
    scope: str
    refresh_token: str | None
    id_token: str | None
    raw: dict[str, Any]
    issued_at: float = 0.0


def parse_token_response(body: Any, *, now: float | None = None) -> TokenResponse:
    if not isinstance(body, Mapping) or not isinstance(body.get("access_token"), str):
        raise errors.TokenError("the token endpoint answered without an access_token")
    token_type = body.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise errors.TokenError(
            f"the token endpoint issued an unsupported token_type {str(token_type)[:32]!r}"
        )
    issued_at = now if now is not None else time.time()
    scope = body.get("scope")
    return TokenResponse(
        issued_at=issued_at,
        access_token=body["access_token"],
        expires_at=issued_at + _lifetime(body.get("expires_in")),
        scope=scope if isinstance(scope, str) else "",
        refresh_token=body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None,
        id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
        raw=dict(body),
    )


def _lifetime(value: Any) -> float:
    """`expires_in` in seconds (a number, or a numeric string as some servers send); 300 when it is missing or
    not a finite positive number (an "infinite" token would never be refreshed)."""
    if isinstance(value, bool):
        return 300.0
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return 300.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 300.0


class OAuthClient:
    """Talks to authorization servers on behalf of the registrations."""

    def __init__(
        self,
        transport: HttpTransport,
        keys: KeyRing,
        discovery: Discovery,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.transport = transport
        self.keys = keys
        self.discovery = discovery
        self.environ = environ

    def _client_auth(self, reg: Registration, token_url: str) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and form fields that authenticate this client at the token endpoint."""
        if reg.auth is ClientAuth.CLIENT_SECRET_BASIC:
            secret = reg.client_secret(self.environ)
            if not secret:
                raise errors.ConfigurationError(f"the client secret for {reg.label} is not set")
            pair = f"{reg.client_id}:{secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}, {}
        if reg.auth is ClientAuth.PRIVATE_KEY_JWT:
            assert reg.key_id is not None  # noqa: S101 - guaranteed by Registration validation
            assertion = make_client_assertion(reg.client_id, token_url, self.keys.get(reg.key_id))
            return {}, {
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            }
        return {}, {"client_id": reg.client_id}

    def _token_request(
        self, reg: Registration, config: SmartConfiguration, form: dict[str, str], what: str,
        *, retry_unavailable: bool = False,
    ) -> Any:  # fmt: skip
        headers, auth_fields = self._client_auth(reg, config.token_endpoint)
        return token_request(self.transport, config.token_endpoint, {**form, **auth_fields}, what, headers=headers,
                             retry_unavailable=retry_unavailable)  # fmt: skip

    def exchange_code(
        self,
        reg: Registration,
        config: SmartConfiguration,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> TokenResponse:
        body = self._token_request(
            reg,
            config,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
            "token exchange",
        )
        return parse_token_response(body)

    def refresh(self, reg: Registration, config: SmartConfiguration, refresh_token: str) -> TokenResponse:
        body = self._token_request(
            reg, config, {"grant_type": "refresh_token", "refresh_token": refresh_token}, "token refresh",
            retry_unavailable=True,
        )  # fmt: skip
        return parse_token_response(body)

    def validate_id_token(
        self, reg: Registration, config: SmartConfiguration, id_token: str
    ) -> dict[str, Any]:
        """Verify the id_token's signature with the issuer's JWKS and its iss, aud and exp claims.

        The accepted issuers and the keys come only from the registration and the EHR's own discovery, never
        from the token: its `iss` is only compared with them (SMART App Launch 2.2: the id_token's issuer is the
        one the OpenID configuration names; legacy discovery names none, so the registration does, by default
        the FHIR base URL)."""
        try:
            claims_iss = _unverified_claim(id_token, "iss")
            kid = _unverified_header(id_token).get("kid")
        except ValueError:
            raise errors.IdTokenInvalid("the id_token is not a JWT") from None
        accepted = id_token_issuers(reg, config)
        wanted = claims_iss.rstrip("/") if claims_iss is not None else None
        issuer = next((i for i in accepted if i.rstrip("/") == wanted), None)
        if claims_iss is None or issuer is None:
            log.warning("id_token refused: its issuer is not one this EHR's registration or discovery names")
            raise errors.IdTokenInvalid("the id_token was not issued by this EHR's authorization server")
        jwks_uri = reg.id_token_jwks_url or self.discovery.openid_jwks_uri(config, issuer)
        if not jwks_uri:
            raise errors.IdTokenInvalid("the issuer publishes no JWKS to verify the id_token")
        try:
            key_set = KeySet.import_key_set(self.discovery.jwks_for_kid(jwks_uri, kid))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError, AttributeError):  # joserfc on odd key material
            raise errors.IdTokenInvalid("the issuer's JWKS could not be read") from None
        try:
            token = jwt.decode(id_token, key_set, algorithms=ID_TOKEN_ALGORITHMS)
        except JoseError as error:
            log.warning("id_token signature rejected: %s", type(error).__name__)
            raise errors.IdTokenInvalid("the id_token signature does not verify") from None
        except ValueError:
            raise errors.IdTokenInvalid("the id_token could not be decoded") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": claims_iss},  # the accepted issuer, as the token spells it
            aud={"essential": True, "value": reg.client_id},
            exp={"essential": True},
        )
        try:
            registry.validate(token.claims)
        except JoseError as error:
            log.warning("id_token claims rejected: %s", type(error).__name__)
            raise errors.IdTokenInvalid(f"the id_token claims are not valid ({error.error})") from None
        return dict(token.claims)


def id_token_issuers(reg: Registration, config: SmartConfiguration) -> list[str]:
    """The `iss` values this EHR's id_tokens may carry: the registration's list, else the `issuer` of its SMART
    configuration, else (legacy discovery names none) the FHIR base URL."""
    if reg.id_token_issuers:
        return list(reg.id_token_issuers)
    return [config.issuer or reg.iss]


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header without verifying, only to choose among the issuer's own keys."""
    head = token.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a JWT") from None
    return header if isinstance(header, dict) else {}


def _unverified_claim(token: str, name: str) -> str | None:
    """Read one claim without verifying, only to find where to get the verification keys."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWS compact token")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a JWT") from None
    value = claims.get(name) if isinstance(claims, dict) else None
    return value if isinstance(value, str) else None


def fhir_user_from_claims(claims: Mapping[str, Any]) -> str | None:
    """`fhirUser` (SMART 2) or `profile` (SMART 1) from verified id_token claims."""
    for name in ("fhirUser", "profile"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None

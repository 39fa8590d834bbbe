"""The sandbox's SMART authorization server, on Authlib's server components."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class SandboxClient(ClientMixin):  # type: ignore[misc]
    client_id: str
    redirect_uris: list[str]
    client_secret: str | None = None
    scope: str = ""

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope  # the sandbox grants what is asked; the FHIR endpoint enforces it

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == ("none" if self.client_secret is None else "client_secret_basic")
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class LaunchContext:
    """What the EHR knows when it launches an app: the user, and the patient on screen (if any)."""

    mode: str
    practitioner: str
    patient: str | None = None
    encounter: str | None = None
    need_patient_banner: bool = True
    intent: str | None = None


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    context: LaunchContext
    created_at: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() - self.created_at > 300


@dataclass
class IssuedToken(TokenMixin):  # type: ignore[misc]
    access_token: str
    refresh_token: str | None
    client_id: str
    scope: str
    expires_at: float
    context: LaunchContext
    revoked: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.context.practitioner


class SandboxStore:
    """In-memory state of the sandbox authorization server (one process, development only)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: dict[str, SandboxClient] = {}
        self.launches: dict[str, LaunchContext] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.refresh_tokens: dict[str, IssuedToken] = {}

    def new_launch(self, context: LaunchContext) -> str:
        launch = secrets.token_urlsafe(24)
        with self.lock:
            self.launches[launch] = context
        return launch

    def token(self, access_token: str) -> IssuedToken | None:
        with self.lock:
            return self.tokens.get(access_token)


class SmartAuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        context: LaunchContext = request.sandbox_context
        record = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.payload.scope or "",
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            context=context,
        )
        store: SandboxStore = self.server.sandbox_store
        with store.lock:
            store.codes[code] = record

    def query_authorization_code(self, code: str, client: ClientMixin) -> AuthorizationCode | None:
        store: SandboxStore = self.server.sandbox_store
        with store.lock:
            record = store.codes.get(code)
        if record and record.client_id == client.get_client_id() and not record.is_expired():
            return record
        return None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        store: SandboxStore = self.server.sandbox_store
        with store.lock:
            store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> str:
        self.request.sandbox_context = authorization_code.context
        return authorization_code.context.practitioner

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, token, headers = super().create_token_response()
        context: LaunchContext = self.request.sandbox_context
        self.server.add_launch_context(token, context, self.request.client.get_client_id())
        return status, token, headers


class SmartRefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none", "client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = False  # like Oracle Health: the refresh token is not rotated

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        store: SandboxStore = self.server.sandbox_store
        with store.lock:
            record = store.refresh_tokens.get(refresh_token)
        if record and not record.revoked:
            self.request.sandbox_context = record.context
            return record
        return None

    def authenticate_user(self, credential: IssuedToken) -> str:
        return credential.context.practitioner

    def revoke_old_credential(self, credential: IssuedToken) -> None:
        store: SandboxStore = self.server.sandbox_store
        with store.lock:
            old = store.tokens.get(credential.access_token)
            if old:
                old.revoked = True


class SandboxAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self, store: SandboxStore, signing_key: RSAKey, issuer_for: Any, lifetimes: dict[str, int]
    ) -> None:
        super().__init__()
        self.sandbox_store = store
        self.signing_key = signing_key
        self.issuer_for = issuer_for
        self.lifetimes = lifetimes

    def query_client(self, client_id: str) -> SandboxClient | None:
        return self.sandbox_store.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        context: LaunchContext = request.sandbox_context
        lifetime = self.lifetimes.get(context.mode, 3600)
        token["expires_in"] = lifetime
        record = IssuedToken(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            client_id=request.client.get_client_id(),
            scope=token.get("scope", ""),
            expires_at=time.time() + lifetime,
            context=context,
        )
        with self.sandbox_store.lock:
            self.sandbox_store.tokens[record.access_token] = record
            if token.get("refresh_token"):
                self.sandbox_store.refresh_tokens[token["refresh_token"]] = record
            else:
                # A refresh without rotation: the old refresh token now stands for the new access token.
                credential = getattr(request, "refresh_token", None)
                if isinstance(credential, IssuedToken) and credential.refresh_token:
                    record.refresh_token = credential.refresh_token
                    self.sandbox_store.refresh_tokens[credential.refresh_token] = record

    def add_launch_context(self, token: dict[str, Any], context: LaunchContext, client_id: str) -> None:
        """SMART launch context and the OpenID id_token in the token response."""
        if context.patient:
            token["patient"] = context.patient
        if context.encounter:
            token["encounter"] = context.encounter
        token["need_patient_banner"] = context.need_patient_banner
        if context.intent:
            token["intent"] = context.intent
        token["smart_style_url"] = f"{self.issuer_for(context.mode)}/smart-style.json"
        scopes = set(str(token.get("scope", "")).split())
        if "openid" in scopes:
            now = int(time.time())
            claims = {
                "iss": self.issuer_for(context.mode),
                "sub": context.practitioner,
                "aud": client_id,
                "iat": now,
                "exp": now + 300,
                "fhirUser": f"Practitioner/{context.practitioner}",
            }
            token["id_token"] = jwt.encode(
                {"alg": "RS256", "kid": self.signing_key.kid}, claims, self.signing_key
            )


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE is mandatory in SMART, and `plain` is not allowed."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]


def build_authorization_server(
    store: SandboxStore, signing_key: RSAKey, issuer_for: Any, lifetimes: dict[str, int]
) -> SandboxAuthorizationServer:
    server = SandboxAuthorizationServer(store, signing_key, issuer_for, lifetimes)
    server.register_grant(SmartAuthorizationCodeGrant, [S256Only(required=True)])
    server.register_grant(SmartRefreshTokenGrant)
    return server

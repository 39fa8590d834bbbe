"""The sandbox's SMART authorization server, on Authlib's server components."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, InvalidClientError, TokenMixin, grants
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

#: SMART Backend Services: the client assertion is signed with one of these, and lives at most five minutes.
ASSERTION_ALGORITHMS = ["RS384", "ES384"]
MAX_ASSERTION_SECONDS = 300


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
class BackendClient(SandboxClient):
    """A SMART Backend Services client of one of the sandbox's EHRs: client_credentials, private_key_jwt, system
    scopes only."""

    mode: str = "generic"
    jwks: dict[str, Any] = field(default_factory=dict)

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s.startswith("system/"))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "private_key_jwt"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclass
class LaunchContext:
    """What the EHR knows when it launches an app: the user, and the patient on screen (if any)."""

    mode: str
    practitioner: str
    patient: str | None = None
    encounter: str | None = None
    need_patient_banner: bool = True
    intent: str | None = None
    #: A backend services token: no user, no patient, system scopes.
    system: bool = False
    #: The signed-in user's resource type: Practitioner, or Patient / RelatedPerson in the patient portal.
    user_type: str = "Practitioner"
    #: A CDS card's `appContext`, handed to the app in the token response (the Oracle-like mode drops it).
    app_context: str | None = None


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
        self.used_jtis: set[str] = set()

    def new_launch(self, context: LaunchContext) -> str:
        launch = secrets.token_urlsafe(24)
        with self.lock:
            self.launches[launch] = context
        return launch

    def mint(self, client_id: str, scope: str, context: LaunchContext, lifetime: int = 300) -> str:
        """A token issued outside the OAuth flow: the one an EHR hands a CDS service (`fhirAuthorization`)."""
        value = secrets.token_urlsafe(32)
        record = IssuedToken(access_token=value, refresh_token=None, client_id=client_id, scope=scope,
                             expires_at=time.time() + lifetime, context=context)  # fmt: skip
        with self.lock:
            self.tokens[value] = record
        return value

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


class SmartClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client = self.request.client
        if not isinstance(client, BackendClient):
            raise InvalidClientError(description="not a backend services client")
        if not client.get_allowed_scope(self.request.payload.scope or ""):
            from authlib.oauth2.rfc6749 import InvalidScopeError

            raise InvalidScopeError(description="backend services clients may ask for system/ scopes only")
        self.request.sandbox_context = LaunchContext(mode=client.mode, practitioner="", system=True)


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 client authentication as SMART Backend Services profiles it: RS384/ES384, `aud` = the token URL,
    `exp` at most five minutes ahead, every `jti` used once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, token_url: str, store: SandboxStore) -> None:
        super().__init__(leeway=30)
        self.audience = token_url
        self.store = store

    def get_audiences(self) -> list[str]:
        return [self.audience]

    def resolve_client_public_key(self, client: Any) -> KeySet:
        return KeySet.import_key_set(client.jwks)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as error:
            raise InvalidClientError(description=error.description) from error
        self.verify_claims(token.claims)
        if int(token.claims["exp"]) > time.time() + MAX_ASSERTION_SECONDS + self.leeway:
            raise InvalidClientError(description="the client assertion may live at most five minutes")
        return token.claims

    def validate_jti(self, claims: Any, jti: str) -> bool:
        key = f"{claims['sub']}:{jti}"
        with self.store.lock:
            if key in self.store.used_jtis:
                return False
            self.store.used_jtis.add(key)
        return True


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
        if context.user_type != "Practitioner" and not context.system:
            # The patient portal: whatever the app asked, a patient or a parent gets patient-level access only.
            token["scope"] = " ".join(s.replace("user/", "patient/", 1) if s.startswith("user/") else s
                                      for s in str(token.get("scope", "")).split())  # fmt: skip
        # Backend services tokens live at most five minutes (SMART Backend Services).
        lifetime = 300 if context.system else self.lifetimes.get(context.mode, 3600)
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
        if context.system:
            return
        if context.patient:
            token["patient"] = context.patient
        if context.encounter:
            token["encounter"] = context.encounter
        token["need_patient_banner"] = context.need_patient_banner
        if context.intent:
            token["intent"] = context.intent
        if context.app_context:
            token["appContext"] = context.app_context
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
                "fhirUser": f"{context.user_type}/{context.practitioner}",
            }
            token["id_token"] = jwt.encode(
                {"alg": "RS256", "kid": self.signing_key.kid}, claims, self.signing_key
            )


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE is mandatory in SMART, and `plain` is not allowed."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]


def build_authorization_server(
    store: SandboxStore, signing_key: RSAKey, issuer_for: Any, lifetimes: dict[str, int], token_url: str
) -> SandboxAuthorizationServer:
    server = SandboxAuthorizationServer(store, signing_key, issuer_for, lifetimes)
    server.register_grant(SmartAuthorizationCodeGrant, [S256Only(required=True)])
    server.register_grant(SmartRefreshTokenGrant)
    server.register_grant(SmartClientCredentialsGrant)
    server.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt(token_url, store))
    return server

"""SMART discovery: `.well-known/smart-configuration`, with the CapabilityStatement `oauth-uris` fallback."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from . import errors
from .store import KeyValueStore
from .transport import HttpTransport

log = logging.getLogger(__name__)

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
#: A key set is fetched at most once in this many seconds per JWK Set URL (across every worker: the mark is in
#: the shared store), however many tokens name a kid it does not hold.
JWKS_REFETCH_SECONDS = 300


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None = None
    jwks_uri: str | None = None
    capabilities: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] = ()
    grant_types_supported: tuple[str, ...] = ()
    #: "smart-configuration" or "capability-statement" (the deprecated fallback).
    source: str = "smart-configuration"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def supports_s256(self) -> bool:
        return "S256" in self.code_challenge_methods_supported

    @property
    def supports_authorize_post(self) -> bool:
        return "authorize-post" in self.capabilities

    @property
    def scope_versions(self) -> list[str]:
        return [v for v in ("v1", "v2") if f"permission-{v}" in self.capabilities]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SmartConfiguration:
        data = json.loads(text)
        for name in (
            "capabilities",
            "code_challenge_methods_supported",
            "scopes_supported",
            "token_endpoint_auth_methods_supported",
            "token_endpoint_auth_signing_alg_values_supported",
            "grant_types_supported",
        ):
            data[name] = tuple(data.get(name) or ())
        return cls(**data)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def parse_smart_configuration(data: Any) -> SmartConfiguration | None:
    """A SmartConfiguration from a `.well-known/smart-configuration` document, or None if it is unusable."""
    if not isinstance(data, Mapping):
        return None
    authorize, token = data.get("authorization_endpoint"), data.get("token_endpoint")
    if not isinstance(authorize, str) or not isinstance(token, str):
        return None
    known = {
        "authorization_endpoint", "token_endpoint", "issuer", "jwks_uri", "capabilities",
        "code_challenge_methods_supported", "scopes_supported", "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported", "grant_types_supported",
    }  # fmt: skip
    return SmartConfiguration(
        authorization_endpoint=authorize,
        token_endpoint=token,
        issuer=data.get("issuer") if isinstance(data.get("issuer"), str) else None,
        jwks_uri=data.get("jwks_uri") if isinstance(data.get("jwks_uri"), str) else None,
        capabilities=_strings(data.get("capabilities")),
        code_challenge_methods_supported=_strings(data.get("code_challenge_methods_supported")),
        scopes_supported=_strings(data.get("scopes_supported")),
        token_endpoint_auth_methods_supported=_strings(data.get("token_endpoint_auth_methods_supported")),
        token_endpoint_auth_signing_alg_values_supported=_strings(
            data.get("token_endpoint_auth_signing_alg_values_supported")
        ),
        grant_types_supported=_strings(data.get("grant_types_supported")),
        extra={k: v for k, v in data.items() if k not in known and isinstance(k, str)},
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_capability_oauth_uris(data: Any) -> SmartConfiguration | None:
    """The deprecated fallback: `rest[].security.extension[oauth-uris]` in a CapabilityStatement. Total: any
    JSON gives a configuration or None."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "CapabilityStatement":
        return None
    for rest in _list(data.get("rest")):
        security = rest.get("security") if isinstance(rest, Mapping) else None
        if not isinstance(security, Mapping):
            continue
        for extension in _list(security.get("extension")):
            if not isinstance(extension, Mapping) or extension.get("url") != OAUTH_URIS:
                continue
            uris: dict[str, Any] = {}
            for sub in _list(extension.get("extension")):
                if isinstance(sub, Mapping) and isinstance(sub.get("url"), str):
                    uris.setdefault(sub["url"], sub.get("valueUri"))
            authorize, token = uris.get("authorize"), uris.get("token")
            if isinstance(authorize, str) and isinstance(token, str):
                # Such servers do not advertise PKCE support; Tandem sends S256 regardless. They name no
                # issuer: id_tokens are then checked against the registration (launch/oauth.py).
                return SmartConfiguration(authorize, token, source="capability-statement")
    return None


class Discovery:
    """Fetches and caches each issuer's SMART configuration and CapabilityStatement."""

    def __init__(self, transport: HttpTransport, store: KeyValueStore, *, ttl_seconds: int = 3600,
                 jwks_refetch_seconds: int = JWKS_REFETCH_SECONDS) -> None:  # fmt: skip
        self.transport = transport
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.jwks_refetch_seconds = jwks_refetch_seconds

    def _get_json(self, url: str, what: str, accept: str) -> Any:
        try:
            response = self.transport.send("GET", url, what=what, headers={"Accept": accept})
        except errors.FHIRTransportError as error:
            message = error.message if error.message.startswith(what) else f"{what}: {error.message}"
            raise errors.DiscoveryError(message) from None
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def capability_statement(self, iss: str) -> dict[str, Any]:
        key = f"capability:{iss}"
        cached = self.store.get(key)
        if cached is not None:
            loaded: dict[str, Any] = json.loads(cached)
            return loaded
        data = self._get_json(f"{iss}/metadata", "read CapabilityStatement", "application/fhir+json")
        if not isinstance(data, dict) or data.get("resourceType") != "CapabilityStatement":
            raise errors.DiscoveryError(f"{iss}/metadata did not return a CapabilityStatement")
        self.store.set(key, json.dumps(data), self.ttl_seconds)
        return data

    def smart_configuration(self, iss: str) -> SmartConfiguration:
        key = f"smart-config:{iss}"
        cached = self.store.get(key)
        if cached is not None:
            return SmartConfiguration.from_json(cached)
        config = parse_smart_configuration(
            self._get_json(f"{iss}/.well-known/smart-configuration", "SMART discovery", "application/json")
        )
        if config is None:
            log.info("no usable smart-configuration; falling back to the CapabilityStatement")
            try:
                config = parse_capability_oauth_uris(self.capability_statement(iss))
            except errors.DiscoveryError:
                config = None
        if config is None:
            raise errors.DiscoveryError(
                f"{iss} publishes neither .well-known/smart-configuration nor oauth-uris in its CapabilityStatement"
            )
        self.store.set(key, config.to_json(), self.ttl_seconds)
        return config

    def openid_jwks_uri(self, config: SmartConfiguration, issuer: str) -> str | None:
        """The JWKS for id_tokens: `jwks_uri` from SMART discovery, else the issuer's OpenID configuration."""
        if config.jwks_uri:
            return config.jwks_uri
        data = self._get_json(
            f"{issuer.rstrip('/')}/.well-known/openid-configuration", "OpenID discovery", "application/json"
        )
        if not isinstance(data, Mapping):
            return None
        named = data.get("issuer")
        if isinstance(named, str) and named.rstrip("/") != issuer.rstrip("/"):
            log.warning("the OpenID configuration names another issuer than the one it was fetched for")
            return None
        uri = data.get("jwks_uri")
        return uri if isinstance(uri, str) else None

    def jwks(self, uri: str) -> dict[str, Any]:
        key = f"jwks:{uri}"
        cached = self.store.get(key)
        if cached is not None:
            loaded: dict[str, Any] = json.loads(cached)
            return loaded
        data = self._get_json(uri, "fetch JWKS", "application/json")
        # Marked even when the answer is unusable: a broken key set is not asked for again at once either.
        self.store.set(f"jwks-fetched:{uri}", "1", self.jwks_refetch_seconds)
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise errors.IdTokenInvalid("the issuer's JWKS could not be read")
        self.store.set(key, json.dumps(data), self.ttl_seconds)
        return data

    def jwks_for_kid(self, uri: str, kid: Any) -> dict[str, Any]:
        """The key set at `uri` for a token signed with `kid`. When the cached set lacks that kid (the issuer may
        have rotated its keys) it is fetched again, but at most once per `jwks_refetch_seconds` per URL across
        every worker: tokens with made-up kids cannot make Tandem hammer an issuer. The one helper for every JWT
        Tandem verifies (id_tokens, CDS Hooks client JWTs)."""
        data = self.jwks(uri)
        if not isinstance(kid, str) or any(
            isinstance(entry, Mapping) and entry.get("kid") == kid for entry in data["keys"]
        ):
            return data
        if not self.store.set(f"jwks-fetched:{uri}", "1", self.jwks_refetch_seconds, only_if_absent=True):
            log.info(
                "a token names a kid its issuer's key set lacks; the set was fetched recently: not again"
            )
            return data
        log.info("a token names a kid its issuer's key set lacks: fetching the key set again")
        self.store.delete(f"jwks:{uri}")
        return self.jwks(uri)

    def forget_jwks(self, uri: str) -> None:
        self.store.delete(f"jwks:{uri}")

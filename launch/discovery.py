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


def parse_capability_oauth_uris(data: Any) -> SmartConfiguration | None:
    """The deprecated fallback: `rest[].security.extension[oauth-uris]` in a CapabilityStatement."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "CapabilityStatement":
        return None
    for rest in data.get("rest") or []:
        security = rest.get("security") if isinstance(rest, Mapping) else None
        for extension in (security or {}).get("extension") or []:
            if not isinstance(extension, Mapping) or extension.get("url") != OAUTH_URIS:
                continue
            uris = {
                sub.get("url"): sub.get("valueUri")
                for sub in extension.get("extension") or []
                if isinstance(sub, Mapping)
            }
            authorize, token = uris.get("authorize"), uris.get("token")
            if isinstance(authorize, str) and isinstance(token, str):
                # Such servers do not advertise PKCE support; Tandem sends S256 regardless.
                return SmartConfiguration(authorize, token, source="capability-statement")
    return None


class Discovery:
    """Fetches and caches each issuer's SMART configuration and CapabilityStatement."""

    def __init__(self, transport: HttpTransport, store: KeyValueStore, *, ttl_seconds: int = 3600) -> None:
        self.transport = transport
        self.store = store
        self.ttl_seconds = ttl_seconds

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
        uri = data.get("jwks_uri") if isinstance(data, Mapping) else None
        return uri if isinstance(uri, str) else None

    def jwks(self, uri: str) -> dict[str, Any]:
        key = f"jwks:{uri}"
        cached = self.store.get(key)
        if cached is not None:
            loaded: dict[str, Any] = json.loads(cached)
            return loaded
        data = self._get_json(uri, "fetch JWKS", "application/json")
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise errors.IdTokenInvalid("the issuer's JWKS could not be read")
        self.store.set(key, json.dumps(data), self.ttl_seconds)
        return data

    def forget_jwks(self, uri: str) -> None:
        self.store.delete(f"jwks:{uri}")

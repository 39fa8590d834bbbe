"""The registration file: every EHR issuer a deployment trusts, validated at start-up."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigurationError
from .scopes import PROFILE_SCOPES, WRITE_SCOPES, ProfileScope, Vendor


class ClientAuth(StrEnum):
    PUBLIC = "public"
    CLIENT_SECRET_BASIC = "client_secret_basic"
    PRIVATE_KEY_JWT = "private_key_jwt"


def normalize_iss(iss: str) -> str:
    return iss.strip().rstrip("/")


def _check_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{field} must be an absolute https URL")
    if parts.scheme == "http" and not local:
        raise ValueError(f"{field} must use https (http is allowed only for localhost)")
    if parts.fragment or parts.query:
        raise ValueError(f"{field} must not have a query or fragment")
    return value


#: What the score refresh reads, in the v2 spelling (spelled v1 for servers that only speak v1).
BACKEND_SCOPES = (
    "system/Patient.rs",
    "system/Observation.rs",
    "system/Group.rs",
    "system/MedicationRequest.rs",
)


class BackendServices(BaseModel):
    """Tandem's SMART Backend Services registration at this EHR (a separate client there: Epic and Oracle register
    backend apps apart from user-facing ones). Used by the worker to refresh enrolled patients' EHR scores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: Annotated[str, Field(min_length=1)]
    #: A kid from the Tandem key file: the key the client assertions are signed with.
    key_id: Annotated[str, Field(min_length=1)]
    scopes: list[str] = Field(default_factory=lambda: list(BACKEND_SCOPES))
    #: The token endpoint; by default the one the EHR's SMART configuration names.
    token_url: str | None = None
    #: A Group of the EHR's behavioral-health patients for Bulk Data `$export` (with `_since`). Without it,
    #: scores are searched per patient (Epic requires a `patient` parameter on Observation searches).
    group_id: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")] = None
    #: Per-patient searches in flight at once (be gentle with the EHR).
    concurrency: Annotated[int, Field(ge=1, le=16)] = 4
    #: Patients named in one search (`patient=a,b,…`) by the worker's reads of SMI patients' vitals, labs and
    #: orders. 1 reads one patient per search, for an EHR that refuses lists (whether Epic accepts them is
    #: unconfirmed: ../shared/reference/ehr-integration.md says nothing of it).
    patients_per_search: Annotated[int, Field(ge=1, le=200)] = 50
    #: With a Group, a full export (which also drops scores the EHR deleted) at least this often; `_since` between.
    full_export_hours: Annotated[int, Field(ge=1, le=24 * 31)] = 24

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "token_url")


class CdsClient(BaseModel):
    """The EHR as a CDS Hooks client of Tandem's CDS service: who signs its JWTs and where its keys are. Every call
    (discovery, service, feedback) carries a JWT that must name this issuer and be signed with a key from one of
    these JWK Set URLs; a `jku` header is followed only when it is on the list (never an arbitrary URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The JWT's `iss`; by default the registration's `iss` (Epic: the organisation's FHIR endpoint). Oracle's beta
    #: documentation names https://cds-hooks.cerner.com for every tenant (unconfirmed): then set `tenant` too.
    issuer: str | None = None
    #: The JWK Set URLs allowed for this client; the first is used when a JWT has no `jku`.
    jwks_urls: Annotated[list[str], Field(min_length=1)]
    #: The JWT's `tenant`, required to match when set (one CDS issuer serving several organisations).
    tenant: Annotated[str | None, Field(min_length=1, max_length=200)] = None

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(normalize_iss(value), "cds.issuer")

    @field_validator("jwks_urls")
    @classmethod
    def _jwks_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            local = parts.hostname in ("localhost", "127.0.0.1", "::1")
            if parts.scheme != "https" and not (parts.scheme == "http" and local) or not parts.hostname:
                raise ValueError(
                    f"cds.jwks_urls: {url!r} must be an absolute https URL (http only for localhost)"
                )
            if parts.fragment:
                raise ValueError(f"cds.jwks_urls: {url!r} must not have a fragment")
        return value


class Registration(BaseModel):
    """One trusted issuer (an EHR's FHIR base URL) and how Tandem is registered there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str
    name: str | None = None
    client_id: Annotated[str, Field(min_length=1)]
    vendor: Vendor = Vendor.GENERIC
    auth: ClientAuth = ClientAuth.PUBLIC
    key_id: str | None = None
    #: Name of the environment variable (prefix TANDEM_) that holds the client secret; never the secret itself.
    client_secret_env: str | None = None
    scopes: list[str] | None = None
    #: The write-back scopes added to the vendor profile (worklist creates, reads that confirm a lost write):
    #: replaces the profile's list (ehr-integration.md does not confirm every one of them for every vendor).
    write_scopes: list[str] | None = None
    #: Origins allowed to frame Tandem for this EHR (CSP frame-ancestors); defaults to the issuer's own origin.
    frame_ancestors: list[str] | None = None
    #: Backend services for the worker's score refresh; without it, EHR scores come only from chart opens.
    backend: BackendServices | None = None
    #: The EHR as a CDS Hooks client of Tandem's CDS service; without it the service refuses this EHR's calls.
    cds: CdsClient | None = None
    #: A caregiver's screen written to the child's EHR chart carries the caregiver's item-level answers (the
    #: note's answer list, the QuestionnaireResponse's items, the self-harm item's Observation). Off by default:
    #: the child's chart gets who was screened, the result and the plan; the answers stay in Tandem's registry.
    caregiver_note_item_level: Annotated[bool, Field(strict=True)] = False
    #: The `iss` values this EHR's id_tokens may carry. Without it: the `issuer` its SMART configuration names,
    #: else (legacy CapabilityStatement discovery names none) the FHIR base URL `iss` (SMART App Launch 2.2).
    id_token_issuers: Annotated[list[str] | None, Field(min_length=1)] = None
    #: The JWK Set URL of the id_token keys. Without it: `jwks_uri` from SMART discovery, else from the OpenID
    #: configuration of the accepted issuer. Never from a URL the token itself names.
    id_token_jwks_url: str | None = None

    @property
    def cds_issuer(self) -> str | None:
        """The `iss` of this EHR's CDS Hooks JWTs, when it is registered as a CDS client."""
        if self.cds is None:
            return None
        return self.cds.issuer or self.iss

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") \
                    or parts.query or parts.fragment or "*" in origin.replace("://*.", "://"):  # fmt: skip
                raise ValueError(
                    f"frame_ancestors: {origin!r} is not an origin such as https://ehr.example.org"
                )
        return [o.rstrip("/") for o in value]

    @property
    def framing_origins(self) -> list[str]:
        if self.frame_ancestors is not None:
            return self.frame_ancestors
        parts = urlsplit(self.iss)
        return [f"{parts.scheme}://{parts.netloc}"]

    @field_validator("iss")
    @classmethod
    def _iss_is_url(cls, value: str) -> str:
        return _check_url(normalize_iss(value), "iss")

    @field_validator("id_token_issuers")
    @classmethod
    def _id_token_issuers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [_check_url(normalize_iss(issuer), "id_token_issuers") for issuer in value]

    @field_validator("id_token_jwks_url")
    @classmethod
    def _id_token_jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value, "id_token_jwks_url")

    @field_validator("client_secret_env")
    @classmethod
    def _secret_env_prefixed(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("TANDEM_"):
            raise ValueError("client_secret_env must name an environment variable starting with TANDEM_")
        return value

    @model_validator(mode="after")
    def _auth_has_credentials(self) -> Registration:
        if self.auth is ClientAuth.PRIVATE_KEY_JWT and not self.key_id:
            raise ValueError("auth = 'private_key_jwt' needs key_id (a kid from the Tandem key file)")
        if self.auth is ClientAuth.CLIENT_SECRET_BASIC and not self.client_secret_env:
            raise ValueError("auth = 'client_secret_basic' needs client_secret_env")
        if self.auth is not ClientAuth.PRIVATE_KEY_JWT and self.key_id:
            raise ValueError("key_id is only used with auth = 'private_key_jwt'")
        return self

    @property
    def label(self) -> str:
        return self.name or self.iss

    @property
    def base_scopes(self) -> list[str]:
        """`scopes` when the registration lists them all; else the vendor profile plus its write-back scopes."""
        if self.scopes is not None:
            return list(self.scopes)
        return list(dict.fromkeys([*PROFILE_SCOPES[self.vendor], *(p.scope for p in self.write_profile)]))

    @property
    def write_profile(self) -> list[ProfileScope]:
        """The write-back scopes asked for, each with why and whether it is confirmed for the vendor (a scope the
        registration names is the site's own decision: confirmed for this site)."""
        if self.write_scopes is None:
            return list(WRITE_SCOPES[self.vendor])
        known = {p.scope: p for p in WRITE_SCOPES[self.vendor]}
        return [
            ProfileScope(s, known[s].why if s in known else "set in the registration", True)
            for s in self.write_scopes
        ]

    def client_secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        if self.client_secret_env is None:
            return None
        return (environ if environ is not None else os.environ).get(self.client_secret_env)


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: list[Registration] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_iss(self) -> RegistryFile:
        seen: set[str] = set()
        cds_clients: set[tuple[str, str | None]] = set()
        for reg in self.issuer:
            if reg.iss in seen:
                raise ValueError(f"iss {reg.iss} is listed twice")
            seen.add(reg.iss)
            if reg.cds is not None and reg.cds_issuer is not None:
                client = (reg.cds_issuer, reg.cds.tenant)
                if client in cds_clients:
                    raise ValueError(
                        f"CDS client {reg.cds_issuer} (tenant {reg.cds.tenant or 'none'}) is registered for two "
                        "issuers: give each a distinct cds.tenant"
                    )
                cds_clients.add(client)
        return self


class Registrations:
    """Lookup of trusted issuers by iss."""

    def __init__(self, registrations: list[Registration]) -> None:
        self._by_iss = {reg.iss: reg for reg in registrations}

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._by_iss.values())

    def __len__(self) -> int:
        return len(self._by_iss)

    def get(self, iss: str | None) -> Registration | None:
        if not iss:
            return None
        return self._by_iss.get(normalize_iss(iss))

    def for_cds_client(self, issuer: str | None, tenant: str | None) -> Registration | None:
        """The EHR whose CDS client signs JWTs as `issuer` (and `tenant`, where registered with one)."""
        if not issuer:
            return None
        wanted = normalize_iss(issuer)
        found = [reg for reg in self if reg.cds is not None and reg.cds_issuer == wanted]
        exact = [
            reg
            for reg in found
            if reg.cds is not None and reg.cds.tenant is not None and reg.cds.tenant == tenant
        ]
        if exact:
            return exact[0]
        untenanted = [reg for reg in found if reg.cds is not None and reg.cds.tenant is None]
        return untenanted[0] if len(untenanted) == 1 else None

    def frame_ancestors(self) -> list[str]:
        """Every origin any registered EHR may frame Tandem from."""
        return list(dict.fromkeys(o for reg in self for o in reg.framing_origins))


def _describe(error: ValidationError, data: Mapping[str, Any], source: str) -> str:
    lines = [f"{source}: invalid registration file"]
    raw_issuers = data.get("issuer")
    issuers: list[Any] = raw_issuers if isinstance(raw_issuers, list) else []
    for item in error.errors():
        loc = list(item["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "issuer" and isinstance(loc[1], int):
            index = loc[1]
            entry = issuers[index] if index < len(issuers) else {}
            iss = entry.get("iss") if isinstance(entry, dict) else None
            where = f"[[issuer]] #{index + 1}" + (f" ({iss})" if iss else "")
            loc = loc[2:]
        field = ".".join(str(part) for part in loc)
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}{' ' if where and field else ''}{field}: {message}".rstrip())
    return "\n".join(lines)


def parse_registrations(
    data: Mapping[str, Any],
    *,
    source: str = "registrations",
    key_ids: set[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Registrations:
    """Validate parsed TOML; raise ConfigurationError naming the field on any problem."""
    try:
        parsed = RegistryFile.model_validate(dict(data))
    except ValidationError as error:
        raise ConfigurationError(_describe(error, data, source)) from None
    problems = []
    env = environ if environ is not None else os.environ
    for index, reg in enumerate(parsed.issuer):
        where = f"[[issuer]] #{index + 1} ({reg.iss})"
        if reg.auth is ClientAuth.PRIVATE_KEY_JWT and key_ids is not None and reg.key_id not in key_ids:
            problems.append(f"  {where} key_id: no key with kid {reg.key_id!r} in the Tandem key file")
        if reg.backend is not None and key_ids is not None and reg.backend.key_id not in key_ids:
            problems.append(
                f"  {where} backend.key_id: no key with kid {reg.backend.key_id!r} in the Tandem key file"
            )
        if reg.auth is ClientAuth.CLIENT_SECRET_BASIC and not reg.client_secret(env):
            problems.append(
                f"  {where} client_secret_env: environment variable {reg.client_secret_env} is not set"
            )
    if problems:
        raise ConfigurationError("\n".join([f"{source}: invalid registration file", *problems]))
    return Registrations(parsed.issuer)


def load_registrations(
    path: str | Path, *, key_ids: set[str] | None = None, environ: Mapping[str, str] | None = None
) -> Registrations:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: registration file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: not valid TOML: {error}") from None
    return parse_registrations(data, source=str(path), key_ids=key_ids, environ=environ)

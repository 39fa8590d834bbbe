"""Recorded EHR servers for the launch tests: vendor-shaped JSON fixtures served through `responses`.

Only the id_token is minted per test (it must be signed and unexpired); everything else is a fixture file.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import requests
import responses
from joserfc import jwt
from joserfc.jwk import RSAKey

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class VendorShape:
    vendor: str
    iss: str
    client_id: str
    id_token_issuer: str
    fhir_user: str
    token_url: str
    authorize_url: str
    jwks_url: str
    openid_config_url: str | None = None
    #: Refresh answers rotate the refresh token (Epic) or not (Oracle).
    rotates_refresh_token: bool = True


EPIC = VendorShape(
    vendor="epic",
    iss="https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4",
    client_id="d45049c3-3441-40ef-ab4d-b9cd86a17225",
    id_token_issuer="https://fhir.epic.com/interconnect-fhir-oauth/oauth2",
    fhir_user="https://fhir.epic.com/interconnect-fhir-oauth/api/FHIR/R4/Practitioner/emlP8nPSdrnUvzSUcWeBnuA3",
    token_url="https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token",
    authorize_url="https://fhir.epic.com/interconnect-fhir-oauth/oauth2/authorize",
    jwks_url="https://fhir.epic.com/interconnect-fhir-oauth/api/epic/2019/Security/Open/PublicKeys/530005/OIDC",
)
ORACLE = VendorShape(
    vendor="oracle",
    iss="https://fhir-ehr-code.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    client_id="0e3a1b5c-6f0e-4c1e-9a4e-2c7f5a1d9b11",
    id_token_issuer="https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d",
    fhir_user="Practitioner/12742069",
    token_url="https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/hosts/fhir-ehr-code.cerner.com/protocols/oauth2/profiles/smart-v1/token",
    authorize_url="https://authorization.cerner.com/tenants/ec2458f2-1e24-41c8-b71b-0e701af7583d/protocols/oauth2/profiles/smart-v1/personas/provider/authorize",
    jwks_url="https://authorization.cerner.com/jwk",
    rotates_refresh_token=False,
)
GENERIC = VendorShape(
    vendor="generic",
    iss="https://smart.example.org/v/r4/fhir",
    client_id="tandem-generic",
    id_token_issuer="https://smart.example.org",
    fhir_user="Practitioner/smart-Practitioner-71482713",
    token_url="https://smart.example.org/auth/token",
    authorize_url="https://smart.example.org/auth/authorize",
    jwks_url="https://smart.example.org/keys",
    openid_config_url="https://smart.example.org/.well-known/openid-configuration",
)
VENDORS = {shape.vendor: shape for shape in (EPIC, ORACLE, GENERIC)}


@dataclass
class TokenCall:
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class RecordedEHR:
    """One EHR (authorization server + FHIR API) answering from its vendor's fixtures."""

    shape: VendorShape
    rsps: responses.RequestsMock
    signing_key: RSAKey
    token_calls: list[TokenCall] = field(default_factory=list)
    fhir_calls: list[tuple[str, str | None]] = field(default_factory=list)
    #: Inject a failure: (status, body) answered by the token endpoint instead of tokens.
    token_failure: tuple[int, dict[str, Any]] | None = None
    #: Sign id_tokens with this key instead (to test bad signatures).
    id_token_key: RSAKey | None = None
    expires_in: int | None = None
    valid_tokens: set[str] = field(default_factory=set)
    refreshes: int = 0
    #: DocumentReferences created through the API, and faults to inject into the next creates:
    #: "500", "429", "timeout-after-create" (the server stores it, the client never hears back); refusals:
    #: "403-scope", "403", "405", "422".
    notes: list[dict[str, Any]] = field(default_factory=list)
    create_faults: list[str] = field(default_factory=list)
    create_attempts: int = 0
    honours_conditional: bool = True
    #: Sign in as someone else than the vendor's practitioner (e.g. "Patient/123" for a portal launch).
    fhir_user: str | None = None
    #: Grant these scopes instead of the fixture's.
    scope: str | None = None
    #: Mint id_tokens claiming this issuer (an attacker's), signed with `id_token_key` when set.
    id_token_iss: str | None = None
    #: Ids whose reads this EHR answers 404 (a launch of a patient its FHIR server does not have).
    missing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        shape = self.shape
        folder = shape.vendor
        if (FIXTURES / folder / "smart-configuration.json").exists():
            self.rsps.get(
                f"{shape.iss}/.well-known/smart-configuration",
                json=load_fixture(f"{folder}/smart-configuration.json"),
            )
        else:
            self.rsps.get(f"{shape.iss}/.well-known/smart-configuration", status=404, body="Not Found")
        self.rsps.get(f"{shape.iss}/metadata", json=load_fixture(f"{folder}/metadata.json"))
        if shape.openid_config_url:
            self.rsps.get(
                shape.openid_config_url, json={"issuer": shape.id_token_issuer, "jwks_uri": shape.jwks_url}
            )
        public = self.signing_key.as_dict(private=False)
        self.rsps.get(
            shape.jwks_url, json={"keys": [{**public, "kid": "ehr-1", "alg": "RS256", "use": "sig"}]}
        )
        self.rsps.add_callback(responses.POST, shape.token_url, callback=self._token)
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{re.escape(shape.iss)}/(Patient|Practitioner)/[^/?]+$"),
            callback=self._fhir_read,
        )
        self.rsps.add_callback(
            responses.GET,
            re.compile(rf"{re.escape(shape.iss)}/(Observation|Condition|DocumentReference)(\?.*)?$"),
            callback=self._fhir_search,
        )
        self.rsps.add_callback(responses.POST, f"{shape.iss}/DocumentReference", callback=self._create_note)

    # --- token endpoint ----------------------------------------------------------------------------

    def id_token(self, *, aud: str | None = None, exp_in: int = 300) -> str:
        now = int(time.time())
        claims = {
            "iss": self.id_token_iss or self.shape.id_token_issuer,
            "sub": "user-1",
            "aud": aud or self.shape.client_id,
            "iat": now,
            "exp": now + exp_in,
            "fhirUser": self.fhir_user or self.shape.fhir_user,
        }
        key = self.id_token_key or self.signing_key
        return jwt.encode({"alg": "RS256", "kid": "ehr-1"}, claims, key)

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {k: v[0] for k, v in parse_qs(request.body or "").items()}
        self.token_calls.append(TokenCall(form=form, headers=dict(request.headers)))
        if self.token_failure is not None:
            status, body = self.token_failure
            return status, {"Content-Type": "application/json"}, json.dumps(body)
        folder = self.shape.vendor
        if form.get("grant_type") == "refresh_token":
            self.refreshes += 1
            path = FIXTURES / folder / "token-refresh.json"
            body = load_fixture(f"{folder}/token-refresh.json") if path.exists() else self._launch_body()
            body = copy.deepcopy(body)
            body["access_token"] = f"{self.shape.vendor}-access-refreshed-{self.refreshes}"
            if self.shape.rotates_refresh_token:
                body["refresh_token"] = f"{self.shape.vendor}-refresh-rotated-{self.refreshes}"
            else:
                body.pop("refresh_token", None)
            body.pop("id_token", None)
        else:
            body = self._launch_body()
            body["id_token"] = self.id_token()
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        self.valid_tokens.add(body["access_token"])
        return 200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(body)

    def _launch_body(self) -> dict[str, Any]:
        body: dict[str, Any] = copy.deepcopy(load_fixture(f"{self.shape.vendor}/token-ehr-launch.json"))
        if self.scope is not None:
            body["scope"] = self.scope
        return body

    # --- FHIR --------------------------------------------------------------------------------------

    def _fhir_read(self, request: Any) -> tuple[int, dict[str, str], str]:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        resource_type, resource_id = request.path_url.split("?")[0].rstrip("/").split("/")[-2:]
        self.fhir_calls.append((f"{resource_type}/{resource_id}", token))
        if token not in self.valid_tokens:
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}
            return (
                401,
                {"Content-Type": "application/fhir+json", "WWW-Authenticate": 'Bearer error="invalid_token"'},
                json.dumps(outcome),
            )
        fixture = FIXTURES / self.shape.vendor / f"{resource_type}.json"
        if not fixture.exists() or f"{resource_type}/{resource_id}" in self.missing:
            return (
                404,
                {"Content-Type": "application/fhir+json"},
                json.dumps(
                    {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "not-found"}],
                    }
                ),
            )
        body = load_fixture(f"{self.shape.vendor}/{resource_type}.json")
        body["id"] = resource_id
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    def _fhir_search(self, request: Any) -> tuple[int, dict[str, str], str]:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        resource_type = request.path_url.split("?")[0].rstrip("/").split("/")[-1]
        self.fhir_calls.append((f"{resource_type}?", token))
        if token not in self.valid_tokens:
            return (
                401,
                {"Content-Type": "application/fhir+json"},
                json.dumps({"resourceType": "OperationOutcome"}),
            )
        if resource_type == "DocumentReference":
            wanted = parse_qs(request.path_url.split("?", 1)[-1]).get("identifier", [""])[0]
            found = [
                n
                for n in self.notes
                if f"{n['identifier'][0]['system']}|{n['identifier'][0]['value']}" == wanted
            ]
            body = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": n} for n in found]}
        else:
            body = load_fixture(f"{self.shape.vendor}/{resource_type}-search.json")
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    def _create_note(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.create_attempts += 1
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return (
                401,
                {"Content-Type": "application/fhir+json"},
                json.dumps({"resourceType": "OperationOutcome"}),
            )
        fault = self.create_faults.pop(0) if self.create_faults else None
        if fault == "500":
            return (
                500,
                {"Content-Type": "application/fhir+json"},
                json.dumps({"resourceType": "OperationOutcome"}),
            )
        if fault == "429":
            return 429, {"Retry-After": "2"}, ""
        refusals = {  # the EHR refuses the note (ehr-integration.md §4: 403 with insufficient_scope, …)
            "403-scope": (403, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}),
            "403": (403, {}),
            "405": (405, {}),
            "422": (422, {}),
        }
        if fault in refusals:
            status, headers = refusals[fault]
            outcome = {"resourceType": "OperationOutcome",
                       "issue": [{"severity": "error", "code": "forbidden", "diagnostics": "refused"}]}  # fmt: skip
            return status, {"Content-Type": "application/fhir+json", **headers}, json.dumps(outcome)
        note = json.loads(request.body)
        condition = request.headers.get("If-None-Exist", "").removeprefix("identifier=")
        existing = [
            n
            for n in self.notes
            if f"{n['identifier'][0]['system']}|{n['identifier'][0]['value']}" == condition
        ]
        if existing and self.honours_conditional:
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(existing[0])
        note["id"] = f"note-{len(self.notes) + 1}"
        self.notes.append(note)
        if fault == "timeout-after-create":
            raise requests.Timeout("the answer was lost")
        return 201, {"Content-Type": "application/fhir+json"}, json.dumps(note)

    def revoke_all_tokens(self) -> None:
        self.valid_tokens.clear()


def basic_credentials(header: str) -> tuple[str, str]:
    user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    return user, password


def new_id() -> str:
    return uuid.uuid4().hex

"""The sandbox EHR's SMART Backend Services, as the worker meets them: client_credentials with a private_key_jwt
assertion (RS384/ES384, aud = the token URL, exp at most five minutes, each jti once), system scopes only, tokens
bound to one EHR, and the Epic-like EHR's rule that Observation searches name a patient."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OctKey

from launch.keys import KeyRing
from launch.oauth import make_client_assertion
from sandbox.app import SandboxConfig, backend_client_id, create_sandbox_app

PUBLIC = "http://127.0.0.1:9"
TOKEN_URL = f"{PUBLIC}/auth/token"


@pytest.fixture
def ehr(key_ring: KeyRing) -> FlaskClient:
    config = SandboxConfig(public_url=PUBLIC, fhir_url="http://127.0.0.1:1/fhir", tandem_url="http://localhost:2",
                           backend_jwks=key_ring.public_jwks())  # fmt: skip
    return create_sandbox_app(config).test_client()


def _kid(ring: KeyRing, alg: str) -> str:
    return next(k for k in ring.kids if alg.lower() in k)


def _token(ehr: FlaskClient, assertion: str, scope: str = "system/Observation.rs system/Group.rs",
           client_id: str | None = None) -> Any:  # fmt: skip
    form = {"grant_type": "client_credentials", "scope": scope, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}  # fmt: skip
    if client_id:
        form["client_id"] = client_id
    return ehr.post("/auth/token", data=form)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_signed_assertion_gets_a_short_system_token(ehr: FlaskClient, key_ring: KeyRing, alg: str) -> None:
    assertion = make_client_assertion(
        backend_client_id("generic"), TOKEN_URL, key_ring.get(_kid(key_ring, alg))
    )
    answer = _token(ehr, assertion, "system/Observation.rs patient/Patient.r openid")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["token_type"].lower() == "bearer" and body["expires_in"] == 300
    assert body["scope"] == "system/Observation.rs"  # only system scopes are granted
    assert "patient" not in body and "refresh_token" not in body and "id_token" not in body


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    client = backend_client_id("generic")
    return {"iss": client, "sub": client, "aud": TOKEN_URL, "jti": str(uuid.uuid4()), "iat": now, "exp": now + 240,
            **overrides}  # fmt: skip


@pytest.mark.parametrize(("claims", "why"), [
    ({"aud": f"{PUBLIC}/other/token"}, "aud is another URL"),
    ({"exp": int(time.time()) - 120}, "expired"),
    ({"exp": int(time.time()) + 3600}, "lives an hour"),
    ({"iss": "someone-else"}, "iss is not the client"),
    ({"sub": "tandem-backend-unknown", "iss": "tandem-backend-unknown"}, "unknown client"),
])  # fmt: skip
def test_bad_assertions_are_refused(
    ehr: FlaskClient, key_ring: KeyRing, claims: dict[str, Any], why: str
) -> None:
    key = key_ring.get(_kid(key_ring, "RS384"))
    assertion = jwt.encode({"alg": "RS384", "kid": key.kid}, _claims(**claims), key.key, algorithms=["RS384"])
    answer = _token(ehr, assertion)
    assert answer.status_code in (400, 401), why
    assert answer.json["error"] == "invalid_client", why


def test_a_replayed_assertion_and_symmetric_signatures_are_refused(
    ehr: FlaskClient, key_ring: KeyRing
) -> None:
    assertion = make_client_assertion(
        backend_client_id("generic"), TOKEN_URL, key_ring.get(_kid(key_ring, "RS384"))
    )
    assert _token(ehr, assertion).status_code == 200
    assert _token(ehr, assertion).json["error"] == "invalid_client"  # the same jti again
    secret = OctKey.generate_key(256)
    hs256 = jwt.encode({"alg": "HS256"}, _claims(), secret, algorithms=["HS256"])
    assert _token(ehr, hs256).json["error"] == "invalid_client"


def test_only_system_scopes_and_only_backend_clients(ehr: FlaskClient, key_ring: KeyRing) -> None:
    assertion = make_client_assertion(
        backend_client_id("generic"), TOKEN_URL, key_ring.get(_kid(key_ring, "RS384"))
    )
    assert _token(ehr, assertion, "patient/Observation.rs").json["error"] == "invalid_scope"
    user_app = ehr.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "tandem-sandbox",
                                             "scope": "system/Observation.rs"})  # fmt: skip
    assert user_app.status_code in (400, 401)


def _system_token(ehr: FlaskClient, ring: KeyRing, mode: str) -> str:
    assertion = make_client_assertion(backend_client_id(mode), TOKEN_URL, ring.get(_kid(ring, "RS384")))
    return str(_token(ehr, assertion, "system/Observation.rs").json["access_token"])


def test_a_system_token_is_for_its_own_ehr_and_epic_wants_a_patient(
    ehr: FlaskClient, key_ring: KeyRing
) -> None:
    epic = {"Authorization": f"Bearer {_system_token(ehr, key_ring, 'epic')}"}
    assert ehr.get("/generic/fhir/Observation?patient=pt-0001", headers=epic).status_code == 401
    refused = ehr.get("/epic/fhir/Observation?code=http://loinc.org|44261-6", headers=epic)
    assert refused.status_code == 400
    assert "only with a patient parameter" in refused.json["issue"][0]["diagnostics"]
    files = ehr.get("/epic/fhir/bulk-files/job/Observation.ndjson", headers=epic)  # no system/Group scope
    assert files.status_code == 403

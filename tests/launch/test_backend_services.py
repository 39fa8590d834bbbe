"""SMART Backend Services for population jobs and the registry store."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from joserfc import jwt
from joserfc.jwk import KeySet

from launch import errors
from launch.backend import BackendServicesAuth
from launch.fhir import FHIRClient
from launch.keys import KeyRing
from launch.transport import HttpTransport
from smartapp import create_app

TOKEN_URL = "https://registry.example.org/auth/token"
REGISTRY = "https://registry.example.org/fhir"


class TokenServer:
    def __init__(self, ring: KeyRing, expires_in: int = 300) -> None:
        self.public = KeySet.import_key_set(ring.public_jwks())  # type: ignore[arg-type]
        self.expires_in = expires_in
        self.assertions: list[dict[str, Any]] = []
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.forms.append(form)
        token = jwt.decode(form["client_assertion"], self.public, algorithms=["RS384", "ES384"])
        self.assertions.append({"header": token.header, "claims": token.claims})
        body = {"access_token": f"system-token-{len(self.forms)}", "token_type": "bearer",
                "expires_in": self.expires_in, "scope": form["scope"]}  # fmt: skip
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
@responses.activate
def test_each_token_gets_a_new_signed_assertion(key_ring: KeyRing, alg: str) -> None:
    server = TokenServer(key_ring, expires_in=1)
    responses.add_callback(responses.POST, TOKEN_URL, callback=server)
    kid = next(k for k in key_ring.kids if alg.lower() in k)
    auth = BackendServicesAuth(HttpTransport(), token_url=TOKEN_URL, client_id="tandem-registry",
                               signing_key=key_ring.get(kid), scopes=["system/CarePlan.cruds", "system/Task.cruds"],
                               margin_seconds=0)  # fmt: skip
    assert auth.token() == "system-token-1"
    time.sleep(1.05)
    assert auth.token() == "system-token-2"  # expired: no refresh token, a new assertion instead
    assert [f["grant_type"] for f in server.forms] == ["client_credentials", "client_credentials"]
    assert server.forms[0]["scope"] == "system/CarePlan.cruds system/Task.cruds"
    claims = [a["claims"] for a in server.assertions]
    assert claims[0]["jti"] != claims[1]["jti"]
    for assertion in server.assertions:
        assert assertion["header"]["alg"] == alg and assertion["header"]["kid"] == kid
        c = assertion["claims"]
        assert c["iss"] == c["sub"] == "tandem-registry" and c["aud"] == TOKEN_URL
        assert c["exp"] - c["iat"] <= 300


@responses.activate
def test_token_is_reused_until_it_nearly_expires(key_ring: KeyRing) -> None:
    server = TokenServer(key_ring, expires_in=300)
    responses.add_callback(responses.POST, TOKEN_URL, callback=server)
    auth = BackendServicesAuth(HttpTransport(), token_url=TOKEN_URL, client_id="c",
                               signing_key=key_ring.get(sorted(key_ring.kids)[0]), scopes=["system/*.rs"])  # fmt: skip
    assert auth.token() == auth.token() == "system-token-1"
    assert len(server.forms) == 1


@responses.activate
def test_refused_backend_token_is_a_token_error(key_ring: KeyRing) -> None:
    responses.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    auth = BackendServicesAuth(HttpTransport(), token_url=TOKEN_URL, client_id="c",
                               signing_key=key_ring.get(sorted(key_ring.kids)[0]), scopes=["system/*.rs"])  # fmt: skip
    with pytest.raises(errors.TokenError, match="invalid_client"):
        auth.token()


@responses.activate
def test_registry_client_from_configuration_uses_backend_services(key_ring: KeyRing, key_file: Any,
                                                                  redis_url: str) -> None:  # fmt: skip
    server = TokenServer(key_ring)
    responses.add_callback(responses.POST, TOKEN_URL, callback=server)
    responses.get(f"{REGISTRY}/CarePlan", json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    kid = sorted(key_ring.kids)[0]
    app = create_app(environ={
        "TANDEM_REDIS_URL": redis_url, "TANDEM_KEYS_FILE": str(key_file), "TANDEM_REGISTRY_URL": REGISTRY,
        "TANDEM_REGISTRY_AUTH": "backend-services", "TANDEM_REGISTRY_CLIENT_ID": "tandem-registry",
        "TANDEM_REGISTRY_TOKEN_URL": TOKEN_URL, "TANDEM_REGISTRY_KEY_ID": kid,
        "TANDEM_REGISTRY_SCOPES": "system/CarePlan.cruds",
    })  # fmt: skip
    registry: FHIRClient = app.extensions["tandem"].registry
    registry.search("CarePlan", {"status": "active"})
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer system-token-1"
    assert server.forms[0]["scope"] == "system/CarePlan.cruds"


def test_registry_key_id_must_exist(key_file: Any) -> None:
    from launch.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no signing key with kid 'missing'"):
        create_app(environ={
            "TANDEM_KEYS_FILE": str(key_file), "TANDEM_REGISTRY_URL": REGISTRY,
            "TANDEM_REGISTRY_AUTH": "backend-services", "TANDEM_REGISTRY_CLIENT_ID": "c",
            "TANDEM_REGISTRY_TOKEN_URL": TOKEN_URL, "TANDEM_REGISTRY_KEY_ID": "missing",
        })  # fmt: skip

"""Health probes, the JWKS endpoint, the landing page and generic error pages."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from launch.keys import KeyRing
from smartapp import create_app

REGISTRY = "https://registry.example.org/fhir"


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_without_a_registry_in_development(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"store": "ok", "registry": "not configured"}


@pytest.mark.parametrize(("status", "ready"), [(200, True), (500, False)])
@responses.activate
def test_readyz_checks_the_registry_store(environ: dict[str, str], redis_store: Any, status: int, ready: bool
                                          ) -> None:  # fmt: skip
    body = {"resourceType": "CapabilityStatement", "status": "active"} if status == 200 else {}
    responses.get(f"{REGISTRY}/metadata", json=body, status=status)
    app = create_app(environ={**environ, "TANDEM_REGISTRY_URL": REGISTRY})
    response = app.test_client().get("/readyz")
    assert response.status_code == (200 if ready else 503)
    assert response.json["checks"]["store"] == "ok"
    assert (response.json["checks"]["registry"] == "ok") is ready


def test_readyz_fails_when_redis_is_down(environ: dict[str, str]) -> None:
    app = create_app(environ={**environ, "TANDEM_REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["store"] == "unreachable"


def test_jwks_publishes_only_public_keys(client: FlaskClient, key_ring: KeyRing) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json["keys"]
    assert {k["kid"] for k in keys} == key_ring.kids
    assert {k["alg"] for k in keys} == {"RS384", "ES384"}
    assert all("d" not in k for k in keys)


def test_landing_page_lists_registered_ehrs(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert "Epic (test)" in html and "Oracle Health (test)" in html


def test_unknown_page_gets_a_friendly_404(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Not Found" in response.get_data(as_text=True)


def test_pages_can_be_framed_and_carry_a_csp(client: FlaskClient) -> None:
    response = client.get("/")
    assert "X-Frame-Options" not in response.headers
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert (
        response.headers["Referrer-Policy"] == "same-origin"
    )  # launch ids never leave; CSRF sees the Referer

"""Bad launches end on a clear page, never a stack trace, and never redirect to an unknown place."""

from __future__ import annotations

import time

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from markupsafe import escape

from launch.sessions import LaunchSession

from ..conftest import APP_BASE, finish_launch, full_launch, make_ehr, start_launch
from ..ehr import EPIC, RecordedEHR, load_fixture


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


@pytest.fixture
def oracle(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("oracle", rsps, ehr_signing_key)


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ({}, "The launch request was incomplete"),
        ({"launch": "abc"}, "The launch request was incomplete"),
        ({"iss": "https://evil.example.com/fhir", "launch": "abc"}, "This EHR is not registered with Tandem"),
        ({"iss": "https://evil.example.com/fhir"}, "This EHR is not registered with Tandem"),
        ({"iss": "javascript:alert(1)"}, "This EHR is not registered with Tandem"),
    ],
    ids=["no-params", "missing-iss", "unknown-iss-ehr-launch", "unknown-iss-standalone", "junk-iss"],
)
def test_bad_launch_requests_get_a_400_page_and_no_redirect(
    client: FlaskClient, rsps: responses.RequestsMock, query: dict[str, str], title: str
) -> None:
    response = client.get("/launch", query_string=query, base_url=APP_BASE)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert title in response.get_data(as_text=True)
    assert len(rsps.calls) == 0  # nothing was fetched from an untrusted issuer


@pytest.mark.parametrize(
    ("case", "status", "title"),
    [
        ("state-mismatch", 400, "This sign-in link has expired or was already used"),
        ("state-missing", 400, "This sign-in link has expired or was already used"),
        ("state-reused", 400, "This sign-in link has expired or was already used"),
        ("other-browser", 400, "This sign-in link has expired or was already used"),
        ("access-denied", 403, "The EHR did not authorize Tandem"),
        ("no-code", 400, "The launch request was incomplete"),
        ("token-400", 502, "The EHR refused to sign Tandem in"),
        ("token-500", 502, "The EHR refused to sign Tandem in"),
        ("token-not-json", 502, "The EHR refused to sign Tandem in"),
        ("id-token-bad-signature", 502, "The EHR's identity token could not be verified"),
        ("id-token-wrong-audience", 502, "The EHR's identity token could not be verified"),
    ],
)
def test_bad_callbacks_get_a_clear_page(
    app: Flask, client: FlaskClient, epic: RecordedEHR, rsps: responses.RequestsMock, case: str, status: int,
    title: str,
) -> None:  # fmt: skip
    params = start_launch(client, epic)
    callback = {"state": params["state"], "code": "code-1"}
    if case == "state-mismatch":
        callback["state"] = "not-the-state"
    elif case == "state-missing":
        del callback["state"]
    elif case == "state-reused":
        finish_launch(client, params["state"])
    elif case == "other-browser":
        client = app.test_client()
    elif case == "access-denied":
        callback = {
            "state": params["state"],
            "error": "access_denied",
            "error_description": "The user denied",
        }
    elif case == "no-code":
        del callback["code"]
    elif case == "token-400":
        epic.token_failure = (400, {"error": "invalid_grant", "error_description": "code expired"})
    elif case == "token-500":
        epic.token_failure = (500, {})
    elif case == "token-not-json":
        rsps.replace(responses.POST, epic.shape.token_url, body="<html>oops</html>", status=200)
    elif case == "id-token-bad-signature":
        epic.id_token_key = RSAKey.generate_key(2048)
    elif case == "id-token-wrong-audience":
        original = epic.id_token
        epic.id_token = lambda **kw: original(aud="someone-else")  # type: ignore[method-assign]

    response = client.get("/callback", query_string=callback, base_url=APP_BASE)
    html = response.get_data(as_text=True)
    assert response.status_code == status, html
    assert str(escape(title)) in html
    assert "Traceback" not in html
    assert "Location" not in response.headers
    if case == "access-denied":
        assert "access_denied" in html
    if case == "token-400":
        assert "invalid_grant" in html


def test_token_endpoint_is_not_retried(client: FlaskClient, epic: RecordedEHR) -> None:
    """Authorization codes are single use: a 5xx on the exchange is reported, not replayed."""
    params = start_launch(client, epic)
    epic.token_failure = (503, {})
    client.get("/callback", query_string={"state": params["state"], "code": "c"}, base_url=APP_BASE)
    assert len(epic.token_calls) == 1


def _expire(app: Flask, launch_id: str) -> None:
    sessions = app.extensions["tandem"].sessions
    session: LaunchSession = sessions.load(launch_id)
    sessions.save(session.__class__(**{**session.__dict__, "expires_at": time.time() - 10}))


def test_expired_token_is_refreshed_and_oracle_keeps_its_refresh_token(
    app: Flask, client: FlaskClient, oracle: RecordedEHR
) -> None:
    launch_id = full_launch(client, oracle)
    sessions = app.extensions["tandem"].sessions
    original_refresh = sessions.load(launch_id).refresh_token
    _expire(app, launch_id)

    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert page.status_code == 200
    assert oracle.token_calls[-1].form["grant_type"] == "refresh_token"
    assert oracle.token_calls[-1].form["refresh_token"] == original_refresh
    refreshed = sessions.load(launch_id)
    assert refreshed.access_token == "oracle-access-refreshed-1"
    assert refreshed.refresh_token == original_refresh  # Oracle does not rotate: the old one is kept
    assert 560 <= refreshed.expires_at - time.time() <= 570


def test_epic_rotated_refresh_token_replaces_the_old_one(
    app: Flask, client: FlaskClient, epic: RecordedEHR
) -> None:
    launch_id = full_launch(client, epic)
    _expire(app, launch_id)
    assert client.get(f"/app/{launch_id}/", base_url=APP_BASE).status_code == 200
    assert app.extensions["tandem"].sessions.load(launch_id).refresh_token == "epic-refresh-rotated-1"


def test_token_refreshed_before_expiry_not_after(app: Flask, client: FlaskClient, epic: RecordedEHR) -> None:
    launch_id = full_launch(client, epic)
    sessions = app.extensions["tandem"].sessions
    session = sessions.load(launch_id)
    sessions.save(
        session.__class__(
            **{**session.__dict__, "issued_at": time.time() - 3210, "expires_at": time.time() + 30}
        )
    )  # a 3,240 s token with 30 s left: inside the margin
    client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert epic.refreshes == 1
    client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert epic.refreshes == 1  # a fresh token is reused


def test_token_revoked_mid_session_is_refreshed_once_and_the_read_retried(
    client: FlaskClient, epic: RecordedEHR
) -> None:
    launch_id = full_launch(client, epic)
    epic.revoke_all_tokens()  # the EHR answers 401 although the token has not expired
    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert page.status_code == 200
    assert epic.refreshes == 1
    statuses = [token for _, token in epic.fhir_calls]
    assert statuses[-1] == "epic-access-refreshed-1"


@pytest.mark.parametrize("cause", ["no-refresh-token", "refresh-refused"])
def test_expired_session_asks_to_launch_again(
    app: Flask, client: FlaskClient, epic: RecordedEHR, cause: str
) -> None:
    launch_id = full_launch(client, epic)
    sessions = app.extensions["tandem"].sessions
    session = sessions.load(launch_id)
    changes = {"expires_at": time.time() - 5}
    if cause == "no-refresh-token":
        changes["refresh_token"] = None
    else:
        epic.token_failure = (400, {"error": "invalid_grant"})
    sessions.save(session.__class__(**{**session.__dict__, **changes}))

    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert page.status_code == 401
    html = page.get_data(as_text=True)
    assert "Your Tandem session has ended" in html and "Launch Tandem again from the EHR" in html


def test_unknown_launch_id_asks_to_launch_again(client: FlaskClient) -> None:
    page = client.get("/app/not-a-launch/", base_url=APP_BASE)
    assert page.status_code == 401
    assert "Launch Tandem again from the EHR" in page.get_data(as_text=True)


def test_error_pages_do_not_leak_tokens_or_ids_into_logs(
    client: FlaskClient, epic: RecordedEHR, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    launch_id = full_launch(client, epic)
    client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    logged = caplog.text
    for secret in [*epic.valid_tokens, "erXuFYUfucBZaryVksYEcMg3", "Camila", "1987-09-12", launch_id]:
        assert secret not in logged


@pytest.mark.parametrize(
    "answer",
    [{"body": requests.ConnectionError("refused")}, {"status": 500}],
    ids=["unreachable", "server-error"],
)
def test_registered_ehr_without_reachable_discovery_gets_a_502_page(
    client: FlaskClient, rsps: responses.RequestsMock, answer: dict
) -> None:
    rsps.get(f"{EPIC.iss}/.well-known/smart-configuration", **answer)
    rsps.get(f"{EPIC.iss}/metadata", **answer)
    response = client.get("/launch", query_string={"iss": EPIC.iss, "launch": "x"}, base_url=APP_BASE)
    assert response.status_code == 502
    assert "Location" not in response.headers
    assert str(escape("The EHR's sign-in service could not be found")) in response.get_data(as_text=True)


def test_server_that_refuses_s256_is_not_launched(client: FlaskClient, rsps: responses.RequestsMock) -> None:
    config = {**load_fixture("epic/smart-configuration.json"), "code_challenge_methods_supported": ["plain"]}
    rsps.get(f"{EPIC.iss}/.well-known/smart-configuration", json=config)
    response = client.get("/launch", query_string={"iss": EPIC.iss, "launch": "x"}, base_url=APP_BASE)
    assert response.status_code == 502 and "Location" not in response.headers
    assert "PKCE with S256" in response.get_data(as_text=True)


def test_nearly_expired_token_without_refresh_token_is_used_until_it_expires(
    app: Flask, client: FlaskClient, epic: RecordedEHR
) -> None:
    launch_id = full_launch(client, epic)
    sessions = app.extensions["tandem"].sessions
    session = sessions.load(launch_id)
    changes = {"expires_at": time.time() + 30, "refresh_token": None}
    sessions.save(session.__class__(**{**session.__dict__, **changes}))
    assert client.get(f"/app/{launch_id}/", base_url=APP_BASE).status_code == 200
    assert epic.refreshes == 0

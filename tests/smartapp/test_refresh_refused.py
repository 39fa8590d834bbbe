"""A refused refresh token is never tried again: one grant request, then the session asks for a relaunch.
Only answers that are not refusals (429, 502-504) are retried.

Source: RFC 6749 §5.2 (invalid_grant: the refresh token is invalid, expired or revoked — a new one needs a new
authorization), RFC 6585 §4 (429) and RFC 9110 §15.6.4 (503): "try again later". The tester saw 3 grants in 110 ms
for one refused refresh token against the SMART reference launcher (issue 26 §3).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from ..conftest import APP_BASE, full_launch, make_ehr
from ..ehr import RecordedEHR


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


def _expire(app: Flask, launch_id: str) -> None:
    sessions = app.extensions["tandem"].sessions
    session = sessions.load(launch_id)
    sessions.save(session.__class__(**{**session.__dict__, "expires_at": time.time() - 5}))


def _grants(rsps: responses.RequestsMock, epic: RecordedEHR) -> int:
    return sum(
        call.request.url == epic.shape.token_url and "grant_type=refresh_token" in (call.request.body or "")
        for call in rsps.calls
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "invalid_grant", "error_description": "refresh token revoked"}),  # RFC 6749 §5.2
        (400, {"error": "invalid_grant"}),
        (401, {"error": "invalid_client"}),  # RFC 6749 §5.2: 401 when the client authenticated
        (401, {}),
    ],
    ids=["invalid_grant-described", "invalid_grant", "401-invalid_client", "401-empty"],
)
def test_a_refused_refresh_token_is_asked_for_once_and_the_page_asks_for_a_relaunch(
    app: Flask, client: FlaskClient, epic: RecordedEHR, rsps: responses.RequestsMock, status: int,
    body: dict[str, Any],
) -> None:  # fmt: skip
    launch_id = full_launch(client, epic)
    _expire(app, launch_id)
    epic.token_failure = (status, body)
    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert _grants(rsps, epic) == 1
    assert page.status_code == 401
    html = page.get_data(as_text=True)
    assert "Your Tandem session has ended" in html and "Launch Tandem again from the EHR" in html
    # Later requests of this launch ask no more grants either.
    client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert _grants(rsps, epic) == 1
    assert app.extensions["tandem"].sessions.load(launch_id) is None


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_token_endpoint_is_asked_again_and_the_refresh_succeeds(
    app: Flask, client: FlaskClient, epic: RecordedEHR, rsps: responses.RequestsMock, status: int
) -> None:
    launch_id = full_launch(client, epic)
    _expire(app, launch_id)
    original = epic._token
    answers = [(status, {"error": "temporarily_unavailable"})]

    def token(request: Any) -> tuple[int, dict[str, str], str]:
        if answers:
            code, body = answers.pop(0)
            return code, {"Content-Type": "application/json", "Retry-After": "0"}, json.dumps(body)
        return original(request)

    rsps.remove(responses.POST, epic.shape.token_url)
    rsps.add_callback(responses.POST, epic.shape.token_url, callback=token)
    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert page.status_code == 200
    assert _grants(rsps, epic) == 2
    assert app.extensions["tandem"].sessions.load(launch_id).access_token == "epic-access-refreshed-1"

"""Launch-scoped sessions: isolation between launches and browsers (CSRF on forms: tests/smartapp/test_forms.py)."""

from __future__ import annotations

import copy

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from ..conftest import APP_BASE, finish_launch, full_launch, make_ehr, query, start_launch
from ..ehr import RecordedEHR, load_fixture


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


def _patient_launch_body(patient_id: str):  # type: ignore[no-untyped-def]
    body = copy.deepcopy(load_fixture("epic/token-ehr-launch.json"))
    body["patient"] = patient_id
    body["access_token"] = f"token-for-{patient_id}"
    return body


def test_two_simultaneous_launches_in_one_browser_stay_isolated(
    client: FlaskClient, epic: RecordedEHR, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two EHR tabs (or iframes) launch for two patients; both authorize before either callback returns."""
    bodies = iter([_patient_launch_body("patient-A"), _patient_launch_body("patient-B")])
    monkeypatch.setattr(epic, "_launch_body", lambda: next(bodies))

    first = start_launch(client, epic, launch="launch-for-A")
    second = start_launch(client, epic, launch="launch-for-B")
    assert first["state"] != second["state"]
    launch_a = finish_launch(client, first["state"])
    launch_b = finish_launch(client, second["state"])
    assert launch_a != launch_b

    # Interleaved requests: each launch reads only its own patient, with its own token.
    for launch_id, patient, token in [
        (launch_b, "patient-B", "token-for-patient-B"),
        (launch_a, "patient-A", "token-for-patient-A"),
        (launch_b, "patient-B", "token-for-patient-B"),
    ]:
        page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
        assert page.status_code == 200
        assert f'data-patient-id="{patient}"' in page.get_data(as_text=True)
        assert (f"Patient/{patient}", token) in epic.fhir_calls
    for call, token in epic.fhir_calls:
        if call.startswith("Patient/"):
            assert token == f"token-for-{call.split('/')[1]}", "a launch used another launch's token"


def test_a_launch_cannot_be_used_from_another_browser(
    app: Flask, client: FlaskClient, epic: RecordedEHR
) -> None:
    launch_id = full_launch(client, epic)
    stranger = app.test_client()
    page = stranger.get(f"/app/{launch_id}/", base_url=APP_BASE)
    assert page.status_code == 401
    assert "Camila" not in page.get_data(as_text=True)


def test_cookies_are_per_authorization_and_per_launch_and_hold_no_token(client: FlaskClient, epic: RecordedEHR
                                                                       ) -> None:  # fmt: skip
    response = client.get("/launch", query_string={"iss": epic.shape.iss, "launch": "l"}, base_url=APP_BASE)
    (auth_cookie,) = response.headers.getlist("Set-Cookie")
    assert auth_cookie.startswith("tandem_auth_") and "Path=/callback;" in auth_cookie
    for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Max-Age=600"):
        assert attribute in auth_cookie

    finish = client.get("/callback", query_string={"state": _state(response), "code": "c"}, base_url=APP_BASE)
    launch_id = finish.headers["Location"].split("/")[-2]
    cookies = finish.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("tandem_session="))
    assert f"Path=/app/{launch_id}/;" in session_cookie
    for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned"):
        assert attribute in session_cookie
    cleared = next(c for c in cookies if c.startswith("tandem_auth_"))
    assert "Max-Age=0" in cleared or "Expires=Thu, 01 Jan 1970" in cleared
    for token in epic.valid_tokens:
        assert all(token not in cookie for cookie in cookies)
        assert token not in finish.get_data(as_text=True)


def test_simultaneous_launches_started_before_any_cookie_came_back(app: Flask, epic: RecordedEHR) -> None:
    """Two iframes request /launch at the same moment: neither answer's cookie may undo the other."""
    first_browser, second_view = app.test_client(), app.test_client()
    first = first_browser.get(
        "/launch", query_string={"iss": epic.shape.iss, "launch": "a"}, base_url=APP_BASE
    )
    second = second_view.get(
        "/launch", query_string={"iss": epic.shape.iss, "launch": "b"}, base_url=APP_BASE
    )
    # The browser ends up with both cookies (different names), whatever order they were set in.
    for cookie in (*first.headers.getlist("Set-Cookie"), *second.headers.getlist("Set-Cookie")):
        name, value = cookie.split(";")[0].split("=", 1)
        first_browser.set_cookie(name, value, domain="tandem.test", path="/callback", secure=True)
    for response in (second, first):
        done = first_browser.get("/callback", query_string={"state": _state(response), "code": "c"},
                                 base_url=APP_BASE)  # fmt: skip
        assert done.status_code == 303, done.get_data(as_text=True)


def _state(response) -> str:  # type: ignore[no-untyped-def]
    return query(response.headers["Location"])["state"]

"""The EHR's answer to the authorization request is an error: the page shows the EHR's words (escaped) and the
advice that fits the error code, whether or not the answer came back with `state`.

Source: RFC 6749 §4.1.2.1 (the authorization error codes; `state` is REQUIRED only if the request had one, and an
authorization server that cannot trust the request, e.g. an unknown client, may not send it), OpenID Connect Core
§3.1.2.6 (login_required, interaction_required, consent_required).
"""

from __future__ import annotations

import pytest
import responses
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from markupsafe import escape

from smartapp.error_pages import OAUTH_ERROR_COPY

from ..conftest import APP_BASE, make_ehr, start_launch
from ..ehr import RecordedEHR


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


DESCRIPTION = 'The <b>user</b> said "no" & closed the window'

CODES = [
    # (error code, page status, title, words of the advice that fits)
    ("access_denied", 403, "The EHR did not authorize Tandem", "allow access"),
    ("invalid_request", 400, "The EHR refused Tandem's sign-in request", "Launch Tandem again"),
    ("unauthorized_client", 502, "Tandem's registration at this EHR needs attention", "allows Tandem to sign in"),
    ("unsupported_response_type", 502, "Tandem's registration at this EHR needs attention", "sign-in method"),
    ("invalid_scope", 502, "Tandem's registration at this EHR needs attention", "does not allow the access"),
    ("server_error", 502, "The EHR's sign-in service had an error", "in a minute"),
    ("temporarily_unavailable", 503, "The EHR's sign-in service is busy", "in a few minutes"),
    ("login_required", 401, "Sign in to the EHR first", "Sign in to the EHR"),
    ("interaction_required", 401, "Sign in to the EHR first", "Sign in to the EHR"),
    ("consent_required", 403, "The EHR needs your consent for Tandem", "allow access when the EHR asks"),
]  # fmt: skip


def test_every_code_in_the_table_is_tested() -> None:
    assert {code for code, *_ in CODES} == set(OAUTH_ERROR_COPY)


@pytest.mark.parametrize("with_state", [False, True], ids=["no-state", "state"])
@pytest.mark.parametrize(("code", "status", "title", "advice"), CODES, ids=[c[0] for c in CODES])
def test_an_authorization_error_shows_the_ehrs_words_and_the_advice_for_its_code(
    client: FlaskClient, epic: RecordedEHR, code: str, status: int, title: str, advice: str, with_state: bool
) -> None:
    query = {"error": code, "error_description": DESCRIPTION}
    if with_state:
        query["state"] = start_launch(client, epic)["state"]
    response = client.get("/callback", query_string=query, base_url=APP_BASE)
    html = response.get_data(as_text=True)
    assert response.status_code == status, html
    assert str(escape(title)) in html
    assert str(escape(advice)) in html
    # The EHR's own words, on the page (not only for IT), escaped.
    page, _, details = html.partition("<details>")
    assert f"The EHR said: <q>{escape(DESCRIPTION)}</q>" in page
    assert "<b>user</b>" not in html
    assert code in details  # the code itself is for the IT help desk
    assert "sign-in link has expired" not in html
    assert epic.token_calls == [] and "Location" not in response.headers


def test_an_unknown_code_without_state_gets_the_general_refusal_and_the_ehrs_words(
    client: FlaskClient,
) -> None:
    response = client.get("/callback", query_string={"error": "vendor_specific_thing"}, base_url=APP_BASE)
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and "The EHR did not authorize Tandem" in html
    assert "The EHR said" not in html  # no description was given
    assert "vendor_specific_thing" in html.partition("<details>")[2]


def test_an_error_with_a_usable_state_still_consumes_it(client: FlaskClient, epic: RecordedEHR) -> None:
    state = start_launch(client, epic)["state"]
    client.get("/callback", query_string={"state": state, "error": "access_denied"}, base_url=APP_BASE)
    again = client.get("/callback", query_string={"state": state, "code": "c"}, base_url=APP_BASE)
    assert "sign-in link has expired or was already used" in again.get_data(as_text=True)
    assert epic.token_calls == []

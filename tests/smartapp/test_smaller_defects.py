"""Smaller defects seen in the hospital test run, each with the test that failed before its fix."""

from __future__ import annotations

import csv
import io

import pytest
import responses
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from fhir_mappings.common.export import csv_text, safe_cell

from ..conftest import APP_BASE, make_ehr, start_launch


@pytest.mark.parametrize("oauth_error", ["invalid_client", "invalid_scope", "unauthorized_client"])
def test_registration_errors_send_the_clinician_to_it_not_to_relaunch(
    client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey, oauth_error: str
) -> None:
    epic = make_ehr("epic", rsps, ehr_signing_key)
    epic.token_failure = (400, {"error": oauth_error, "error_description": "client not known"})
    state = start_launch(client, epic)["state"]
    page = client.get("/callback", query_string={"state": state, "code": "c"}, base_url=APP_BASE)
    html = page.get_data(as_text=True)
    assert "registration at this EHR needs attention" in html and "Relaunching will not help" in html
    assert "launch Tandem again" not in html.lower().replace("relaunching", "")
    assert oauth_error in html  # the detail for the help desk


def test_an_error_redirect_naming_the_registration_is_not_a_relaunch(
    client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
) -> None:
    epic = make_ehr("epic", rsps, ehr_signing_key)
    state = start_launch(client, epic)["state"]
    page = client.get("/callback", base_url=APP_BASE,
                      query_string={"state": state, "error": "invalid_scope", "error_description": "bad scope"})  # fmt: skip
    assert "registration at this EHR needs attention" in page.get_data(as_text=True)


def test_an_id_token_from_another_issuer_is_refused_without_fetching_its_keys(
    client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
) -> None:
    # The generic server has only CapabilityStatement discovery (no `issuer`): the token's own `iss` used to
    # decide where the verification keys came from.
    generic = make_ehr("generic", rsps, ehr_signing_key)
    attacker = RSAKey.generate_key(2048)
    generic.id_token_key = attacker
    generic.id_token_iss = "https://attacker.example.net"
    rsps.get("https://attacker.example.net/.well-known/openid-configuration",
             json={"issuer": "https://attacker.example.net", "jwks_uri": "https://attacker.example.net/jwks"})  # fmt: skip
    rsps.get("https://attacker.example.net/jwks",
             json={"keys": [{**attacker.as_dict(private=False), "kid": "ehr-1", "alg": "RS256"}]})  # fmt: skip
    state = start_launch(client, generic)["state"]
    page = client.get("/callback", query_string={"state": state, "code": "c"}, base_url=APP_BASE)
    assert page.status_code == 502
    assert "identity token could not be verified" in page.get_data(as_text=True)
    assert not any("attacker.example.net" in call.request.url for call in rsps.calls)


def test_every_csv_cell_is_formula_safe() -> None:
    text = csv_text(
        ["Patient", "Minutes"], [['=HYPERLINK("x")', 45], ["+1", -3], ["@SUM(A1)", 0], ["Ana", 1]]
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['\'=HYPERLINK("x")', "45"] and rows[2] == ["'+1", "-3"] and rows[3][0] == "'@SUM(A1)"
    assert (
        safe_cell("-x") == "'-x"
        and safe_cell(-2) == "-2"
        and safe_cell(None) == ""
        and safe_cell(True) == "yes"
    )


def test_the_note_starts_with_its_safety_alert_line() -> None:
    from datetime import UTC, datetime

    from fhir_mappings.screening.instruments import INSTRUMENTS

    PHQ9 = INSTRUMENTS["phq9"]
    from fhir_mappings.screening.resources import Submission, note_text
    from fhir_mappings.screening.scoring import parse_answers, score

    answers, _ = parse_answers(PHQ9, {f"phq9-{n}": "LA6568-5" for n in range(1, 9)} | {"phq9-9": "LA6569-3"})
    note = note_text(Submission("0" * 32, PHQ9, answers, score(PHQ9, answers), "pt-1", datetime.now(UTC)))
    assert note.startswith("SAFETY ALERT: PHQ-9 question 9")

"""A chart launch whose patient the EHR's FHIR server does not know (Patient read 404) stops on a page that says so
(issue 26 §3): no nameless chart, and no screening form or submission under that id."""

from __future__ import annotations

import re

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from ..conftest import APP_BASE, full_launch, make_ehr
from ..ehr import RecordedEHR, load_fixture

LAUNCH_PATIENT = load_fixture("epic/token-ehr-launch.json")["patient"]
TITLE = "The EHR sent a patient that its FHIR server does not know"


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


# Issue 26 §3: every page of the launch that would show or take data for the launch's patient refuses.
@pytest.mark.parametrize(
    "page",
    ["", "screen/phq9", "screen/gad7", "safety-check"],
    ids=["chart", "phq9-form", "gad7-form", "control"],
)
def test_a_launch_of_a_patient_the_ehr_does_not_know_stops_with_a_page_that_says_so(
    client: FlaskClient, epic: RecordedEHR, page: str
) -> None:
    epic.missing.add(f"Patient/{LAUNCH_PATIENT}")
    launch_id = full_launch(client, epic)
    if page == "safety-check":  # the control: the same launch with the patient known opens its chart
        epic.missing.clear()
        shown = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
        assert shown.status_code == 200 and TITLE not in shown.get_data(as_text=True)
        return
    shown = client.get(f"/app/{launch_id}/{page}", base_url=APP_BASE)
    html = shown.get_data(as_text=True)
    assert shown.status_code == 409, html
    assert TITLE in html
    assert "contact your IT help desk" in html and "wrong FHIR server" in html
    assert 'name="submission_id"' not in html  # no form to fill in
    details = html.split("Details for your IT help desk")[0]
    assert LAUNCH_PATIENT not in details and "404" not in details  # no FHIR id or status code on the page


def test_a_submission_for_an_unknown_patient_is_refused_and_nothing_is_recorded(
    app: Flask, client: FlaskClient, epic: RecordedEHR
) -> None:
    launch_id = full_launch(client, epic)
    form = client.get(f"/app/{launch_id}/screen/phq9", base_url=APP_BASE).get_data(as_text=True)
    assert 'name="submission_id"' in form  # a form opened while the EHR still knew the patient …

    hidden = dict(
        re.findall(r'name="(csrf_token|form_once|submission_id|submission_sig)" value="([^"]+)"', form)
    )
    epic.missing.add(f"Patient/{LAUNCH_PATIENT}")
    assert client.get(f"/app/{launch_id}/", base_url=APP_BASE).status_code == 409  # … then it no longer does
    answers = {f"phq9-{i}": "LA6568-5" for i in range(1, 10)}
    posted = client.post(f"/app/{launch_id}/screen/phq9", data={**hidden, **answers}, base_url=APP_BASE,
                         headers={"Referer": f"{APP_BASE}/app/{launch_id}/screen/phq9"})  # fmt: skip
    assert posted.status_code == 409
    assert TITLE in posted.get_data(as_text=True)
    svc = app.extensions["tandem"]
    assert svc.screenings.load(hidden["submission_id"]) is None

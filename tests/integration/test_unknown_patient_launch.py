"""The sandbox EHR launches a patient its FHIR server does not have (Patient read 404): Tandem stops on a page that
says so, in every vendor mode, and no screening form of that launch opens (issue 26 §3)."""

from __future__ import annotations

import pytest

from sandbox.world import SandboxWorld

from .conftest import Browser, launch_url

pytestmark = pytest.mark.integration

TITLE = "The EHR sent a patient that its FHIR server does not know"


@pytest.mark.parametrize("mode", ["generic", "epic", "oracle"])
def test_a_launch_of_a_patient_the_ehr_does_not_have_stops(world: SandboxWorld, mode: str) -> None:
    browser = Browser()
    opened = browser.follow(launch_url(world, mode, patient="pt-9999"))
    assert opened.status_code == 409 and TITLE in opened.text
    assert "pt-9999" not in opened.text.split("Details for your IT help desk")[0]
    app = opened.url.rstrip("/")
    form = browser.get(f"{app}/screen/phq9")
    assert form.status_code == 409 and TITLE in form.text and 'name="submission_id"' not in form.text

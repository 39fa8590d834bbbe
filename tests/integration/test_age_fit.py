"""Age-aware screening and enrolment for a child in the sandbox: the banner gives the age in months, the chart
offers no adult instrument, an adult form's address says why it is not for this child, and no adult program is
offered for enrolment."""

from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.common.dates import age_text
from fhir_mappings.common.patient import birth_date
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration

CHILD = "pt-0002"  # a child 0–3 with a caregiver (sandbox/data.py)


def test_a_childs_chart_offers_only_what_fits_and_says_why(world: SandboxWorld, browser: Browser) -> None:
    patient = next(p for p in world.cohort.of_type("Patient") if p["id"] == CHILD)
    expected_age = age_text(birth_date(patient), date.today())
    assert expected_age is not None and not expected_age.endswith(" 0 y")
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=CHILD)))
    base = f"{world.tandem_url}/app/{launch_id}"
    chart = browser.get(f"{base}/")
    assert f"({expected_age})" in chart.text
    for adult_form in ("phq9", "phq9-teen", "audit-c", "gad7", "cssrs-screener"):
        assert f'/screen/{adult_form}"' not in chart.text, adult_form
    refused = browser.get(f"{base}/screen/phq9")
    assert refused.status_code == 409
    assert (
        "PHQ-9 is not for this patient&#39;s age" in refused.text
        or "PHQ-9 is not for this patient's age" in refused.text
    )
    assert "18 years and older" in refused.text and expected_age in refused.text
    enrol = browser.get(f"{base}/enrol")
    assert enrol.status_code == 200
    assert "No program Tandem runs is for a patient aged" in enrol.text
    assert 'name="program"' not in enrol.text

"""Prematurity correction against the real servers: a gestational age recorded in Tandem (registry store) or
read from the EHR under the site's code corrects the age SWYC Milestones reads for a child under 24 months; the
chart, the form and the result say so; bad input is refused and records nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import requests

from fhir_mappings.common.gestation import Gestation, corrected_age_months, observation_id
from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.common.patient import birth_date
from launch import errors
from sandbox.healthysteps_seed import EHR_GESTATION_CODE
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration

RECORDED_CHILD = "pt-0022"  # about 12 months old in the sandbox cohort
EHR_CHILD = "pt-0008"  # about 5 months old


def _born(world: SandboxWorld, child: str) -> date:
    born = birth_date(next(p for p in world.cohort.of_type("Patient") if p["id"] == child))
    assert born is not None
    return born


def _chart(world: SandboxWorld, browser: Browser, child: str) -> str:
    return (
        f"{world.tandem_url}/app/{launch_id_of(browser.follow(launch_url(world, 'generic', patient=child)))}"
    )


def test_a_gestational_age_recorded_in_tandem_corrects_the_swyc_age(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    born = _born(world, RECORDED_CHILD)
    chronological = corrected_age_months(born, date.today(), None, None)
    assert chronological is not None and 4 <= chronological < 22, (
        "the cohort's child is no longer the right age"
    )
    expected = corrected_age_months(born, date.today(), Gestation(31 * 7 + 2, "Tandem"), (24, 3))
    assert expected is not None and expected < chronological
    base = _chart(world, browser, RECORDED_CHILD)
    chart = browser.get(f"{base}/")
    assert "Gestational age at birth not recorded" in chart.text
    form = browser.get(f"{base}/screen/swyc-milestones")
    assert "No gestational age at birth is recorded" in form.text

    refused = browser.submit(f"{base}/", {"weeks": "50", "days": "0"}, action="/gestation")
    assert refused.status_code == 422 and "between 22 and 44 weeks" in refused.text
    with pytest.raises(errors.FHIRNotFound):
        tandem.registry.read("Observation", observation_id(PatientKey(world.iss("generic"), RECORDED_CHILD)))

    saved = browser.submit(f"{base}/", {"weeks": "31", "days": "2"}, action="/gestation")
    assert saved.status_code == 303
    chart = browser.get(f"{base}/")
    assert "Born at <strong>31+2 weeks</strong> (recorded in Tandem)" in chart.text
    assert f"Corrected age <strong>{expected} mo</strong>" in chart.text
    held = tandem.registry.read(
        "Observation", observation_id(PatientKey(world.iss("generic"), RECORDED_CHILD))
    )
    assert patient_key(held["subject"]) == PatientKey(world.iss("generic"), RECORDED_CHILD)
    assert held["valueQuantity"]["value"] == 31 * 7 + 2 and held["valueQuantity"]["code"] == "d"

    form = browser.get(f"{base}/screen/swyc-milestones")
    assert f"Use the form for <strong>{expected} months</strong>" in form.text
    result = browser.submit(f"{base}/screen/swyc-milestones", {"total": "8"})
    assert result.status_code == 303
    page = browser.get(requests.compat.urljoin(base + "/", result.headers["Location"]))
    assert (f"Scored at the age corrected for prematurity: {expected} months (born at 31+2 weeks; "
            f"{chronological} months old)") in page.text  # fmt: skip


def test_the_ehrs_gestational_age_is_read_under_the_sites_code_and_wins(
    world: SandboxWorld, browser: Browser
) -> None:
    base = _chart(world, browser, EHR_CHILD)
    assert browser.submit(f"{base}/", {"weeks": "33", "days": "0"}, action="/gestation").status_code == 303
    assert "Born at <strong>33 weeks</strong> (recorded in Tandem)" in browser.get(f"{base}/").text
    system, code = EHR_GESTATION_CODE
    requests.put(f"{world.ehr.base_url}/Observation/{EHR_CHILD}-ga", timeout=10,
                 headers={"Content-Type": "application/fhir+json"}, json={
                     "resourceType": "Observation", "id": f"{EHR_CHILD}-ga", "status": "final",
                     "code": {"coding": [{"system": system, "code": code}]},
                     "subject": {"reference": f"Patient/{EHR_CHILD}"},
                     "valueQuantity": {"value": 30, "unit": "wk", "system": "http://unitsofmeasure.org", "code": "wk"},
                 }).raise_for_status()  # fmt: skip
    chart = browser.get(f"{base}/").text
    assert "Born at <strong>30 weeks</strong> (from the EHR)" in chart
    assert (
        "The EHR records a gestational age at birth of 30 weeks and Tandem&#39;s record says 33 weeks"
        in chart
    )
    assert "record-gestation" not in chart  # the EHR's value is not corrected from Tandem

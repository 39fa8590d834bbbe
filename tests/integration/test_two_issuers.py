"""A patient is (EHR issuer, patient id): two registered EHRs whose patient "pt-0003" are different people never
see each other's scores, enrolments, safety Tasks or worklist rows. The sandbox's Epic-like and Oracle-like
endpoints are two issuers (their patients share ids, as two hospitals' EHRs can)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fhir_mappings.common.identity import PatientKey, patient_key
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url
from .test_screening_writeback import PHQ9_ITEM9_POSITIVE, _form

pytestmark = pytest.mark.integration

PATIENT = "pt-0003"


def _worklist(browser: Browser, world: SandboxWorld, mode: str) -> tuple[str, Any]:
    page = browser.follow(launch_url(world, mode, patient=None, target="worklist", practitioner="pr-cm-1"))
    launch_id = launch_id_of(page)
    return launch_id, browser.get(f"{world.tandem_url}/app/{launch_id}/worklist", params={"who": "all"})


def test_same_patient_id_at_two_ehrs_never_crosses(world: SandboxWorld, tandem: Any) -> None:
    epic_iss, oracle_iss = world.iss("epic"), world.iss("oracle")
    at_epic, at_oracle = Browser(), Browser()

    # At the Epic-like EHR: a PHQ-9 with item 9 positive, and an enrolment.
    launch_id = launch_id_of(
        at_epic.follow(launch_url(world, "epic", patient=PATIENT, practitioner="pr-cm-1"))
    )
    base = f"{world.tandem_url}/app/{launch_id}"
    posted = at_epic.post(f"{base}/screen/phq9", data={**_form(at_epic, world, launch_id, "phq9"),
                                                       **PHQ9_ITEM9_POSITIVE}, allow_redirects=False)  # fmt: skip
    assert posted.status_code == 303
    enrolled = at_epic.submit(f"{base}/enrol", {"program": "cocm-depression", "care-manager": "Practitioner/pr-cm-1",
                                               "consent": "yes", "consent_method": "verbal"})  # fmt: skip
    assert enrolled.status_code == 303, enrolled.text[-800:]
    careplan_id = enrolled.headers["Location"].rstrip("/").split("/")[-1]

    # Every registry resource names the patient with its issuer.
    for resource_type, field in (("CarePlan", "subject"), ("Task", "for"), ("Observation", "subject")):
        found = [r for r in tandem.registry.search_all(resource_type, {"_count": "200"})
                 if (r.get(field) or {}).get("identifier", {}).get("value") == PATIENT]  # fmt: skip
        assert found and {patient_key(r[field]) for r in found} == {PatientKey(epic_iss, PATIENT)}, (
            resource_type
        )

    # At the Oracle-like EHR, pt-0003 is someone else: no Tandem score, no enrolment, no alert, no safety Task.
    chart = at_oracle.follow(launch_url(world, "oracle", patient=PATIENT, practitioner="pr-cm-1"))
    oracle_launch = launch_id_of(chart)
    assert "<td>Tandem</td>" not in chart.text
    assert "Safety alert" not in chart.text
    assert "Open the registry record" not in chart.text and "Enrol in the registry" in chart.text
    assert "Safety follow-ups (0)" in chart.text
    foreign = at_oracle.get(f"{world.tandem_url}/app/{oracle_launch}/enrolments/{careplan_id}")
    assert foreign.status_code == 404  # another issuer's registry id

    # Worklists: the Epic one has the row and the safety flag, the Oracle one has neither.
    epic_launch, epic_rows = _worklist(at_epic, world, "epic")
    assert f"enrolments/{careplan_id}" in epic_rows.text
    row = re.search(rf'enrolments/{careplan_id}">[^<]+</a>(.*?)</tr>', epic_rows.text, re.S)
    assert row and "Safety" in row.group(1)
    _, oracle_rows = _worklist(at_oracle, world, "oracle")
    assert careplan_id not in oracle_rows.text
    queue = at_oracle.get(f"{world.tandem_url}/app/{launch_id_of(oracle_rows)}/safety")
    assert careplan_id not in queue.text  # the list links each follow-up to its patient's registry record
    epic_queue = at_epic.get(f"{world.tandem_url}/app/{epic_launch}/safety")
    assert f"enrolments/{careplan_id}" in epic_queue.text
    assert tandem.caseload.enrolments_for(oracle_iss, PATIENT) == []
    assert [e.id for e in tandem.caseload.enrolments_for(epic_iss, PATIENT)] == [careplan_id]

"""On a patient's registry record (Collaborative Care enrolment, SMI page, HealthySteps family) an open safety
follow-up is the first thing on the page: visible without scrolling in an EHR's 1024×700 activity frame (issue 26
§2; it used to be 1,300 px down, in the Tasks table)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fhir_mappings.common.patient_summary import PatientLabel
from fhir_mappings.registry.resources import Enrolment, Member, careplan
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import Submission, registry_transaction
from fhir_mappings.screening.scoring import parse_answers, score
from smartapp.caseload.service import invalidate_registry_cache

pytestmark = pytest.mark.integration

PATIENT = "pt-0099"  # not in the EHR of the shared world: no other test enrols it
PROGRAMS = {
    "cocm-depression": "enrolments",
    "cocm-smi": "enrolments",
    "healthysteps": "healthysteps/families",
}


def _seed(world: Any) -> tuple[list[str], str]:
    tandem = world.tandem_app.extensions["tandem"]
    team = {"care-manager": Member("Practitioner/pr-cm-1", "Teresa Lindqvist"),
            "hs-specialist": Member("Practitioner/pr-cm-1", "Teresa Lindqvist")}  # fmt: skip
    careplans = []
    for program in PROGRAMS:
        enrolment = Enrolment(f"tandem-top-{program}", world.iss("generic"), PATIENT, "Robin Safety", program,
                              "active-treatment", date.today() - timedelta(days=60), team=team,
                              birth_date=date.today() - timedelta(days=400), mrn="TOP-1")  # fmt: skip
        tandem.registry.update(careplan(enrolment))
        careplans.append(enrolment.id)
    phq9 = INSTRUMENTS["phq9"]
    answers, _ = parse_answers(phq9, {f"phq9-{n}": "LA6570-1" for n in range(1, 10)})
    now = datetime.now(UTC).replace(microsecond=0)
    submission = Submission("f" * 32, phq9, answers, score(phq9, answers), PATIENT, now, "Practitioner/pr-pcp-1",
                            iss=world.iss("generic"), patient_label=PatientLabel("Robin Safety"),
                            author_name="Dana Whitfield")  # fmt: skip
    task = next(e["resource"] for e in registry_transaction(submission, now)["entry"]
                if e["resource"]["resourceType"] == "Task")  # fmt: skip
    tandem.registry.update(task)
    invalidate_registry_cache(tandem.store)
    return careplans, str(task["id"])


def _cleanup(world: Any, careplans: list[str], task_id: str) -> None:
    tandem = world.tandem_app.extensions["tandem"]
    tandem.registry.update({**tandem.registry.read("Task", task_id), "status": "cancelled"})
    for careplan_id in careplans:
        tandem.registry.update({**tandem.registry.read("CarePlan", careplan_id), "status": "revoked"})
    invalidate_registry_cache(tandem.store)


def test_an_open_safety_follow_up_is_visible_without_scrolling_on_every_registry_record(
    frame_page: Any, world: Any
) -> None:
    careplans, task_id = _seed(world)
    try:
        page = frame_page
        page.goto(f"{world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-1&target=worklist")
        page.get_by_role("heading", name="Caseload worklist").wait_for()
        app = page.url.split("/worklist")[0]
        for careplan_id, route in zip(careplans, PROGRAMS.values(), strict=True):
            page.goto(f"{app}/{route}/{careplan_id}")
            alert = page.locator("#safety-open")
            alert.wait_for()
            assert page.evaluate("window.scrollY") == 0
            box = alert.locator("h2").bounding_box()
            assert box is not None and box["y"] + box["height"] <= 700, (route, box)
            owner = alert.get_by_text("Owner: Teresa Lindqvist")
            owner_box = owner.bounding_box()
            assert owner_box is not None and owner_box["y"] + owner_box["height"] <= 700, (route, owner_box)
            page.screenshot(path=str(_artifacts() / f"safety-on-top-{careplan_id}.png"))
        page.goto(f"{app}/safety")  # the list names the patient and links to the registry record
        page.screenshot(path=str(_artifacts() / "safety-list.png"))
        page.get_by_role("link", name="Robin Safety").first.click()
        page.locator("#safety-open").wait_for()
    finally:
        _cleanup(world, careplans, task_id)


def _artifacts() -> Any:
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

"""An overdue safety follow-up (not closed by the end of the local day it was raised) shows in the header of every
care-team page, red, linking to the list (issue 26 §2): walked by following every link of a worklist launch and of
the patient's chart launch."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from fhir_mappings.common.patient_summary import PatientLabel
from fhir_mappings.registry.resources import Enrolment, Member, careplan
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import Submission, registry_transaction
from fhir_mappings.screening.scoring import parse_answers, score
from sandbox.world import SandboxWorld
from smartapp.caseload.service import invalidate_registry_cache

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration

OVERDUE = re.compile(
    r'<a class="header-link safety-overdue" href="([^"]+)">(\d+) safety follow-ups? overdue</a>'
)


def _raise_yesterday(world: SandboxWorld, tandem: Any, patient: str) -> str:
    """A safety Task raised yesterday (as a chart launch writes it), still open."""
    phq9 = INSTRUMENTS["phq9"]
    answers, _ = parse_answers(phq9, {f"phq9-{n}": "LA6570-1" for n in range(1, 10)})
    raised = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1, hours=1)
    submission = Submission("e" * 32, phq9, answers, score(phq9, answers), patient, raised, "Practitioner/pr-pcp-1",
                            iss=world.iss("generic"), patient_label=PatientLabel("Overdue Patient"),
                            author_name="Dana Whitfield")  # fmt: skip
    task = next(e["resource"] for e in registry_transaction(submission, raised)["entry"]
                if e["resource"]["resourceType"] == "Task")  # fmt: skip
    tandem.registry.update(task)
    invalidate_registry_cache(tandem.store)
    return str(task["id"])


def _enrol(world: SandboxWorld, tandem: Any, patient: str) -> list[str]:
    """The patient's registry records of every kind (CoCM, SMI, a HealthySteps family), for the walk to reach."""
    team = {"care-manager": Member("Practitioner/pr-cm-1", "Teresa Lindqvist")}
    ids = []
    for program in ("cocm-depression", "cocm-smi", "healthysteps"):
        enrolment = Enrolment(f"tandem-overdue-{program}", world.iss("generic"), patient, "Overdue Patient", program,
                              "active-treatment", date.today() - timedelta(days=30), team=team,
                              birth_date=date(1990, 1, 1), mrn="OVD-1")  # fmt: skip
        tandem.registry.update(careplan(enrolment))
        ids.append(enrolment.id)
    invalidate_registry_cache(tandem.store)
    return ids


def _walk(browser: Browser, start: str, launch_id: str, limit: int = 200) -> dict[str, str]:
    """Every page of the launch reachable by links from `start` (GET only; downloads skipped), each kind of page
    (its address without ids) at most three times."""
    seen: dict[str, str] = {}
    kinds: dict[str, int] = {}
    queue = [start]
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        shape = re.sub(r"/(demo|hs|smi|tandem)-[^/?]+", "/<id>", urlsplit(url).path)
        kinds[shape] = kinds.get(shape, 0) + 1
        if kinds[shape] > 3:
            continue
        page = browser.get(url)
        if page.status_code != 200 or "text/html" not in page.headers.get("Content-Type", ""):
            seen[url] = ""
            continue
        seen[url] = page.text
        for href in re.findall(r'<a [^>]*href="([^"#]+)', page.text):
            target = urljoin(url, href.replace("&amp;", "&"))
            if urlsplit(target).path.startswith(f"/app/{launch_id}/") and not target.endswith(".csv") \
                    and target not in seen:  # fmt: skip
                queue.append(target)
    return {url: html for url, html in seen.items() if html}


def test_an_overdue_safety_follow_up_shows_on_every_care_team_page(world: SandboxWorld, tandem: Any) -> None:
    patient = "pt-0006"  # used by no other test
    careplans = _enrol(world, tandem, patient)
    task_id = _raise_yesterday(world, tandem, patient)
    try:
        manager = Browser()
        # The seeded caseload (CoCM, SMI, HealthySteps enrolments) is the generic EHR's.
        worklist = manager.follow(launch_url(world, "generic", patient=None, target="worklist",
                                             practitioner="pr-cm-1"))  # fmt: skip
        launch_id = launch_id_of(worklist)
        pages = _walk(manager, worklist.url, launch_id)
        clinician = Browser()
        chart = clinician.follow(launch_url(world, "generic", patient=patient))
        chart_launch = launch_id_of(chart)
        chart_pages = _walk(clinician, chart.url, chart_launch)
        assert (
            len(pages) >= 5 and len(chart_pages) >= 2
        )  # the worklists, enrolments, review, billing, the list …
        for launch, walked in ((launch_id, pages), (chart_launch, chart_pages)):
            for url, html in walked.items():
                found = OVERDUE.search(html)
                assert found is not None, f"no overdue safety follow-up in the header of {urlsplit(url).path}"
                assert found.group(1) == f"/app/{launch}/safety"
        listed = manager.get(f"{world.tandem_url}/app/{launch_id}/safety").text
        section = next(part for part in listed.split('<section class="safety-item') if task_id in part)
        assert "Overdue Patient" in section and "overdue-badge" in section
    finally:  # leave no open follow-up or active enrolment behind for other tests
        task = tandem.registry.read("Task", task_id)
        tandem.registry.update({**task, "status": "cancelled"})
        for careplan_id in careplans:
            resource = tandem.registry.read("CarePlan", careplan_id)
            tandem.registry.update({**resource, "status": "revoked"})
        invalidate_registry_cache(tandem.store)


def test_a_follow_up_whose_patient_nobody_recorded_is_listed_without_an_id(
    world: SandboxWorld, tandem: Any
) -> None:
    """A Task of an older release (no copy of the patient) of a patient not enrolled: the list says the name is not
    available, links to the screening, and still shows no FHIR id; the owner is the submitting clinician's name
    or, when the EHR never named them, a red line saying nobody can be named."""
    phq9 = INSTRUMENTS["phq9"]
    answers, _ = parse_answers(phq9, {f"phq9-{n}": "LA6570-1" for n in range(1, 10)})
    now = datetime.now(UTC).replace(microsecond=0)
    submission = Submission("d" * 32, phq9, answers, score(phq9, answers), "pt-0013", now, "Practitioner/pr-x",
                            iss=world.iss("epic"))  # fmt: skip
    task = next(e["resource"] for e in registry_transaction(submission, now)["entry"]
                if e["resource"]["resourceType"] == "Task")  # fmt: skip
    tandem.registry.update(task)
    invalidate_registry_cache(tandem.store)
    try:
        manager = Browser()
        worklist = manager.follow(
            launch_url(world, "epic", patient=None, target="worklist", practitioner="pr-cm-1")
        )
        listed = manager.get(f"{world.tandem_url}/app/{launch_id_of(worklist)}/safety").text
        section = next(part for part in listed.split('<section class="safety-item') if task["id"] in part)
        assert "Name not available — open the record" in section
        assert "pt-0013" not in re.sub(r"<[^>]+>", " ", section)
        assert '<span class="no-owner">Nobody can be named as the owner' in section
    finally:
        tandem.registry.update({**tandem.registry.read("Task", task["id"]), "status": "cancelled"})
        invalidate_registry_cache(tandem.store)

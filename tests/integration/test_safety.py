"""Safety flags that cannot be lost: every open safety Task is in the "Safety follow-ups" queue (enrolled or not),
closing needs an outcome, acknowledging an alert never clears the flag, and a double-click storm writes once."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
import requests

from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url
from .test_screening_writeback import PHQ9_ITEM9_POSITIVE, _form

pytestmark = pytest.mark.integration


def _submit(browser: Browser, world: SandboxWorld, launch_id: str, key: str = "phq9") -> str:
    hidden = _form(browser, world, launch_id, key)
    page = f"{world.tandem_url}/app/{launch_id}/screen/{key}"
    answers = PHQ9_ITEM9_POSITIVE if key == "phq9" else {  # the teen form: same answers, its own link ids
        k.replace("phq9-", "phq9teen-"): v for k, v in PHQ9_ITEM9_POSITIVE.items()}  # fmt: skip
    answer = browser.post_from(page, page, {**hidden, **answers})
    assert answer.status_code == 303
    return hidden["submission_id"]


def test_a_not_enrolled_patients_safety_task_is_queued_and_closes_only_with_an_outcome(
    world: SandboxWorld, tandem: Any
) -> None:
    clinician = Browser()
    launch_id = launch_id_of(clinician.follow(launch_url(world, "epic", patient="pt-0017")))  # a teen
    submission = _submit(clinician, world, launch_id, "phq9-teen")
    record = tandem.screenings.load(submission)
    # Acknowledging the alert records who and when; it does not close the follow-up.
    acknowledged = clinician.submit(f"{world.tandem_url}/app/{launch_id}/screenings/{submission}",
                                    action=f"/screenings/{submission}/acknowledge")  # fmt: skip
    assert acknowledged.status_code == 303
    record = tandem.screenings.load(submission)
    assert record.acknowledged_at and record.acknowledged_by == "Practitioner/pr-pcp-1"

    manager = Browser()
    worklist = manager.follow(
        launch_url(world, "epic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    base = f"{world.tandem_url}/app/{launch_id_of(worklist)}"
    assert "Safety follow-ups (" in worklist.text
    queue = manager.get(f"{base}/safety")
    task_id = f"tandem-{submission}-safety"
    assert task_id in queue.text  # not enrolled, still visible (its close form)
    # Named as the worklist names patients, although this Epic-like worklist launch may not read Patient (403):
    # from the copy kept with the screening's safety Task. Never by its FHIR id.
    patient = requests.get(f"{world.ehr.base_url}/Patient/pt-0017", timeout=10).json()
    name = " ".join([*patient["name"][0].get("given", []), patient["name"][0]["family"]])
    section = _section(queue.text, task_id)
    assert name in section and f"DOB {patient['birthDate']}" in section
    assert "pt-0017" not in _visible(section)
    assert "by Dana Whitfield" in section  # who raised it …
    assert "Owner</dt><dd>Dana Whitfield" in section  # … and owns it (not enrolled: the submitting clinician)
    assert "Overdue" not in section  # raised today
    refused = manager.submit(f"{base}/safety", {"note": "called"}, action=f"/safety/{task_id}/close")
    assert refused.status_code == 422 and "Choose the outcome of the follow-up." in refused.text
    assert 'id="error-summary"' in refused.text and ">called</textarea>" in refused.text  # the note is kept
    assert tandem.registry.read("Task", task_id)["status"] == "requested"
    closed = manager.submit(f"{base}/safety", action=f"/safety/{task_id}/close", data={
        "outcome": "safety-plan", "note": "Safety plan made with the patient by phone"})  # fmt: skip
    assert closed.status_code == 303
    task = tandem.registry.read("Task", task_id)
    assert task["status"] == "completed" and task["owner"]["reference"] == "Practitioner/pr-cm-1"
    assert any(o.get("valueString") == "Safety plan made with the patient by phone" for o in task["output"])
    assert task_id not in manager.get(f"{base}/safety").text


def _section(page: str, task_id: str) -> str:
    """The list's section of one follow-up (the one whose close form names `task_id`)."""
    return next(part for part in page.split('<section class="safety-item') if task_id in part)


def _visible(html: str) -> str:
    """What a person reads: the text outside tags (ids in form actions are not shown)."""
    return re.sub(r"<[^>]+>", " ", html)


def test_a_patient_launch_cannot_close_another_patients_safety_task(world: SandboxWorld, tandem: Any) -> None:
    other = Browser()
    submission = _submit(
        other, world, launch_id_of(other.follow(launch_url(world, "epic", patient="pt-0018")))
    )
    clinician = Browser()
    launch_id = launch_id_of(clinician.follow(launch_url(world, "epic", patient="pt-0019")))
    queue = f"{world.tandem_url}/app/{launch_id}/safety"
    assert f"tandem-{submission}-safety" not in clinician.get(queue).text  # a chart launch lists its own only
    hidden = clinician.form(queue, "/end")[0].hidden  # a valid token and form id, from the page's own form
    attempt = clinician.post_from(queue, f"{queue}/tandem-{submission}-safety/close", {
        **hidden, "outcome": "referred", "note": "x"})  # fmt: skip
    assert attempt.status_code == 404
    assert tandem.registry.read("Task", f"tandem-{submission}-safety")["status"] == "requested"


def test_a_double_click_storm_writes_the_screening_once(world: SandboxWorld, tandem: Any) -> None:
    browser = Browser()
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient="pt-0020")))
    hidden = _form(browser, world, launch_id, "phq9")
    statuses: list[int] = []

    def post() -> None:
        answer = browser.post(f"{world.tandem_url}/app/{launch_id}/screen/phq9",
                              data={**hidden, **PHQ9_ITEM9_POSITIVE}, allow_redirects=False)  # fmt: skip
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [303] * 6
    record = tandem.screenings.load(hidden["submission_id"])
    assert record.ehr.status == "saved" and record.ehr.attempts == 1 and record.registry.attempts == 1
    from .test_screening_writeback import _search

    ehr_base = world.ehr.base_url
    submission = hidden["submission_id"]
    written = [r for r in _search(ehr_base, "QuestionnaireResponse", subject="Patient/pt-0020")
               if (r.get("identifier") or {}).get("value") == submission]  # fmt: skip
    if not written:  # the server may not search QuestionnaireResponse: page through them all
        written = [r for r in _search(ehr_base, "QuestionnaireResponse")
                   if (r.get("identifier") or {}).get("value") == submission]  # fmt: skip
    assert len(written) == 1

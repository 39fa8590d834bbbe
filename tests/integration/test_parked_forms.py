"""A form posted after its launch ended is never lost (issue 26 §1): a PHQ-9 with item 9 positive is scored at
once, its safety alert shown and its same-day safety Task written to the registry store; the screening waits,
encrypted, for the next launch for the patient, which confirms it and writes it back once."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.screening.resources import resource_id
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url
from .test_parked_form_kinds import patient as make_patient
from .test_screening_writeback import PHQ9_ITEM9_POSITIVE, _form, _search

pytestmark = pytest.mark.integration


def test_a_phq9_with_item_9_positive_posted_after_the_launch_ended_raises_its_alert_and_is_confirmed_once(
    world: SandboxWorld, tandem: Any
) -> None:
    patient = make_patient(world, "pk-phq9-a")  # an adult (PHQ-9 is from 18 y) no other test touches
    browser = Browser()
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=patient)))
    hidden = _form(browser, world, launch_id, "phq9")
    submission = hidden["submission_id"]
    manager = Browser()
    worklist = manager.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    safety_page = f"{world.tandem_url}/app/{launch_id_of(worklist)}/safety"
    assert manager.get(safety_page).status_code == 200  # the registry's data is cached now
    tandem.sessions.end(launch_id)  # the EHR closed the launch while the form was being filled in
    page = f"{world.tandem_url}/app/{launch_id}/screen/phq9"
    answer = browser.post_from(page, page, {**hidden, **PHQ9_ITEM9_POSITIVE})
    # Source: issue 26 §1 — score at once, show the alert, say the session ended and the answers are kept.
    assert answer.status_code == 202
    assert "Safety alert" in answer.text and "session had ended" in answer.text
    assert "Safety follow-ups" in answer.text and "kept" in answer.text
    task_id = resource_id(submission, "safety")
    task = tandem.registry.read("Task", task_id)
    assert task["status"] == "requested" and task["priority"] == "stat"
    assert patient_key(task["for"]) == PatientKey(world.iss("generic"), patient)
    assert tandem.screenings.load(submission) is None  # not recorded yet: it waits for a clinician

    # The safety follow-up list of a worklist launch shows it at once (its Task is in the registry), naming the
    # patient and who raised it from what the ended launch's chart page had read (never "nobody" or an id).
    listed = manager.get(safety_page).text
    assert task_id in listed
    section = listed.split(task_id)[0].rsplit('<section class="safety-item', 1)[1]
    ehr_patient = requests.get(f"{world.ehr.base_url}/Patient/{patient}", timeout=10).json()
    name = " ".join([*ehr_patient["name"][0].get("given", []), ehr_patient["name"][0]["family"]])
    assert name in section and f"DOB {ehr_patient['birthDate']}" in section
    assert "a user the EHR did not name" not in section and "Nobody can be named" not in section

    # The next launch for the patient: a notice, the form prefilled with the same submission id, saved once.
    clinician = Browser()
    chart = clinician.follow(launch_url(world, "generic", patient=patient))
    relaunch = launch_id_of(chart)
    assert "You have 1 unsaved form from" in chart.text and "safety alert raised" in chart.text
    reopen = f"{world.tandem_url}/app/{relaunch}/parked/"
    link = chart.text.split(f'href="/app/{relaunch}/parked/')[1].split('"')[0]
    form, _ = clinician.form(reopen + link, "/screen/phq9")
    assert form.hidden["submission_id"] == submission  # the same id: confirming never doubles it
    html = clinician.get(reopen + link).text
    assert 'name="phq9-9" value="LA6569-3" checked' in html  # what was typed, prefilled
    saved = clinician.post_from(reopen + link, f"{world.tandem_url}/app/{relaunch}/screen/phq9",
                                {**form.hidden, **PHQ9_ITEM9_POSITIVE})  # fmt: skip
    assert saved.status_code == 303
    record = tandem.screenings.load(submission)
    assert record is not None and record.registry.status == "saved" and record.ehr.status == "saved"
    assert tandem.registry.read("Task", task_id)["status"] == "requested"
    written = [r for r in _search(world.ehr.base_url, "QuestionnaireResponse")
               if (r.get("identifier") or {}).get("value") == submission]  # fmt: skip
    assert len(written) == 1
    assert "unsaved form" not in clinician.get(f"{world.tandem_url}/app/{relaunch}/").text
    # Posted again (a double click on the reopened form): nothing new.
    again = clinician.post_from(reopen + link, f"{world.tandem_url}/app/{relaunch}/screen/phq9",
                                {**form.hidden, **PHQ9_ITEM9_POSITIVE})  # fmt: skip
    assert again.status_code == 303
    written = [r for r in _search(world.ehr.base_url, "QuestionnaireResponse")
               if (r.get("identifier") or {}).get("value") == submission]  # fmt: skip
    assert len(written) == 1


def test_a_closed_parked_safety_task_is_not_reopened_by_the_confirmed_screening(
    world: SandboxWorld, tandem: Any
) -> None:
    patient = make_patient(world, "pk-phq9-b")
    browser = Browser()
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=patient)))
    hidden = _form(browser, world, launch_id, "phq9")
    tandem.sessions.end(launch_id)
    page = f"{world.tandem_url}/app/{launch_id}/screen/phq9"
    assert browser.post_from(page, page, {**hidden, **PHQ9_ITEM9_POSITIVE}).status_code == 202
    task_id = resource_id(hidden["submission_id"], "safety")
    manager = Browser()
    base = f"{world.tandem_url}/app/{launch_id_of(manager.follow(launch_url(world, 'generic', patient=None, target='worklist', practitioner='pr-cm-1')))}"  # noqa: E501
    closed = manager.submit(f"{base}/safety", action=f"/safety/{task_id}/close",
                            data={"outcome": "safety-plan", "note": "Safety plan made by phone"})  # fmt: skip
    assert closed.status_code == 303
    clinician = Browser()
    chart = clinician.follow(launch_url(world, "generic", patient=patient))
    relaunch = launch_id_of(chart)
    link = chart.text.split(f'href="/app/{relaunch}/parked/')[1].split('"')[0]
    reopen = f"{world.tandem_url}/app/{relaunch}/parked/{link}"
    form, _ = clinician.form(reopen, "/screen/phq9")
    saved = clinician.post_from(reopen, f"{world.tandem_url}/app/{relaunch}/screen/phq9",
                                {**form.hidden, **PHQ9_ITEM9_POSITIVE})  # fmt: skip
    assert saved.status_code == 303
    assert tandem.screenings.load(hidden["submission_id"]).registry.status == "saved"
    assert tandem.registry.read("Task", task_id)["status"] == "completed"  # the person's closing stands


def test_a_follow_up_measurement_parked_while_the_registry_is_down_is_on_the_safety_list_until_its_task_is_written(
    world: SandboxWorld, tandem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from launch import errors
    from smartapp.parking.service import ParkedForms

    from .test_caseload import enrol

    _, careplan_id = enrol(world, Browser(), make_patient(world, "pk-measure"))
    manager = Browser()
    worklist = manager.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    launch_id = launch_id_of(worklist)
    page = f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}/measure/phq9"
    form, target = manager.form(page)
    submission = form.hidden["submission_id"]
    tandem.sessions.end(launch_id)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise errors.FHIRServerError("the registry store is down")

    monkeypatch.setattr(tandem.registry, "update", refused)
    answer = manager.post_from(page, target, {**form.hidden, **PHQ9_ITEM9_POSITIVE, "mode": "phone"})
    # Source: issue 26 §1 — the alert shows at once; a Task that cannot be written yet is queued, never dropped.
    assert answer.status_code == 202
    assert "Safety alert" in answer.text and "as soon as it can be reached" in answer.text
    task_id = resource_id(submission, "safety")
    with pytest.raises(errors.FHIRNotFound):
        tandem.registry.read("Task", task_id)
    other = Browser()
    queue_launch = launch_id_of(
        other.follow(launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-2"))
    )
    queue = other.get(f"{world.tandem_url}/app/{queue_launch}/safety").text
    # Listed (linked to the patient's record, named from the enrolment, never by the FHIR id) though not written.
    assert f"/enrolments/{careplan_id}" in queue and "has not reached the registry store yet" in queue

    monkeypatch.undo()
    assert ParkedForms.of(tandem).retry_safety_tasks() == 1  # the worker's sweep
    assert tandem.registry.read("Task", task_id)["status"] == "requested"
    assert ParkedForms.of(tandem).pending_safety() == []

    # The next launch of the same user reopens it from the worklist; saving records it once.
    again = Browser()
    relaunched = again.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    relaunch = launch_id_of(relaunched)
    shown = again.get(relaunched.url).text
    assert "You have 1 unsaved form from" in shown
    link = shown.split(f'href="/app/{relaunch}/parked/')[1].split('"')[0]
    reopen = f"{world.tandem_url}/app/{relaunch}/parked/{link}"
    reform, retarget = again.form(reopen, f"/enrolments/{careplan_id}/measure/phq9")
    assert reform.hidden["submission_id"] == submission
    saved = again.post_from(reopen, retarget, {**reform.hidden, **PHQ9_ITEM9_POSITIVE, "mode": "phone"})
    assert saved.status_code == 303
    record = tandem.screenings.load(submission)
    assert record is not None and record.careplan_id == careplan_id and record.registry.status == "saved"


def test_a_portal_questionnaire_posted_after_the_visit_ended_alerts_the_care_team_and_is_sent_on_the_next_visit(
    world: SandboxWorld, tandem: Any
) -> None:
    from .test_self_report import _enrolled, _portal

    pid = make_patient(world, "pk-portal")
    _enrolled(world, tandem, pid)
    browser = Browser()
    home, text = _portal(world, browser, pid)
    launch_id = launch_id_of(browser.get(home))
    page = f"{world.tandem_url}/app/{launch_id}/me/q/phq9"
    form, target = browser.form(page)
    tandem.sessions.end(launch_id)
    answer = browser.post_from(page, target, {**form.hidden, **PHQ9_ITEM9_POSITIVE})
    # Source: issue 26 §1 — the portal's screening too: the alert at once (988 for the patient, the care team's
    # same-day Task), the answers kept until the next visit; no score shown to the patient.
    assert answer.status_code == 202
    assert "988" in answer.text and "Your care team has been told" in answer.text
    assert "not been sent to your chart yet" in answer.text
    task = tandem.registry.read("Task", resource_id(form.hidden["submission_id"], "safety"))
    assert task["priority"] == "stat" and patient_key(task["for"]) == PatientKey(world.iss("generic"), pid)

    # A clinician's chart launch does not offer the patient's own answers to re-enter in their name.
    clinician = Browser()
    assert "unsaved form" not in clinician.follow(launch_url(world, "generic", patient=pid)).text

    again = Browser()
    home, text = _portal(world, again, pid)
    relaunch = launch_id_of(again.get(home))
    assert "You have 1 unsent questionnaire from" in text
    link = text.split(f'href="/app/{relaunch}/me/parked/')[1].split('"')[0]
    reopen = f"{world.tandem_url}/app/{relaunch}/me/parked/{link}"
    assert 'value="LA6569-3" checked' in again.get(reopen).text
    reform, retarget = again.form(reopen, "/me/q/phq9")
    assert reform.hidden["submission_id"] == form.hidden["submission_id"]
    sent = again.post_from(reopen, retarget, {**reform.hidden, **PHQ9_ITEM9_POSITIVE})
    assert sent.status_code == 303, sent.text[-1000:]
    record = tandem.screenings.load(form.hidden["submission_id"])
    assert record is not None and record.self_reported and record.author == f"Patient/{pid}"
    assert "unsent questionnaire" not in again.get(home).text


def test_a_follow_up_measurement_parked_while_the_registry_cannot_be_read_gets_its_task_once_it_can(
    world: SandboxWorld, tandem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from launch import errors
    from smartapp.parking.service import ParkedForms

    from .test_caseload import enrol

    pid = make_patient(world, "pk-measure-away")
    _, careplan_id = enrol(world, Browser(), pid)
    manager = Browser()
    launch_id = launch_id_of(
        manager.follow(launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1"))
    )
    page = f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}/measure/phq9"
    form, target = manager.form(page)
    tandem.sessions.end(launch_id)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise errors.FHIRServerError("the registry store is down")

    for method in ("read", "update"):  # the enrolment's patient cannot even be looked up
        monkeypatch.setattr(tandem.registry, method, refused)
    answer = manager.post_from(page, target, {**form.hidden, **PHQ9_ITEM9_POSITIVE, "mode": "phone"})
    assert answer.status_code == 202 and "Safety alert" in answer.text
    monkeypatch.undo()
    # The form's id could not be checked without its patient: the parked screening has an id of its own.
    (pending,) = [
        i for i in ParkedForms.of(tandem).pending_safety() if i.args.get("careplan_id") == careplan_id
    ]
    assert pending.patient is None and pending.submission_id
    # Issue 26 §2 — every alert reaches a person: once the registry answers again, the safety list names the
    # enrolment's patient from the caseload at once, before the worker's sweep has written the Task.
    other = Browser()
    queue_launch = launch_id_of(
        other.follow(launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-2"))
    )
    queue = other.get(f"{world.tandem_url}/app/{queue_launch}/safety").text
    assert f"/enrolments/{careplan_id}" in queue and "has not reached the registry store yet" in queue
    # Source: issue 26 §1 — never silently dropped: the worker's sweep finds the enrolment's patient and writes it.
    assert ParkedForms.of(tandem).retry_safety_tasks() == 1
    task = tandem.registry.read("Task", resource_id(pending.submission_id, "safety"))
    assert task["priority"] == "stat" and patient_key(task["for"]) == PatientKey(world.iss("generic"), pid)


@pytest.mark.parametrize(
    ("case", "mode", "patient_of_launch"),
    [
        # Source: issue 26 §1 point 3 — a binding for another patient or another issuer parks nothing.
        ("another patient's enrolment", "generic", "pk-bound-other"),
        ("an enrolment of another issuer", "epic", "pk-bound-epic"),
    ],
)
def test_a_binding_that_does_not_match_the_enrolment_in_the_address_parks_nothing(
    world: SandboxWorld, tandem: Any, case: str, mode: str, patient_of_launch: str
) -> None:
    from smartapp.parking.service import ParkedForms

    from .test_caseload import enrol

    _, careplan_id = enrol(world, Browser(), make_patient(world, f"pk-enrolled-{mode}"))
    make_patient(world, patient_of_launch)
    browser = Browser()
    launch_id = launch_id_of(browser.follow(launch_url(world, mode, patient=patient_of_launch)))
    hidden = _form(browser, world, launch_id, "phq9")  # a valid binding: this launch's, for its own patient
    tandem.sessions.end(launch_id)
    target = f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}/contact"
    answer = browser.post_from(target, target, {"csrf_token": hidden["csrf_token"],
                                                "form_binding": hidden["form_binding"], "minutes": "20",
                                                "contact_type": "phone", "role": "care-manager"})  # fmt: skip
    assert answer.status_code == 401 and "Your Tandem session has ended" in answer.text
    parked = ParkedForms.of(tandem)
    assert parked.visible(world.iss(mode), patient_of_launch, "Practitioner/pr-pcp-1") == []

"""Every form kind posted after its launch ended (issue 26 §1): kept, the page says so, the next launch that may
see it shows "You have N unsaved forms" and reopens it with what was typed, and submitting it saves exactly one
record. One table row per POST route that carries what a person typed."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from fhir_mappings.common.gestation import observation_id as gestation_id
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.resources import TIER_HISTORY_URL
from fhir_mappings.smi.social import observation_id as social_id
from launch import errors
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url
from .test_caseload import enrol

pytestmark = pytest.mark.integration


@dataclass
class Opened:
    """A launch with a form open: the page, the form's action, the launch to relaunch the same way."""

    browser: Browser
    launch_id: str
    page: str
    action: str
    relaunch: dict[str, Any]
    count: Callable[[], int]


def patient(world: SandboxWorld, pid: str, *, months: int = 12 * 40) -> str:
    """A patient of the sandbox EHR of its own (no other test touches it), `months` old."""
    born = date.today() - timedelta(days=months * 30 + 10)
    resource = {"resourceType": "Patient", "id": pid, "active": True, "gender": "female", "birthDate": born.isoformat(),
                "name": [{"use": "official", "family": "Parkwood", "given": ["Robin"]}]}  # fmt: skip
    answer = requests.put(f"{world.ehr.base_url}/Patient/{pid}", json=resource, timeout=10,
                          headers={"Content-Type": "application/fhir+json"})  # fmt: skip
    assert answer.status_code in (200, 201), answer.text[-500:]
    return pid


def _exists(read: Callable[[], Any]) -> int:
    try:
        read()
    except errors.FHIRNotFound:
        return 0
    return 1


def _contact(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-contact")
    browser = Browser()
    launch_id, careplan_id = enrol(world, browser, "pk-contact")
    base = f"{world.tandem_url}/app/{launch_id}"

    def count() -> int:
        contacts = tandem.caseload.load(use_cache=False).contacts
        return sum(
            1 for c in contacts if c.careplan_id == careplan_id and c.note == "Parked call about sleep"
        )

    return Opened(browser, launch_id, f"{base}/enrolments/{careplan_id}", "/contact",
                  {"patient": "pk-contact", "practitioner": "pr-cm-1"}, count)  # fmt: skip


def _enrolment(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-enrol")
    browser = Browser()
    launch_id = launch_id_of(
        browser.follow(launch_url(world, "generic", patient="pk-enrol", practitioner="pr-cm-1"))
    )
    base = f"{world.tandem_url}/app/{launch_id}"
    iss = world.iss("generic")
    return Opened(browser, launch_id, f"{base}/enrol", f"/app/{launch_id}/enrol",
                  {"patient": "pk-enrol", "practitioner": "pr-cm-1"},
                  lambda: len(tandem.caseload.enrolments_for(iss, "pk-enrol")))  # fmt: skip


def _review(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-review")
    _, careplan_id = enrol(world, Browser(), "pk-review")
    tandem.caseload.invalidate()
    browser = Browser()
    worklist = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    launch_id = launch_id_of(worklist)

    def count() -> int:
        tasks = tandem.caseload.load(use_cache=False).tasks
        return sum(
            1
            for t in tasks
            if t.careplan_id == careplan_id and t.recommendations == "Parked: sertraline 50 mg"
        )

    # The case is on whichever page of the review list its priority puts it (10 a page; the shared world has many
    # cases by the time this runs).
    review = f"{world.tandem_url}/app/{launch_id}/review"
    page = next((f"{review}?page={n}" for n in range(1, 20)
                 if f"/review/{careplan_id}" in browser.get(f"{review}?page={n}").text), review)  # fmt: skip
    return Opened(browser, launch_id, page, f"/review/{careplan_id}",
                  {"patient": None, "target": "worklist", "practitioner": "pr-cm-1"}, count)  # fmt: skip


def _gestation(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-gestation", months=10)
    browser = Browser()
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient="pk-gestation")))
    key = PatientKey(world.iss("generic"), "pk-gestation")
    return Opened(browser, launch_id, f"{world.tandem_url}/app/{launch_id}/", "/gestation", {"patient": "pk-gestation"},
                  lambda: _exists(lambda: tandem.registry.read("Observation", gestation_id(key))))  # fmt: skip


def _caregiver(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-caregiver", months=15)
    browser = Browser()
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient="pk-caregiver")))

    def count() -> int:
        found = tandem.registry.search_all("RelatedPerson", {"_count": "200"})
        return sum(1 for r in found if "Parked Caregiver" in str(r.get("name")))

    return Opened(browser, launch_id, f"{world.tandem_url}/app/{launch_id}/", f"/app/{launch_id}/caregivers",
                  {"patient": "pk-caregiver"}, count)  # fmt: skip


def _tier(world: SandboxWorld, tandem: Any) -> Opened:
    browser, launch_id, page, careplan_id = _family(world, "pk-tier")

    def count() -> int:
        plan = tandem.registry.read("CarePlan", careplan_id)
        return sum(1 for e in plan.get("extension", []) if e["url"] == TIER_HISTORY_URL) - 1  # less the first

    return Opened(browser, launch_id, page, f"/healthysteps/families/{careplan_id}/tier",
                  {"patient": "pk-tier", "practitioner": "pr-hs-1"}, count)  # fmt: skip


def _social(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-social")
    browser = Browser()
    launch_id, careplan_id = enrol(world, browser, "pk-social", program="cocm-smi")
    key = PatientKey(world.iss("generic"), "pk-social")
    return Opened(browser, launch_id, f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}", "/social",
                  {"patient": "pk-social", "practitioner": "pr-cm-1"},
                  lambda: _exists(lambda: tandem.registry.read("Observation", social_id(key, "housing", date.today()))))  # fmt: skip


def _marked(tandem: Any, resource_type: str, marker: str) -> int:
    """How many registry resources of a type carry `marker` (a phrase typed into the form)."""
    return sum(
        1 for r in tandem.registry.search_all(resource_type, {"_count": "200"}) if marker in json.dumps(r)
    )


def _follow_up(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-follow-up")
    browser = Browser()
    launch_id, careplan_id = enrol(world, browser, "pk-follow-up")
    return Opened(browser, launch_id, f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}", "/follow-up",
                  {"patient": "pk-follow-up", "practitioner": "pr-cm-1"},
                  lambda: _marked(tandem, "Task", "Parked follow-up call"))  # fmt: skip


def _status(world: SandboxWorld, tandem: Any) -> Opened:
    patient(world, "pk-status")
    browser = Browser()
    launch_id, careplan_id = enrol(world, browser, "pk-status")
    iss = world.iss("generic")
    return Opened(browser, launch_id, f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}", "/update",
                  {"patient": "pk-status", "practitioner": "pr-cm-1"},
                  lambda: int(tandem.caseload.get(careplan_id, iss).phase == "relapse-prevention"))  # fmt: skip


def _family(world: SandboxWorld, pid: str) -> tuple[Browser, str, str, str]:
    """A HealthySteps Specialist's chart launch for a child of its own, enrolled: (browser, launch, page, careplan)."""
    patient(world, pid, months=14)
    browser = Browser()
    chart = browser.follow(launch_url(world, "generic", patient=pid, practitioner="pr-hs-1"))
    launch_id = launch_id_of(chart)
    base = f"{world.tandem_url}/app/{launch_id}"
    answer = browser.submit(f"{base}/", action=f"/app/{launch_id}/healthysteps/enrol")
    assert answer.status_code == 303, answer.text[-500:]
    careplan_id = (
        html.unescape(browser.get(f"{base}/").text).split("/healthysteps/families/")[1].split('"')[0]
    )
    return browser, launch_id, f"{base}/healthysteps/families/{careplan_id}", careplan_id


def _hs_contact(world: SandboxWorld, tandem: Any) -> Opened:
    browser, launch_id, page, careplan_id = _family(world, "pk-hs-contact")
    return Opened(browser, launch_id, page, f"/healthysteps/families/{careplan_id}/contact",
                  {"patient": "pk-hs-contact", "practitioner": "pr-hs-1"},
                  lambda: _marked(tandem, "Task", "Parked home visit"))  # fmt: skip


def _referral(world: SandboxWorld, tandem: Any) -> Opened:
    browser, launch_id, page, careplan_id = _family(world, "pk-referral")
    return Opened(browser, launch_id, page, f"/healthysteps/families/{careplan_id}/referrals",
                  {"patient": "pk-referral", "practitioner": "pr-hs-1"},
                  lambda: _marked(tandem, "ServiceRequest", "Parked development centre"))  # fmt: skip


def _safety_outcome(world: SandboxWorld, tandem: Any) -> Opened:
    from .test_screening_writeback import PHQ9_ITEM9_POSITIVE

    patient(world, "pk-safety")
    clinician = Browser()
    chart_launch = launch_id_of(clinician.follow(launch_url(world, "generic", patient="pk-safety")))
    screen = f"{world.tandem_url}/app/{chart_launch}/screen/phq9"
    form, target = clinician.form(screen)
    assert clinician.post_from(screen, target, {**form.hidden, **PHQ9_ITEM9_POSITIVE}).status_code == 303
    task_id = f"tandem-{form.hidden['submission_id']}-safety"
    browser = Browser()
    worklist = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    launch_id = launch_id_of(worklist)
    return Opened(browser, launch_id, f"{world.tandem_url}/app/{launch_id}/safety", f"/safety/{task_id}/close",
                  {"patient": None, "target": "worklist", "practitioner": "pr-cm-1"},
                  lambda: int(tandem.registry.read("Task", task_id)["status"] == "completed"))  # fmt: skip


#: (form kind, how it is opened, what the person typed). Source: issue 26 §1 — contact, enrolment, review,
#: referral/tier move, social answers, gestation/caregiver forms in the chart are never silently dropped.
CASES = [
    ("contact", _contact, {"minutes": "25", "contact_type": "phone", "role": "care-manager",
                           "note": "Parked call about sleep"}),
    ("enrolment", _enrolment, {"program": "cocm-depression", "pcp": "Practitioner/pr-pcp-1",
                               "care-manager": "Practitioner/pr-cm-1", "psychiatric-consultant": "Practitioner/pr-psy-1",
                               "consent": "yes", "consent_method": "verbal"}),
    ("case review", _review, {"recommendations": "Parked: sertraline 50 mg"}),
    ("gestation", _gestation, {"weeks": "33", "days": "4"}),
    ("caregiver", _caregiver, {"name": "Parked Caregiver", "relationship": "FTH"}),
    ("tier move", _tier, {"tier": "2", "reason": "caregiver-concern", "note": "Parked sleep worries"}),
    ("social answers", _social, {"social_day": date.today().isoformat(), "social-housing": "unhoused"}),
    ("follow-up", _follow_up, {"due": (date.today() + timedelta(days=7)).isoformat(),
                               "description": "Parked follow-up call"}),
    ("enrolment status", _status, {"phase": "relapse-prevention", "flag": "0"}),
    ("HealthySteps contact", _hs_contact, {"when": date.today().isoformat(), "type": "home-visit", "present": "both",
                                           "minutes": "35", "note": "Parked home visit"}),
    ("referral", _referral, {"service": "developmental-evaluation", "for": "child", "concern": "developmental-concern",
                             "organisation": "Parked development centre"}),
    ("safety follow-up outcome", _safety_outcome, {"outcome": "safety-plan", "note": "Parked: safety plan by phone"}),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "open_form", "typed"), CASES, ids=[c[0] for c in CASES])
def test_a_form_posted_after_its_launch_ended_is_kept_reopened_and_saved_once(
    world: SandboxWorld, tandem: Any, kind: str, open_form: Callable[[SandboxWorld, Any], Opened],
    typed: dict[str, str]
) -> None:  # fmt: skip
    opened = open_form(world, tandem)
    form, target = opened.browser.form(opened.page, opened.action)
    before = opened.count()
    tandem.sessions.end(opened.launch_id)
    parked = opened.browser.post_from(opened.page, target, {**form.hidden, **typed})
    assert parked.status_code == 202, parked.text[-800:]
    assert "session had ended" in parked.text and "kept" in parked.text
    assert opened.count() == before  # nothing saved yet

    browser = Browser()
    relaunched = browser.follow(launch_url(world, "generic", **opened.relaunch))
    launch_id = launch_id_of(relaunched)
    shown = browser.get(relaunched.url).text
    assert "You have 1 unsaved form from" in shown, shown[-1500:]
    link = shown.split(f'href="/app/{launch_id}/parked/')[1].split('"')[0]
    reopen = f"{world.tandem_url}/app/{launch_id}/parked/{link}"
    page = html.unescape(browser.get(reopen).text)
    for value in typed.values():
        assert value in page  # what was typed, prefilled
    again, target = browser.form(reopen, opened.action.replace(opened.launch_id, launch_id))
    saved = browser.post_from(reopen, target, {**again.hidden, **typed})
    assert saved.status_code == 303, html.unescape(saved.text)[-1500:]
    assert opened.count() == before + 1
    assert "unsaved form" not in browser.get(relaunched.url).text

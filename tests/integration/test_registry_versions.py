"""Issue 26 §4, over HTTP against the sandbox registry: every form that updates an existing registry record
(tests/smartapp/test_registry_versions.py REQUIRES_VERSION) refuses a post without the version the user saw and a
post with a stale one (409, in words, nothing saved), and saves with the right one."""

from __future__ import annotations

import html
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from fhir_mappings.healthysteps.referrals import referral_from
from fhir_mappings.registry.resources import TIER_HISTORY_URL
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url
from .test_caseload import enrol

pytestmark = pytest.mark.integration
CHILD = "pt-versions-1"  # a child of this test's own (the cohort's children are other tests')


def _family(world: SandboxWorld, browser: Browser) -> tuple[str, str]:
    child = {"resourceType": "Patient", "id": CHILD, "active": True, "gender": "female",
             "name": [{"family": "Versions", "given": ["Ida"]}],
             "birthDate": (date.today() - timedelta(days=400)).isoformat()}  # fmt: skip
    requests.put(f"{world.ehr.base_url}/Patient/{CHILD}", json=child, timeout=10,
                 headers={"Content-Type": "application/fhir+json"}).raise_for_status()  # fmt: skip
    chart = browser.follow(launch_url(world, "generic", patient=CHILD, practitioner="pr-hs-1"))
    base = f"{world.tandem_url}/app/{launch_id_of(chart)}"
    page = html.unescape(chart.text)
    if "Open the family's HealthySteps record" not in page:
        answer = browser.submit(f"{base}/", action=f"/app/{launch_id_of(chart)}/healthysteps/enrol")
        assert answer.status_code == 303, answer.text[-500:]
        page = html.unescape(browser.get(f"{base}/").text)
    careplan = page.split("/healthysteps/families/")[1].split('"')[0]
    return base, f"{base}/healthysteps/families/{careplan}"


def _tiers(tandem: Any, careplan_id: str) -> list[str]:
    plan = tandem.registry.read("CarePlan", careplan_id)
    moves = [e for e in plan["extension"] if e["url"] == TIER_HISTORY_URL]
    return [next(p["valueCode"] for p in m["extension"] if p["url"] == "tier") for m in moves]


def _refused(answer: Any) -> None:
    text = html.unescape(answer.text)
    assert answer.status_code == 409, (answer.status_code, text[-500:])
    assert "Someone else" in text and "Reload the page" in text and "nothing was saved" in text


def _fresh_once(browser: Browser, page: str, action: str, fields: dict[str, str]) -> dict[str, str]:
    """The fields of a form opened before the last change (its version stale now), sent as a new form: a fresh
    single-use id from the page, so the version check answers, not the replay of the earlier send."""
    fresh, _ = browser.form(page, action)
    return {**fields, **{k: v for k, v in fresh.hidden.items() if k != "version"}}


def test_healthysteps_forms_require_the_version_the_specialist_saw(world: SandboxWorld, tandem: Any) -> None:
    browser = Browser()
    _, family = _family(world, browser)
    path = family.removeprefix(world.tandem_url)
    careplan_id = family.rsplit("/", 1)[-1]
    before = _tiers(tandem, careplan_id)
    target = "3" if before[-1] != "3" else "2"

    # Tier move: without the version, with a stale one, then with the right one.
    form, url = browser.form(family, f"{path}/tier")
    move = {**form.hidden, "tier": target, "reason": "multiple-risks"}
    _refused(browser.post_from(family, url, {k: v for k, v in move.items() if k != "version"}))
    _refused(browser.post_from(family, url, {**move, "version": "0"}))
    assert _tiers(tandem, careplan_id) == before  # nothing saved
    assert browser.post_from(family, url, move).status_code == 303
    assert _tiers(tandem, careplan_id) == [*before, target]
    _refused(
        browser.post_from(family, url, _fresh_once(browser, family, f"{path}/tier", {**move, "tier": "1"}))
    )

    # A referral's status: the referral Task's version.
    made = browser.submit(
        family, {"service": "developmental-evaluation", "for": "child"}, action=f"{path}/referrals"
    )
    assert made.status_code == 303
    tasks = tandem.registry.search_all(
        "Task", {"code": "https://tandem.health/fhir/CodeSystem/task|referral"}
    )
    referral = next(
        r for r in (referral_from(t) for t in tasks) if r and r.careplan_id == careplan_id and r.open
    )
    form, url = browser.form(family, f"{path}/referrals/{referral.id}")
    update = {**form.hidden, "status": "accepted"}
    assert update["version"] == referral.version
    _refused(browser.post_from(family, url, {k: v for k, v in update.items() if k != "version"}))
    _refused(browser.post_from(family, url, {**update, "version": "0"}))
    assert referral_from(tandem.registry.read("Task", f"referral-{referral.id}")).status == "requested"  # type: ignore[union-attr]
    assert browser.post_from(family, url, update).status_code == 303
    assert referral_from(tandem.registry.read("Task", f"referral-{referral.id}")).status == "accepted"  # type: ignore[union-attr]
    stale = _fresh_once(browser, family, f"{path}/referrals/{referral.id}", {**update, "status": "on-hold"})
    _refused(browser.post_from(family, url, stale))

    # Leaving the program: the CarePlan's version (last: it ends the enrolment).
    form, url = browser.form(family, f"{path}/exit")
    leave = {**form.hidden, "reason": "transferred"}
    _refused(browser.post_from(family, url, {k: v for k, v in leave.items() if k != "version"}))
    _refused(browser.post_from(family, url, {**leave, "version": "0"}))
    assert tandem.registry.read("CarePlan", careplan_id)["status"] == "active"
    assert browser.post_from(family, url, leave).status_code == 303
    assert tandem.registry.read("CarePlan", careplan_id)["status"] != "active"


def test_an_enrolment_update_requires_the_version_the_care_manager_saw(
    world: SandboxWorld, tandem: Any
) -> None:
    browser = Browser()
    launch_id, careplan_id = enrol(world, browser, "pt-0021")
    page = f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}"
    form, url = browser.form(page, "/update")
    change = {**form.hidden, "phase": "relapse-prevention", "flag": "0"}
    missing = browser.post_from(page, url, {k: v for k, v in change.items() if k != "version"})
    assert missing.status_code == 409 and "Your change was not saved" in missing.text
    assert tandem.caseload.get(careplan_id, world.iss("generic")).phase == "active-treatment"
    assert browser.post_from(page, url, {**change, "version": "0"}).status_code == 409
    assert browser.post_from(page, url, change).status_code == 303
    assert tandem.caseload.get(careplan_id, world.iss("generic")).phase == "relapse-prevention"

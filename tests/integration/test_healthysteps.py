"""HealthySteps over HTTP against the real sandbox (EHR, registry, Tandem): enrolment from a child's chart, the
tier history a person writes (with the reasons the site allows), referrals in the Gravity chain closed as
declined, Specialist contacts, what bad input gets, who may open the program's pages, and the report's CSV."""

from __future__ import annotations

import html
from typing import Any

import pytest

from fhir_mappings.healthysteps.referrals import referral_from
from fhir_mappings.registry.resources import TIER_HISTORY_URL
from sandbox.world import SandboxWorld
from smartapp import clock

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration
CHILD = "pt-0013"


def _enrolled(world: SandboxWorld, browser: Browser) -> tuple[str, str]:
    """A specialist's chart launch for the child, enrolled in HealthySteps: (the app's base URL, the family page)."""
    chart = browser.follow(launch_url(world, "generic", patient=CHILD, practitioner="pr-hs-1"))
    base = f"{world.tandem_url}/app/{launch_id_of(chart)}"
    page = html.unescape(chart.text)
    if "Open the family's HealthySteps record" not in page:
        assert "Enrol in HealthySteps (Tier 1)" in page
        answer = browser.submit(f"{base}/", action=f"/app/{launch_id_of(chart)}/healthysteps/enrol")
        assert answer.status_code == 303, answer.text[-500:]
        page = html.unescape(browser.get(f"{base}/").text)
    careplan = page.split("/healthysteps/families/")[1].split('"')[0]
    return base, f"{base}/healthysteps/families/{careplan}"


def test_enrol_move_tier_refer_and_log_contacts(world: SandboxWorld, browser: Browser, tandem: Any) -> None:
    base, family = _enrolled(world, browser)
    shown = html.unescape(browser.get(family).text)
    assert "Tier: Tier 1 — universal" in shown and "Enrolled: every child 0–3" in shown
    careplan_id = family.rsplit("/", 1)[-1]
    path = family.removeprefix(world.tandem_url)

    assert "Enrol in HealthySteps" not in browser.get(f"{base}/").text, (
        "an enrolled child is not offered it again"
    )

    # A move needs a reason from the site's list; nothing moves without one.
    refused = browser.submit(family, {"tier": "2", "reason": ""}, action=f"{path}/tier")
    assert refused.status_code == 422 and "Choose the reason for the move" in html.unescape(refused.text)
    moved = browser.submit(family, {"tier": "2", "reason": "caregiver-concern", "note": "Sleep worries"},
                           action=f"{path}/tier")  # fmt: skip
    assert moved.status_code == 303
    plan = tandem.registry.read("CarePlan", careplan_id)
    moves = [e for e in plan["extension"] if e["url"] == TIER_HISTORY_URL]
    assert [next(p["valueCode"] for p in m["extension"] if p["url"] == "tier") for m in moves] == ["1", "2"]
    assert any(p["url"] == "decidedBy" and p["valueReference"]["reference"] == "Practitioner/pr-hs-1"
               for p in moves[-1]["extension"])  # fmt: skip
    same = browser.submit(family, {"tier": "2", "reason": "family-request"}, action=f"{path}/tier")
    assert same.status_code == 422 and "already in Tier 2" in html.unescape(same.text)
    stale = browser.post_from(family, f"{family}/tier", {**browser.form(family, f"{path}/tier")[0].hidden,
                                                         "version": "1", "tier": "3", "reason": "multiple-risks"})  # fmt: skip
    assert stale.status_code == 409 and "Someone else changed" in html.unescape(stale.text)

    # Contacts: bad minutes are refused with what to change; who was present is kept.
    bad = browser.submit(family, {"when": "2020-01-01", "type": "phone", "present": "caregiver", "minutes": "abc"},
                         action=f"{path}/contact")  # fmt: skip
    assert bad.status_code == 422 and "minutes as a whole number" in html.unescape(bad.text)
    ok = browser.submit(family, {"when": clock.today().isoformat(), "type": "home-visit", "present": "both", "minutes": "40"},
                        action=f"{path}/contact")  # fmt: skip
    assert ok.status_code == 303
    assert "Child and caregiver(s) 40" in html.unescape(browser.get(family).text)

    # A referral for a caregiver needs the caregiver; one for the child is the Gravity chain, declined later.
    no_caregiver = browser.submit(family, {"service": "parenting-support", "for": "caregiver", "caregiver": ""},
                                  action=f"{path}/referrals")  # fmt: skip
    assert no_caregiver.status_code == 422 and "Choose the caregiver" in html.unescape(no_caregiver.text)
    made = browser.submit(family, {"service": "developmental-evaluation", "for": "child",
                                   "concern": "developmental-concern", "organisation": "Child development centre"},
                          action=f"{path}/referrals")  # fmt: skip
    assert made.status_code == 303
    tasks = tandem.registry.search_all(
        "Task", {"code": "https://tandem.health/fhir/CodeSystem/task|referral"}
    )
    mine = [r for r in (referral_from(t) for t in tasks) if r and r.careplan_id == careplan_id]
    assert len(mine) == 1 and mine[0].open and mine[0].service == "developmental-evaluation"
    request = tandem.registry.read("ServiceRequest", f"sr-{mine[0].id}")
    assert request["reasonReference"] == [{"reference": f"Condition/concern-{mine[0].id}"}]
    closed = browser.submit(family, {"status": "cancelled", "note": "Family prefers to wait"},
                            action=f"{path}/referrals/{mine[0].id}")  # fmt: skip
    assert closed.status_code == 303
    assert tandem.registry.read("ServiceRequest", f"sr-{mine[0].id}")["status"] == "revoked"
    assert "Declined by the family" in html.unescape(browser.get(family).text)
    # The closed referral has no form any more; a stale page's post is refused, not reopened: without the
    # referral's version or with the one the page was opened at (409), and even with the current one (422).
    token = browser.form(family, f"{path}/contact")[0].hidden
    closed_now = referral_from(tandem.registry.read("Task", f"referral-{mine[0].id}"))
    assert closed_now is not None and closed_now.version != mine[0].version
    for version, status in ((None, 409), (mine[0].version, 409), (closed_now.version, 422)):
        data = {**token, "status": "completed", **({"version": version} if version else {})}
        twice = browser.post_from(family, f"{family}/referrals/{mine[0].id}", data)
        assert twice.status_code == status, (version, twice.status_code)
        assert status == 409 or "already closed" in html.unescape(twice.text)


def test_who_may_open_the_program_pages(world: SandboxWorld, browser: Browser) -> None:
    _, family = _enrolled(world, browser)
    # The chart launch of the child may open the child's family page, not the program's worklist or report.
    assert browser.get(family).status_code == 200
    base = family.split("/healthysteps/")[0]
    assert browser.get(f"{base}/healthysteps/").status_code == 403
    assert browser.get(f"{base}/healthysteps/report").status_code == 403
    # A user-level launch sees the worklist, the report and its CSV; the CoCM worklist leaves the child out.
    worklist = browser.follow(launch_url(world, "generic", patient=None, target="healthysteps",
                                         practitioner="pr-hs-1"))  # fmt: skip
    assert worklist.status_code == 200 and "HealthySteps worklist" in worklist.text
    app = f"{world.tandem_url}/app/{launch_id_of(worklist)}"
    careplan = family.rsplit("/", 1)[-1]
    assert f"/healthysteps/families/{careplan}" in worklist.text
    report = browser.get(f"{app}/healthysteps/report?format=csv")
    assert report.status_code == 200 and report.text.startswith("Section,Measure,Count,Of,Percent")
    cocm = browser.get(f"{app}/worklist")
    assert f"/enrolments/{careplan}" not in cocm.text
    # The CoCM record address of a HealthySteps family leads to its own page.
    moved = browser.get(f"{app}/enrolments/{careplan}", allow_redirects=False)
    assert (
        moved.status_code in (302, 303) and f"/healthysteps/families/{careplan}" in moved.headers["Location"]
    )
    # Another program's record is not a HealthySteps family.
    assert browser.get(f"{app}/healthysteps/families/no-such-plan").status_code == 404

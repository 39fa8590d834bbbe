"""No form is ever saved twice (issue 26 §1, "Back, then submit again, makes duplicates"), against the real sandbox:
each form sent twice with the same fields (its single-use id) saves once, and the second answer is a redirect to
the first result. The contact (37 minutes stay 37, not 54) and the screening (one PHQ-9 in the EHR) count their
records; every other form shows that the second POST never reached its view (the "already sent" notice, which only
the replay guard sets). A 5,000-character contact note is stored and shown whole."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from sandbox.world import SandboxWorld
from smartapp import clock
from smartapp.form_once import ALREADY_SAVED

from .conftest import Browser, launch_id_of, launch_url
from .test_caseload import enrol

pytestmark = pytest.mark.integration

PHQ9_NEGATIVE = {f"phq9-{n}": "LA6568-5" for n in range(1, 10)}


def _send_twice(browser: Browser, page: str, action: str, data: dict[str, str]) -> tuple[Any, Any]:
    """Open `page`, fill its form for `action`, and send that same form twice (Back + resubmit, a double click)."""
    form, target = browser.form(page, action)
    fields = {**form.hidden, **data}
    return browser.post_from(page, target, fields), browser.post_from(page, target, fields)


def _minutes(tandem: Any, careplan_id: str) -> int:
    return sum(
        c.minutes for c in tandem.caseload.load(use_cache=False).contacts if c.careplan_id == careplan_id
    )


#: One browser and launch per patient, shared by the cases on that patient's pages (each enrols once).
_OPENED: dict[str, tuple[Browser, str]] = {}


def _cocm(action: str, path: str = "") -> Callable[[SandboxWorld], tuple[Browser, str, str]]:
    """A page of an adult's Collaborative Care enrolment (pt-0023, no other test's; enrolled once for all)."""

    def reach(world: SandboxWorld) -> tuple[Browser, str, str]:
        if "cocm" not in _OPENED:
            browser = Browser()
            launch_id, careplan_id = enrol(world, browser, "pt-0023")
            _OPENED["cocm"] = (browser, f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}")
        browser, page = _OPENED["cocm"]
        return browser, page + path, action

    return reach


def _child(action: str, family: bool = True) -> Callable[[SandboxWorld], tuple[Browser, str, str]]:
    """The chart of a child (pt-0008, no other test's) or the child's HealthySteps family page (enrolled once)."""

    def reach(world: SandboxWorld) -> tuple[Browser, str, str]:
        if "child" not in _OPENED:
            browser = Browser()
            chart = browser.follow(launch_url(world, "generic", patient="pt-0008", practitioner="pr-hs-1"))
            base = f"{world.tandem_url}/app/{launch_id_of(chart)}"
            enrolled = browser.submit(f"{base}/", action=f"/app/{launch_id_of(chart)}/healthysteps/enrol")
            assert enrolled.status_code == 303, enrolled.text[-800:]
            _OPENED["child"] = (browser, base)
        browser, base = _OPENED["child"]
        if not family:
            return browser, f"{base}/", action
        page = html.unescape(browser.get(f"{base}/").text)
        careplan = page.split("/healthysteps/families/")[1].split('"')[0]
        family_page = f"{base}/healthysteps/families/{careplan}"
        return browser, family_page, family_page.removeprefix(world.tandem_url) + action

    return reach


def test_a_contact_sent_twice_counts_once_and_a_long_note_is_kept_whole(
    world: SandboxWorld, tandem: Any
) -> None:
    browser, page, _ = _cocm("/contact")(world)
    careplan_id = page.rsplit("/", 1)[-1]
    before = _minutes(tandem, careplan_id)
    note = ("Discussed sleep, activity scheduling and the safety plan. " * 90)[:5000]
    assert len(note) == 5000
    first, again = _send_twice(browser, page, "/contact", {"minutes": "37", "contact_type": "phone",
                                                           "role": "care-manager", "note": note})  # fmt: skip
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert _minutes(tandem, careplan_id) == before + 37  # not 74 (nor 54 with a changed second form)
    contacts = [c for c in tandem.caseload.load(use_cache=False).contacts if c.careplan_id == careplan_id]
    assert [c.note for c in contacts].count(note) == 1 and len(
        note
    ) == 5000  # stored whole: nothing a person wrote is cut
    shown = browser.get(world.tandem_url + again.headers["Location"]).text
    assert ALREADY_SAVED in html.unescape(shown)
    assert note in html.unescape(shown)  # and shown whole


def test_a_screening_sent_twice_is_one_phq9_in_the_ehr(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    patient = "pt-0023"
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=patient)))

    def in_ehr() -> int:  # PHQ-9 totals (LOINC 44261-6) on the patient's chart in the EHR
        bundle = requests.get(f"{world.ehr.base_url}/Observation", timeout=10,
                              params={"patient": patient, "code": "http://loinc.org|44261-6", "_count": "500"}).json()  # fmt: skip
        return len(bundle.get("entry", []))

    before = in_ehr()
    page = f"{world.tandem_url}/app/{launch_id}/screen/phq9"
    first, again = _send_twice(browser, page, "/screen/phq9", PHQ9_NEGATIVE)
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert in_ehr() == before + 1
    assert ALREADY_SAVED in html.unescape(browser.get(world.tandem_url + again.headers["Location"]).text)


@dataclass(frozen=True)
class Case:
    """A form: how to reach its page (from the browser and the world: (page URL, action)) and what to send."""

    name: str
    reach: Callable[[SandboxWorld], tuple[Browser, str, str]]
    data: dict[str, str]


# Every form that saves something, beside the contact and the screening above (issue 26 §1: "every form in every
# feature folder, the portal and questionnaire links"; the portal and link answers are in test_self_report.py).
CASES = [
    Case("follow-up task", _cocm("/follow-up"),
         {"due": clock.today().isoformat(), "description": "Call about sleep"}),
    Case("status and review flag", _cocm("/update"), {"flag": "1"}),
    Case("questionnaire link", _cocm("/link", "/link"), {"instrument": "phq9"}),
    Case("HealthySteps tier", _child("/tier"), {"tier": "2", "reason": "caregiver-concern"}),
    Case("HealthySteps contact", _child("/contact"),
         {"when": clock.today().isoformat(), "type": "phone", "present": "both", "minutes": "20"}),
    Case("HealthySteps referral", _child("/referrals"),
         {"service": "developmental-evaluation", "for": "child", "organisation": "Child development centre"}),
    Case("caregiver", _child("/caregivers", family=False), {"name": "Robin Example", "relationship": "MTH"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_form_sent_twice_saves_once(world: SandboxWorld, case: Case) -> None:
    browser, page, action = case.reach(world)
    first, again = _send_twice(browser, page, action, case.data)
    assert first.status_code in (200, 303), (case.name, first.status_code, first.text[-800:])
    assert again.status_code == 303, (case.name, again.status_code)
    if first.status_code == 303:
        assert again.headers["Location"] == first.headers["Location"]
    shown = browser.follow(world.tandem_url + again.headers["Location"])
    assert ALREADY_SAVED in html.unescape(shown.text), case.name  # the guard answered: the view did not run


# Every form that can come back with problems shows the one error summary first in <main>, its links leading to
# fields on the page (issue 26 §1, "errors must be seen"; the browser tier checks focus and the viewport).
PROBLEMS = [
    Case("contact", _cocm("/contact"), {"minutes": "0", "contact_type": "phone", "role": "care-manager"}),
    Case("follow-up task", _cocm("/follow-up"), {"due": ""}),
    Case("questionnaire link", _cocm("/link", "/link"), {"instrument": "not-one"}),
    Case("HealthySteps tier", _child("/tier"), {"tier": "2", "reason": ""}),
    Case("HealthySteps contact", _child("/contact"), {"when": "", "minutes": "abc"}),
    Case("HealthySteps referral", _child("/referrals"),
         {"service": "parenting-support", "for": "caregiver", "caregiver": ""}),
    Case("caregiver", _child("/caregivers", family=False), {"name": "", "relationship": "MTH"}),
    Case("gestational age", _child("/gestation", family=False), {"weeks": "99", "days": "0"}),
]  # fmt: skip


@pytest.mark.parametrize("case", PROBLEMS, ids=[c.name for c in PROBLEMS])
def test_every_form_with_problems_shows_the_error_summary_first(world: SandboxWorld, case: Case) -> None:
    browser, page, action = case.reach(world)
    answer = browser.submit(page, case.data, action=action)
    assert answer.status_code == 422, (case.name, answer.status_code)
    summary = re.search(r'<main id="main" tabindex="-1">\s*<div class="error-summary" id="error-summary" '
                        r'role="alert" [^>]*tabindex="-1" autofocus>(.*?)</div>', answer.text, re.S)  # fmt: skip
    assert summary, answer.text[:3000]
    targets = re.findall(r'<a href="#([^"]+)">', summary.group(1))
    assert targets and all(f'id="{t}"' in answer.text for t in targets), (case.name, targets)

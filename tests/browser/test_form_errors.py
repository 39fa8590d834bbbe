"""Errors must be seen (issue 26 §1): a form that comes back with problems shows one error summary at the top of
<main>, inside a 1024×700 EHR frame's viewport, with the focus on it, and passes axe-core. The demo runs on the
embedded in-process store, so single-use form ids are exercised there too (a replayed form saves once)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .test_self_report import axe_violations

pytestmark = pytest.mark.integration

IN_VIEW_AND_FOCUSED = """() => {
    const summary = document.getElementById('error-summary');
    if (!summary) return 'no summary';
    const box = summary.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) return 'out of view: ' + box.top + '..' + box.bottom;
    if (document.activeElement !== summary) return 'focus on ' + document.activeElement.tagName;
    if (summary.parentElement.id !== 'main' || summary !== document.querySelector('main > *')) return 'not first';
    return 'ok';
}"""


def _launch(page: Any, world: Any, target: str, patient: str | None = None) -> str:
    """The app's base address of a new launch (generic EHR, care manager)."""
    query = f"mode=generic&practitioner=pr-cm-2&target={target}" + (f"&patient={patient}" if patient else "")
    page.goto(f"{world.sandbox_url}/launch-app?{query}")
    page.wait_for_url(re.compile(r"/app/[^/]+/"))
    match = re.search(r"^(.*/app/[^/]+)/", page.url)
    assert match, page.url
    return match.group(1)


def _enrolment(world: Any) -> str:
    """An adult's active depression enrolment of the seeded demo (a PHQ-9 follow-up fits it)."""
    from datetime import date

    tandem = world.tandem_app.extensions["tandem"]
    return next(e.id for e in tandem.caseload.load(use_cache=False).enrolments
                if e.active and e.program == "cocm-depression" and e.iss == world.iss("generic")
                and e.birth_date is not None and e.birth_date < date(2000, 1, 1))  # fmt: skip


def _screening(page: Any, world: Any) -> None:
    """A follow-up PHQ-9 from the registry without saying how it was measured."""
    base = _launch(page, world, "worklist")
    page.goto(f"{base}/enrolments/{_enrolment(world)}/measure/phq9")
    page.get_by_role("button", name="Score and save").click()


def _contact(page: Any, world: Any) -> None:
    base = _launch(page, world, "worklist")
    page.goto(f"{base}/enrolments/{_enrolment(world)}")
    form = page.locator("form", has=page.locator("#minutes"))
    form.evaluate("f => f.noValidate = true")  # the server's check, as an older browser would reach it
    page.locator("#note").fill("A long note. " * 400)
    page.get_by_role("button", name="Log contact").click()  # no minutes


def _review(page: Any, world: Any) -> None:
    """A case review whose recommendation has a detail but no kind."""
    base = _launch(page, world, "worklist")
    page.goto(f"{base}/review?who=all")
    form = page.locator("form.recommendation-form").first
    form.locator("input[name=detail]").first.fill("sertraline 50 mg")
    form.get_by_role("button", name="Record review and close").click()


def _safety(page: Any, world: Any) -> None:
    """A safety follow-up closed without an outcome (the browser's own check off, as an older browser)."""
    base = _launch(page, world, "worklist")
    page.goto(f"{base}/safety")
    form = page.locator("form.close-safety").first
    form.evaluate("f => f.noValidate = true")
    form.locator("textarea").fill("Called the patient; safety plan reviewed.")
    form.get_by_role("button", name="Close this follow-up").click()


def _link(page: Any, world: Any) -> None:
    from datetime import date

    from fhir_mappings.common.identity import PatientKey
    from smartapp.selfreport.links import QuestionnaireLinks

    tandem = world.tandem_app.extensions["tandem"]
    token, _ = QuestionnaireLinks(tandem.store, tandem.secret_key).create(
        PatientKey(world.iss("generic"), "pt-0023"), "gad7", date(1990, 3, 4), None, 7)  # fmt: skip
    page.goto(f"{world.tandem_url}/r/{token}")
    page.get_by_label("Day").fill("5")
    page.get_by_label("Month").fill("3")
    page.get_by_label("Year").fill("1990")
    page.get_by_role("button", name="Continue").click()  # the wrong date of birth


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        (_screening, "Say how this follow-up was measured"),
        (_contact, "Enter the minutes spent"),
        (_review, "choose what kind of recommendation it is"),
        (_safety, "Choose the outcome of the follow-up"),
        (_link, "That date of birth does not match"),
    ],
    ids=["screening", "contact", "review", "safety", "link"],
)
def test_a_form_with_problems_shows_a_focused_summary_in_the_frame(
    frame_page: Any, demo_world: Any, form: Any, problem: str
) -> None:
    form(frame_page, demo_world)
    summary = frame_page.locator("#error-summary")
    summary.wait_for()
    assert problem in summary.inner_text()
    # The focus moves once the page has loaded (autofocus, or focus.js on DOMContentLoaded): wait for the load,
    # not a fixed time, before judging where the focus is.
    frame_page.wait_for_load_state("load")
    assert frame_page.evaluate(IN_VIEW_AND_FOCUSED) == "ok"
    link = summary.get_by_role("link").first  # each problem links to its field
    target = (link.get_attribute("href") or "").removeprefix("#")
    assert target and frame_page.locator(f"[id='{target}']").count() == 1
    assert axe_violations(frame_page) == []


def test_a_long_contact_note_is_kept_whole_when_the_form_comes_back(frame_page: Any, demo_world: Any) -> None:
    _contact(frame_page, demo_world)
    frame_page.locator("#error-summary").wait_for()
    assert frame_page.locator("#note").input_value() == ("A long note. " * 400)


def test_the_summary_takes_the_focus_inside_an_ehr_iframe_on_another_site(
    frame_page: Any, demo_world: Any
) -> None:
    """Browsers block autofocus in a cross-origin frame: focus.js focuses the summary there."""
    frame_page.goto(f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-2&target=worklist"
                    "&embed=1")  # fmt: skip
    frame = frame_page.frame_locator("#tandem-frame")
    frame.get_by_role("heading", name="Caseload worklist").wait_for()
    tandem = next(f for f in frame_page.frames if f.url.startswith(demo_world.tandem_url))
    base = re.search(r"^(.*/app/[^/]+)/", tandem.url)
    assert base
    tandem.goto(f"{base.group(1)}/enrolments/{_enrolment(demo_world)}/measure/phq9")
    frame.get_by_role("button", name="Score and save").click()
    frame.locator("#error-summary").wait_for()
    tandem = next(f for f in frame_page.frames if f.url.startswith(demo_world.tandem_url))
    tandem.wait_for_function("document.activeElement && document.activeElement.id === 'error-summary'")
    assert tandem.evaluate(IN_VIEW_AND_FOCUSED) == "ok"


def test_the_same_contact_form_sent_twice_saves_once_on_the_embedded_store(
    frame_page: Any, demo_world: Any
) -> None:
    """Back + resubmit or a double click sends one form twice (same fields, same cookies): one contact, and the
    second answer is the first's result; 37 minutes stay 37, not 54."""
    page = frame_page
    base = _launch(page, demo_world, "worklist")
    careplan_id = _enrolment(demo_world)
    page.goto(f"{base}/enrolments/{careplan_id}")
    tandem = demo_world.tandem_app.extensions["tandem"]

    def minutes() -> int:
        return sum(
            c.minutes for c in tandem.caseload.load(use_cache=False).contacts if c.careplan_id == careplan_id
        )

    before = minutes()
    page.locator("#minutes").fill("37")
    form = page.locator("form", has=page.locator("#minutes"))
    fields = form.evaluate("f => Object.fromEntries(new FormData(f))")
    target = form.evaluate("f => f.action")
    answers = [page.request.post(target, form=fields, max_redirects=0, headers={"Referer": page.url})
               for _ in range(2)]  # fmt: skip
    assert [a.status for a in answers] == [303, 303]
    assert answers[0].headers["location"] == answers[1].headers["location"]
    assert minutes() == before + 37

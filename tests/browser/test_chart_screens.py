"""The clinician's chart inside an EHR's 1024×700 activity frame (issue 28, "Clinician (chart)"):

1. the item-9 safety alert offers the next step (C-SSRS screener, safety plan, referral), each recorded on the
   safety follow-up with who and when, once per form; the acknowledgement keeps working;
2. staff enter a PHQ-9 / GAD-7 as a compact grid, keyboard first, every radio named (axe clean);
3. enrolment's care-team pickers list practitioners by role and never default the PCP into another role;
4. the result and write-back pages show local time and no ids, resource types or HTTP codes;
5. the chart and the sandbox's launcher fit the frame.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.screens import overflow_px, readable_text, screen_problems

pytestmark = pytest.mark.integration

#: A local time as Tandem shows it (the demo runs in UTC: the time alone, never "UTC").
LOCAL_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}\b")


def _launch(
    page: Any, world: Any, practitioner: str, patient: str | None = None, target: str = "chart"
) -> str:
    """Launch Tandem as `practitioner` (on `patient`'s chart) and return the launch's base address."""
    extra = f"&patient={patient}" if patient else ""
    page.goto(
        f"{world.sandbox_url}/launch-app?mode=generic&practitioner={practitioner}{extra}&target={target}"
    )
    page.locator("main").first.wait_for()
    match = re.search(r"^(.*?/app/[^/]+)/", page.url)
    assert match, page.url
    return match.group(1)


def _fill_phq9(page: Any, item9: int) -> None:
    """Keyboard first: Tab into each row of the grid, the arrow keys choose (one press per answer step)."""
    page.locator("#phq9-1-0").focus()
    for number in range(1, 10):
        steps = item9 if number == 9 else 1
        if number > 1:
            page.keyboard.press("Tab")  # the next row's radio group
        assert page.evaluate("document.activeElement.name") == f"phq9-{number}"
        page.keyboard.press("Space")  # the first answer ("Not at all")
        for _ in range(steps):
            page.keyboard.press("ArrowRight")
        assert page.locator(f"#phq9-{number}-{steps}").is_checked()


def test_item9_alert_offers_the_next_steps_recorded_on_the_safety_follow_up(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    base = _launch(page, demo_world, "pr-pcp-2", "pt-0003")
    page.goto(f"{base}/screen/phq9")
    _fill_phq9(page, item9=2)
    page.get_by_role("button", name="Score and save").click()

    alert = page.locator("#safety")
    alert.wait_for()
    result_url = page.url
    # The alert is never hidden or delayed: it and its acknowledgement are there at once, above the fold.
    assert page.locator("#acknowledge").is_visible() and alert.bounding_box()["y"] < 700
    steps = page.locator("#safety-steps")
    assert steps.get_by_role("button", name="Start the C-SSRS screener").is_visible()
    assert (
        steps.get_by_text("Record a safety plan").is_visible()
        and steps.get_by_text("Record a referral").is_visible()
    )
    assert screen_problems(page) == []

    # A safety plan without its text comes back saying what to write, nothing recorded.
    steps.get_by_text("Record a safety plan").click()
    page.locator("#save-safety-plan").click()
    page.locator("#note-safety-plan-error").wait_for()
    assert page.locator(".steps-taken").count() == 0
    page.locator("#note-safety-plan").fill("Warning signs reviewed; calls her sister; crisis line 988")
    form = page.locator("#note-safety-plan").locator("xpath=ancestor::form")
    sent = form.evaluate("f => Object.fromEntries(new FormData(f))")  # what Back and resubmit sends again
    page.locator("#save-safety-plan").click()
    taken = page.locator(".steps-taken li")
    taken.first.wait_for()
    assert taken.count() == 1
    text = taken.first.inner_text()
    assert (
        "Safety plan made: Warning signs reviewed" in text
        and "Marcus Oyelaran" in text
        and LOCAL_TIME.search(text)
    )

    # Back and resubmit (the same form, its id spent) records nothing more.
    replay = page.request.post(f"{result_url}/safety-step", form=sent)
    assert replay.ok and sent["form_once"]
    page.goto(result_url)
    assert page.locator(".steps-taken li").count() == 1

    # A referral, then the acknowledgement still works as before.
    page.get_by_text("Record a referral").click()
    page.locator("#note-referral").fill("Crisis team, seen today")
    page.locator("#save-referral").click()
    page.locator(".steps-taken li").nth(1).wait_for()
    page.locator("#acknowledge").click()
    page.locator(".acknowledged").wait_for()
    assert page.locator("#step-cssrs").is_visible()  # the next steps stay after the acknowledgement

    # Starting the C-SSRS screener records it and opens the screener; its result is kept on the follow-up too.
    page.locator("#step-cssrs").click()
    page.get_by_role("heading", name=re.compile("C-SSRS|Columbia", re.I)).wait_for()
    page.locator("#cssrs-1-0").check()  # wished to be dead: yes
    page.locator("#cssrs-2-1").check()  # thoughts of killing oneself: no
    page.locator("#cssrs-6-2").check()  # suicidal behaviour: no
    page.get_by_role("button", name="Score and save").click()
    page.locator("section.result").wait_for()
    page.goto(result_url)
    taken = page.locator(".steps-taken li").all_inner_texts()
    kinds = [li.split(":")[0].split(" — ")[0] for li in taken]
    assert kinds == ["Safety plan made", "Referral made", "C-SSRS screener started", "C-SSRS screener result"]
    assert "low risk" in taken[-1]
    assert screen_problems(page) == []

    # The safety list shows what was done, by whom and when.
    page.goto(f"{base}/safety")
    item = page.locator("section.safety-item", has_text="Referral made")
    item.wait_for()
    listed = item.locator(".steps-taken").inner_text()
    assert (
        "Safety plan made" in listed and "C-SSRS screener started" in listed and "Marcus Oyelaran" in listed
    )
    assert screen_problems(page) == []


@pytest.mark.parametrize(("key", "rows"), [("phq9", 9), ("gad7", 7)])
def test_staff_enter_phq9_and_gad7_as_a_compact_keyboard_grid(frame_page: Any, demo_world: Any, key: str,
                                                              rows: int) -> None:  # fmt: skip
    page = frame_page
    base = _launch(page, demo_world, "pr-pcp-1", "pt-0001")
    page.goto(f"{base}/screen/{key}")
    grid = page.locator("table.answer-grid")
    grid.wait_for()
    headers = grid.locator("thead th").all_inner_texts()
    assert [h.split(" (")[0] for h in headers] == [
        "Question", "Not at all", "Several days", "More than half the days", "Nearly every day"
    ]  # fmt: skip
    assert grid.locator("tbody tr").count() == rows
    # Each radio is named by its answer (axe: every form field has an accessible name) and ids are kept.
    assert page.get_by_role("radio", name="Several days").count() == rows
    assert page.locator(f"#{key}-{rows}-2").count() == 1
    # Keyboard first: Tab into a row, the arrows choose; Tab goes to the next row.
    page.locator(f"#{key}-1-0").focus()
    page.keyboard.press("ArrowRight")
    assert page.locator(f"#{key}-1-1").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == f"{key}-2"
    # Every question fits the frame without scrolling (the PHQ-9 was 1,901 px tall as a list).
    assert grid.bounding_box()["y"] + grid.bounding_box()["height"] <= 700
    assert screen_problems(page) == []


def test_enrolment_pickers_list_practitioners_by_role(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    base = _launch(page, demo_world, "pr-pcp-1", "pt-0005")
    page.goto(f"{base}/enrol")
    page.locator("#care-manager").wait_for()

    def options(field: str) -> list[str]:
        return [o for o in page.locator(f"#{field} option").all_inner_texts() if o != "Not assigned"]

    assert options("care-manager") and all("care manager" in o for o in options("care-manager"))
    assert options("psychiatric-consultant") == ["Irene Castellanos — Psychiatric consultant"]
    assert not any("Dana Whitfield" in o for o in options("care-manager") + options("psychiatric-consultant"))
    # The launching PCP is not defaulted into another role (sandbox/data.py: Dana Whitfield is a PCP).
    assert page.locator("#care-manager").input_value() == ""
    assert page.locator("#psychiatric-consultant").input_value() == ""
    assert page.locator("#pcp").input_value().startswith("Practitioner/pr-pcp-")  # the patient's own PCP
    assert screen_problems(page) == []

    # A PCP slipped into the care-manager field (an option the page does not offer) is refused by the server.
    page.locator("#care-manager").evaluate(
        "s => { const o = new Option('Dana Whitfield', 'Practitioner/pr-pcp-1'); s.add(o); s.value = o.value; }"
    )
    page.locator("#consent").check()
    page.locator("#consent-verbal").check()
    page.get_by_role("button", name="Enrol", exact=True).click()
    page.get_by_text("Choose each care team member from the list").first.wait_for()
    assert "/enrol" in page.url

    # A care manager who opens it is the default care manager.
    base = _launch(page, demo_world, "pr-cm-1", "pt-0005")
    page.goto(f"{base}/enrol")
    assert page.locator("#care-manager").input_value() == "Practitioner/pr-cm-1"


def test_result_and_writebacks_show_local_time_and_no_machinery(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    sandbox = demo_world.sandbox_app.extensions["sandbox"]["config"]
    base = _launch(page, demo_world, "pr-pcp-1", "pt-0007")
    sandbox.write_fault = "500"  # the EHR refuses writes: the pages must still speak words
    try:
        page.goto(f"{base}/screen/gad7")
        for number in range(1, 8):
            page.locator(f"#gad7-{number}-1").check()
        page.get_by_role("button", name="Score and save").click()
        page.locator("p.recorded").wait_for()
        recorded = page.locator("p.recorded time").inner_text()
        assert LOCAL_TIME.fullmatch(recorded), recorded
        assert screen_problems(page) == []
        page.goto(f"{base}/writebacks")
        row = page.locator("table.saved tbody tr", has_text="GAD-7")
        row.first.wait_for()
        assert LOCAL_TIME.search(row.first.inner_text())
        assert "HTTP" not in readable_text(page) and "500" not in readable_text(page)
        assert screen_problems(page) == []
    finally:
        sandbox.write_fault = None


@pytest.mark.parametrize(
    ("patient", "program"),
    [
        ("pt-0001", None),  # an adult
        ("pt-0002", None),  # a young child with caregivers
        ("pt-0004", None),  # an adult with serious mental illness
        # The demo enrols this one in general behavioral health integration (sandbox/caseload_seed.py): the
        # chart said "bhi-general".
        ("pt-0014", "General behavioral health integration"),
    ],
)
def test_the_chart_fits_the_frame(
    frame_page: Any, demo_world: Any, patient: str, program: str | None
) -> None:
    page = frame_page
    _launch(page, demo_world, "pr-pcp-1", patient)
    page.locator(".patient-name").first.wait_for()
    if program:
        assert program in page.locator("#registry-title").locator("xpath=..").inner_text()
    assert screen_problems(page) == []


def test_the_sandbox_launcher_fits_the_frame(frame_page: Any, demo_world: Any) -> None:
    frame_page.goto(f"{demo_world.sandbox_url}/")
    frame_page.locator("#practitioner").wait_for()
    assert overflow_px(frame_page) == 0  # it was 1,039 px wide: the patient picker's longest option
    assert screen_problems(frame_page) == []

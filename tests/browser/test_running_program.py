"""A care manager's and a psychiatric consultant's week in the seeded demo, in an EHR-sized frame (1024×700)."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROLE_REFERENCE = re.compile(r"\b(Practitioner|Patient|CarePlan|Task)/[A-Za-z0-9\-.]+")


def _worklist(page: Any, world: Any, practitioner: str) -> None:
    page.goto(f"{world.sandbox_url}/launch-app?mode=generic&practitioner={practitioner}&target=worklist")
    page.get_by_role("heading", name="Caseload worklist").wait_for()


def _visible_text(page: Any) -> str:
    return str(page.locator("main").inner_text())  # closed "details for IT" are not rendered


def test_the_worklist_fits_a_1024_by_700_frame_and_keeps_each_users_columns(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _worklist(page, demo_world, "pr-cm-1")
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() >= 5
    # Nothing scrolls sideways: not the page, not the table.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    assert page.evaluate("(() => { const f = document.querySelector('.table-frame'); "
                         "return f.scrollWidth <= f.clientWidth; })()")  # fmt: skip
    # The first rows are on screen without scrolling the page.
    assert page.locator("table.worklist tbody tr").first.bounding_box()["y"] < 700
    # The header stays put while the rows scroll.
    header = page.locator("table.worklist thead th").first
    before = header.bounding_box()["y"]
    page.locator(".table-frame").evaluate("frame => { frame.scrollTop = 300; }")
    assert abs(header.bounding_box()["y"] - before) < 2
    # Names, birth dates and MRNs; never a FHIR id.
    text = _visible_text(page)
    assert "DOB " in text and "MRN " in text
    assert not ROLE_REFERENCE.search(text) and "pt-00" not in text
    # Default order: the most urgent flag first.
    first_flags = rows.first.locator("td").first.inner_text()
    assert "Safety" in first_flags

    page.get_by_text("Columns and layout").click()
    page.get_by_label("Measure due", exact=True).uncheck()
    page.get_by_label("Care manager", exact=True).check()
    page.get_by_label("Position of Care manager").fill("2")
    page.get_by_role("button", name="Save layout").click()
    page.get_by_role("status").filter(has_text="Worklist columns saved").wait_for()
    headers = [h.inner_text() for h in page.locator("table.worklist thead th").all()]
    assert headers[1].startswith("Care manager") and not any(h.startswith("Measure due") for h in headers)
    # Another launch of the same user keeps the choice; another user has the defaults.
    _worklist(page, demo_world, "pr-cm-1")
    assert page.locator("table.worklist thead th").nth(1).inner_text().startswith("Care manager")
    _worklist(page, demo_world, "pr-cm-2")
    assert page.locator("table.worklist thead th").nth(1).inner_text().startswith("Flags")


def test_a_follow_up_phq9_recorded_from_the_worklist(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    _worklist(page, demo_world, "pr-cm-2")
    link = page.get_by_role("link", name=re.compile(r"^Record a follow-up PHQ-9 for ")).first
    name = link.get_attribute("aria-label").removeprefix("Record a follow-up PHQ-9 for ")
    link.click()
    page.get_by_role("heading", name="Patient Health Questionnaire (PHQ-9)").wait_for()
    assert name in page.locator(".patient-banner").inner_text()  # whom it is for, without patient context
    for number in range(1, 10):
        page.locator(f"#phq9-{number}-0").check()  # "Not at all"
    page.locator("#phq9-1-1").check()  # "Several days"
    page.get_by_role("button", name="Score and save").click()
    # Without the mode the form comes back with the answers kept and the question named.
    page.locator("#mode-error").wait_for()
    assert page.locator("#phq9-1-1").is_checked()
    page.get_by_label("By phone").check()
    page.get_by_role("button", name="Score and save").click()
    # Back on the patient's registry page, which says what was measured, how, and where it went (issue 28).
    said = page.locator(".flash").inner_text()
    assert said.startswith("PHQ-9 1 (") and ", by phone." in said, said
    page.get_by_role("navigation", name="Registry").get_by_role("link", name="Worklist").click()
    page.get_by_label("Name").fill(name.split()[0])
    page.get_by_role("button", name="Apply").click()
    row = page.locator("table.worklist tbody tr", has_text=name).first
    assert re.search(r"→ 1\b", row.inner_text()) and "Tandem" in row.inner_text()


def test_the_case_review_puts_safety_first_then_mania_flagged_not_improving_medical_then_new(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _worklist(page, demo_world, "pr-psy-1")
    page.get_by_role("link", name="Psychiatric case review").click()
    page.get_by_role("heading", name="Psychiatric case review").wait_for()
    groups = [h.inner_text().rsplit(" (", 1)[0] for h in page.locator("section.review-group > h2").all()]
    order = [
        "Safety",
        "Mania screen positive",
        "Flagged for review by the care manager",
        "Not improving",
        "Never reviewed: first review overdue",
        "Medical flags (for the consultant and the primary-care liaison)",
        "New to the caseload",
    ]
    assert groups and groups == [g for g in order if g in groups] and groups[0] == "Safety"
    assert page.locator("article.review-case").count() <= 10  # paged, never hundreds of sections
    assert page.locator(".review-case svg").count() >= 1  # the trend beside the case
    text = _visible_text(page)
    assert "Last review:" in text and not ROLE_REFERENCE.search(text)

    flagged = page.locator("section.review-group", has_text="Flagged for review").locator("article").first
    name = flagged.locator("h3 a").inner_text()
    flagged.get_by_role(
        "button", name="Record review and close"
    ).click()  # nothing written: stays on the form
    page.get_by_role("alert").filter(has_text="Write at least one recommendation").wait_for()
    flagged = page.locator("article.review-case", has_text=name)
    flagged.get_by_label("Recommendation 1", exact=True).select_option("dose-change")
    flagged.get_by_label("Details of recommendation 1 (medication, dose, therapy, to whom)").fill(
        "sertraline 100 mg"
    )
    flagged.get_by_label("Notes").fill("PHQ-9 in 2 weeks")
    flagged.get_by_role("button", name="Record review and close").click()
    page.get_by_role("status").filter(has_text="Review recorded").wait_for()
    assert "Change the dose: sertraline 100 mg" in page.get_by_role("status").inner_text()
    section = page.locator("section.review-group", has_text="Flagged for review")
    assert section.count() == 0 or name not in section.inner_text()

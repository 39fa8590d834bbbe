"""The worklist and the psychiatric case review in a real browser, from a launch without a patient."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _enrol(page: Any, world: Any, patient: str) -> None:
    page.goto(
        f"{world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-2&patient={patient}&target=chart"
    )
    page.get_by_role("link", name="Enrol in the registry").click()
    page.get_by_label("Collaborative Care — depression").check()
    page.get_by_label("The patient consented to Collaborative Care (including any cost sharing)").check()
    page.get_by_label("Verbal").check()
    page.get_by_role("button", name="Enrol").click()
    page.get_by_role("heading", name="Log a contact").wait_for()


def test_worklist_sorting_filtering_and_case_review(page: Any, world: Any) -> None:
    for patient in ("pt-0015", "pt-0016"):
        _enrol(page, world, patient)
    page.get_by_role("spinbutton", name="Minutes").fill("40")
    page.get_by_role("button", name="Log contact").click()
    page.get_by_role("heading", name="Log a contact").wait_for()

    page.goto(f"{world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-2&target=worklist")
    page.get_by_role("heading", name="Caseload worklist").wait_for()
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() >= 2
    page.get_by_role("link", name="Minutes this month").click()  # sort ascending, then descending
    page.get_by_role("link", name="Minutes this month ▲").click()
    first_row = page.locator("table.worklist tbody tr").first
    assert "40" in first_row.inner_text()
    page.get_by_label("Flag", exact=True).select_option("new")
    page.get_by_role("button", name="Apply").click()
    assert page.locator("table.worklist tbody tr").count() >= 2
    page.screenshot(path=str(_artifacts() / "worklist.png"), full_page=True)

    page.get_by_role("link", name="Psychiatric case review").first.click()
    page.get_by_role("heading", name="Psychiatric case review").wait_for()
    case = page.locator("article.review-case").first
    name = case.locator("h3 a").inner_text()
    case.get_by_label("Notes").fill("Continue; add CBT referral")
    case.get_by_role("button", name="Record review and close").click()
    page.get_by_role("heading", name="Psychiatric case review").wait_for()
    remaining = [h.inner_text() for h in page.locator("article.review-case h3 a").all()]
    assert name not in remaining
    page.screenshot(path=str(_artifacts() / "case-review.png"), full_page=True)


def _artifacts() -> Any:
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

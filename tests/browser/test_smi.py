"""A CMHC care manager's SMI caseload in the seeded demo, in an EHR-sized frame (1024×700): symptoms, body and
life on one row; the patient page with three trends and what is due; the social-status questions recorded; the
case review bringing a mania screen and medical flags to the consultant."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import pytest

pytestmark = pytest.mark.integration

FHIR_ID = re.compile(r"\b(Practitioner|Patient|CarePlan|Task|Observation|MedicationRequest)/[A-Za-z0-9\-.]+")


def _smi_worklist(page: Any, world: Any) -> None:
    page.goto(f"{world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-3&target=worklist")
    page.get_by_role("heading", name="Caseload worklist").wait_for()
    page.locator("#program").select_option("cocm-smi")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("columnheader", name="Body (EHR)").wait_for()


def test_the_whole_person_row(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    _smi_worklist(page, demo_world)
    headers = [h.replace("▲", "").strip() for h in page.locator("table.worklist thead th").all_inner_texts()]
    assert headers[:5] == [
        "Patient",
        "Flags",
        "Symptoms",
        "Body (EHR)",
        "Life",
    ]  # the program's default columns
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() == 5
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    # The mania episode sorts first (after safety) and says so; BP and HbA1c out of target; a job lost.
    first = rows.first.inner_text()
    assert "Dolores Whitaker" in first and "Mania screen positive" in first
    assert "ASRM 2→9" in first and "BP 148/95" in first and "A1c 8.6%" in first
    assert "looking for work, worse since enrolment" in first and "questions due" in first
    marcus = rows.filter(has_text="Marcus Reyes").inner_text()
    assert "WHO-5 32→56 ▲ better" in marcus and "BPRS 52→38 ▲ better" in marcus
    assert (
        "Wt +8%" in marcus
        and "Smoking current" in marcus
        and "working part time, better since enrolment" in marcus
    )
    terrence = rows.filter(has_text="Terrence Okafor").inner_text()
    assert (
        "No A1c/glucose 12 mo" in terrence
        and "Monitoring overdue" in terrence
        and "jail stay in the past year" in terrence
    )
    text = str(page.locator("main").inner_text())
    assert not FHIR_ID.search(text) and "smi-000" not in text
    # Sort by HbA1c (a column of its own) and filter the body column by what it shows.
    page.locator("summary", has_text="Columns and layout").click()
    page.get_by_label("HbA1c %", exact=True).check()
    page.get_by_role("button", name="Save layout").click()
    page.get_by_role("link", name="HbA1c %").click()
    page.get_by_role("link", name="HbA1c % ▲").click()  # descending: the highest first
    assert "Dolores Whitaker" in page.locator("table.worklist tbody tr").first.inner_text()
    csv = page.request.get(
        urljoin(page.url, page.get_by_role("link", name="Export CSV").get_attribute("href"))
    ).text()
    header = csv.splitlines()[0]
    assert "BP" in header and "Housing" in header and "Medical flags" in header
    assert (
        "HbA1c 8 % or more" in csv
        and "hba1c-out-of-target" not in csv
        and "Does not have housing" not in csv.splitlines()[1]
    )


def test_the_patient_page_and_the_social_questions(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    _smi_worklist(page, demo_world)
    page.get_by_role("link", name="Marcus Reyes", exact=True).click()
    page.get_by_role("heading", name="Symptoms, body and life").wait_for()
    for name in ("Symptoms", "Body (from the EHR", "Life"):
        page.get_by_role("heading", name=re.compile(re.escape(name))).first.wait_for()
    # Three trends with their targets: symptom bands, body lines with a dashed target, the life table by day.
    assert page.locator("#whole-person svg.trend").count() >= 3  # PHQ-9, WHO-5, BPRS
    weight = page.locator("#whole-person svg.measure").first
    assert "Weight" in weight.get_attribute("aria-label") and "Target below" in weight.get_attribute(
        "aria-label"
    )
    life = page.locator("table.life-table").inner_text()
    assert "Does not have housing" in life and life.count("Has housing") == 2  # lost and regained
    whole = page.locator("#whole-person").inner_text()
    assert "Weight up 5 % or more since the antipsychotic started" in whole and "olanzapine since" in whole
    # What is due leads the page's summary (issue 28); the later items fold under it.
    summary = page.locator("section.smi-summary")
    assert "Due now" in summary.inner_text()
    assert "Weight or BMI (antipsychotic monitoring)" in str(summary.text_content())
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024

    # A bad date is refused with the answers kept; then the questions are saved and show on the row.
    page.locator("summary", has_text="Record social status").click()  # folded under the three panels
    page.get_by_label("Asked on").fill("2999-01-01")
    page.locator("#social-connection").select_option("lt-1")
    page.evaluate("document.getElementById('social_day').removeAttribute('max')")
    page.get_by_role("button", name="Save social status").click()
    problem = page.locator("#social-problem")
    assert "cannot be in the future" in problem.inner_text()
    assert page.locator("#social-connection").input_value() == "lt-1"
    page.get_by_label("Asked on").fill(page.locator("#social_day").get_attribute("max"))
    page.get_by_role("button", name="Save social status").click()
    page.get_by_text("Social status saved: 1 answer").wait_for()
    _smi_worklist(page, demo_world)
    marcus = page.locator("table.worklist tbody tr").filter(has_text="Marcus Reyes").inner_text()
    assert "sees people less than weekly" in marcus and "Social" in marcus  # isolation raises the social flag


def test_case_review_brings_mania_and_medical_flags(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    page.goto(f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-psy-1&target=worklist")
    page.get_by_role("heading", name="Caseload worklist").wait_for()
    page.get_by_role("link", name="Psychiatric case review").click()
    page.get_by_role("heading", name="Psychiatric case review").wait_for()
    mania = page.locator("section.review-group").filter(
        has=page.get_by_role("heading", name=re.compile("Mania"))
    )
    assert "Dolores Whitaker" in mania.inner_text()
    dolores = page.locator("article.review-case").filter(has_text="Dolores Whitaker").inner_text()
    assert "ASRM 2 → 9" in dolores and "BP 148/95" in dolores and "HbA1c 8.6 %" in dolores
    assert "BP at or above 140/90" in dolores and "HbA1c 8 % or more" in dolores
    terrence = page.locator("article.review-case").filter(has_text="Terrence Okafor").inner_text()
    assert "On an antipsychotic, no glucose or HbA1c in 12 months" in terrence


def test_the_quality_page_has_the_smi_programs_figures(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    _smi_worklist(page, demo_world)
    page.get_by_role("link", name="Quality measures").click()
    page.get_by_role("heading", name="Serious mental illness program: body and life").wait_for()
    table = page.locator("section[aria-labelledby=smi-title] table").inner_text()
    # Of the five: Dolores' 148/95 is the one blood pressure above target; Terrence's glucose check is missing.
    assert "Latest blood pressure below target\t4\t5\t80.0%" in table
    assert "On an antipsychotic: glucose or HbA1c in the last 12 months\t3\t4\t75.0%" in table
    # The demo ran every measure over the EHR's population (Bulk Data export, DuckDB) as IT would.
    # Each measure's detail folds under the summary (issue 28): open CMS2's.
    cms2 = page.locator("details.measure").filter(has_text="CMS2: Screening for Depression")
    cms2.locator("> summary").click()
    assert "(eCQM)" in cms2.inner_text() and "Care gaps" in cms2.inner_text()
    assert re.search(r"\d+\.\d%", cms2.locator("> summary").inner_text())
    assert page.locator("details.measure").count() == 11
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024

"""A HealthySteps Specialist's day in the seeded demo, in an EHR-sized frame (1024×700): the program worklist,
a caregiver's EPDS at the 2-month visit with item 10 (the alert names the mother), a referral recorded and
closed, a family moved to Tier 2 on the suggestion the site's rule made, and the program report."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.integration

FHIR_ID = re.compile(r"\b(Practitioner|Patient|CarePlan|Task|RelatedPerson|Observation)/[A-Za-z0-9\-.]+")


def _hs_worklist(page: Any, world: Any) -> None:
    page.goto(f"{world.sandbox_url}/launch-app?mode=generic&practitioner=pr-hs-1&target=healthysteps")
    page.get_by_role("heading", name="HealthySteps worklist").wait_for()


def test_the_specialist_works_the_healthysteps_worklist(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    _hs_worklist(page, demo_world)
    rows = page.locator("table.hs-worklist tbody tr")
    assert rows.count() >= 5
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    first = rows.first.inner_text()
    assert "Noah Ferreira" in first and "Safety follow-up open" in first
    assert "Mother (Luisa Ferreira): EPDS 14 — positive" in first  # whose screen it is, always
    food = rows.filter(has_text="Leo Haddad").inner_text()
    assert "Tier 2" in food and "Food assistance" in food and "(open too long)" in food
    overdue = rows.filter(has_text="Eli Baptiste").inner_text()
    assert "Overdue: development" in overdue or "Overdue: autism" in overdue
    text = str(page.locator("main").inner_text())
    assert not FHIR_ID.search(text) and "hs-000" not in text
    # Filter to Tier 3: the family with the early-intervention referral received.
    page.get_by_label("Tier").select_option("3")
    page.get_by_role("button", name="Show").click()
    assert page.locator("table.hs-worklist tbody tr").filter(has_text="Ava Lindgren").count() == 1
    assert page.locator("table.hs-worklist tbody tr").filter(has_text="Leo Haddad").count() == 0

    page.get_by_role("link", name="Program report").click()
    page.get_by_role("heading", name="HealthySteps program report").wait_for()
    assert (
        page.locator("table.report-table svg.rate-svg").count() >= 4
    )  # a bar in each figure's row (issue 28)
    report = str(page.locator("main").inner_text())
    assert "Referrals closed (loop closed)" in report and "Tier 3 — comprehensive" in report


def test_a_caregiver_screen_at_the_two_month_visit_then_tier_and_referral(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    page.goto(
        f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-hs-1&patient=hs-0002&target=chart"
    )
    page.get_by_role("heading", name="HealthySteps", exact=True).wait_for()
    chart = str(page.locator("main").inner_text())
    # The 1-month caregiver screen was missed: one line, overdue, that today's screen closes.
    assert "Overdue: Caregiver depression screen (caregiver) of the 1 month visit was not done." in chart
    assert "Nothing is due today" not in chart
    page.get_by_role("link", name="EPDS with the Mother (Grace Okafor)").first.click()
    page.get_by_role("button", name="Score and save").wait_for()
    for number in range(1, 10):
        page.locator(f"#epds-{number}-1").check()
    page.locator("#epds-10-2").check()
    page.get_by_role("button", name="Score and save").click()
    alert = page.get_by_role("alert").filter(has_text="Safety alert")
    alert.wait_for()
    assert "Mother (Grace Okafor)" in alert.inner_text()
    page.get_by_role("button", name="I have seen this alert and will act on it today").click()

    # The Specialist opens the family from the worklist: the site's rule suggests Tier 2; she decides.
    _hs_worklist(page, demo_world)
    page.get_by_role("link", name="Maya Okafor").click()
    page.get_by_role("heading", name=re.compile("Tier: Tier 1")).wait_for()
    suggestion = page.get_by_role("status").filter(has_text="Suggested: Tier 2")
    assert "Positive or monitoring-zone screen" in suggestion.inner_text()
    page.get_by_label("Note").first.fill("Mother's EPDS at the 2-month visit")
    page.get_by_role("button", name="Move to Tier 2").click()
    page.get_by_role("heading", name=re.compile("Tier: Tier 2")).wait_for()
    history = page.locator("#tier table").inner_text()
    assert "Amara Diallo" in history and "1 screen" in history

    page.get_by_text("Record a referral").click()
    page.get_by_label("Service").select_option(label="Caregiver mental health")
    page.get_by_label("For", exact=True).select_option(label="A caregiver")
    page.get_by_label("Caregiver", exact=True).select_option(label="Mother (Grace Okafor)")
    page.get_by_label("Health concern").select_option("caregiver-depression")
    page.get_by_label("Organisation").fill("Perinatal mental health clinic")
    page.get_by_role("button", name="Record the referral").click()
    row = page.locator("#referrals tbody tr").filter(has_text="Caregiver mental health")
    row.wait_for()
    assert "Requested" in row.inner_text() and "Mother (Grace Okafor)" in row.inner_text()
    row.get_by_label("New status").select_option(label="Service received")
    row.get_by_label("Note").fill("First appointment kept")
    row.get_by_role("button", name="Save").click()
    closed = page.locator("#referrals tbody tr").filter(has_text="Caregiver mental health")
    closed.filter(has_text="Closed").wait_for()
    assert "Service received" in closed.inner_text() and "First appointment kept" in closed.inner_text()

    page.get_by_label("Kind").select_option("phone")
    page.get_by_label("Present").select_option("caregiver")
    page.get_by_label("Minutes").fill("15")
    page.get_by_role("button", name="Log contact").click()
    page.locator("#contacts").filter(has_text="Caregiver(s) 15").wait_for()
    assert "96161" in str(page.locator("#billing").inner_text())


def test_a_preterm_childs_corrected_age_on_the_chart_and_the_swyc_form(
    frame_page: Any, demo_world: Any
) -> None:
    """Leo was born at 31+2 weeks (the EHR's record under the site's code); SWYC reads his corrected age."""
    page = frame_page
    page.goto(
        f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-ped-1&patient=hs-0003&target=chart"
    )
    page.get_by_role("heading", name="Birth", exact=True).wait_for()
    birth = str(page.locator("section.birth").inner_text())
    match = re.search(r"Born at 31\+2 weeks \(from the EHR\)\. Corrected age (\d+) mo", birth)
    assert match, birth
    corrected = int(match.group(1))
    assert corrected < 9  # about 9 months old, born about 8½ weeks early
    page.goto(page.url.split("#")[0].rstrip("/") + "/screen/swyc-milestones")
    assert f"Use the form for {corrected} months" in str(page.locator("p.age-corrected").inner_text())
    # Ava's gestational age was recorded by the Specialist in Tandem: the chart says so, and it can be corrected.
    page.goto(
        f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-ped-1&patient=hs-0004&target=chart"
    )
    page.get_by_role("heading", name="Birth", exact=True).wait_for()
    assert "Born at 35 weeks (recorded in Tandem)" in str(page.locator("section.birth").inner_text())
    assert page.get_by_text("Correct the gestational age at birth").count() == 1

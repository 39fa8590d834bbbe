"""Issue 28, the program screens at an EHR's 1024×700 frame: the HealthySteps Specialist's worklist, program report
and infant chart; the SMI care manager's worklist and patient page; the quality lead's measures page. Each test
opens the seeded demo as that role (`tandem demo`) and checks what a person sees, with the shared screen checks
(fit, jargon, wrapped dates, serious axe-core violations) from tests/browser/screens.py."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.browser.screens import FRAME, jargon_in, screen_problems
from tests.browser.test_smi import _smi_worklist

pytestmark = pytest.mark.integration


def _launch(page: Any, world: Any, practitioner: str, target: str, patient: str | None = None) -> None:
    extra = f"&patient={patient}" if patient else ""
    page.goto(
        f"{world.sandbox_url}/launch-app?mode=generic&practitioner={practitioner}&target={target}{extra}"
    )


def _rows_fully_visible(page: Any, rows: str, frame: str) -> int:
    """Table rows whose whole box is on the first screen: inside the viewport and inside their scrolling frame."""
    return int(
        page.evaluate(
            """([rows, frame]) => {
            const box = document.querySelector(frame).getBoundingClientRect();
            const bottom = Math.min(window.innerHeight, box.bottom);
            return [...document.querySelectorAll(rows)].filter(r => {
                const b = r.getBoundingClientRect();
                return b.height > 0 && b.top >= box.top && b.bottom <= bottom + 0.5;
            }).length;
        }""",
            [rows, frame],
        )
    )


def _bar_widths(bars: Any) -> list[float]:
    """The rendered width of each bar's filled part (0 when CSS or the CSP keeps it from being drawn)."""
    return [float(w) for w in bars.evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")]


# --- HealthySteps Specialist ---------------------------------------------------------------------------------


def test_the_healthysteps_worklist_shows_eight_children_on_the_first_screen(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _launch(page, demo_world, "pr-hs-1", "healthysteps")
    page.get_by_role("heading", name="HealthySteps worklist").wait_for()
    assert page.locator("table.hs-worklist tbody tr").count() >= 8  # the demo seeds enough children
    # Issue 28: at least eight children per screen in the EHR's frame, without scrolling anything.
    assert _rows_fully_visible(page, "table.hs-worklist tbody tr", "main .table-frame") >= 8
    assert screen_problems(page) == []
    # Compact, not cut: each row still says whose result it is and which screens are overdue.
    noah = page.locator("table.hs-worklist tbody tr").filter(has_text="Noah Ferreira").inner_text()
    assert "Safety follow-up open" in noah and "Mother (Luisa Ferreira): EPDS 14 — positive" in noah


def test_the_program_report_names_its_period_and_draws_bars_in_their_rows(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _launch(page, demo_world, "pr-hs-1", "healthysteps")
    page.get_by_role("link", name="Program report").click()
    page.get_by_role("heading", name="HealthySteps program report").wait_for()
    assert screen_problems(page) == []
    # A summary on top: the headline figures inside the first screen, before the sections behind them.
    summary = page.locator("section.report-summary")
    box = summary.bounding_box()
    assert box["y"] + box["height"] <= 700
    assert "Required screens done in their visit window" in summary.inner_text()
    period = page.locator("p.report-period").inner_text()
    assert re.search(r"Period: from the first enrolment, \d{4}-\d{2}-\d{2}, to \d{4}-\d{2}-\d{2}", period), (
        period
    )
    # Each bar sits in its own figure's row: its vertical middle inside the row's box (not a chart beside the
    # table that drifts from it), and drawn (the CSP blocks style attributes, so it is inline SVG).
    misaligned = page.evaluate(
        """() => [...document.querySelectorAll('table.report-table tbody tr')].filter(tr => {
            const bar = tr.querySelector('svg.rate-svg');
            if (!bar) return false;
            const r = tr.getBoundingClientRect(), b = bar.getBoundingClientRect();
            const middle = (b.top + b.bottom) / 2;
            return !(middle > r.top && middle < r.bottom);
        }).length"""
    )
    assert misaligned == 0
    tiers = page.locator("table.report-table tbody tr").filter(has_text="Tier 1 — universal")
    assert "%" in tiers.inner_text() and _bar_widths(tiers.locator("rect.rate-fill"))[0] > 0
    # What Tandem cannot read is "not available", never a 0 % that reads as a result.
    visits = page.locator("table.report-table tbody tr").filter(has_text="well-child visits by 15 months")
    assert "not available" in visits.inner_text() and "0%" not in visits.inner_text()
    assert visits.locator("svg.rate-svg").count() == 0


def test_the_infant_chart_groups_caregiver_screens_by_caregiver_and_due_status(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _launch(page, demo_world, "pr-hs-1", "chart", patient="hs-0002")
    table = page.locator("table.caregiver-screens")
    table.wait_for()
    assert [h.strip() for h in table.locator("thead th").all_inner_texts()] == [
        "Caregiver", "Due now", "Done", "Not due yet"]  # fmt: skip
    mother = table.locator("tbody tr").filter(has_text="Mother (Grace Okafor)")
    due_now = mother.locator("td").nth(0)
    # What is due now comes as named groups ("Family needs: …"), each with its instruments' buttons.
    assert re.match(r"^[A-Z][^:\n]+:", due_now.inner_text()), due_now.inner_text()
    assert due_now.locator("a.button").count() >= 1 and due_now.locator("a.button").first.is_visible()
    # Every button in her row is hers: the screens are grouped by caregiver.
    names = mother.locator("a.button").evaluate_all("els => els.map(e => e.getAttribute('aria-label') || '')")
    assert names and all(n.endswith("with the Mother (Grace Okafor)") for n in names), names
    # Instruments not due are folded: the page offers them without a wall of buttons.
    not_due = mother.locator("td").nth(2).locator("details.not-due")
    assert not_due.locator("a.button").first.is_visible() is False
    # One button per instrument and caregiver in all: none repeated in the caregivers' section below.
    labels = page.locator("a.button[aria-label*='with the Mother (Grace Okafor)']").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label'))"
    )
    assert len(labels) == len(set(labels))
    assert screen_problems(page) == []


# --- SMI care manager ------------------------------------------------------------------------------------------


def test_the_smi_worklist_fits_the_frame_in_plain_words(frame_page: Any, demo_world: Any) -> None:
    page = frame_page
    _smi_worklist(page, demo_world)
    # Issue 28: the table was 1,034 px in a 998 px frame and clipped its Actions column.
    frame = page.evaluate(
        "(() => { const f = document.querySelector('main .table-frame'); return [f.scrollWidth, f.clientWidth]; })()"
    )
    assert frame[0] <= frame[1], frame
    actions = page.get_by_role("columnheader", name="Actions").bounding_box()
    assert actions["x"] + actions["width"] <= FRAME["width"]
    rows = page.locator("table.worklist tbody tr")
    terrence = rows.filter(has_text="Terrence Okafor").inner_text()
    # The Life column in plain words (fhir_mappings/data/smi/social.json), not "Jail: stay (lost)".
    assert "jail stay in the past year, worse since enrolment" in terrence and "Jail:" not in terrence
    assert "sees people less than weekly" in terrence
    assert "looking for work, worse since enrolment" in rows.filter(has_text="Dolores Whitaker").inner_text()
    assert jargon_in(str(page.locator("table.worklist").inner_text())) == []


def test_the_smi_patient_page_leads_with_a_summary_and_three_panels_in_one_screen(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _smi_worklist(page, demo_world)
    page.get_by_role("link", name="Marcus Reyes", exact=True).click()
    summary = page.locator("section.smi-summary")
    summary.wait_for()
    # A summary on top: symptoms, body, life and what is due, inside the first screen.
    box = summary.bounding_box()
    assert box["y"] + box["height"] <= FRAME["height"]
    glance = summary.inner_text()
    assert "WHO-5 32→56" in glance and "BP 130/84" in glance and "Due now" in glance
    # The three panels side by side, each trend a small multiple: together no taller than one screen.
    panels = page.locator("div.whole-person > section")
    assert panels.count() == 3
    tops = {round(panels.nth(i).bounding_box()["y"]) for i in range(3)}
    assert len(tops) == 1  # side by side, not stacked
    grid = page.locator("div.whole-person").bounding_box()
    assert grid["height"] + 40 <= FRAME["height"], grid  # with its heading, it fits the 700 px frame
    assert page.locator("#whole-person svg.trend").count() == 3  # PHQ-9, WHO-5, BPRS
    # Contacts paged: the five most recent, the older ones folded.
    assert page.locator("table.contacts").first.locator("tbody tr").count() == 5
    page.locator("#contact-history > summary").click()  # the history is folded; its older contacts fold again
    older = page.locator("details.older-contacts")
    assert older.count() == 1 and older.get_attribute("open") is None
    assert "Older contacts (6)" in older.locator("summary").inner_text()
    # Long sections fold: the social status form and the targets.
    assert page.locator("details#social-record").get_attribute("open") is None
    assert page.evaluate("document.documentElement.scrollHeight") < 2600  # was 3,362 px
    assert screen_problems(page) == []


# --- Quality lead ----------------------------------------------------------------------------------------------


def test_the_measures_page_leads_with_visible_rate_bars_and_readiness(
    frame_page: Any, demo_world: Any
) -> None:
    page = frame_page
    _launch(page, demo_world, "pr-cm-1", "worklist")
    page.get_by_role("link", name="Quality measures").first.click()
    page.get_by_role("heading", name=re.compile("Quality measures")).wait_for()
    summary = page.locator("#summary")
    # The summary comes first: the period, whether it is ready to report, each rate with a bar a person can see.
    assert "Measurement period:" in summary.inner_text()
    assert "Not ready to report" in summary.inner_text() or "Ready to report" in summary.inner_text()
    assert summary.is_visible() and summary.bounding_box()["y"] < 700
    rows = summary.locator("table.rates tbody tr")
    assert rows.count() >= 4
    first = rows.first.inner_text()
    rate = float(re.search(r"(\d+(?:\.\d)?)%", first).group(1))  # type: ignore[union-attr]
    assert rate > 0
    widths = _bar_widths(rows.first.locator("rect.rate-fill"))
    assert widths and widths[0] > 0  # drawn despite Tandem's own CSP (the old span bars were 0 px wide)
    # The per-measure detail folds: the page starts with the summary instead of ~7,000 px of tables.
    assert page.locator("details.measure").count() == rows.count()
    assert page.locator("details.measure[open]").count() == 0
    assert page.evaluate("document.documentElement.scrollHeight") < 3000
    # Engine names, timings and value-set lists only under "Details for IT".
    assert screen_problems(page) == []
    # The bars in a measure's trend by month are drawn too once it is opened.
    page.locator("details.measure summary").first.click()
    page.locator("details.measure-trend summary").first.click()
    assert max(_bar_widths(page.locator("details.measure-trend rect.rate-fill"))) > 0
    # The care-gap list a person opens carries names and MRNs, no EHR ids.
    href = (
        page.locator("details.measure")
        .first.get_by_role("link", name=re.compile("Care gaps"))
        .get_attribute("href")
    )
    csv = page.request.get(urljoin(page.url, href)).text()
    assert csv.splitlines()[0] == "Name,MRN"
    assert not re.search(r"\bpt-\d{4}\b|\bmp-|UTC", csv)

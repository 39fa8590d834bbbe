"""What every Tandem page a person reads must pass, as checks the browser tests share (issue 28):

- axe-core (vendored, current release) finds no critical or serious WCAG 2 A/AA violation;
- the page fits its viewport without sideways scrolling (an EHR's embedded activity is 1024×700);
- no FHIR ids, raw codes, UTC times, HTTP jargon or engine names in the text a person reads — only under
  "Details for IT" (`<details class="it-details">`);
- no date or time wraps in the middle (dates are `<time>` elements or `.nowrap`, one line each).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
#: An EHR's embedded activity (Epic's and Oracle Health's default frame for a SMART app) and a phone.
FRAME = {"width": 1024, "height": 700}
PHONE = {"width": 390, "height": 844}

#: Words and shapes that must not reach a person's screen or a CSV a person opens. Each is something a
#: clinician reported as noise or as leaking the machinery (issue 28, "Everywhere").
JARGON: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a FHIR id", re.compile(r"\((?:id|ids?:)\s[^)]*\)|\bpt-\d{4}\b|\btp-[0-9a-f]{12,}\b")),
    ("a UUID", re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")),
    ("a UTC time", re.compile(r"\bUTC\b|\bGMT\b|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|[+-]00:00\b")),
    ("HTTP jargon", re.compile(r"\bHTTP\b|\bstatus code\b|\bOperationOutcome\b")),
    (
        "a FHIR resource type",
        re.compile(
            r"\b(?:DocumentReference|QuestionnaireResponse|CarePlan|ServiceRequest|RelatedPerson|"
            r"PractitionerRole|MeasureReport|AuditEvent|CareTeam|EpisodeOfCare|MedicationRequest|"
            r"DiagnosticReport|CommunicationRequest)\b"
        ),
    ),
    (
        "a program or instrument key",
        re.compile(
            r"\b(?:bhi-general|cocm-depression|cocm-anxiety|cocm-smi|cocm-pediatric|healthysteps|"
            r"phq9|phq2|gad7|gad2|phq9a|cssrs|epds)\b"
        ),
    ),
    ("a LOINC code", re.compile(r"(?<![\d/.-])\d{4,5}-\d(?![\d/.-])")),
    ("an engine name", re.compile(r"\b(?:duckdb|DuckDB|pyspark|Ibis)\b")),
)


def axe_violations(
    page: Any, impacts: tuple[str, ...] = ("minor", "moderate", "serious", "critical")
) -> list[str]:
    """axe-core's WCAG 2 A/AA violations on the page (labels, contrast, names, landmarks), of the given impacts."""
    # Evaluated through the DevTools protocol: Tandem's CSP (no inline scripts) stays on while axe runs.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE + "\n;0")
    result = page.evaluate(
        """async (impacts) => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}});
        return r.violations.filter(v => impacts.includes(v.impact))
            .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '));
    }""",
        list(impacts),
    )
    return list(result)


def serious_axe_violations(page: Any) -> list[str]:
    """The violations the issue forbids on every page: critical or serious."""
    return axe_violations(page, ("serious", "critical"))


def overflow_px(page: Any) -> int:
    """How far the page scrolls sideways (0 when it fits its viewport)."""
    return int(page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"))


def clipped_elements(page: Any) -> list[str]:
    """Visible elements whose right edge lies beyond the viewport (a clipped Actions column, a wide form)."""
    return list(
        page.evaluate(
            """() => {
            const out = [];
            for (const el of document.querySelectorAll('main *')) {
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) continue;
                if (getComputedStyle(el).visibility === 'hidden') continue;
                if (el.closest('details:not([open])') && el.tagName !== 'SUMMARY') continue;
                if (r.right > window.innerWidth + 1) {
                    out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' right=' +
                             Math.round(r.right));
                }
            }
            return out.slice(0, 10);
        }"""
        )
    )


def readable_text(page: Any) -> str:
    """The text a person reads: everything rendered except what sits under "Details for IT"."""
    return str(
        page.evaluate(
            """() => {
            const clone = document.body.cloneNode(true);
            for (const el of clone.querySelectorAll('details.it-details, script, style, .sr-only-technical')) {
                el.remove();
            }
            return clone.innerText || clone.textContent || '';
        }"""
        )
    )


def jargon_in(text: str) -> list[str]:
    """Each forbidden shape found in the text, with what matched (for a failure message a person can act on)."""
    found = []
    for what, pattern in JARGON:
        for match in pattern.finditer(text):
            start = max(0, match.start() - 30)
            found.append(f"{what}: {match.group(0)!r} in …{text[start : match.end() + 30]!r}…")
    return found


def wrapped_dates(page: Any) -> list[str]:
    """Dates and times (`<time>` and `.nowrap`) that break over two lines."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('main time, main .nowrap')]
                .filter(el => el.getClientRects().length > 1 ||
                              (el.getClientRects().length === 1 &&
                               el.getBoundingClientRect().height > 1.8 * parseFloat(getComputedStyle(el).lineHeight || 20)))
                .map(el => el.textContent.trim()).slice(0, 10)"""
        )
    )


def screen_problems(page: Any, *, axe: bool = True) -> list[str]:
    """Everything `screens` checks, as one list of problems (empty when the page passes)."""
    problems = []
    over = overflow_px(page)
    if over:
        problems.append(f"scrolls sideways by {over} px: {clipped_elements(page)}")
    problems += [f"jargon — {p}" for p in jargon_in(readable_text(page))]
    problems += [f"date wraps: {d}" for d in wrapped_dates(page)]
    if axe:
        problems += [f"axe — {v}" for v in serious_axe_violations(page)]
    return problems

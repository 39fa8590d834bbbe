"""Every page each role reaches, walked in the seeded demo inside a 1024×700 EHR frame (issue 28, "Everywhere").

For each role the walk launches Tandem as that person, then follows the links on the pages it meets (one page per
route shape, two links deep), and checks each page with `screens.screen_problems`: it fits the frame without
sideways scrolling, no FHIR id, raw code, UTC time, HTTP jargon or engine name is on it outside "Details for IT",
no date wraps, and axe-core 4.14.1 finds no critical or serious violation. A screenshot of each page's first
screen is kept in test-artifacts/screens/ (the README lists them).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import ARTIFACTS
from .screens import FRAME, PHONE, jargon_in, screen_problems
from .test_self_report import _due_adult_enrolled

pytestmark = pytest.mark.integration

#: A path segment that is an id (a launch, a care plan, a record, a token), folded so one page per route is walked.
ID_SEGMENT = re.compile(r"^(?=.*\d)[A-Za-z0-9_\-.~]{6,}$|^[0-9a-f\-]{16,}$")
#: Links the walk does not follow: downloads, ending the session, and the EHR's own pages.
SKIP = re.compile(r"/end$|/ended$|/launch|/callback|#")
DOWNLOAD = re.compile(r"\.csv(\?|$)|[?&]format=csv")


def _shape(url: str) -> str:
    parts = urlsplit(url)
    segments = ["*" if ID_SEGMENT.match(s) else s for s in parts.path.split("/")]
    query = "?" + "&".join(sorted(k.split("=")[0] for k in parts.query.split("&"))) if parts.query else ""
    return "/".join(segments) + query


def _patient(world: Any, *, youngest: bool) -> str:
    """The demo's youngest child (the infant chart) or an adult born before 1990 (the adult chart)."""
    patients = [p for p in world.cohort.of_type("Patient") if p.get("birthDate")]
    born = sorted(patients, key=lambda p: p["birthDate"], reverse=youngest)
    if youngest:
        return str(born[0]["id"])
    return str(next(p["id"] for p in born if date.fromisoformat(p["birthDate"][:10]) < date(1990, 1, 1)))


ROLES = {
    # role: (practitioner, target, which patient for a chart or portal launch, screen)
    "primary care clinician (adult chart)": ("pr-pcp-1", "chart", "adult", FRAME),
    "pediatrician (infant chart)": ("pr-ped-1", "chart", "infant", FRAME),
    "care manager": ("pr-cm-1", "worklist", None, FRAME),
    "psychiatric consultant": ("pr-psy-1", "worklist", None, FRAME),
    "HealthySteps Specialist": ("pr-hs-1", "healthysteps", None, FRAME),
    "SMI care manager": ("pr-cm-3", "worklist", None, FRAME),
    "patient (portal, on a phone)": ("", "portal", "adult", PHONE),
}


def _walk(page: Any, start: str, base: str, role: str, limit: int = 14) -> dict[str, list[str]]:
    """Visit the start page and the app pages it links to (one per route shape, two deep): problems per page."""
    seen: set[str] = set()
    queue = [(start, 0)]
    found: dict[str, list[str]] = {}
    while queue and len(seen) < limit:
        url, depth = queue.pop(0)
        shape = _shape(url)
        if shape in seen:
            continue
        seen.add(shape)
        if DOWNLOAD.search(url):  # a CSV a person opens in a spreadsheet: the same words, no machinery
            found[shape] = [f"jargon — {p}" for p in jargon_in(page.request.get(url).text())]
            continue
        page.goto(url)
        page.wait_for_load_state("load")
        found[shape] = screen_problems(page)
        where = re.sub(r"[^a-z0-9]+", "-", shape.split("/app/*", 1)[-1].lower()).strip("-") or "home"
        name = re.sub(r"[^a-z0-9]+", "-", role.lower()).strip("-") + "--" + where
        (ARTIFACTS / "screens").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "screens" / f"{name}.png"))
        if depth >= 2:
            continue
        hrefs = page.eval_on_selector_all("main a[href]", "els => els.map(a => a.href)")
        for href in hrefs:
            if href.startswith(base) and not SKIP.search(href) and _shape(href) not in seen:
                queue.append((href, depth + 1))
    return found


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_a_role_reaches_fits_the_frame_and_reads_plainly(
    chromium: Any, demo_world: Any, role: str
) -> None:
    practitioner, target, which, screen = ROLES[role]
    context = chromium.new_context(viewport=screen)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        query = f"mode=generic&target={target}" + (f"&practitioner={practitioner}" if practitioner else "")
        if target == "portal":  # a patient with questionnaires due (the walk does not submit them)
            query += f"&patient={_due_adult_enrolled(demo_world, 4)}"
        elif which:
            query += f"&patient={_patient(demo_world, youngest=which == 'infant')}"
        page.goto(f"{demo_world.sandbox_url}/launch-app?{query}")
        page.wait_for_url(re.compile(r"/app/[^/]+/"))
        match = re.search(r"^(.*/app/[^/]+)/", page.url)
        assert match, page.url
        found = _walk(page, page.url, match.group(1), role)
    finally:
        context.close()
    assert len(found) >= 2, f"the walk reached only {list(found)}"
    problems = {shape: p for shape, p in found.items() if p}
    report = "\n".join(f"{shape}:\n  " + "\n  ".join(p) for shape, p in problems.items())
    assert not problems, (
        f"{role}: {len(problems)} of {len(found)} pages ({sorted(found)}) have problems:\n{report}"
    )


def test_form_fields_get_the_same_3px_focus_ring_as_links_and_buttons(
    frame_page: Any, demo_world: Any
) -> None:
    """Issue 28: a keyboard user sees where they are on every kind of control, the same ring everywhere."""
    page = frame_page
    page.goto(f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-1&target=worklist")
    page.get_by_role("heading", name="Caseload worklist").wait_for()
    page.locator("table.worklist tbody tr th a").first.click()  # the first patient's registry page
    page.locator("#contact-title").wait_for()
    rings = page.evaluate(
        """() => {
        const kinds = ['a[href]', 'button', 'input[type=number]', 'input[type=date]', 'select', 'textarea',
                       'input[type=checkbox]', 'summary'];
        const out = {};
        for (const kind of kinds) {
            const el = [...document.querySelectorAll('main ' + kind)].find(e => e.offsetParent !== null);
            if (!el) { out[kind] = 'none on the page'; continue; }
            el.focus();
            const s = getComputedStyle(el);
            out[kind] = document.activeElement === el ? s.outlineStyle + ' ' + s.outlineWidth : 'not focusable';
        }
        return out;
    }"""
    )
    assert rings == dict.fromkeys(rings, "solid 3px"), rings

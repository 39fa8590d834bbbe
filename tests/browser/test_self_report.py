"""What patients see, on a phone-sized screen in Debian's chromium: the portal's questionnaires, one question per
screen, the crisis page, and the questionnaire link; each page checked with axe-core (vendored, no CDN) and used
with the keyboard alone. The CDS cards beside the EHR's chart, and a click opening Tandem on the card's page."""

from __future__ import annotations

import re
from typing import Any

from .screens import axe_violations


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def _due_adult_enrolled(world: Any, nth: int) -> str:
    """The nth adult of the demo with no PHQ-9 in five weeks and no enrolment yet, enrolled now (a PHQ-9 is due)."""
    from datetime import date, timedelta

    from fhir_mappings.registry.resources import Enrolment, Member

    tandem = world.tandem_app.extensions["tandem"]
    iss = world.iss("generic")
    labels = world.sandbox_app.extensions["sandbox"]["config"].labels
    last: dict[str, str] = {}
    for o in world.cohort.of_type("Observation"):
        if {c.get("code") for c in o.get("code", {}).get("coding", [])} & {"44261-6", "89204-2"}:
            pid = o["subject"]["reference"].split("/")[-1]
            last[pid] = max(last.get(pid, ""), o["effectiveDateTime"][:10])
    cutoff = (date.today() - timedelta(days=35)).isoformat()
    adults = [p["id"] for p in world.cohort.of_type("Patient") if p["id"].startswith("pt-")
              and p["birthDate"] < "2000-01-01" and p["id"] not in labels and last.get(p["id"], "") < cutoff]  # fmt: skip
    pid = adults[nth]
    start = date.today() - timedelta(days=60)
    if not any(e.patient_id == pid and e.active for e in tandem.caseload.load(use_cache=False).enrolments):
        tandem.caseload.enrol(Enrolment(
            id=f"br-{pid}", iss=iss, patient_id=pid, patient_name=None, program="cocm-depression",
            phase="active-treatment", start=start, consent_given=True, consent_date=start, consent_method="verbal",
            team={"care-manager": Member("Practitioner/pr-cm-1", "Teresa Lindqvist")}))  # fmt: skip
    return pid


def test_a_patient_answers_on_a_phone_with_the_keyboard_and_sees_988(demo_world: Any, phone: Any) -> None:
    pid = _due_adult_enrolled(demo_world, 0)
    phone.goto(f"{demo_world.sandbox_url}/launch-app?mode=generic&target=portal&patient={pid}")
    phone.wait_for_url(re.compile(r"/app/[^/]+/me/$"))
    assert phone.get_by_role("heading", level=2, name="PHQ-9").is_visible()
    assert axe_violations(phone) == []
    assert no_horizontal_scroll(phone)
    # The buttons are large enough to touch (48 px and more).
    box = phone.get_by_role("link", name=re.compile("One question at a time")).first.bounding_box()
    assert box["height"] >= 48 and box["width"] >= 300
    phone.get_by_role("link", name=re.compile("One question at a time")).first.click()
    for step in range(10):
        phone.wait_for_selector("fieldset.question")
        assert phone.locator("fieldset.question").count() == 1
        if step == 0:
            assert axe_violations(phone) == []
        legend = phone.locator("fieldset.question legend").inner_text()
        radios = phone.get_by_role("radio")
        # Keyboard only: focus the first answer, move with the arrow keys, go on with Enter.
        radios.first.focus()
        phone.keyboard.press("Space")
        choice = 1 if "better off dead" in legend else 0
        for _ in range(choice):
            phone.keyboard.press("ArrowDown")
        assert radios.nth(choice).is_checked()
        with phone.expect_navigation():
            phone.keyboard.press("Enter")
        if "/me/done/" in phone.url:
            break
    assert "/me/done/" in phone.url
    alert = phone.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "988" in alert.inner_text()
    assert phone.get_by_role("link", name="Call 988").get_attribute("href") == "tel:988"
    assert axe_violations(phone) == []
    assert no_horizontal_scroll(phone)


def test_the_portal_pages_on_a_phone_pass_axe_with_errors_shown(demo_world: Any, phone: Any) -> None:
    pid = _due_adult_enrolled(demo_world, 1)
    phone.goto(f"{demo_world.sandbox_url}/launch-app?mode=generic&target=portal&patient={pid}")
    phone.wait_for_url(re.compile(r"/app/[^/]+/me/$"))
    phone.get_by_role("link", name=re.compile("Answer all questions on one page")).first.click()
    phone.get_by_role("button", name="Send my answers").click()  # nothing answered
    errors = phone.locator("#error-summary")  # the shared error summary, focused on load
    assert errors.is_visible() and "problems" in errors.inner_text()
    # focus.js moves the focus to the summary once the page has loaded (deferred): wait for it, do not race it.
    phone.wait_for_function("document.activeElement && document.activeElement.id === 'error-summary'")
    assert axe_violations(phone) == []
    # Every answer has an accessible name (its label), every question a group name (its legend).
    first = phone.get_by_role("group").first
    assert first.get_by_role("radio", name="Not at all").count() == 1


def test_a_questionnaire_link_on_a_phone(demo_world: Any, phone: Any) -> None:
    from datetime import date

    from fhir_mappings.common.identity import PatientKey
    from smartapp.selfreport.links import QuestionnaireLinks

    tandem = demo_world.tandem_app.extensions["tandem"]
    token, _ = QuestionnaireLinks(tandem.store, tandem.secret_key).create(
        PatientKey(demo_world.iss("generic"), "pt-0022"), "gad7", date(1990, 3, 4), None, 7)  # fmt: skip
    phone.goto(f"{demo_world.tandem_url}/r/{token}")
    assert axe_violations(phone) == []
    phone.get_by_label("Day").fill("4")
    phone.get_by_label("Month").fill("3")
    phone.get_by_label("Year").fill("1990")
    phone.get_by_role("button", name="Continue").click()
    phone.get_by_role("link", name="Answer all questions on one page").click()
    assert "GAD-7" in phone.content()
    for group in phone.get_by_role("group").all():
        group.get_by_role("radio").first.check()
    phone.get_by_role("button", name="Send my answers").click()
    assert phone.get_by_role("heading", name="Thank you").is_visible()
    assert axe_violations(phone) == []


def test_cds_cards_beside_the_chart_open_tandem_on_the_cards_page(demo_world: Any, page: Any) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(
        f"{demo_world.sandbox_url}/launch-app?mode=generic&practitioner=pr-pcp-1&target=chart&cds=1&patient=pt-0001"
    )
    cards = page.locator(".cds-card")
    assert cards.count() >= 1
    assert "CRITICAL" in cards.first.inner_text()  # the demo's item-9 patient: the safety card first
    frame = page.frame_locator("#tandem-frame")
    frame.locator("body").wait_for()
    page.locator(".cds-card").first.get_by_role("link").click()
    page.wait_for_timeout(500)
    tandem = next(f for f in page.frames if f.name == "tandem-frame")
    tandem.wait_for_url(re.compile(r"/app/[^/]+/safety"))
    assert "Safety follow-ups" in tandem.content() or "safety" in tandem.url

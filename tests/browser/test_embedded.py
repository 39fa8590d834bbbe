"""Tandem in a real browser: inside an EHR iframe on another site, side by side, and from the keyboard."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _chart_frame(page: Any, selector: str) -> Any:
    frame = page.frame_locator(selector)
    frame.locator(".patient-name").wait_for()
    return frame


def test_tandem_inside_an_iframe_on_another_site_with_third_party_cookies_blocked(
    page: Any, world: Any
) -> None:
    page.goto(f"{world.sandbox_url}/")
    page.select_option("#patient", "pt-0003")
    page.check("#embed")
    page.click("#launch-chart")
    frame = _chart_frame(page, "#tandem-frame")
    assert frame.locator(".patient-name").inner_text() == _name(world, "pt-0003")
    assert "Dana Whitfield" in frame.locator(".user").inner_text()
    cookies = page.context.cookies()
    tandem_cookie = next(c for c in cookies if c["name"] == "tandem_session")
    assert tandem_cookie["httpOnly"] and tandem_cookie["secure"] and tandem_cookie["sameSite"] == "None"
    assert tandem_cookie.get("partitionKey"), "the cookie must be partitioned under the EHR's site"
    tandem_frame = next(f for f in page.frames if f.url.startswith(world.tandem_url))
    # No token or launch secret is visible to scripts in the page.
    assert tandem_frame.evaluate("document.cookie") == ""
    # Third-party cookies really are blocked here: an unpartitioned cookie is refused, a partitioned one kept.
    kept = tandem_frame.evaluate(
        """() => {
            document.cookie = "probe_plain=1; SameSite=None; Secure; Path=/";
            document.cookie = "probe_partitioned=1; SameSite=None; Secure; Path=/; Partitioned";
            return document.cookie;
        }"""
    )
    assert "probe_partitioned=1" in kept and "probe_plain" not in kept


def test_two_launches_side_by_side_stay_isolated(page: Any, world: Any) -> None:
    page.goto(f"{world.sandbox_url}/side-by-side?mode=epic&a=pt-0001&b=pt-0002")
    frame_a = _chart_frame(page, "#frame-a")
    frame_b = _chart_frame(page, "#frame-b")
    assert frame_a.locator(".patient-name").inner_text() == _name(world, "pt-0001")
    assert frame_b.locator(".patient-name").inner_text() == _name(world, "pt-0002")
    # Reload the first chart after the second launch finished: still the first patient.
    frame_a_handle = page.locator("#frame-a").element_handle().content_frame()
    frame_a_handle.goto(frame_a_handle.url)
    assert _chart_frame(page, "#frame-a").locator(".patient-name").inner_text() == _name(world, "pt-0001")
    assert _chart_frame(page, "#frame-b").locator(".patient-name").inner_text() == _name(world, "pt-0002")


def test_launcher_and_first_page_work_from_the_keyboard(page: Any, world: Any) -> None:
    page.goto(f"{world.sandbox_url}/")
    page.uncheck("#cds")  # Tandem on its own page (the EHR's chart page with CDS cards is tested apart)
    page.locator("body").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "launch-chart":
            break
    else:
        pytest.fail("the chart-view button cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.tandem_url}/app/**")
    assert page.locator(".patient-name").is_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "End session":
            break
    else:
        pytest.fail("the End session button cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.tandem_url}/ended")
    assert "Your Tandem session has ended" in page.content()


def _name(world: Any, patient_id: str) -> str:
    import requests

    patient = requests.get(f"{world.ehr.base_url}/Patient/{patient_id}", timeout=10).json()
    name = patient["name"][0]
    return " ".join([*name["given"], name["family"]])

"""A clinician fills a PHQ-9 with a positive item 9 inside the EHR frame: the alert, the safety Task, the note."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from fhir_mappings.screening.resources import SUBMISSION_SYSTEM

pytestmark = pytest.mark.integration


def test_phq9_with_positive_item_9_in_the_embedded_chart(page: Any, world: Any, tandem: Any) -> None:
    page.goto(
        f"{world.sandbox_url}/launch-app?mode=epic&practitioner=pr-pcp-2&patient=pt-0010&target=chart&embed=1"
    )
    frame = page.frame_locator("#tandem-frame")
    frame.locator(".patient-name").wait_for()
    frame.get_by_role("link", name="PHQ-9", exact=True).click()
    frame.get_by_role("heading", name="Patient Health Questionnaire (PHQ-9)").wait_for()
    for number in range(1, 9):
        frame.locator(f"#phq9-{number}-1").check()  # "Several days"
    # Item 9 from the keyboard: focus its first answer, move to "More than half the days".
    frame.locator("#phq9-9-0").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert frame.locator("#phq9-9-2").is_checked()
    frame.get_by_role("button", name="Score and save").click()

    alert = frame.get_by_role("alert")
    alert.wait_for()
    assert "Safety alert" in alert.inner_text() and "More than half the days" in alert.inner_text()
    assert frame.locator(".total").inner_text() == "10"
    page.screenshot(path=str(_artifacts() / "phq9-safety-alert.png"), full_page=True)
    frame.get_by_role("button", name="I have seen this alert and will act on it today").click()
    frame.locator(".acknowledged").wait_for()

    record = next(
        r for r in tandem.screenings.for_patient(world.iss("epic"), "pt-0010") if r.instrument == "phq9"
    )
    assert record.acknowledged_by == "Practitioner/pr-pcp-2"
    tasks = tandem.registry.search_all("Task", {"identifier": f"{SUBMISSION_SYSTEM}|{record.id}#safety"})
    assert len(tasks) == 1 and tasks[0]["priority"] == "stat"
    notes = requests.get(
        f"{world.ehr.base_url}/DocumentReference", params={"patient": "pt-0010"}, timeout=10
    ).json()
    texts = [
        base64.b64decode(e["resource"]["content"][0]["attachment"]["data"]).decode() for e in notes["entry"]
    ]
    assert any("SAFETY ALERT" in t and "PHQ-9 10" in t for t in texts)


def _artifacts() -> Any:
    from .conftest import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

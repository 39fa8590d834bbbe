"""A PHQ-9 with more blanks than its published proration allows, whose answered items already settle a positive
screen (issue 26 §2): the result page shows the possible range and "decided with N unanswered", and the registry
keeps the verdict with its range — never a number a chart would plot."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fhir_mappings.screening.resources import SUBMISSION_SYSTEM
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url
from .test_screening_writeback import _form

pytestmark = pytest.mark.integration

# Items 1–4 "nearly every day" (3 each = 12), 5–7 blank (0–3 each), 8 and 9 "not at all": 12–21, positive at ≥ 10
# (clinical.md §1) whatever the blanks; 3 blanks is more than the 2 the PHQ-9 prorates.
ANSWERS = {f"phq9-{n}": "LA6571-9" for n in range(1, 5)} | {"phq9-8": "LA6568-5", "phq9-9": "LA6568-5"}


def test_a_phq9_settled_despite_blanks_is_reported_with_its_range(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient="pt-0021")))  # an adult
    hidden = _form(browser, world, launch_id, "phq9")
    answer = browser.post(f"{world.tandem_url}/app/{launch_id}/screen/phq9", data={**hidden, **ANSWERS},
                          allow_redirects=False)  # fmt: skip
    assert answer.status_code == 303
    page = browser.get(world.tandem_url + answer.headers["Location"]).text
    assert '<span class="total">12–21 (3 unanswered)</span>' in page
    assert "positive screen (positive at ≥10) — decided with 3 unanswered" in page
    assert "Safety alert" not in page
    assert re.search(r'<td>Tandem registry</td><td class="status-saved">saved', page)
    submission = hidden["submission_id"]
    [total] = tandem.registry.search_all(
        "Observation", {"identifier": f"{SUBMISSION_SYSTEM}|{submission}#total"}
    )
    assert "valueInteger" not in total
    assert total["valueCodeableConcept"]["text"] == "positive: total 12–21 (3 unanswered)"
    assert total["interpretation"][0]["coding"][0]["code"] == "positive"

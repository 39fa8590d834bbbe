"""What a care manager records from the worklist (a follow-up PHQ-9) and the consultant's review note reach the
sandbox EHR through the same record, planner and queue as chart screenings, with the worklist launch's user-level
create scopes (launch/scopes.py WRITE_SCOPES)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from fhir_mappings.screening.resources import SUBMISSION_SYSTEM
from sandbox.world import SandboxWorld

from ..forms import FORBIDDEN_ON_PAGES
from .conftest import Browser, launch_id_of, launch_url
from .test_caseload import enrol

pytestmark = pytest.mark.integration

FOLLOW_UP = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6568-5", "mode": "phone"}
FORBIDDEN = FORBIDDEN_ON_PAGES


def _ehr(world: SandboxWorld, resource_type: str, **params: str) -> list[dict[str, Any]]:
    bundle = requests.get(f"{world.ehr.base_url}/{resource_type}", params={**params, "_count": "200"},
                          timeout=10, headers={"Accept": "application/fhir+json"}).json()  # fmt: skip
    return [e["resource"] for e in bundle.get("entry", [])]


def _worklist(world: SandboxWorld, browser: Browser, mode: str) -> str:
    page = browser.follow(launch_url(world, mode, patient=None, target="worklist", practitioner="pr-cm-1"))
    return f"{world.tandem_url}/app/{launch_id_of(page)}"


@pytest.mark.parametrize(
    ("mode", "patient", "written"),
    [
        # Generic SMART server: structured results (the response, the total and item 9) with user/…c scopes.
        ("generic", "pt-0018", ("", "#total", "#item9")),
        # Oracle-like: a clinical note with user/DocumentReference.c (ehr-integration.md §1: notes only).
        ("oracle", "pt-0015", ("#note",)),
    ],
)
def test_a_follow_up_phq9_from_the_worklist_is_written_to_the_ehr_once(
    world: SandboxWorld, browser: Browser, tandem: Any, mode: str, patient: str, written: tuple[str, ...]
) -> None:
    _, careplan_id = enrol(world, browser, patient, mode=mode)
    base = _worklist(world, browser, mode)
    page = f"{base}/enrolments/{careplan_id}/measure/phq9"
    form, target = browser.form(page)
    answer = browser.post_from(page, target, {**form.hidden, **FOLLOW_UP})
    assert answer.status_code == 303, answer.text[-1500:]
    # Back on the patient's registry page, which says once, in words, where it went (issue 28).
    assert answer.headers["Location"].endswith(f"/enrolments/{careplan_id}")
    result = browser.get(world.tandem_url + answer.headers["Location"])
    said = re.findall(r'<p class="flash" role="status">([^<]*)</p>', result.text)
    as_what = "a clinical note" if written == ("#note",) else "a questionnaire with its score"
    assert (
        len(said) == 1
        and f"Saved to Tandem&#39;s registry; sent to the patient&#39;s chart as {as_what}." in said[0]
    ), said
    submission = form.hidden["submission_id"]
    for part in written:
        found = _ehr(world, "Observation" if part in ("#total", "#item9") else
                     "DocumentReference" if part == "#note" else "QuestionnaireResponse",
                     **({} if part == "" else {"identifier": f"{SUBMISSION_SYSTEM}|{submission}{part}"}))  # fmt: skip
        mine = [r for r in found if any(i.get("value") == f"{submission}{part}" for i in
                                        (r["identifier"] if isinstance(r["identifier"], list) else [r["identifier"]]))]  # fmt: skip
        assert len(mine) == 1, (part, len(mine))
        assert mine[0]["subject"]["reference"].endswith(f"Patient/{patient}")
    shown = result.text.split("Details for IT")[0]  # what a clinician reads, above the collapsed details
    assert not [word for word in FORBIDDEN if word in re.sub(r"<[^>]+>", " ", shown)]


def test_the_review_note_from_the_worklist_is_written_to_the_ehr(world: SandboxWorld, browser: Browser,
                                                                 tandem: Any) -> None:  # fmt: skip
    _, careplan_id = enrol(world, browser, "pt-0019", mode="oracle")
    base = _worklist(world, browser, "oracle")
    before = len(_ehr(world, "DocumentReference", patient="pt-0019"))
    closed = browser.submit(f"{base}/review", action=f"/review/{careplan_id}",
                            data={"recommendations": "Start sertraline 50 mg; PHQ-9 in 2 weeks"})  # fmt: skip
    assert closed.status_code == 303
    listing = browser.get(f"{world.tandem_url}{closed.headers['Location']}")
    assert "Written to the EHR as a consult note." in listing.text, listing.text[-2000:]
    notes = _ehr(world, "DocumentReference", patient="pt-0019")
    assert len(notes) == before + 1
    assert any(c.get("code") == "11488-4" for n in notes for c in n["type"]["coding"])
    # Posting the same review again (a double click) writes no second note.
    pending = [r for r in tandem.screenings.pending() if r.note is not None and r.patient_id == "pt-0019"]
    assert pending == []  # written and complete: nothing left on the write-backs page

"""A screening record keeps what its EHR note needs until the write (which may be the worker's, hours later): how a
self-reported screening came in, and whether the registration allowed a caregiver's item-level answers on the
child's chart when it was entered (issue 26 §3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_mappings.common.caregivers import Caregiver
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import Submission, note_text
from fhir_mappings.screening.scoring import parse_answers, score
from fhir_mappings.screening.writeback import NOTE, WritebackPlan
from smartapp.screening.service import ScreeningService

ITEM9_POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}


# (caregiver's screen, setting when entered, how it came in) → what the EHR copy of the stored record says.
@pytest.mark.parametrize(
    ("caregiver", "item_level", "via", "withheld", "line"),
    [
        (True, False, None, True, None),
        (True, True, None, False, None),
        (False, False, "portal", False, "Answered by the patient in the patient portal."),
        (False, False, "link", False, "Answered by the patient by questionnaire link."),
        (True, False, "portal", True, "Answered by the parent in the patient portal."),
    ],
)
def test_the_stored_record_writes_the_note_it_was_entered_for(
    redis_store: Any, caregiver: bool, item_level: bool, via: str | None, withheld: bool, line: str | None
) -> None:
    phq9 = INSTRUMENTS["phq9"]
    answers, _ = parse_answers(phq9, ITEM9_POSITIVE)
    submission = Submission("3" * 32, phq9, answers, score(phq9, answers), "kid-1", datetime.now(UTC),
                            "Patient/kid-1", iss="https://e", self_reported=via is not None, answered_via=via,
                            caregiver_item_level=item_level)  # fmt: skip
    mother = Caregiver(
        "rp-m", PatientKey("https://e", "kid-1"), None, "MTH", ehr_reference="RelatedPerson/m1"
    )
    if caregiver:
        submission = replace(submission, author="RelatedPerson/m1", focus=mother.reference,
                             focus_label=mother.label, ehr_focus=mother.ehr_reference)  # fmt: skip
    service = ScreeningService(redis_store, None)
    service.record(submission, iss="https://e", vendor="epic", sex=None, plan=WritebackPlan(NOTE, "note"),
                   caregiver=mother if caregiver else None)  # fmt: skip
    stored = service.load(submission.submission_id)
    assert stored is not None
    ehr_copy = stored.submission().for_ehr()
    assert ehr_copy.withhold_items is withheld
    text = note_text(ehr_copy)
    assert ("Answers:" not in text) is withheld
    assert (line is None and "Answered by" not in text) or (line is not None and line in text)
    if caregiver:
        assert "Mother" in text  # who was screened

"""What the EHR's chart receives from a screening (issue 26 §3): a caregiver's screen on the child's chart says who
was screened, the result and the plan, and by default no item-level answer (the caregiver's self-harm answer does
not belong on the infant's chart) — the registry keeps every answer for the care team; a registration setting may
allow item level. A screening a patient or parent answered themself says so, and how."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import (
    Submission,
    clinical_note,
    questionnaire_response,
    registry_transaction,
    screening_observations,
)
from fhir_mappings.screening.scoring import parse_answers, score

ISS = "https://ehr.example.org/fhir"
CHILD = PatientKey(ISS, "kid-1")
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
#: PHQ-9 with item 9 ("thoughts that you would be better off dead …") answered "More than half the days".
ITEM9_POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}
ITEM9_TEXT = INSTRUMENTS["phq9"].item("phq9-9").text  # type: ignore[union-attr]


def _submission(*, caregiver: bool, item_level: bool, picks: dict[str, str] = ITEM9_POSITIVE) -> Submission:
    instrument = INSTRUMENTS["phq9"]
    answers, problems = parse_answers(instrument, picks)
    assert not problems
    submission = Submission("c" * 32, instrument, answers, score(instrument, answers), CHILD.patient_id, NOW,
                            "Practitioner/pr-1", "enc-1", iss=ISS, caregiver_item_level=item_level)  # fmt: skip
    if caregiver:
        submission = replace(submission, focus="RelatedPerson/tandem-rp-m", focus_label="Mother (Ana Diaz)",
                             ehr_focus="RelatedPerson/m1")  # fmt: skip
    return submission


def _valid(resource: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return dict(json.loads(model.model_dump_json(exclude_none=True)))


def _note_of(submission: Submission) -> str:
    note = _valid(clinical_note(submission.for_ehr()))
    return base64.b64decode(note["content"][0]["attachment"]["data"]).decode()


# (caregiver's screen or the patient's own, the registration's caregiver_note_item_level) → whether the child's
# chart gets item-level answers. Source: issue 26 §3 ("by default the note says who was screened, the result and
# the plan — no item-level answers … A registration setting may allow item level"); the patient's own screen is
# unchanged (item level always).
@pytest.mark.parametrize(
    ("caregiver", "item_level", "items_on_chart"),
    [
        (True, False, False),  # the default: the caregiver's answers stay in the registry
        (True, True, True),  # the registration allows item level
        (False, False, True),  # the patient's own screen: its answers are the patient's
        (False, True, True),
    ],
)
def test_what_the_childs_chart_receives_from_a_caregivers_screen(
    caregiver: bool, item_level: bool, items_on_chart: bool
) -> None:
    submission = _submission(caregiver=caregiver, item_level=item_level)
    text = _note_of(submission)
    assert (ITEM9_TEXT in text) is items_on_chart
    assert ("Answers:" in text) is items_on_chart
    assert "SAFETY ALERT" in text.splitlines()[0]  # the alert itself always reaches the chart, first
    assert "Result: " in text
    if caregiver:
        assert "Caregiver's screen — Mother (Ana Diaz)" in text  # who was screened
    if not items_on_chart:
        assert "safety follow-up started" in text.splitlines()[0]
        assert "Plan: safety follow-up started" in text
        assert "kept in the Tandem registry for the care team" in text
    # Structured write-back to the child's chart: no Observation or QuestionnaireResponse item carries the answer.
    ehr = submission.for_ehr()
    qr = _valid(questionnaire_response(ehr))
    observations = [_valid(o) for o in screening_observations(ehr, "QuestionnaireResponse/q")]
    assert any(i["linkId"] == "phq9-9" for i in qr.get("item", [])) is items_on_chart
    assert any(o["id"].endswith("-item9") for o in observations) is items_on_chart
    assert any(ITEM9_TEXT in n["text"] for o in observations for n in o.get("note", [])) is items_on_chart
    # The registry keeps every answer for the care team, whatever the setting.
    bundle = registry_transaction(submission, NOW)
    registry_qr = next(e["resource"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "QuestionnaireResponse")  # fmt: skip
    assert any(i["linkId"] == "phq9-9" for i in registry_qr["item"])
    assert any(e["resource"]["id"].endswith("-item9") for e in bundle["entry"])


# The plan line of a caregiver's note, by result (issue 26 §3: "who was screened, the result and the plan").
@pytest.mark.parametrize(
    ("picks", "plan"),
    [
        (ITEM9_POSITIVE, "Plan: safety follow-up started"),
        ({f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6568-5"}, "Plan: positive screen"),
        ({f"phq9-{n}": "LA6568-5" for n in range(1, 10)}, "Plan: no follow-up needed"),  # 0
    ],
    ids=["safety", "positive", "negative"],
)
def test_a_caregivers_note_says_the_plan(picks: dict[str, str], plan: str) -> None:
    text = _note_of(_submission(caregiver=True, item_level=False, picks=picks))
    assert plan in text
    assert "Answers:" not in text


# Who answered a self-reported screening, and how (issue 26 §3: "The EHR note of a screening a patient answered
# themself says that the patient answered it").
@pytest.mark.parametrize(
    ("author", "caregiver", "via", "line"),
    [
        ("Patient/kid-1", False, "portal", "Answered by the patient in the patient portal."),
        ("Patient/kid-1", False, "link", "Answered by the patient by questionnaire link."),
        ("RelatedPerson/m1", True, "portal", "Answered by the parent in the patient portal."),
        (None, False, None, None),  # entered by the clinician: no such line
    ],
)
def test_a_self_reported_screening_says_who_answered_it(
    author: str | None, caregiver: bool, via: str | None, line: str | None
) -> None:
    submission = replace(_submission(caregiver=caregiver, item_level=False), author=author,
                         self_reported=via is not None, answered_via=via)  # fmt: skip
    text = _note_of(submission)
    observations = screening_observations(submission.for_ehr(), None)
    notes = [n["text"] for n in observations[0].get("note", [])]
    if line is None:
        assert "Answered by" not in text and not any("Answered by" in n for n in notes)
    else:
        assert line in text
        assert line in notes

"""Structured case review recommendations: the form, the Task outputs, the consult note."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.common.validation import r4_errors
from fhir_mappings.registry.recommendations import (
    Recommendation,
    Review,
    consult_note,
    review_from_form,
    review_from_outputs,
    review_outputs,
)


@pytest.mark.parametrize(
    ("kinds", "details", "text", "items", "problems"),
    [
        (["dose-change"], ["sertraline 100 mg"], "", [("dose-change", "sertraline 100 mg")], 0),
        (["", "therapy"], ["", "CBT weekly"], "PHQ-9 in 2 weeks", [("therapy", "CBT weekly")], 0),
        (["", ""], ["", ""], "Continue as is", [], 0),
        (["", ""], ["", ""], "", [], 1),  # nothing recommended
        (["dose-change"], [""], "", [], 1),  # a dose change must say what
        ([""], ["refer to DBT"], "", [], 1),  # a detail without a kind
        (["made-up"], ["x"], "", [], 1),
        (["continue"], [""], "", [("continue", "")], 0),
    ],
)
def test_the_review_form(kinds: list[str], details: list[str], text: str, items: list[tuple[str, str]],
                         problems: int) -> None:  # fmt: skip
    review, found = review_from_form(kinds, details, text)
    assert [(i.kind, i.detail) for i in review.items] == items
    assert len(found) == problems


# Issue 26 §1 "Silent truncation": never cut what a person wrote; refuse with the limit named where one is needed.
@pytest.mark.parametrize(
    ("kinds", "details", "text", "problem"),
    [
        (["therapy"], ["CBT weekly, " * 100], "", None),  # a 1,200-character detail is kept whole
        (["continue"], [""], "Plan: " + "x" * 5000, None),  # a 5,006-character note is kept whole
        (["continue"] * 6, [""] * 6, "", "at most 5"),  # more rows than the limit: refused, the limit named
    ],
)
def test_the_review_form_keeps_everything_written(kinds: list[str], details: list[str], text: str,
                                                 problem: str | None) -> None:  # fmt: skip
    review, found = review_from_form(kinds, details, text)
    if problem is None:
        assert found == [] and [i.detail for i in review.items] == [d.strip() for d in details]
        assert review.text == text.strip()
    else:
        assert len(found) == 1 and problem in found[0]


def test_outputs_round_trip_and_read_as_a_summary() -> None:
    review = Review(
        (Recommendation("dose-change", "sertraline 100 mg"), Recommendation("continue", "")), "PHQ-9 soon"
    )
    outputs = review_outputs(review)
    assert outputs[0] == {"type": {"text": "recommendations"},
                          "valueString": "Change the dose: sertraline 100 mg; Continue the current treatment; PHQ-9 soon"}  # fmt: skip
    assert review_from_outputs(outputs) == review
    assert review_from_outputs([{"type": {"text": "recommendations"}, "valueString": "free text"}]) is None
    assert review_from_outputs("nonsense") is None


def test_the_consult_note_is_valid_r4_and_says_what_was_recommended() -> None:
    review = Review((Recommendation("medication-start", "sertraline 50 mg daily"),), "Follow up in 4 weeks")
    note = consult_note(review, patient_id="pt-1", task_id="case-review-1", reviewed=datetime(2026, 11, 24, tzinfo=UTC),
                        reviewer="Practitioner/psy-1", reviewer_name="Irene Castellanos", program_title="CoCM",
                        scores={"PHQ-9": "baseline 18, latest 15"})  # fmt: skip
    assert r4_errors(note) == []
    model = get_fhir_model_class("DocumentReference").model_validate(note)
    assert json.loads(model.model_dump_json(exclude_none=True))["type"]["coding"][0]["code"] == "11488-4"
    body = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    assert "Start a medication: sertraline 50 mg daily" in body and "Irene Castellanos" in body
    assert "PHQ-9: baseline 18, latest 15" in body
    again = consult_note(review, patient_id="pt-1", task_id="case-review-1", reviewed=datetime.now(UTC), reviewer=None,
                         reviewer_name=None, program_title="CoCM", scores={})  # fmt: skip
    assert (
        again["identifier"] == note["identifier"]
    )  # one review, one note identifier (a retry is recognisable)

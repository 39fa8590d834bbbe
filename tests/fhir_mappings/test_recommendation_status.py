"""What became of each psychiatric case review recommendation (issue 28): a status the care manager or the PCP
marks (not yet, accepted, started, declined), kept on the review Task's output with who and when."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_mappings.common.validation import r4_errors
from fhir_mappings.registry.recommendations import Recommendation, Review, review_record, with_status
from fhir_mappings.registry.resources import Enrolment, Member, completed_review, work_task

ISS = "https://ehr.example.org/fhir"
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
CM = Member("Practitioner/cm-1", "Teresa Lindqvist")
PSY = Member("Practitioner/psy-1", "Irene Castellanos")


def _review_task() -> dict:
    enrolment = Enrolment(id="cp-1", iss=ISS, patient_id="p1", patient_name="Ana Rivera",
                          program="cocm-depression", phase="active-treatment", start=datetime(2026, 8, 3).date(),
                          team={"care-manager": CM}, consent_given=True)  # fmt: skip
    task = work_task("case-review", "t-1", enrolment, NOW)
    review = Review((Recommendation("dose-change", "sertraline 50 mg to 100 mg"),
                     Recommendation("therapy", "behavioral activation")), "PHQ-9 in 4 weeks")  # fmt: skip
    return {**completed_review(task, review, NOW, PSY), "id": "t-1"}


def test_a_new_review_has_every_recommendation_not_yet_marked() -> None:
    record = review_record(_review_task())
    assert record is not None and record.reviewer == "Irene Castellanos" and record.completed_at == NOW
    assert [(i.status, i.status_label, i.status_by) for i in record.review.items] == [
        ("not-yet", "Not yet", None),
        ("not-yet", "Not yet", None),
    ]


@pytest.mark.parametrize("status", ["accepted", "started", "declined", "not-yet"])
def test_a_mark_is_kept_with_who_and_when_and_is_valid_r4(status: str) -> None:
    marked = with_status(_review_task(), 1, status, by_reference=CM.reference, by_name=CM.display, at=NOW)
    assert marked is not None and r4_errors(marked) == []
    record = review_record(marked)
    assert record is not None
    first, second = record.review.items
    assert first.status == "not-yet"  # only the one marked
    assert (second.status, second.status_by, second.status_at) == (status, "Teresa Lindqvist", NOW)
    assert record.review.text == "PHQ-9 in 4 weeks"  # the notes and the summary stay
    again = with_status(marked, 1, "declined", by_reference=CM.reference, by_name=None, at=NOW)
    assert again is not None and review_record(again).review.items[1].status == "declined"  # type: ignore[union-attr]
    assert len(again["output"][2]["extension"]) == 1  # replaced, not piled up


@pytest.mark.parametrize(("index", "status"), [(2, "accepted"), (-1, "accepted"), (0, "done"), (0, "")])
def test_no_such_recommendation_or_status_marks_nothing(index: int, status: str) -> None:
    assert with_status(_review_task(), index, status, by_reference=None, by_name=None, at=NOW) is None


def test_an_unknown_status_on_the_task_reads_as_not_yet() -> None:
    task = _review_task()
    task["output"][1]["extension"] = [{"url": "https://tandem.health/fhir/StructureDefinition/recommendation-status",
                                       "extension": [{"url": "status", "valueCode": "whatever"}]}]  # fmt: skip
    record = review_record(task)
    assert record is not None and record.review.items[0].status == "not-yet"


@pytest.mark.parametrize(
    "resource", [{}, {"resourceType": "Task", "id": "x", "status": "requested"}, "x", None]
)
def test_anything_else_is_no_record(resource: object) -> None:
    assert review_record(resource) is None

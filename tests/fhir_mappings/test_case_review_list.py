"""The psychiatric case review's list (issue 28): when a reviewed case leaves "to review", and why each case is on
the list in words, the safety reason first. The interval is data (fhir_mappings/data/review/case_review.json)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.case_review import (
    RULES,
    ReviewRules,
    load_rules,
    reasons,
    safety_reason,
    to_review,
)
from fhir_mappings.registry.resources import Enrolment, Member, WorkTask
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.screening.history import ScorePoint

ISS = "https://ehr.example.org/fhir"
TODAY = date(2026, 12, 7)
RULE = ReviewRules(reviewed_recently_days=14)
MORNING = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("flags", "last_review", "safety_raised", "reviewed_at", "expected"),
    [
        # Never reviewed: on the list whenever a review group's flag stands (worklist.REVIEW_GROUPS).
        (("new",), None, None, None, True),
        (("not-improving",), None, None, None, True),
        # No review group at all (no contact for a while is the care manager's, not the consultant's).
        (("no-contact",), None, None, None, False),
        # Reviewed today: a case not improving leaves "to review" (issue 28: recording a review removes the case) ...
        (("not-improving",), TODAY, None, None, False),
        (("medical",), TODAY - timedelta(days=13), None, None, False),
        # ... and comes back once the review is reviewed_recently_days old (Tandem's data, not a reference rule).
        (("not-improving",), TODAY - timedelta(days=14), None, None, True),
        # The care manager asked again after the review (a review clears the request): back at once.
        (("review",), TODAY, None, None, True),
        # Safety (clinical.md §1: a positive item 9 must never be lost): an alert raised after the review ...
        (("safety",), TODAY - timedelta(days=3), MORNING, None, True),
        # ... or not yet dated (not yet in the registry) keeps the case on the list;
        (("safety",), TODAY, None, None, True),
        # one raised before the review's day was seen by that review.
        (("safety",), TODAY, MORNING - timedelta(days=2), None, False),
        # The same day: the instants decide when both are known ...
        (("safety",), TODAY, MORNING, NOON, False),
        (("safety",), TODAY, NOON, MORNING, True),
        # ... and without the review's instant, an alert of the review's own day counts as after it.
        (("safety",), TODAY, MORNING, None, True),
    ],
)
def test_a_reviewed_case_leaves_to_review_until_a_new_reason_arises(
    flags: tuple[str, ...], last_review: date | None, safety_raised: datetime | None,
    reviewed_at: datetime | None, expected: bool,
) -> None:  # fmt: skip
    assert to_review(flags, last_review, TODAY, safety_raised=safety_raised, reviewed_at=reviewed_at,
                     rules=RULE) is expected  # fmt: skip


def test_the_interval_is_data_with_its_source_named() -> None:
    assert load_rules() == RULES and RULES.reviewed_recently_days > 0


def _task(kind: str, description: str, authored: date, status: str = "requested") -> WorkTask:
    return WorkTask(f"t-{kind}", kind, status, "p1", "cp-1" if kind != "safety-follow-up" else None, None,
                    authored, description=description, iss=ISS,
                    authored_at=datetime(authored.year, authored.month, authored.day, 14, tzinfo=UTC)
                    if kind == "safety-follow-up" else None)  # fmt: skip


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        # Tandem's own safety Task (screening/resources.py safety_task): instrument and question number.
        (
            "Safety alert from PHQ-9: PHQ-9 question 9 (self-harm) scored 2 of 3. Assess suicide risk today and "
            "arrange same-day follow-up.",
            "PHQ-9 question 9 (self-harm) positive",
        ),
        (
            "Safety alert from EPDS: Mother: EPDS question 10 (self-harm) scored 1 of 3.",
            "EPDS question 10 (self-harm) positive",
        ),
        # Another writer's wording: its lead clause.
        (
            "PHQ-9 item 9 positive at the last visit: same-day follow-up",
            "PHQ-9 item 9 positive at the last visit",
        ),
        ("", "Safety alert"),
    ],
)
def test_the_safety_reason_in_words_with_its_day(description: str, expected: str) -> None:
    reason = safety_reason([_task("safety-follow-up", description, date(2026, 12, 3))])
    assert reason is not None and reason.text == expected and reason.day == date(2026, 12, 3)


def test_a_closed_safety_follow_up_is_no_reason() -> None:
    assert (
        safety_reason([_task("safety-follow-up", "Safety alert from PHQ-9: x", TODAY, "completed")]) is None
    )


def _enrolment(start: date, flagged: bool = False) -> Enrolment:
    return Enrolment(id="cp-1", iss=ISS, patient_id="p1", patient_name="Ana Rivera", program="cocm-depression",
                     phase="active-treatment", start=start, team={"care-manager": Member("Practitioner/cm-1", "T L")},
                     consent_given=True, flagged_for_review=flagged)  # fmt: skip


def _phq(*scores: tuple[date, int]) -> list[ScorePoint]:
    return [
        ScorePoint("PHQ-9", datetime(d.year, d.month, d.day, tzinfo=UTC), s, "EHR", "44261-6")
        for d, s in scores
    ]


def test_each_reason_in_words_safety_first() -> None:
    start = TODAY - timedelta(weeks=12)
    tasks = [_task("safety-follow-up", "Safety alert from PHQ-9: PHQ-9 question 9 (self-harm) scored 1 of 3.",
                   date(2026, 12, 3)),
             _task("case-review", "Discuss: side effects", date(2026, 12, 1))]  # fmt: skip
    key = PatientKey(ISS, "p1")
    rows = build_rows(
        [_enrolment(start, flagged=True)], [], tasks, {key: _phq((start, 16), (TODAY, 15))}, TODAY
    )
    found = reasons(rows[0], TODAY)
    # cocm-depression.json: never reviewed 12 weeks after enrolment is past the first review's 4 weeks.
    assert [r.key for r in found] == ["safety", "review", "not-improving", "first-review-overdue"]
    assert (found[0].text, found[0].day) == ("PHQ-9 question 9 (self-harm) positive", date(2026, 12, 3))
    assert (found[1].text, found[1].day) == ("Requested by the care manager", date(2026, 12, 1))
    # cocm-depression.json: not improving after 10 weeks without a 50 % drop.
    assert found[2].text == "Not improving after 12 weeks: PHQ-9 16 → 15 (-6 %); the target is a 50 % drop"
    assert (found[3].day, found[3].day_word) == (start, "enrolled")
    assert found[3].text == "Never reviewed: the first review is overdue (due within 4 weeks of enrolment);"


def test_a_safety_alert_not_yet_in_the_registry_is_said_so() -> None:
    rows = build_rows([_enrolment(TODAY - timedelta(weeks=2))], [], [], {}, TODAY,
                      safety_pending=[PatientKey(ISS, "p1")])  # fmt: skip
    found = reasons(rows[0], TODAY, safety_pending=True)
    assert found[0].key == "safety" and "not yet in the registry" in found[0].text


def test_a_positive_mania_screen_names_its_instrument_score_and_day() -> None:
    # cocm-smi.json: the mania screen is the ASRM series (positive at 6 or more: its scoring file).
    start = TODAY - timedelta(weeks=20)
    enrolment = Enrolment(id="cp-1", iss=ISS, patient_id="p1", patient_name="Ana Rivera", program="cocm-smi",
                          phase="active-treatment", start=start, team={}, consent_given=True)  # fmt: skip
    points = [*_phq((start, 11), (TODAY, 4)),
              ScorePoint("ASRM", datetime(2026, 12, 3, tzinfo=UTC), 9, "Tandem", "asrm"),
              ScorePoint("WHO-5", datetime(2026, 12, 3, tzinfo=UTC), 20, "Tandem", "who5")]  # fmt: skip
    rows = build_rows([enrolment], [], [], {PatientKey(ISS, "p1"): points}, TODAY)
    mania = next(r for r in reasons(rows[0], TODAY) if r.key == "mania")
    assert (mania.text, mania.day) == ("ASRM mania screen positive (9)", date(2026, 12, 3))

"""Flags that single patients out (issue 28: "New (never reviewed)" stood on 17 of 18 demo rows): a patient never
reviewed is new to the caseload only until the first case review is due (the program's `first_review`, data:
clinical.md §3 [C] "case review puts first the patients … new to the caseload"; the number of weeks is a site
setting, not confirmed), then the first review is overdue; programs without case review: new until the first
follow-up contact is due (clinical.md §2 [C]: first follow-up within 4 weeks)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from fhir_mappings.registry.programs import ProgramError, _program, program_or_default
from fhir_mappings.registry.resources import Enrolment, Member, WorkTask
from fhir_mappings.registry.worklist import FLAG_LABELS, REVIEW_GROUPS, build_rows, review_group

ISS = "https://ehr.example.org/fhir"
TODAY = date(2026, 11, 22)
CM = Member("Practitioner/cm-1", "Teresa Lindqvist")
PSY = Member("Practitioner/psy-1", "Irene Castellanos")
PROGRAMS = Path(__file__).resolve().parents[2] / "fhir_mappings" / "data" / "programs"


def _enrolment(program: str, days_ago: int) -> Enrolment:
    start = TODAY - timedelta(days=days_ago)
    team = {"care-manager": CM} | ({"psychiatric-consultant": PSY} if program != "bhi-general" else {})
    return Enrolment(id="cp-1", iss=ISS, patient_id="p1", patient_name="Ana Rivera", program=program,
                     phase="active-treatment", start=start, team=team, consent_given=True, consent_date=start,
                     consent_method="verbal")  # fmt: skip


def _review(reviewed_days_ago: int) -> WorkTask:
    day = TODAY - timedelta(days=reviewed_days_ago)
    return WorkTask("r-1", "case-review", "completed", "p1", "cp-1", day, day, completed=day,
                    recommendations="Continue", iss=ISS)  # fmt: skip


@pytest.mark.parametrize(("program", "enrolled_days_ago", "reviewed_days_ago", "new", "overdue"), [
    # CoCM (first_review.within_weeks 4 in the program files: clinical.md §3 [C]; the weeks a site setting)
    ("cocm-depression", 3, None, True, False),  # enrolled this week, never reviewed: new
    ("cocm-depression", 27, None, True, False),  # the last day before the first review is due
    ("cocm-depression", 28, None, False, True),  # the first review is due and not done: overdue, not "new"
    ("cocm-depression", 120, None, False, True),
    ("cocm-depression", 10, 2, False, False),  # reviewed: neither, however recent the enrolment
    ("cocm-depression", 120, 30, False, False),
    ("cocm-anxiety", 40, None, False, True),
    ("cocm-smi", 20, None, True, False),
    ("cocm-smi", 35, None, False, True),
    # General BHI has no case review: new until its first follow-up contact is due (clinical.md §2 [C]: 4 weeks)
    ("bhi-general", 27, None, True, False),
    ("bhi-general", 28, None, False, False),
])  # fmt: skip
def test_new_lasts_until_the_first_review_is_due(program: str, enrolled_days_ago: int,
                                                 reviewed_days_ago: int | None, new: bool, overdue: bool) -> None:  # fmt: skip
    tasks = [_review(reviewed_days_ago)] if reviewed_days_ago is not None else []
    (row,) = build_rows([_enrolment(program, enrolled_days_ago)], [], tasks, {}, TODAY)
    assert ("new" in row.flags, "first-review-overdue" in row.flags) == (new, overdue)


def test_a_never_reviewed_patient_stays_on_the_case_review_list() -> None:
    # A patient past the first review's day is never dropped from case review (clinical.md §3 [C]).
    (row,) = build_rows([_enrolment("cocm-depression", 60)], [], [], {}, TODAY)
    assert review_group(row) == "first-review-overdue"
    assert FLAG_LABELS["first-review-overdue"] == "First review overdue"
    groups = [key for key, _ in REVIEW_GROUPS]
    assert groups.index("first-review-overdue") < groups.index("new")


@pytest.mark.parametrize(("key", "weeks"), [("cocm-depression", 4), ("cocm-anxiety", 4), ("cocm-smi", 4),
                                            ("bhi-general", None)])  # fmt: skip
def test_the_first_review_is_program_data(key: str, weeks: int | None) -> None:
    assert program_or_default(key).first_review_weeks == weeks


@pytest.mark.parametrize("first_review", [{"within_weeks": 0}, {"within_weeks": 60}])
def test_a_first_review_schedule_must_make_sense(first_review: dict[str, int]) -> None:
    data = json.loads((PROGRAMS / "cocm-depression.json").read_text(encoding="utf-8"))
    with pytest.raises(ProgramError, match="first_review"):
        _program({**data, "first_review": first_review}, "cocm-depression")


def test_a_first_review_needs_case_review() -> None:
    data = json.loads((PROGRAMS / "bhi-general.json").read_text(encoding="utf-8"))
    with pytest.raises(ProgramError, match="first_review"):
        _program({**data, "first_review": {"within_weeks": 4}}, "bhi-general")

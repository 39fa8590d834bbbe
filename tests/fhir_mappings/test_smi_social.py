"""Social outcomes for SMI (smi.md §3): answers to the PRAPARE questions kept as registry Observations, the
baseline at enrolment, outcomes now against then (housing lost and regained, employed or in school, jail, seeing
people ≥ 3 times a week), the cadence, and row flags."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fhir.resources.R4B.observation import Observation

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.smi.social import (
    SOCIAL,
    Answered,
    answers_from,
    due,
    flags,
    social_observation,
    statuses,
)

KEY = PatientKey("https://ehr.example.org/fhir", "pt-9")
ENROLLED = date(2026, 3, 1)
TODAY = date(2026, 11, 25)


def answered(domain: str, code: str, day: date) -> Answered:
    found = SOCIAL.domain(domain)
    assert found is not None
    answer = found.answer(code)
    assert answer is not None
    return Answered(domain, answer, day)


@pytest.mark.parametrize(
    ("history", "now", "then", "change"),
    [
        ([("housed", ENROLLED - timedelta(days=5)), ("housed", TODAY)], True, True, "kept"),
        ([("unhoused", ENROLLED), ("housed", TODAY)], True, False, "gained"),  # housing regained
        ([("housed", ENROLLED), ("unhoused", TODAY)], False, True, "lost"),
        ([("unhoused", ENROLLED), ("unhoused", TODAY)], False, False, "still not met"),
        ([("housed", ENROLLED - timedelta(days=60)), ("unhoused", ENROLLED + timedelta(days=10)),
          ("housed", TODAY)], True, False, "gained"),  # too long before enrolment: the first after is the baseline
        ([("declined", ENROLLED), ("housed", TODAY)], True, None, None),
        ([("housed", ENROLLED)], True, True, None),  # one answer: no change yet
        ([], None, None, None),
    ],
)  # fmt: skip
def test_housing_now_against_the_baseline_at_enrolment(
    history: list[tuple[str, date]], now: bool | None, then: bool | None, change: str | None
) -> None:
    housing = next(s for s in statuses([answered("housing", c, d) for c, d in history], ENROLLED)
                   if s.domain.key == "housing")  # fmt: skip
    assert (housing.met_now, housing.met_at_baseline, housing.change) == (now, then, change)


@pytest.mark.parametrize(
    ("domain", "code", "met"),
    [
        ("employment", "full-time", True),
        ("employment", "part-time", True),
        ("employment", "in-school", True),
        ("employment", "seeking", False),
        ("employment", "not-seeking", False),
        ("justice", "no", True),
        ("justice", "yes", False),
        ("connection", "lt-1", False),
        ("connection", "1-2", False),
        ("connection", "3-5", True),  # sees people they care about ≥ 3 times a week
        ("connection", "5-plus", True),
        ("housing-worry", "yes", False),
    ],
)
def test_which_answers_meet_each_outcome(domain: str, code: str, met: bool) -> None:
    status = next(s for s in statuses([answered(domain, code, TODAY)], ENROLLED) if s.domain.key == domain)
    assert status.met_now is met


def test_answers_round_trip_through_registry_observations_and_stay_the_patients() -> None:
    housing = SOCIAL.domain("housing")
    assert housing is not None
    answer = housing.answer("unhoused")
    assert answer is not None
    resource = social_observation(
        KEY, housing, answer, ENROLLED, datetime(2026, 3, 1, 10, tzinfo=UTC), "Practitioner/cm-1"
    )
    dumped = Observation.model_validate(resource).model_dump(mode="json", exclude_none=True)
    assert Observation.model_validate(dumped).model_dump(mode="json", exclude_none=True) == dumped
    assert dumped["code"]["coding"][0] == {"system": "http://loinc.org", "code": "71802-3"}
    assert answers_from([dumped], KEY) == [Answered("housing", answer, ENROLLED)]
    assert answers_from([dumped], PatientKey("https://other.example/fhir", "pt-9")) == []
    odd = {**dumped, "valueCodeableConcept": {"coding": [{"system": SOCIAL.answer_system, "code": "castle"}]}}
    assert answers_from([odd, {"resourceType": "Observation"}, 3], KEY) == []


def test_cadence_and_flags() -> None:
    assert due([], TODAY)
    assert due([answered("housing", "housed", TODAY - timedelta(days=90))], TODAY)
    assert not due([answered("housing", "housed", TODAY - timedelta(days=89))], TODAY)
    found = statuses([answered("housing", "unhoused", TODAY), answered("justice", "yes", TODAY),
                      answered("connection", "5-plus", TODAY), answered("employment", "seeking", TODAY)], ENROLLED)  # fmt: skip
    assert flags(found) == ["social-housing", "social-justice"]


@pytest.mark.parametrize(
    ("domain", "history", "words"),
    [
        # Issue 28: the Life column in plain words — "jail stay in the past year", not "Jail: stay (lost)".
        # The words are data (fhir_mappings/data/smi/social.json, each answer's "row").
        ("justice", [("no", ENROLLED), ("yes", TODAY)], "jail stay in the past year, worse since enrolment"),
        ("justice", [("no", TODAY)], "no jail stay in the past year"),
        ("housing", [("unhoused", ENROLLED), ("housed", TODAY)], "housed, better since enrolment"),
        ("housing", [("unhoused", ENROLLED), ("unhoused", TODAY)], "no housing"),  # still not met: no change word
        ("employment", [("full-time", ENROLLED), ("seeking", TODAY)], "looking for work, worse since enrolment"),
        ("employment", [("not-seeking", TODAY)], "not working or looking"),
        ("employment", [("declined", TODAY)], "work not answered"),
        ("connection", [("lt-1", TODAY)], "sees people less than weekly"),
        ("connection", [("1-2", ENROLLED), ("3-5", TODAY)], "sees people 3–5 times a week, better since enrolment"),
        ("housing", [], ""),
    ],
)  # fmt: skip
def test_the_life_column_in_plain_words(domain: str, history: list[tuple[str, date]], words: str) -> None:
    found = {
        s.domain.key: s for s in statuses([answered(domain, code, day) for code, day in history], ENROLLED)
    }
    assert found[domain].row_text == words


def test_every_answer_has_plain_row_words() -> None:
    # No code-like shorthand on a row: every answer says itself in lower-case words (social.json).
    for domain in SOCIAL.domains:
        for answer in domain.answers:
            assert answer.row and answer.row == answer.row.lower() and ":" not in answer.row, (
                domain.key,
                answer,
            )

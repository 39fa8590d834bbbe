"""Tables for the patient-facing rules: who may answer for whom, the one-question-per-screen steps, answers a
patient must give, the link's expiry and date-of-birth check, and the patient-reported mark on FHIR resources."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from fhir_mappings.screening.history import is_patient_reported, score_points
from fhir_mappings.screening.instruments import CATALOGUE
from fhir_mappings.screening.resources import Submission, questionnaire_response, registry_transaction
from fhir_mappings.screening.scoring import AnswerError, parse_answers, score
from launch.context import LaunchContext
from launch.sessions import LaunchSession
from launch.store import EmbeddedStore
from smartapp import errors as app_errors
from smartapp.access import portal_access_for
from smartapp.selfreport.drafts import Drafts
from smartapp.selfreport.links import MAX_ATTEMPTS, QuestionnaireLinks
from smartapp.selfreport.service import answer_items, answer_problems, first_unanswered, step_after

PHQ9 = CATALOGUE.get("phq9")
assert PHQ9 is not None


def _session(fhir_user: str | None, patient: str | None) -> LaunchSession:
    return LaunchSession(id="x" * 32, binding="b", iss="https://ehr.test/fhir", access_token="t", expires_at=0,
                         refresh_token=None, scope="launch/patient patient/Patient.rs",
                         context=LaunchContext(patient=patient, fhir_user=fhir_user))  # fmt: skip


@pytest.mark.parametrize(("fhir_user", "patient", "answers_for", "answerer"), [
    ("Patient/p1", "p1", "p1", "Patient/p1"),
    ("https://ehr.test/fhir/Patient/p1", None, "p1", "Patient/p1"),  # standalone: no patient in context
    ("Patient/p1", "p2", None, None),  # a patient never answers for another patient
    ("RelatedPerson/rp1", "child1", "child1", "RelatedPerson/rp1"),  # the EHR's proxy access
    ("RelatedPerson/rp1", None, None, None),  # no patient granted to the relative
    ("Practitioner/d1", "p1", None, None),
    ("Person/x", "p1", None, None),
    (None, "p1", None, None),
])  # fmt: skip
def test_who_may_answer_for_whom(fhir_user: str | None, patient: str | None, answers_for: str | None,
                                 answerer: str | None) -> None:  # fmt: skip
    if answers_for is None:
        with pytest.raises(app_errors.NotPermitted):
            portal_access_for(_session(fhir_user, patient))
        return
    access = portal_access_for(_session(fhir_user, patient))
    assert (access.patient, access.answerer) == (answers_for, answerer)


ITEMS = answer_items(PHQ9)


# One question per screen, each its own page (issue 28: the phone's Back button must never resend a form): after
# "next" or "back" on a step, the step to show and whether it asks for its missing answer; None: save.
@pytest.mark.parametrize(("step", "go", "answered", "expected"), [
    (0, "next", True, (1, False)),
    (0, "next", False, (0, True)),  # going on needs this question's answer
    (3, "back", False, (2, False)),  # back needs no answer
    (0, "back", False, (0, False)),  # the first question has no earlier one
    (len(ITEMS) - 1, "next", True, None),  # the last question answered: save
    (len(ITEMS) - 1, "next", False, (len(ITEMS) - 1, True)),
    (2, None, True, (3, False)),  # Enter in an answer sends the form without its button's value: on
])  # fmt: skip
def test_one_question_per_screen(step: int, go: str | None, answered: bool, expected: Any) -> None:
    assert step_after(len(ITEMS), step, go, answered) == expected


@pytest.mark.parametrize(("missing", "expected"), [
    (["phq9-9"], 8),  # a skipped item 9 sends the patient back to item 9, never read as "no"
    (["phq9-3", "phq9-1"], 0),  # the first in the questionnaire's order
    ([], 0),
])  # fmt: skip
def test_a_patient_is_sent_back_to_the_first_unanswered_question(missing: list[str], expected: int) -> None:
    assert first_unanswered(ITEMS, [AnswerError(m, "Please choose an answer.") for m in missing]) == expected


def test_a_draft_keeps_the_answers_so_far_and_then_only_its_record() -> None:
    drafts = Drafts(EmbeddedStore())
    owner = Drafts.portal_owner("l" * 32, "phq9")
    draft = drafts.start(owner)
    assert drafts.start(owner).submission_id == draft.submission_id  # one draft per launch and questionnaire
    drafts.answer(owner, draft, {"phq9-1": "LA6568-5"})
    drafts.answer(
        owner, drafts.get(owner) or draft, {"phq9-1": "LA6569-3", "phq9-2": ""}
    )  # changed, not doubled
    assert (drafts.get(owner) or draft).answers == {"phq9-1": "LA6569-3"}
    assert drafts.get(Drafts.portal_owner("m" * 32, "phq9")) is None  # another launch's draft is its own
    assert drafts.get(Drafts.link_owner("tok", "visit-a")) is None
    drafts.sent(owner, draft, "rec-1")
    kept = drafts.get(owner)
    assert (
        kept is not None and kept.record == "rec-1" and kept.answers == {}
    )  # the answers are not kept after


def test_a_patient_answers_every_scored_question_but_not_the_difficulty_one() -> None:
    every = {f"phq9-{n}": "LA6568-5" for n in range(1, 10)}
    assert answer_problems(PHQ9, every) == []
    missing = answer_problems(PHQ9, {k: v for k, v in every.items() if k != "phq9-9"})
    assert [p.link_id for p in missing] == [
        "phq9-9"
    ]  # a skipped safety item is asked for, never read as "no"
    assert {p.link_id for p in answer_problems(PHQ9, {})} == {f"phq9-{n}" for n in range(1, 10)}


def test_link_expiry_dob_and_attempts() -> None:
    clock = [1_000_000.0]
    links = QuestionnaireLinks(EmbeddedStore(), "secret", now=lambda: clock[0])
    from fhir_mappings.common.identity import PatientKey

    token, expires = links.create(
        PatientKey("https://ehr.test/fhir", "p1"), "phq9", date(1980, 2, 3), None, 7
    )
    assert expires == clock[0] + 7 * 86400
    assert links.confirm(token, date(1980, 3, 2)) is None and links.attempts_left(token) == MAX_ATTEMPTS - 1
    secret = links.confirm(token, date(1980, 2, 3))
    assert secret and links.visit(token, secret) and links.visit(token, "other") is None
    assert links.use(token, secret) is not None and links.use(token, secret) is None  # once
    token, _ = links.create(PatientKey("https://ehr.test/fhir", "p1"), "phq9", date(1980, 2, 3), None, 7)
    clock[0] += 7 * 86400 + 1
    assert links.get(token) is None and links.confirm(token, date(1980, 2, 3)) is None  # expired
    other = QuestionnaireLinks(EmbeddedStore(), "secret")
    assert other.get("x" * 200) is None and other.get("") is None


def test_patient_reported_resources_carry_the_tag_and_the_answerer() -> None:
    answers, _ = parse_answers(PHQ9, {f"phq9-{n}": "LA6568-5" for n in range(1, 10)})
    submission = Submission("a" * 32, PHQ9, answers, score(PHQ9, answers), "p1", datetime.now(UTC),
                            "Patient/p1", iss="https://ehr.test/fhir", self_reported=True)  # fmt: skip
    qr = questionnaire_response(submission)
    assert qr["author"] == qr["source"] == {"reference": "Patient/p1"} and is_patient_reported(qr)
    bundle = registry_transaction(submission, datetime.now(UTC))
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert observations and all(is_patient_reported(o) for o in observations)
    assert all(p.patient_reported for p in score_points(observations, "Tandem"))
    clinic = Submission(
        "b" * 32, PHQ9, answers, score(PHQ9, answers), "p1", datetime.now(UTC), "Practitioner/d"
    )
    assert not is_patient_reported(questionnaire_response(clinic)) and "source" not in questionnaire_response(
        clinic
    )


# The date of birth on a questionnaire link in the deployment's order (issue 28: US patients write month / day /
# year; TANDEM_DATE_ORDER, default MDY), one labelled field per part.
@pytest.mark.parametrize(("order", "fields"), [
    ("MDY", ["month", "day", "year"]),  # the US (the default)
    ("DMY", ["day", "month", "year"]),  # most of Europe
    ("YMD", ["year", "month", "day"]),  # ISO 8601, East Asia
    ("XYZ", ["month", "day", "year"]),  # not an order: the default (the setting is refused at start-up anyway)
])  # fmt: skip
def test_the_date_of_birth_fields_follow_the_deployments_order(order: str, fields: list[str]) -> None:
    from smartapp.selfreport.link_views import dob_parts

    assert [p.name for p in dob_parts(order)] == fields


@pytest.mark.parametrize(("value", "valid"), [("MDY", True), ("DMY", True), ("YMD", True), ("mdy", False),
                                              ("DDMMYY", False)])  # fmt: skip
def test_the_date_order_setting_is_checked_at_start_up(value: str, valid: bool) -> None:
    from launch.errors import ConfigurationError
    from smartapp.config import Settings

    assert Settings().date_order == "MDY"
    if valid:
        assert Settings.from_env({"TANDEM_DATE_ORDER": value}).date_order == value
    else:
        with pytest.raises(ConfigurationError, match="TANDEM_DATE_ORDER"):
            Settings.from_env({"TANDEM_DATE_ORDER": value})

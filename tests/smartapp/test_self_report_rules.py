"""Tables for the patient-facing rules: who may answer for whom, the one-question-per-screen steps, answers a
patient must give, the link's expiry and date-of-birth check, and the patient-reported mark on FHIR resources."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from fhir_mappings.screening.history import is_patient_reported, score_points
from fhir_mappings.screening.instruments import CATALOGUE
from fhir_mappings.screening.resources import Submission, questionnaire_response, registry_transaction
from fhir_mappings.screening.scoring import parse_answers, score
from launch.context import LaunchContext
from launch.sessions import LaunchSession
from launch.store import EmbeddedStore
from smartapp import errors as app_errors
from smartapp.access import portal_access_for
from smartapp.selfreport.links import MAX_ATTEMPTS, QuestionnaireLinks
from smartapp.selfreport.service import answer_items, answer_problems, next_screen

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


@pytest.mark.parametrize(("form", "raw", "expected"), [
    ({}, {}, None),  # every question on one page: save
    ({"step": "0", "go": "next"}, {"phq9-1": "LA6568-5"}, (1, {})),
    ({"step": "0", "go": "next"}, {}, (0, {"phq9-1": "Please choose an answer to go on."})),
    ({"step": "3", "go": "back"}, {}, (2, {})),  # back needs no answer
    ({"step": "0", "go": "back"}, {}, (0, {})),
    ({"step": str(len(ITEMS) - 1), "go": "next"}, {ITEMS[-1].link_id: "x"}, None),  # the last: save
    ({"step": "nonsense"}, {}, None),
])  # fmt: skip
def test_one_question_per_screen(form: dict[str, str], raw: dict[str, str], expected: Any) -> None:
    assert next_screen(ITEMS, form, raw) == expected


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

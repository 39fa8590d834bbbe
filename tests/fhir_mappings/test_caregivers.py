"""Caregivers of a child: read from the EHR and the registry (tolerantly), merged, written as registry
RelatedPersons that round-trip through R4B; a caregiver's screen names them everywhere."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.common.caregivers import (
    CAREGIVER_PATIENT_URL,
    EHR_COPY_URL,
    Caregiver,
    caregiver_from_record,
    caregiver_record,
    find,
    from_ehr,
    from_registry,
    merged,
    registry_id,
    related_person,
)
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.validation import r4_errors
from fhir_mappings.screening.history import ScorePoint, merge_history, own, score_points, series
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import (
    Submission,
    clinical_note,
    note_text,
    questionnaire_response,
    registry_transaction,
    safety_task,
    screening_observations,
)
from fhir_mappings.screening.scoring import parse_answers, score
from fhir_mappings.screening.writeback import NOTE, STRUCTURED, plan_writeback

ISS = "https://ehr.example.org/fhir"
CHILD = PatientKey(ISS, "kid-1")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _rp(rid: Any, child: str = "kid-1", code: str | None = "MTH", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "RelatedPerson", "id": rid, "patient": {"reference": f"Patient/{child}"},
                                "name": [{"given": ["Ana"], "family": "Diaz"}], **extra}  # fmt: skip
    if code:
        resource["relationship"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                                 "code": code}]}]  # fmt: skip
    return resource


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (_rp("m1"), ("Mother (Ana Diaz)", "RelatedPerson/m1")),
        (_rp("f1", code="FTH"), ("Father (Ana Diaz)", "RelatedPerson/f1")),
        (_rp("g1", code=None), ("Caregiver (Ana Diaz)", "RelatedPerson/g1")),
        (_rp("x1", code="ZZZ"), ("Caregiver (Ana Diaz)", "RelatedPerson/x1")),
        ({**_rp("n1"), "name": "not a list"}, ("Mother", "RelatedPerson/n1")),
        (_rp("o1", child="someone-else"), None),  # another patient's RelatedPerson
        (_rp("i1", active=False), None),  # no longer a caregiver
        (_rp(42), None),  # malformed id
        ({"resourceType": "Patient", "id": "p"}, None),
        ("junk", None),
    ],
)
def test_ehr_related_persons_are_read_tolerantly(resource: Any, expected: tuple[str, str] | None) -> None:
    found = from_ehr([resource], CHILD)
    if expected is None:
        assert found == []
    else:
        assert [(c.label, c.ehr_reference, c.source) for c in found] == [(*expected, "EHR")]
        assert found[0].id == registry_id(CHILD, expected[1].split("/")[1])


def test_registry_ids_are_per_issuer_and_stable() -> None:
    assert registry_id(CHILD, "m1") == registry_id(CHILD, "m1")
    assert registry_id(CHILD, "m1") != registry_id(PatientKey("https://other.example/fhir", "kid-1"), "m1")
    assert registry_id(CHILD, nonce="a") != registry_id(CHILD, nonce="b")


def _round_trip(resource: dict[str, Any]) -> dict[str, Any]:
    assert r4_errors(resource) == []
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    dumped: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    assert json.loads(get_fhir_model_class(resource["resourceType"]).model_validate(dumped).model_dump_json(
        exclude_none=True)) == dumped  # fmt: skip
    return dumped


def test_a_registry_related_person_round_trips_and_reads_back_with_its_links() -> None:
    caregiver = Caregiver(registry_id(CHILD, "m1"), CHILD, "Ana Diaz", "MTH", "RelatedPerson/m1", "mum-7")
    resource = _round_trip(related_person(caregiver))
    assert resource["patient"] == CHILD.reference()
    urls = {e["url"]: e["valueReference"] for e in resource["extension"]}
    assert urls[EHR_COPY_URL] == {"reference": "RelatedPerson/m1"}
    assert urls[CAREGIVER_PATIENT_URL]["identifier"] == {"system": ISS, "value": "mum-7"}
    assert from_registry([resource], CHILD) == [caregiver]
    # The same id under another issuer is another child: not theirs.
    assert from_registry([resource], PatientKey("https://other.example/fhir", "kid-1")) == []
    assert caregiver_from_record(caregiver_record(caregiver), CHILD) == caregiver


def test_merge_keeps_the_ehr_caregiver_once_with_the_registrys_link_and_orders_mother_first() -> None:
    ehr = from_ehr([_rp("f1", code="FTH"), _rp("m1")], CHILD)
    held = [replace(ehr[1], patient_id="mum-7"), Caregiver("tandem-rp-x", CHILD, "Bo Lee", "GUARD")]
    result = merged(ehr, held)
    assert [(c.role, c.patient_id, c.source) for c in result] == [
        ("Mother", "mum-7", "EHR"), ("Father", None, "EHR"), ("Guardian", None, "Tandem")]  # fmt: skip
    assert find(result, "RelatedPerson/m1") is result[0]  # the EHR's reference names her too
    assert find(result, "RelatedPerson/tandem-rp-x") is result[2]
    assert find(result, "RelatedPerson/nobody") is None


def _caregiver_submission(
    key: str, picks: dict[str, str], ehr_focus: str | None = "RelatedPerson/m1"
) -> Submission:
    instrument = INSTRUMENTS[key]
    answers, problems = parse_answers(instrument, picks)
    assert not problems
    return Submission("f" * 32, instrument, answers, score(instrument, answers), CHILD.patient_id, NOW,
                      "Practitioner/pr-1", "enc-1", iss=ISS, focus="RelatedPerson/tandem-rp-m",
                      focus_label="Mother (Ana Diaz)", ehr_focus=ehr_focus)  # fmt: skip


PHQ9_ITEM9 = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}


def test_a_caregivers_screen_names_the_caregiver_in_every_resource() -> None:
    submission = _caregiver_submission("phq9", PHQ9_ITEM9)
    qr = _round_trip(questionnaire_response(submission))
    assert qr["subject"] == {"reference": "Patient/kid-1"}
    assert (
        qr["author"]
        == qr["source"]
        == {"reference": "RelatedPerson/tandem-rp-m", "display": "Mother (Ana Diaz)"}
    )
    observations = [_round_trip(o) for o in screening_observations(submission, "QuestionnaireResponse/q")]
    for observation in observations:
        assert observation["focus"] == observation["performer"] == [qr["author"]]
        assert observation["encounter"] == {"reference": "Encounter/enc-1"}
    assert observations[0]["note"][0]["text"].startswith(
        "SAFETY ALERT (Caregiver's screen — Mother (Ana Diaz)):"
    )
    task = _round_trip(safety_task(submission, NOW) or {})
    assert task["for"] == {"reference": "Patient/kid-1"} and "Mother (Ana Diaz)" in task["description"]
    assert task["input"][0]["valueReference"]["reference"] == "RelatedPerson/tandem-rp-m"
    note = note_text(submission)
    assert note.splitlines()[0].startswith("SAFETY ALERT (Caregiver's screen — Mother (Ana Diaz))")
    assert "not the child's own result" in note
    assert _round_trip(clinical_note(submission))["description"].startswith("Caregiver's screen — Mother")
    # The EHR sees its own RelatedPerson; the registry transaction carries the caregiver it points at.
    ehr_view = screening_observations(submission.for_ehr(), None)
    assert ehr_view[0]["focus"][0]["reference"] == "RelatedPerson/m1"
    rp = {"resourceType": "RelatedPerson", "id": "tandem-rp-m", "patient": CHILD.reference()}
    bundle = registry_transaction(submission, NOW, rp)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]][:2] == [
        "RelatedPerson",
        "QuestionnaireResponse",
    ]


def test_the_patients_own_screen_has_no_focus_and_the_practitioner_as_performer() -> None:
    submission = replace(
        _caregiver_submission("phq9", PHQ9_ITEM9), focus=None, focus_label=None, ehr_focus=None
    )
    observation = screening_observations(submission, None)[0]
    assert "focus" not in observation and observation["performer"] == [{"reference": "Practitioner/pr-1"}]
    assert questionnaire_response(submission)["author"] == {"reference": "Practitioner/pr-1"}
    assert submission.about is None and submission.for_ehr() is submission


GENERIC = {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
    {"type": t, "interaction": [{"code": "create"}]} for t in ("QuestionnaireResponse", "Observation", "DocumentReference")]}]}  # fmt: skip


@pytest.mark.parametrize(
    ("caregiver_in_ehr", "vendor", "expected"),
    [
        (None, "generic", STRUCTURED),  # the patient's own screen
        (True, "generic", STRUCTURED),  # focus = the EHR's RelatedPerson
        (False, "generic", NOTE),  # held only in Tandem: a note says whose screen it is
        (True, "epic", NOTE),
        (False, "epic", NOTE),
    ],
)
def test_caregiver_screens_go_structured_only_when_the_ehr_holds_the_caregiver(
    caregiver_in_ehr: bool | None, vendor: str, expected: tuple[str, ...]
) -> None:
    plan = plan_writeback(
        GENERIC, lambda t: True, vendor, has_encounter=True, caregiver_in_ehr=caregiver_in_ehr
    )
    assert plan.ehr_types == expected
    if caregiver_in_ehr is False:
        assert "recorded only in Tandem" in plan.reason


def _observation(oid: str, score_value: int, focus: str | None, minute: int = 0) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "subject": {"reference": "Patient/kid-1"}, "effectiveDateTime": f"2026-11-01T10:{minute:02d}:00+00:00",
        "valueInteger": score_value,
    }  # fmt: skip
    if focus:
        observation["focus"] = [{"reference": focus}]
    return observation


def test_caregiver_scores_are_their_own_series_and_never_the_childs() -> None:
    points = score_points([_observation("a", 12, "RelatedPerson/m1"), _observation("b", 12, None),
                           _observation("c", 3, "https://ehr/fhir/RelatedPerson/m1", 5),
                           _observation("d", 9, {"reference": 7})],  # type: ignore[arg-type]
                          "EHR")  # fmt: skip
    merged_points = merge_history(points)
    # Same score, same minute: still two screenings, one of the mother and one of the child.
    assert sorted((p.score, p.focus or "") for p in merged_points) == [
        (3, "RelatedPerson/m1"), (9, ""), (12, ""), (12, "RelatedPerson/m1")]  # fmt: skip
    assert sorted(p.score for p in series(merged_points, "PHQ-9")) == [9, 12]
    assert [p.score for p in series(merged_points, "PHQ-9", "RelatedPerson/m1")] == [12, 3]
    assert all(p.focus is None for p in own(merged_points))
    assert ScorePoint("PHQ-9", NOW, 1, "EHR", "44261-6").focus is None

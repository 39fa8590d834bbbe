"""Every resource Tandem writes for a screening: built, validated with fhir.resources R4B, dumped, re-parsed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.common.capability import accepts_create
from fhir_mappings.common.conditions import behavioral_conditions
from fhir_mappings.common.validation import r4_errors
from fhir_mappings.screening.due import due_screenings
from fhir_mappings.screening.history import ScorePoint, merge_history, score_points
from fhir_mappings.screening.instruments import INSTRUMENTS, Instrument
from fhir_mappings.screening.resources import (
    Submission,
    clinical_note,
    questionnaire,
    questionnaire_response,
    registry_transaction,
    screening_observations,
)
from fhir_mappings.screening.scoring import parse_answers, score
from fhir_mappings.screening.writeback import NOTE, STRUCTURED, plan_writeback
from launch.scopes import allows_create

from ..ehr import load_fixture

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)

PHQ9 = INSTRUMENTS["phq9"]


def _submission(instrument: Instrument, pick: int = -1) -> Submission:
    raw = {item.link_id: str(item.max_value) if item.kind == "integer" else item.answers[pick].code
           for item in instrument.form_items}  # fmt: skip
    answers, problems = parse_answers(instrument, raw)
    assert all(
        "only when" in problem.message for problem in problems
    )  # C-SSRS 3-5 answered after a "no" to 2
    return Submission("0123456789abcdef0123456789abcdef", instrument, answers, score(instrument, answers, sex="female"),
                      "pt-1", NOW, "Practitioner/pr-1", "enc-1", iss="https://ehr.example.org/fhir")  # fmt: skip


def _round_trip(resource: dict) -> None:
    assert r4_errors(resource) == []
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    dumped = json.loads(model.model_dump_json(exclude_none=True))
    again = get_fhir_model_class(resource["resourceType"]).model_validate(dumped)
    assert json.loads(again.model_dump_json(exclude_none=True)) == dumped
    assert dumped["resourceType"] == resource["resourceType"]


@pytest.mark.parametrize("key", sorted(INSTRUMENTS))
def test_every_resource_round_trips_through_r4b(key: str) -> None:
    instrument = INSTRUMENTS[key]
    submission = _submission(instrument)
    _round_trip(questionnaire(instrument))
    _round_trip(questionnaire_response(submission))
    for observation in screening_observations(submission, "QuestionnaireResponse/x"):
        _round_trip(observation)
    _round_trip(clinical_note(submission))
    bundle = registry_transaction(submission, NOW + timedelta(hours=8))
    _round_trip(bundle)
    for entry in bundle["entry"]:
        _round_trip(entry["resource"])


def test_validation_catches_broken_resources() -> None:
    assert r4_errors({"resourceType": "Observation", "status": "final"})  # no code
    assert r4_errors(
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": "x"}
    )
    assert r4_errors({"resourceType": "NotAType"}) and r4_errors({})


def test_questionnaire_is_sdc_style() -> None:
    resource = questionnaire(PHQ9)
    assert resource["url"] == PHQ9.url and resource["version"] == PHQ9.version
    assert resource["code"][0]["code"] == "44249-1"
    item9 = next(i for i in resource["item"] if i["linkId"] == "phq9-9")
    assert item9["code"][0]["code"] == "44260-8"
    weights = [o["extension"][0] for o in item9["answerOption"]]
    assert [w["valueDecimal"] for w in weights] == [0, 1, 2, 3]
    assert weights[0]["url"] == "http://hl7.org/fhir/StructureDefinition/itemWeight"
    assert item9["answerOption"][0]["valueCoding"]["code"] == "LA6568-5"
    total = next(i for i in resource["item"] if i["linkId"] == "total")
    assert total["code"][0]["code"] == "44261-6" and total["readOnly"]
    assert "weight().sum()" in total["extension"][0]["valueExpression"]["expression"]


def test_phq9_observations_and_safety_task() -> None:
    submission = _submission(PHQ9, pick=1)  # "Several days" everywhere: 9, item 9 positive
    observations = screening_observations(submission, "QuestionnaireResponse/qr-1")
    assert [o["code"]["coding"][0]["code"] for o in observations] == ["44261-6", "44260-8"]
    assert all(o["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr-1"}] for o in observations)
    assert all(o["category"][0]["coding"][0]["code"] == "survey" for o in observations)
    assert observations[0]["valueInteger"] == 9
    assert observations[0]["note"][0]["text"].startswith("SAFETY ALERT: PHQ-9 question 9")
    bundle = registry_transaction(submission, NOW + timedelta(hours=8))
    task = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task")
    assert task["priority"] == "stat" and task["restriction"]["period"]["end"].startswith("2026-11-22T23:30")
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    note = clinical_note(submission)
    import base64

    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    assert text.index("SAFETY ALERT") < text.index("Result: PHQ-9 9")


EPIC_CAP = load_fixture("epic/metadata.json")
ORACLE_CAP = load_fixture("oracle/metadata.json")
GENERIC_CAP = load_fixture("generic/metadata.json")
WRITE = ["patient/Observation.c", "patient/QuestionnaireResponse.c", "patient/DocumentReference.c"]


@pytest.mark.parametrize(
    ("capability", "scopes", "vendor", "encounter", "expected"),
    [
        (GENERIC_CAP, WRITE, "generic", True, STRUCTURED),
        (GENERIC_CAP, ["patient/Observation.write", "patient/QuestionnaireResponse.write",
                       "patient/DocumentReference.write"], "generic", False, STRUCTURED),
        (GENERIC_CAP, ["patient/DocumentReference.c"], "generic", True, NOTE),  # no Observation grant
        (EPIC_CAP, WRITE, "epic", True, NOTE),  # Epic: no survey Observation / QR creates
        (EPIC_CAP, WRITE, "epic", False, ()),  # Epic notes need an encounter
        (ORACLE_CAP, WRITE, "oracle", False, NOTE),
        (ORACLE_CAP, ["patient/Observation.rs"], "oracle", True, ()),
        ({}, WRITE, "generic", True, ()),
    ],
)  # fmt: skip
def test_writeback_plan(capability: dict, scopes: list[str], vendor: str, encounter: bool,
                        expected: tuple[str, ...]) -> None:  # fmt: skip
    plan = plan_writeback(capability, lambda t: allows_create(scopes, t), vendor, has_encounter=encounter)
    assert plan.ehr_types == expected and plan.reason


def test_oracle_capability_says_no_questionnaire_response_create() -> None:
    assert not accepts_create(ORACLE_CAP, "QuestionnaireResponse") and accepts_create(
        ORACLE_CAP, "DocumentReference"
    )


def test_history_reads_both_phq9_codes_and_merges_without_double_counting() -> None:
    ehr = score_points([e["resource"] for e in load_fixture("epic/Observation-search.json")["entry"]], "EHR")
    assert sorted((p.instrument, p.score) for p in ehr) == [
        ("GAD-7", 11),
        ("PHQ-9", 9),
        ("PHQ-9", 12),
        ("PHQ-9", 16),
    ]
    submission = _submission(PHQ9, pick=2)
    mine = screening_observations(submission, None)
    in_ehr = [{**o, "id": "ehr-copy"} for o in mine]  # the same screening written back to a generic EHR
    merged = merge_history(score_points(in_ehr, "EHR") + ehr, score_points(mine, "Tandem"))
    phq = [p for p in merged if p.instrument == "PHQ-9"]
    assert len(phq) == 4 and phq[-1].source == "Tandem" and phq[-1].score == 18
    # An EHR copy without our identifier, same minute and score, is still one screening.
    stripped = [{k: v for k, v in o.items() if k != "identifier"} for o in mine]
    assert len(merge_history(score_points(stripped, "EHR"), score_points(mine, "Tandem"))) == 1


def test_history_is_total_on_odd_input() -> None:
    odd = [None, {}, {"resourceType": "Observation"}, {"resourceType": "Observation", "code": {"coding": [{"code":
           "44261-6"}]}, "effectiveDateTime": "not a date", "valueInteger": 3}]  # fmt: skip
    assert score_points(odd, "EHR") == []


def test_conditions_grouped_active_first() -> None:
    rows = behavioral_conditions(e["resource"] for e in load_fixture("oracle/Condition-search.json")["entry"])
    assert [(r.group, r.active) for r in rows] == [("depression", True), ("anxiety", False)]
    assert behavioral_conditions([None, {"resourceType": "Condition"}]) == []


def test_what_is_due() -> None:
    today = NOW.date()
    old = ScorePoint("PHQ-9", NOW - timedelta(days=35), 14, "EHR", "44261-6")
    recent = ScorePoint("PHQ-9", NOW - timedelta(days=10), 14, "EHR", "44261-6")
    assert [d.instrument for d in due_screenings([old], [], 40, None, today)] == ["phq9"]
    assert due_screenings([recent], [], 40, None, today) == []
    assert [d.instrument for d in due_screenings([], [], 15, None, today)] == ["phq9-teen"]
    assert due_screenings([], [], 8, None, today) == []
    assert due_screenings([], [], 0, 61, today) == []  # a 2-month-old's visit screens come from the schedule


def test_a_follow_up_measurement_records_how_it_was_taken() -> None:
    from dataclasses import replace

    from fhir_mappings.screening.resources import MODE_SYSTEM, questionnaire_response, screening_observations

    submission = replace(_submission(INSTRUMENTS["phq9"], 0), mode="phone", encounter_id=None)
    qr = questionnaire_response(submission)
    _round_trip(qr)
    assert qr["extension"][0]["valueCoding"] == {
        "system": MODE_SYSTEM,
        "code": "phone",
        "display": "By phone",
    }
    observations = screening_observations(submission, "QuestionnaireResponse/x")
    for observation in observations:
        _round_trip(observation)
        assert observation["method"]["coding"][0]["code"] == "phone"
    unknown = replace(submission, mode="carrier-pigeon")  # not a mode: nothing claimed
    assert "extension" not in questionnaire_response(unknown)


@pytest.mark.parametrize(
    ("vendor", "creatable", "scoped", "encounter", "writes", "why"),
    [
        ("generic", True, True, False, True, "a server that accepts notes gets the consult note"),
        ("oracle", True, True, False, True, "Oracle accepts notes without an encounter"),
        (
            "epic",
            True,
            True,
            False,
            False,
            "Epic files notes against an encounter; a worklist launch has none",
        ),
        ("epic", True, True, True, True, "Epic with an encounter"),
        ("generic", False, True, True, False, "the server does not accept DocumentReference"),
        ("generic", True, False, True, False, "the granted scopes do not allow it"),
    ],
)
def test_consult_note_plan(vendor: str, creatable: bool, scoped: bool, encounter: bool, writes: bool,
                           why: str) -> None:  # fmt: skip
    from fhir_mappings.screening.writeback import plan_consult_note

    capability = {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
        {"type": "DocumentReference", "interaction": [{"code": "create"}] if creatable else []}]}]}  # fmt: skip
    plan = plan_consult_note(capability, lambda _t: scoped, vendor, has_encounter=encounter)
    assert (plan.ehr_types == NOTE) is writes, why
    assert plan.reason

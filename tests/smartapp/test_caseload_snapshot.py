"""The caseload snapshot: by id, patched by later pages, stored as plain JSON that round-trips every field."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.resources import (
    Contact,
    Enrolment,
    Member,
    WorkTask,
    careplan,
    completed_review,
    contact_task,
    work_task,
)
from fhir_mappings.smi.social import SOCIAL, social_observation
from smartapp.caseload.snapshot import Snapshot, snapshot_from_json

ISS = "https://ehr.example.org/fhir"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CM = Member("Practitioner/cm-1", "Teresa Lindqvist")


def _enrolment(**changes: object) -> Enrolment:
    base = Enrolment("cp-1", ISS, "p1", "Ana Díaz", "cocm-depression", "active-treatment", date(2026, 9, 1),
                     team={"care-manager": CM, "pcp": Member("Practitioner/pcp-1")}, consent_given=True,
                     consent_date=date(2026, 9, 1), consent_method="verbal", version="3")  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _score(
    oid: str, patient: PatientKey | None, value: int, *, legacy: str | None = None
) -> dict[str, object]:
    subject = patient.reference() if patient else {"reference": f"Patient/{legacy}"}
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]}, "subject": subject,
            "effectiveDateTime": "2026-10-01T09:00:00+00:00", "valueInteger": value}  # fmt: skip


def _filled() -> Snapshot:
    e = _enrolment()
    snapshot = Snapshot(since="2026-11-22T10:00:00.000+00:00")
    snapshot.apply("CarePlan", [careplan(e), careplan(_enrolment(id="cp-2", patient_id="p2", end=date(2026, 11, 1),
                                                                  phase="discharged"))])  # fmt: skip
    snapshot.apply("Task", [
        contact_task(Contact("c-1", "cp-1", date(2026, 11, 3), 25, "phone", "care-manager", CM, "note"), e, NOW),
        contact_task(Contact("c-2", "cp-1", date(2026, 11, 4), 5, "video", "care-manager", None), e, NOW),
        completed_review(work_task("case-review", "r-1", e, NOW), "Continue", NOW, CM),
        work_task("follow-up", "f-1", e, NOW, due=date(2026, 12, 1), description="Call back"),
    ])  # fmt: skip
    snapshot.apply("Observation", [_score("o-1", e.key, 16), _score("o-2", None, 9, legacy="p9")])
    housing = SOCIAL.domain("housing")
    assert housing is not None
    answer = housing.answer("unhoused")
    assert answer is not None
    snapshot.apply("Observation", [social_observation(e.key, housing, answer, date(2026, 10, 2), NOW, None)])
    return snapshot


def test_the_stored_form_round_trips_every_field() -> None:
    snapshot = _filled()
    assert json.loads(snapshot.dumps()) == snapshot.to_json()  # the stored text, encoded section by section
    again = Snapshot.from_json(json.loads(snapshot.dumps()))
    assert again == snapshot
    assert len(again.contacts) == 2 and len(again.tasks) == 2 and again.unassigned == 1
    # SMI social answers ride in the same Observation search and survive the stored form.
    assert [(a.domain, a.answer.code, a.day) for a in again.data(0).social[_enrolment().key]] == [
        ("housing", "unhoused", date(2026, 10, 2))
    ]
    assert again.data(0).for_issuer("https://other.example.org/fhir").social == {}
    stored = snapshot.to_json()
    for cls, rows in (
        (Enrolment, stored["enrolments"]),
        (Contact, stored["contacts"]),
        (WorkTask, stored["tasks"]),
    ):
        assert set(rows[0]) == {f.name for f in dataclasses.fields(cls)}, (
            cls
        )  # a new field must be stored too


def test_another_schema_is_refused_so_the_caller_reloads() -> None:
    stored = _filled().to_json() | {"schema": 1}
    with pytest.raises(ValueError):
        Snapshot.from_json(stored)


def _damaged(change: str) -> object:
    stored = json.loads(_filled().dumps())
    if change == "team-a-list":
        stored["enrolments"][0]["team"] = ["care-manager"]  # AttributeError (.items) escaped the load before
    elif change == "tier-not-a-list":
        stored["enrolments"][0]["tiers"] = [7]  # TypeError
    elif change == "name-a-number":
        stored["enrolments"][0]["patient_name"] = 42  # loaded before, and broke the worklist's sort later
    elif change == "minutes-a-string":
        stored["contacts"][0]["minutes"] = "20"
    elif change == "score-row-short":
        stored["scores"][0] = stored["scores"][0][:3]  # ValueError (unpacking)
    elif change == "score-not-a-number":
        stored["scores"][0][5] = "12"
    elif change == "task-missing-field":
        del stored["tasks"][0]["status"]  # KeyError
    elif change == "not-an-object":
        stored = ["a", "list"]
    return stored


# The stored snapshot is Tandem's own JSON in Redis; a damaged or foreign one must mean "reload from the registry"
# (smartapp/caseload/service.py), never a 500 and never odd values on a page.
@pytest.mark.parametrize(
    "change",
    ["team-a-list", "tier-not-a-list", "name-a-number", "minutes-a-string", "score-row-short", "score-not-a-number",
     "task-missing-field", "not-an-object"],
)  # fmt: skip
def test_a_damaged_stored_snapshot_is_not_loaded(change: str) -> None:
    assert snapshot_from_json(_damaged(change)) is None


def test_a_whole_stored_snapshot_loads() -> None:
    assert snapshot_from_json(json.loads(_filled().dumps())) == _filled()


@pytest.mark.parametrize(
    ("resource_type", "resource", "check"),
    [
        (
            "CarePlan",
            careplan(_enrolment(phase="relapse-prevention", version="4")),
            lambda s: s.enrolments["cp-1"].phase == "relapse-prevention" and len(s.enrolments) == 2,
        ),
        (
            "CarePlan",
            {"resourceType": "CarePlan", "id": "cp-1", "status": "active"},
            lambda s: "cp-1" not in s.enrolments,
        ),  # no longer readable as an enrolment: dropped, not kept stale
        (
            "Task",
            {**completed_review(work_task("case-review", "f-1", _enrolment(), NOW), "Stop", NOW, CM)},
            lambda s: s.tasks["f-1"].kind == "case-review" and s.tasks["f-1"].recommendations == "Stop",
        ),
        (
            "Observation",
            _score("o-1", PatientKey(ISS, "p1"), 4),
            lambda s: s.scores["o-1"][1].score == 4 and len(s.scores) == 1,
        ),
        (
            "Observation",
            {**_score("o-1", PatientKey(ISS, "p1"), 4), "status": "entered-in-error"},
            lambda s: "o-1" not in s.scores,
        ),
        (
            "Observation",
            _score("o-2", PatientKey(ISS, "p9"), 9),
            lambda s: s.unassigned == 0 and "o-2" in s.scores,
        ),  # migrated to an issuer: no longer unassigned
    ],
)
def test_a_later_version_replaces_the_earlier_by_id(resource_type: str, resource: dict[str, object],
                                                     check: object) -> None:  # fmt: skip
    snapshot = _filled()
    snapshot.apply(resource_type, [resource])
    assert check(snapshot)  # type: ignore[operator]


def test_data_groups_scores_by_patient_in_time_order() -> None:
    snapshot = _filled()
    later = {**_score("o-3", PatientKey(ISS, "p1"), 11), "effectiveDateTime": "2026-11-01T09:00:00+00:00"}
    earlier = {**_score("o-4", PatientKey(ISS, "p1"), 19), "effectiveDateTime": "2026-09-02T09:00:00+00:00"}
    snapshot.apply("Observation", [later, earlier])
    points = snapshot.data(requests=3).scores[PatientKey(ISS, "p1")]
    assert [p.score for p in points] == [19, 16, 11]

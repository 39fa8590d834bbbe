"""The CoCM registry model: CarePlan/Task round trips, billing by month, worklist flags, sorting and CSV."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.validation import r4_errors
from fhir_mappings.registry.billing import bhi_code, cocm_code, month_code
from fhir_mappings.registry.resources import (
    Contact,
    Enrolment,
    Member,
    WorkTask,
    careplan,
    completed_review,
    contact_from,
    contact_task,
    enrolment_from,
    with_phase,
    work_task,
    work_task_from,
)
from fhir_mappings.registry.worklist import (
    Scores,
    build_rows,
    caseload_stats,
    filter_rows,
    review_group,
    review_priority,
    rows_csv,
    sort_rows,
)
from fhir_mappings.screening.history import ScorePoint

ISS = "https://ehr.example.org/fhir"
TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CM = Member("Practitioner/cm-1", "Teresa Lindqvist")


def enrolment(**changes: object) -> Enrolment:
    base = dict(id="cp-1", iss=ISS, patient_id="p1", patient_name="Ana Rivera", program="cocm-depression",
                phase="active-treatment", start=date(2026, 8, 3),
                team={"pcp": Member("Practitioner/pcp-1", "Dana Whitfield"), "care-manager": CM,
                      "psychiatric-consultant": Member("Practitioner/psy-1", "Irene Castellanos")},
                consent_given=True, consent_date=date(2026, 8, 3), consent_method="verbal")  # fmt: skip
    base.update(changes)
    return Enrolment(**base)  # type: ignore[arg-type]


def _valid(resource: dict) -> dict:
    assert r4_errors(resource) == []
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return json.loads(model.model_dump_json(exclude_none=True))


def test_careplan_round_trip() -> None:
    original = enrolment(flagged_for_review=True, version="3", birth_date=date(1980, 5, 2), mrn="MRN100007")
    resource = _valid(careplan(original))
    assert enrolment_from(careplan(enrolment())) == enrolment()  # no birth date or MRN: no empty extension
    assert resource["status"] == "active" and resource["subject"]["identifier"] == {
        "system": ISS,
        "value": "p1",
    }
    assert {c["resourceType"] for c in resource["contained"]} == {"CareTeam", "Goal"}
    assert enrolment_from(resource) == original
    discharged = with_phase(original, "discharged", TODAY)
    assert _valid(careplan(discharged))["status"] == "completed"
    assert enrolment_from(careplan(discharged)) == discharged and discharged.end == TODAY
    assert enrolment_from(careplan(with_phase(original, "relapse-prevention", TODAY))).active


def test_task_round_trips() -> None:
    e = enrolment()
    contact = Contact("c-1", "cp-1", date(2026, 11, 3), 25, "phone", "care-manager", CM, "Discussed sleep")
    assert contact_from(_valid(contact_task(contact, e, NOW))) == contact
    review = _valid(work_task("case-review", "r-1", e, NOW, description="Not improving at week 12"))
    parsed = work_task_from(review)
    assert (
        parsed is not None and parsed.open and parsed.kind == "case-review" and parsed.careplan_id == "cp-1"
    )
    done = work_task_from(_valid(completed_review(review, "Increase sertraline to 100 mg", NOW, CM)))
    assert done is not None and not done.open and done.recommendations == "Increase sertraline to 100 mg"
    assert done.completed == TODAY
    follow_up = work_task_from(_valid(work_task("follow-up", "f-1", e, NOW, due=date(2026, 11, 20))))
    assert follow_up is not None and follow_up.due == date(2026, 11, 20)


@pytest.mark.parametrize("odd", [None, {}, {"resourceType": "CarePlan", "id": "x"}, {"resourceType": "Task"},
                                 {"resourceType": "CarePlan", "id": "x", "category": "nope"}])  # fmt: skip
def test_mappings_are_total(odd: object) -> None:
    assert enrolment_from(odd) is None and contact_from(odd) is None and work_task_from(odd) is None


@pytest.mark.parametrize(
    ("minutes", "first", "label"),
    [
        (0, True, "—"), (15, True, "—"), (16, True, "G2214"), (35, True, "G2214"), (36, True, "99492"),
        (70, True, "99492"), (85, True, "99492"), (86, True, "99492 + 99494×1"), (115, True, "99492 + 99494×1"),
        (116, True, "99492 + 99494×2"),
        (15, False, "—"), (16, False, "G2214"), (30, False, "G2214"), (31, False, "99493"), (75, False, "99493"),
        (76, False, "99493 + 99494×1"), (105, False, "99493 + 99494×1"), (106, False, "99493 + 99494×2"),
    ],
)  # fmt: skip
def test_cocm_thresholds(minutes: int, first: bool, label: str) -> None:
    assert cocm_code(minutes, first_month=first).label == label


@pytest.mark.parametrize(
    ("minutes", "licensed", "label"), [(19, False, "—"), (20, False, "99484"), (20, True, "G0323")]
)
def test_general_bhi(minutes: int, licensed: bool, label: str) -> None:
    assert bhi_code(minutes, licensed).label == label


def _contacts(*items: tuple[date, int]) -> list[Contact]:
    return [
        Contact(f"c{i}", "cp-1", day, minutes, "phone", "care-manager", CM)
        for i, (day, minutes) in enumerate(items)
    ]


def test_month_boundaries_first_month_and_discharge() -> None:
    e = enrolment(start=date(2026, 8, 20))
    contacts = _contacts(
        (date(2026, 8, 31), 20), (date(2026, 9, 1), 20), (date(2026, 8, 20), 20), (date(2026, 9, 30), 15)
    )
    assert month_code(e, contacts, date(2026, 8, 1)).label == "99492"  # 40 min in the first calendar month
    assert month_code(e, contacts, date(2026, 9, 15)).label == "99493"  # 35 min the next month
    assert month_code(e, contacts, date(2026, 7, 1)).code is None  # before enrolment
    discharged = with_phase(e, "discharged", date(2026, 9, 10))
    assert (
        month_code(discharged, contacts, date(2026, 9, 1)).label == "G2214"
    )  # only the 20 min before discharge
    assert month_code(discharged, contacts, date(2026, 10, 1)).minutes == 0


def _points(patient: str, *scores: tuple[date, int]) -> list[ScorePoint]:
    return [
        ScorePoint("PHQ-9", datetime(d.year, d.month, d.day, tzinfo=UTC), s, "Tandem", "44261-6")
        for d, s in scores
    ]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # Never reviewed 12 (or 6) weeks after enrolment: the first review (week 4, the program file) is overdue;
        # "new" lasts only until it is due (issue 28; tests/fhir_mappings/test_worklist_flags.py).
        ("improving", {"first-review-overdue"}),
        ("not-improving", {"not-improving", "first-review-overdue"}),
        ("too-early", {"first-review-overdue"}),
        ("no-contact", {"no-contact", "first-review-overdue"}),
        ("overdue", {"overdue", "first-review-overdue"}),
        ("flagged", {"review", "first-review-overdue"}),
        ("safety", {"safety", "first-review-overdue"}),
        ("reviewed", set()),
    ],
)
def test_flags(case: str, expected: set[str]) -> None:
    start = TODAY - timedelta(weeks=12) if case != "too-early" else TODAY - timedelta(weeks=6)
    e = enrolment(start=start, flagged_for_review=case == "flagged")
    scores = {
        PatientKey(ISS, "p1"): _points(
            "p1", (start, 16), (TODAY - timedelta(days=3), 13 if case == "not-improving" else 6)
        )
    }
    contacts = _contacts((TODAY - timedelta(days=40 if case == "no-contact" else 5), 30))
    tasks = []
    if case == "overdue":
        tasks.append(work_task_from(work_task("follow-up", "f", e, NOW, due=TODAY - timedelta(days=1))))
    if case == "safety":
        tasks.append(work_task_from(work_task("safety-follow-up", "s", e, NOW)))
    if case == "reviewed":
        tasks.append(
            work_task_from(completed_review(work_task("case-review", "r", e, NOW), "Continue", NOW, CM))
        )
    (row,) = build_rows([e], contacts, [t for t in tasks if t], scores, TODAY)
    assert set(row.flags) == expected


def test_rows_stats_sorting_filtering_review_order_and_csv() -> None:
    a = enrolment(id="cp-a", patient_id="pa", patient_name="Ana", start=TODAY - timedelta(weeks=12))
    b = enrolment(id="cp-b", patient_id="pb", patient_name="=Bob", start=TODAY - timedelta(weeks=6),
                  team={"care-manager": Member("Practitioner/cm-2", "Jamal Ortega")})  # fmt: skip
    c = with_phase(enrolment(id="cp-c", patient_id="pc", patient_name="Cy"), "discharged", TODAY)
    scores = {PatientKey(ISS, "pa"): _points("pa", (a.start, 20), (TODAY, 4)),
              PatientKey(ISS, "pb"): _points("pb", (b.start, 12), (TODAY, 12)),
              PatientKey("https://other-ehr.example.org/fhir", "pb"): _points("pb", (b.start, 27))}  # fmt: skip
    contacts = [Contact("x", "cp-a", TODAY, 40, "phone", "care-manager", CM)]
    rows = build_rows([a, b, c], contacts, [], scores, TODAY)
    assert [r.patient for r in rows] == ["Ana", "=Bob"]  # discharged patients leave the worklist
    ana = rows[0]
    assert ana.phq9.first == 20 and ana.phq9.latest == 4 and ana.phq9.change_pct == -80.0
    assert ana.response and ana.remission and ana.minutes_this_month == 40 and ana.billing.label == "99493"
    stats = caseload_stats(rows, TODAY)
    assert (stats.size, stats.contacted_30d, stats.improving, stats.remission) == (2, 1, 1, 1)
    assert [r.patient for r in sort_rows(rows, "phq9_latest")] == ["Ana", "=Bob"]
    assert [r.patient for r in sort_rows(rows, "weeks", descending=True)] == ["Ana", "=Bob"]
    assert [r.patient for r in sort_rows(rows, "care_manager")] == ["=Bob", "Ana"]
    assert [r.patient for r in filter_rows(rows, member="Practitioner/cm-1")] == ["Ana"]
    assert [r.patient for r in filter_rows(rows, flag="no-contact")] == ["=Bob"]
    assert [r.patient for r in filter_rows(rows, text="an")] == ["Ana"]
    # Any column, by what it shows: numbers with a comparison, anything else by text.
    assert [r.patient for r in filter_rows(rows, column="phq9_latest", value=">=10")] == ["=Bob"]
    assert [r.patient for r in filter_rows(rows, column="phq9_first", value="20")] == ["Ana"]
    assert [r.patient for r in filter_rows(rows, column="care_manager", value="ortega")] == ["=Bob"]
    assert [r.patient for r in filter_rows(rows, column="billing", value="99493")] == ["Ana"]
    assert [r.patient for r in filter_rows(rows, column="flags", value="no recent")] == ["=Bob"]
    assert [r.patient for r in filter_rows(rows, column="last_contact", value=str(TODAY))] == ["Ana"]
    assert filter_rows(rows, column="weeks", value=">=99") == []
    assert [r.patient for r in review_priority(rows)] == [
        "Ana",
        "=Bob",
    ]  # both new; longer in treatment first
    text = rows_csv(rows)
    assert text.splitlines()[0].startswith("Patient,Date of birth,Age,MRN,PCP")
    assert "'=Bob" in text and "99493" in text


ENROLLED = date(2026, 9, 1)


def _series(*days_and_scores: tuple[int, int], source: str = "EHR") -> list[ScorePoint]:
    return [ScorePoint("PHQ-9", datetime.combine(ENROLLED + timedelta(days=d), datetime.min.time(), UTC), s, source,
                       "44261-6") for d, s in days_and_scores]  # fmt: skip


@pytest.mark.parametrize(
    ("points", "baseline", "latest", "why"),
    [
        (
            _series((-60, 22), (-3, 18), (20, 12), (80, 7)),
            18,
            7,
            "closest before enrolment, older ones not this episode's",
        ),
        (_series((-20, 21), (2, 17), (40, 9)), 17, 9, "2 days after is closer than 20 days before"),
        (_series((-2, 15), (2, 19)), 15, 19, "a tie goes to the earlier score"),
        (_series((30, 16), (60, 10)), 16, 10, "nothing in the window: the first score after it opens"),
        (_series((-45, 20)), None, None, "only scores before the window: no baseline for this enrolment"),
        (_series((0, 14)), 14, 14, "one score is baseline and latest"),
        ([], None, None, "no scores"),
    ],
)
def test_the_baseline_is_the_score_closest_to_enrolment(points: list[ScorePoint], baseline: int | None,
                                                        latest: int | None, why: str) -> None:  # fmt: skip
    scores = Scores.of(points, ENROLLED, 30, 14)
    assert (scores.first, scores.latest) == (baseline, latest), why


def test_ehr_scores_give_a_worklist_row_its_baseline_and_outcome() -> None:
    e = enrolment(start=ENROLLED)
    points = _series((-5, 20), (30, 15), (75, 8))  # all from the EHR, none recorded in Tandem
    (row,) = build_rows([e], [], [], {e.key: points}, ENROLLED + timedelta(days=80))
    assert (row.phq9.first, row.phq9.latest) == (20, 8) and row.phq9.first_point is not None
    assert row.phq9.first_point.source == "EHR" and row.response and "not-improving" not in row.flags


def _flagged(name: str, flags: tuple[str, ...], weeks: int = 4, born: date | None = None) -> Any:
    e = enrolment(id=f"cp-{name}", patient_id=f"p-{name}", patient_name=name, start=TODAY - timedelta(weeks=weeks),
                  birth_date=born)  # fmt: skip
    (row,) = build_rows([e], [], [], {}, TODAY)
    return replace(row, flags=flags)


def test_case_review_order_is_safety_then_flagged_then_not_improving_then_new() -> None:
    rows = [
        _flagged("New", ("new",), weeks=2),
        _flagged("Stuck", ("not-improving",), weeks=12),
        _flagged("Asked", ("review",), weeks=3),
        _flagged("Risk", ("safety", "new"), weeks=1),
        _flagged("Fine", ("no-contact",)),
        _flagged("Stuck longer", ("not-improving", "new"), weeks=20),
    ]
    assert [r.patient for r in review_priority(rows)] == ["Risk", "Asked", "Stuck longer", "Stuck", "New"]
    assert review_group(rows[0]) == "new" and review_group(rows[4]) is None


def test_default_order_is_flag_priority_then_name_then_birth_date() -> None:
    rows = [
        _flagged("Lee", ("new",), born=date(1990, 1, 1)),
        _flagged("Lee", ("new",), born=date(1970, 1, 1)),
        _flagged("Abe", ("no-contact",)),
        _flagged("Zed", ("safety",)),
        _flagged("Ann", ()),
        _flagged("Kim", ("review",)),
    ]
    ordered = [(r.patient, r.enrolment.birth_date) for r in sort_rows(rows, "flags")]
    assert ordered == [("Zed", None), ("Kim", None), ("Abe", None), ("Lee", date(1970, 1, 1)),
                       ("Lee", date(1990, 1, 1)), ("Ann", None)]  # fmt: skip


def test_namesakes_are_told_apart_by_birth_date_age_and_mrn() -> None:
    e = enrolment(patient_name="Maria Lopez", birth_date=date(1980, 5, 2), mrn="MRN100007",
                  start=TODAY - timedelta(weeks=2))  # fmt: skip
    (row,) = build_rows([e], [], [], {}, date(2026, 5, 1))
    assert row.identity == "DOB 1980-05-02 · 45 y · MRN MRN100007"
    (bare,) = build_rows([enrolment(patient_name=None)], [], [], {}, TODAY)
    assert bare.patient == "Name not recorded" and "not recorded" in bare.identity
    assert "p1" not in bare.patient  # never the FHIR id


def test_my_caseload_means_any_role_on_the_care_team() -> None:
    consultant = Member("Practitioner/psy-1", "Dr Rao")
    mine = enrolment(id="cp-1", patient_name="A", team={"psychiatric-consultant": consultant})
    theirs = enrolment(id="cp-2", patient_id="p2", patient_name="B", team={"care-manager": CM})
    rows = build_rows([mine, theirs], [], [], {}, TODAY)
    assert [r.patient for r in filter_rows(rows, member="Practitioner/psy-1")] == ["A"]
    assert [r.patient for r in filter_rows(rows, member=CM.reference)] == ["B"]


@pytest.mark.parametrize(
    ("phase", "contacts", "tasks", "scores", "follow_up", "measure", "why"),
    [
        (
            "active-treatment",
            [],
            [],
            [],
            28,
            0,
            "new: first contact within 28 days; the measure is due at once",
        ),
        (
            "active-treatment",
            [10],
            [],
            [(10, 15)],
            24,
            38,
            "every 14 days after the last contact; 28 after a score",
        ),
        ("relapse-prevention", [10], [], [(10, 15)], 40, 38, "monthly contacts in relapse prevention"),
        ("active-treatment", [10], [18], [], 18, 0, "an open follow-up Task's due date comes first"),
        ("active-treatment", [], [], [(-5, 20)], 28, 23, "the baseline before enrolment counts as taken"),
        (
            "active-treatment",
            [],
            [],
            [(-60, 20)],
            28,
            0,
            "a score before the baseline window is not this episode's",
        ),
    ],
)
def test_next_follow_up_and_measure_come_from_the_program_cadence(
    phase: str, contacts: list[int], tasks: list[int], scores: list[tuple[int, int]], follow_up: int, measure: int,
    why: str,
) -> None:  # fmt: skip
    start = date(2026, 9, 1)
    e = replace(enrolment(start=start), phase=phase)
    contact_rows = [
        Contact(f"c{d}", e.id, start + timedelta(days=d), 20, "phone", "care-manager", CM) for d in contacts
    ]
    task_rows = [WorkTask(f"t{d}", "follow-up", "requested", e.patient_id, e.id, start + timedelta(days=d), start,
                          iss=ISS) for d in tasks]  # fmt: skip
    points = [ScorePoint("PHQ-9", datetime.combine(start + timedelta(days=d), datetime.min.time(), UTC), s, "EHR",
                         "44261-6") for d, s in scores]  # fmt: skip
    (row,) = build_rows([e], contact_rows, task_rows, {e.key: points}, start + timedelta(days=30))
    assert row.follow_up_due == start + timedelta(days=follow_up), why
    assert row.measure_due == start + timedelta(days=measure) and row.measure_due_series == "PHQ-9", why

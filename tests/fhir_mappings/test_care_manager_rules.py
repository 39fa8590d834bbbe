"""The care manager's rules (issue 28): when a patient-month is ready to bill and what is missing, the report's
per-code totals and code words, which screening an open safety follow-up refers to, and what is due now."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from fhir_mappings.registry.billing import (
    CODE_DESCRIPTIONS,
    REQUIREMENTS,
    MonthCode,
    MonthReadiness,
    billing_totals,
    code_description,
    month_end,
    month_readiness,
)
from fhir_mappings.registry.patient_page import due_now, named_instrument, safety_source
from fhir_mappings.registry.resources import Contact, Enrolment, Member, WorkTask
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.screening.history import ScorePoint

TEAM = {
    "pcp": Member("Practitioner/pcp", "Marcus Oyelaran"),
    "care-manager": Member("Practitioner/cm", "Teresa Lindqvist"),
    "psychiatric-consultant": Member("Practitioner/psy", "Irene Castellanos"),
}
DECEMBER = date(2026, 12, 1)


def enrolment(program: str = "cocm-depression", **changes: object) -> Enrolment:
    base = Enrolment(id="cp-1", iss="https://ehr.example", patient_id="p1", patient_name="Grace Cohen",
                     program=program, phase="active-treatment", start=date(2026, 9, 14), team=dict(TEAM),
                     consent_given=True, consent_date=date(2026, 9, 14), consent_method="verbal")  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def minutes(n: int, day: date = date(2026, 12, 3)) -> list[Contact]:
    return [Contact("c1", "cp-1", day, n, "phone", "care-manager", TEAM["care-manager"])] if n else []


SCORED = [date(2026, 11, 20)]
REVIEWED = [date(2026, 10, 5)]


# Each row: clinical.md §4 — "CoCM billing needs: consent (verbal or written, documented), …, validated scales,
# psychiatric consultant review"; the billing practitioner is the treating practitioner on the care team; minutes
# thresholds from the §4 table (99493 from 31, G2214 from 16, 99484 from 20).
@pytest.mark.parametrize(
    ("program", "changes", "n", "scored", "reviewed", "ready", "missing"),
    [
        ("cocm-depression", {}, 45, SCORED, REVIEWED, True, []),
        (
            "cocm-depression",
            {},
            10,
            SCORED,
            REVIEWED,
            False,
            ["minutes not reached (21 more minutes reach 99493"],
        ),
        ("cocm-depression", {}, 20, SCORED, REVIEWED, True, []),  # G2214 from 16 minutes
        (
            "cocm-depression",
            {"consent_given": False},
            45,
            SCORED,
            REVIEWED,
            False,
            ["consent is not documented"],
        ),
        (
            "cocm-depression",
            {"consent_method": None},
            45,
            SCORED,
            REVIEWED,
            False,
            ["consent is not documented"],
        ),
        (
            "cocm-depression",
            {"team": {k: v for k, v in TEAM.items() if k != "pcp"}},
            45,
            SCORED,
            REVIEWED,
            False,
            ["no billing practitioner"],
        ),
        (
            "cocm-depression",
            {"team": {k: v for k, v in TEAM.items() if k != "psychiatric-consultant"}},
            45,
            SCORED,
            REVIEWED,
            False,
            ["no psychiatric consultant"],
        ),
        ("cocm-depression", {}, 45, [], REVIEWED, False, ["no validated scale score"]),
        (
            "cocm-depression",
            {},
            45,
            [date(2027, 1, 2)],
            REVIEWED,
            False,
            ["no validated scale score"],
        ),  # after
        ("cocm-depression", {}, 45, SCORED, [], False, ["no psychiatric case review"]),
        (
            "cocm-depression",
            {},
            45,
            SCORED,
            [date(2027, 1, 4)],
            False,
            ["no psychiatric case review"],
        ),  # after
        (
            "cocm-depression",
            {},
            0,
            [],
            [],
            False,
            ["minutes not reached", "no validated scale score", "no psychiatric case review"],
        ),
        # General BHI (99484) needs neither a consultant, a scale nor a case review in Tandem's table.
        ("bhi-general", {"team": {"pcp": TEAM["pcp"]}}, 25, [], [], True, []),
        ("bhi-general", {}, 15, [], [], False, ["minutes not reached (5 more minutes reach 99484)"]),
    ],
)
def test_a_patient_month_is_ready_to_bill_only_with_everything_tandem_can_see(
    program: str, changes: dict[str, object], n: int, scored: list[date], reviewed: list[date], ready: bool,
    missing: list[str],
) -> None:  # fmt: skip
    readiness = month_readiness(enrolment(program, **changes), minutes(n), DECEMBER, scored=scored,
                                reviewed=reviewed)  # fmt: skip
    assert readiness.ready is ready
    assert len(readiness.missing) == len(missing), readiness.missing
    for said, expected in zip(readiness.missing, missing, strict=True):
        assert said.startswith(expected), (said, expected)
    assert readiness.state == (
        "Ready to bill" if ready else "Not ready: " + "; ".join(readiness.missing) + "."
    )


def test_requirements_are_data_a_deployment_can_change() -> None:
    # Dropping the case-review requirement (a compliance team's reading) makes the month ready.
    without_review = tuple(r for r in REQUIREMENTS if r.key != "review")
    readiness = month_readiness(enrolment(), minutes(45), DECEMBER, scored=SCORED, reviewed=[],
                                requirements=without_review)  # fmt: skip
    assert readiness.ready


def test_a_baseline_before_enrolment_counts_within_the_programs_window() -> None:
    # The depression program's baseline window reaches before enrolment (programs.py: baseline_days_before).
    from fhir_mappings.registry.programs import program_for

    program = program_for("cocm-depression")
    assert program is not None
    before = program.outcome.baseline_days_before_enrolment
    start = date(2026, 12, 1)
    e = enrolment(start=start, consent_date=start)
    inside = date.fromordinal(start.toordinal() - before)
    outside = date.fromordinal(start.toordinal() - before - 1)
    assert month_readiness(e, minutes(45), DECEMBER, scored=[inside], reviewed=[start]).ready
    assert not month_readiness(e, minutes(45), DECEMBER, scored=[outside], reviewed=[start]).ready


@pytest.mark.parametrize(
    ("month", "end"),
    [
        (date(2026, 12, 1), date(2026, 12, 31)),
        (date(2026, 2, 10), date(2026, 2, 28)),
        (date(2028, 2, 1), date(2028, 2, 29)),
        (date(2026, 4, 30), date(2026, 4, 30)),
    ],  # fmt: skip
)
def test_month_end(month: date, end: date) -> None:
    assert month_end(month) == end


def test_per_code_totals_count_patient_months_units_and_ready_ones() -> None:
    # clinical.md §4: 99494 is an add-on per further 30 minutes; its units are billed beside 99492/99493.
    months = [
        MonthReadiness(MonthCode("99493", 2, 121, "Later CoCM month"), ()),
        MonthReadiness(MonthCode("99493", 0, 45, "Later CoCM month"), ("no psychiatric case review",)),
        MonthReadiness(MonthCode("G2214", 0, 20, ""), ()),
        MonthReadiness(MonthCode(None, 0, 5, "26 more minutes reach 99493"), ("minutes not reached",)),
        MonthReadiness(MonthCode("99492", 1, 90, "First CoCM month"), ("consent is not documented",)),
    ]
    totals = {t.code: t for t in billing_totals(months)}
    assert [t.code for t in billing_totals(months)] == [
        "99492",
        "99493",
        "99494",
        "G2214",
    ]  # the table's order
    assert (totals["99493"].patient_months, totals["99493"].units, totals["99493"].ready) == (2, 2, 1)
    assert (totals["99494"].patient_months, totals["99494"].units, totals["99494"].ready) == (2, 3, 1)
    assert (totals["G2214"].patient_months, totals["G2214"].ready) == (1, 1)
    assert billing_totals([]) == []


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (MonthCode(None, 0, 5, "x"), ""),
        (MonthCode("99493", 0, 45, "x"), CODE_DESCRIPTIONS["99493"]),
        (MonthCode("99492", 2, 120, "x"), CODE_DESCRIPTIONS["99492"] + "; plus 2 × 99494"),
        (MonthCode("G0512", 0, 60, "FQHC CoCM"), "FQHC CoCM"),  # a code without words here keeps its own
    ],
)
def test_code_description(code: MonthCode, said: str) -> None:
    assert code_description(code).startswith(said) and (said or code_description(code) == "")


def point(
    day: int, score: int, submission: str | None = None, source: str = "EHR", month: int = 11
) -> ScorePoint:
    return ScorePoint(
        "PHQ-9", datetime(2026, month, day, 10, tzinfo=UTC), score, source, "44261-6", submission
    )


@pytest.mark.parametrize(
    ("submission", "points", "expected"),
    [
        # The screening that raised it is held (same submission), and a later one scored lower.
        (
            "s1",
            [point(2, 14, "s1", "Tandem"), point(16, 0)],
            [
                "from the PHQ-9 of 2026-11-02 (score 14, recorded in Tandem)",
                "A later PHQ-9, of 2026-11-16, scored 0",
            ],
        ),
        # It is the latest: no "later" sentence.
        ("s1", [point(2, 3), point(16, 14, "s1", "Tandem")], ["from the PHQ-9 of 2026-11-16 (score 14"]),
        # Not held (the demo: raised on a day with no PHQ-9 in the registry): the latest is a different screening.
        (
            None,
            [point(2, 5), point(16, 0)],
            [
                "Raised on 2026-12-07",
                "the latest PHQ-9 here is 0, of 2026-11-16 (from the EHR), an earlier screening",
            ],
        ),
        (None, [], ["Raised on 2026-12-07", "Tandem holds no PHQ-9 score"]),
    ],
)
def test_a_safety_follow_up_names_the_screening_it_refers_to(
    submission: str | None, points: list[ScorePoint], expected: list[str]
) -> None:
    source = safety_source(
        date(2026, 12, 7), "PHQ-9 item 9 positive at the last visit", submission, None, points
    )
    assert source.instrument == "PHQ-9"
    for part in expected:
        assert part in source.explanation, source.explanation


def test_a_caregivers_screen_is_not_the_patients_latest() -> None:
    caregiver = replace(point(20, 22), focus="RelatedPerson/mother")
    source = safety_source(date(2026, 12, 7), "PHQ-9 item 9", None, None, [point(2, 5), caregiver])
    assert source.latest is not None and source.latest.score == 5


@pytest.mark.parametrize(
    ("reason", "named"),
    [("PHQ-9 item 9 positive", "PHQ-9"), ("EPDS item 10 positive", "EPDS"), ("Suicide risk reported", None)],
)
def test_named_instrument(reason: str, named: str | None) -> None:
    assert named_instrument(reason, ["PHQ-9", "EPDS", "PHQ-2"]) == named


def test_due_now_puts_overdue_first_and_leaves_later_items_out() -> None:
    today = date(2026, 12, 7)
    e = enrolment(start=date(2026, 9, 1))
    tasks = [
        WorkTask("t1", "follow-up", "requested", "p1", "cp-1", date(2026, 12, 3), date(2026, 11, 1),
                 description="Call about sleep"),
        WorkTask("t2", "follow-up", "requested", "p1", "cp-1", date(2026, 12, 30), date(2026, 11, 1),
                 description="Later call"),
        WorkTask("t3", "follow-up", "completed", "p1", "cp-1", date(2026, 12, 1), date(2026, 11, 1),
                 description="Done call"),
    ]  # fmt: skip
    row = build_rows([e], [], tasks, {}, today)[0]
    items = due_now(row, tasks, today)
    whats = [i.what for i in items]
    overdue = [i.overdue for i in items]
    assert overdue == sorted(overdue, reverse=True)  # everything late comes before what is merely due
    dated = [i.day for i in items if i.overdue and i.day]
    assert dated == sorted(dated)  # the longest overdue first
    assert next(i for i in items if i.what == "Call about sleep").overdue
    assert any(i.what == "Next PHQ-9" and i.overdue for i in items)  # never measured since enrolment
    assert "Later call" not in whats and "Done call" not in whats  # beyond the week; done
    assert any(w.startswith("Contact the patient (no contact logged yet)") for w in whats)  # no-contact flag


def test_the_worklist_csv_says_program_status_and_flags_in_words() -> None:
    # Issue 28 "Everywhere": no program keys or raw codes in a CSV a person opens ("bhi-general").
    import csv
    import io

    from fhir_mappings.registry.worklist import rows_csv

    rows = build_rows([enrolment("bhi-general"), replace(enrolment(flagged_for_review=True), id="cp-2")], [], [], {},
                      date(2026, 12, 7))  # fmt: skip
    bhi, cocm = csv.DictReader(io.StringIO(rows_csv(rows)))
    assert bhi["Program"] == "General behavioral health integration"
    assert bhi["Status"] == "Active treatment"
    assert "No recent contact" in bhi["Flags"].split("; ")
    assert "Flagged for review" in cocm["Flags"].split("; ")
    for value in (*bhi.values(), *cocm.values()):
        assert (
            value not in ("bhi-general", "cocm-depression", "active-treatment") and "no-contact" not in value
        )


def test_a_later_unlinked_score_is_called_a_different_screening_not_an_earlier_one() -> None:
    source = safety_source(
        date(2026, 11, 10), "PHQ-9 item 9 positive", None, None, [point(2, 5), point(16, 0)]
    )
    assert "of 2026-11-16 (from the EHR), a different screening" in source.explanation

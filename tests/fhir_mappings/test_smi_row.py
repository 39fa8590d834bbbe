"""The whole-person SMI row, rule by rule: each symptom series' baseline, latest and meaningful change; a positive
ASRM as the mania flag; medical flags from the EHR's copy (none when it was never read); social flags from the
registry's answers; the columns' shown text and sort order; the CSV; the social form."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.programs import PROGRAMS
from fhir_mappings.registry.resources import Enrolment, Member
from fhir_mappings.registry.worklist import build_rows, filter_rows, rows_csv, sort_rows
from fhir_mappings.screening.history import ScorePoint
from fhir_mappings.smi.row import whole_person
from fhir_mappings.smi.social import SOCIAL, Answered, parse_form

from .test_smi_medical import bp_panel, obs, order

TODAY = date(2026, 11, 25)
ISS = "https://ehr.example.org/fhir"
START = TODAY - timedelta(days=120)
PLAN = PROGRAMS["cocm-smi"].whole_person
assert PLAN is not None


def point(series: str, days_ago: int, score: int, patient: str = "p1") -> ScorePoint:
    when = datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC)
    return ScorePoint(series, when, score, "Tandem", "x", resource_id=f"{patient}-{series}-{days_ago}")


def answered(domain: str, code: str, days_ago: int) -> Answered:
    found = SOCIAL.domain(domain)
    assert found is not None
    answer = found.answer(code)
    assert answer is not None
    return Answered(domain, answer, TODAY - timedelta(days=days_ago))


@pytest.mark.parametrize(
    ("series", "scores", "latest", "verdict", "positive"),
    [
        ("WHO-5", [(120, 32), (5, 56)], 56, "improved", False),  # +24 points, 10 is meaningful
        ("WHO-5", [(120, 40), (5, 48)], 48, "no meaningful change", True),  # < 50: poor well-being
        ("WHO-5", [(120, 60), (5, 44)], 44, "worsened", True),
        # A 20 % drop is a response, measured above the lowest possible total of 18 (bprs.scoring.json
        # change.convention "corrected"); BPRS has no cutoff.
        ("BPRS", [(118, 50), (5, 40)], 40, "improved", None),
        ("BPRS", [(118, 50), (5, 43)], 43, "improved", None),  # 7 of 32 above 18: 22 % (raw: only 14 %)
        ("BPRS", [(118, 50), (5, 44)], 44, "no meaningful change", None),  # 6 of 32: 19 %
        ("ASRM", [(110, 2), (3, 6)], 6, None, True),  # ≥ 6: probable mania; no change rule
        ("ASRM", [(110, 2), (3, 5)], 5, None, False),
        ("PHQ-9", [(200, 20)], None, None, None),  # before the baseline window: not this enrolment's
        ("DLA-20", [(100, 38)], 38, None, None),  # one score: no change yet
    ],
)
def test_symptom_series_latest_change_and_cutoff(
    series: str, scores: list[tuple[int, int]], latest: int | None, verdict: str | None, positive: bool | None
) -> None:
    points = [point(series, days, score) for days, score in scores]
    view = whole_person(PLAN, points, START, TODAY)
    trend = view.symptom(series)
    assert trend is not None
    assert (trend.latest, trend.verdict, trend.positive) == (latest, verdict, positive)


def test_a_positive_asrm_is_the_mania_flag_and_only_the_latest_counts() -> None:
    assert "mania" in whole_person(PLAN, [point("ASRM", 3, 9)], START, TODAY).flags
    settled = [point("ASRM", 40, 9), point("ASRM", 3, 2)]
    assert "mania" not in whole_person(PLAN, settled, START, TODAY).flags


READ_AT = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("medical", "flags", "row_flag"),
    [
        (None, (), False),  # never read from the EHR: no verdict, not "fine"
        (([bp_panel(TODAY, 150, 95)], [], READ_AT), ("bp-out-of-target",), True),
        (([bp_panel(TODAY, 120, 78), obs("4548-4", TODAY, 6.1, "%")], [], READ_AT), (), False),
        (([obs("29463-7", TODAY - timedelta(days=100), 80, "kg"), obs("29463-7", TODAY, 86, "kg")],
          [order("olanzapine 10 MG Oral Tablet", TODAY - timedelta(days=100))], READ_AT),
         ("weight-gain", "no-glycaemia-12m", "no-lipids-12m", "monitoring-overdue"), True),
    ],
)  # fmt: skip
def test_medical_flags_come_from_the_ehrs_copy(medical: Any, flags: tuple[str, ...], row_flag: bool) -> None:
    view = whole_person(PLAN, [], START, TODAY, medical=medical)
    assert view.medical_flags == flags
    assert ("medical" in view.flags) is row_flag
    assert view.medical_read_at == (READ_AT if medical else None)


@pytest.mark.parametrize(
    ("answers", "changes", "social_flags", "due"),
    [
        ([], {}, (), True),  # never asked: due
        ([answered("housing", "housed", 121), answered("housing", "unhoused", 30), answered("housing", "housed", 5)],
         {"housing": "kept"}, (), False),  # lost and regained: housed now as at enrolment
        ([answered("housing", "housed", 121), answered("housing", "unhoused", 5)],
         {"housing": "lost"}, ("social-housing",), False),
        ([answered("employment", "seeking", 121), answered("employment", "part-time", 5)],
         {"employment": "gained"}, (), False),
        ([answered("justice", "no", 121), answered("justice", "yes", 100)], {"justice": "lost"},
         ("social-justice",), True),  # last asked 100 days ago: the 90-day cadence is due
        ([answered("connection", "lt-1", 121), answered("connection", "lt-1", 5)], {"connection": "still not met"},
         ("social-connection",), False),
    ],
)  # fmt: skip
def test_social_status_now_against_enrolment(answers: list[Answered], changes: dict[str, str],
                                             social_flags: tuple[str, ...], due: bool) -> None:  # fmt: skip
    view = whole_person(PLAN, [], START, TODAY, answers=answers)
    for domain, change in changes.items():
        status = view.status(domain)
        assert status is not None and status.change == change, domain
    assert view.social_flags == social_flags
    assert ("social" in view.flags) is bool(social_flags)
    assert view.social_due is due


def _enrolment(pid: str, program: str = "cocm-smi") -> Enrolment:
    return Enrolment(f"cp-{pid}", ISS, pid, f"Patient {pid}", program, "active-treatment", START,
                     team={"care-manager": Member("Practitioner/cm-3", "Rosa Delgado")}, consent_given=True)  # fmt: skip


def _rows() -> list[Any]:
    keys = {pid: PatientKey(ISS, pid) for pid in ("a", "b", "c")}
    scores = {keys["a"]: [point("ASRM", 3, 9, "a"), point("PHQ-9", 118, 12, "a")],
              keys["b"]: [point("WHO-5", 118, 32, "b"), point("WHO-5", 3, 60, "b")]}  # fmt: skip
    medical = {keys["a"]: ([bp_panel(TODAY, 150, 95), obs("4548-4", TODAY, 8.6, "%")], [], READ_AT),
               keys["b"]: ([bp_panel(TODAY, 118, 70), obs("4548-4", TODAY, 5.5, "%")], [], READ_AT)}  # fmt: skip
    social = {keys["b"]: [answered("housing", "housed", 5)], keys["c"]: [answered("housing", "unhoused", 5)]}
    enrolments = [_enrolment("a"), _enrolment("b"), _enrolment("c"), _enrolment("d", "cocm-depression")]
    return build_rows(enrolments, [], [], scores, TODAY, medical=medical, social=social)


def test_rows_of_the_smi_program_carry_the_whole_person_and_others_do_not() -> None:
    rows = {r.enrolment.patient_id: r for r in _rows()}
    assert rows["d"].whole is None
    # by urgency
    assert rows["a"].flags == ("mania", "not-improving", "first-review-overdue", "medical", "no-contact")
    assert "social" in rows["c"].flags and rows["c"].whole is not None and rows["c"].whole.medical is None
    assert rows["a"].display_value("bp") == "150/95" and rows["a"].display_value("hba1c") == "8.6"
    assert rows["b"].display_value("symptoms") == "WHO-5 60"
    assert rows["c"].display_value("housing").startswith("Does not have housing")
    assert rows["d"].display_value("bp") == ""


def test_whole_person_columns_sort_and_filter_by_what_they_show() -> None:
    rows = _rows()
    by_hba1c = [r.enrolment.patient_id for r in sort_rows(rows, "hba1c", descending=True)]
    assert by_hba1c[:2] == ["a", "b"]  # the highest first; rows without a reading after
    assert [r.enrolment.patient_id for r in sort_rows(rows, "hba1c")][2:] == [
        "b",
        "a",
    ]  # missing sorts lowest
    answered_first = [
        r.enrolment.patient_id for r in sort_rows(rows, "housing") if r.display_value("housing")
    ]
    assert answered_first == ["c", "b"]  # not housed before housed; unknown sorts lowest
    assert [r.enrolment.patient_id for r in filter_rows(rows, column="hba1c", value=">=8")] == ["a"]
    assert [r.enrolment.patient_id for r in filter_rows(rows, column="medical", value="BP at or above")] == [
        "a"
    ]
    assert [r.enrolment.patient_id for r in filter_rows(rows, flag="mania")] == ["a"]


def test_the_csv_adds_the_whole_person_columns_only_when_a_row_has_them() -> None:
    rows = _rows()
    lines = rows_csv(rows).splitlines()
    assert lines[0].endswith("Social flags,EHR medical data read")
    patient_a = next(line for line in lines if line.startswith("Patient a"))
    # The flags in words, not their keys (issue 28: no raw codes in a spreadsheet a person opens).
    assert "150/95" in patient_a and "BP at or above 140/90; HbA1c 8 % or more" in patient_a
    assert "bp-out-of-target" not in patient_a
    plain = rows_csv([r for r in rows if r.whole is None]).splitlines()[0]
    assert "Housing" not in plain
    # When the EHR was read: the site's local time without an offset (issue 28: no UTC in a spreadsheet).
    chicago = rows_csv(rows, ZoneInfo("America/Chicago")).splitlines()
    a = next(line for line in chicago if line.startswith("Patient a"))
    assert a.endswith(",2026-11-19 18:00") and "+00:00" not in a and "T00:00" not in a


@pytest.mark.parametrize(
    ("form", "problem", "answers"),
    [
        ({"social_day": "2026-11-20", "social-housing": "housed"}, None, [("housing", "housed")]),
        ({"social-housing": "housed", "social-justice": "", "social-connection": "3-5"}, None,
         [("housing", "housed"), ("connection", "3-5")]),  # blank: not asked; no day: today
        ({"social_day": "2026-11-26", "social-housing": "housed"}, "cannot be in the future", None),
        ({"social_day": "2026-06-01", "social-housing": "housed"}, "from 30 days before it began", None),
        ({"social_day": "20-11-2026", "social-housing": "housed"}, "as a date", None),
        ({"social-housing": "castle"}, "Housing: 'castle' is not one of its answers", None),
        ({"social-housing": ""}, "Choose at least one answer", None),
    ],
)  # fmt: skip
def test_the_social_form(
    form: dict[str, str], problem: str | None, answers: list[tuple[str, str]] | None
) -> None:
    entry, found = parse_form(form, TODAY, START)
    if problem:
        assert entry is None and found is not None and problem in found
        return
    assert found is None and entry is not None
    assert [(d.key, a.code) for d, a in entry.answers] == answers
    assert entry.day == (date.fromisoformat(form["social_day"]) if "social_day" in form else TODAY)

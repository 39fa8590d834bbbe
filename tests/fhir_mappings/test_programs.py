"""Program definitions: the shipped files load and are checked; enrolment, worklist, billing, review and the due
list follow them (table-driven)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.common.conditions import ConditionRow
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.billing import month_code
from fhir_mappings.registry.programs import (
    DATA_FOLDER,
    PROGRAMS,
    ProgramError,
    load_programs,
    measures_due,
    programs_for_age,
    suggest_program,
)
from fhir_mappings.registry.resources import Contact, Enrolment, Member
from fhir_mappings.registry.worklist import build_rows, columns_for, review_priority
from fhir_mappings.screening.history import ScorePoint

ISS = "https://ehr.example.org/fhir"
TODAY = date(2026, 11, 22)


def test_the_programs_of_today_are_files() -> None:
    assert list(PROGRAMS) == ["cocm-smi", "cocm-depression", "cocm-anxiety", "bhi-general"]
    assert {p.billing for p in PROGRAMS.values()} == {"cocm", "bhi"}
    assert not PROGRAMS["bhi-general"].case_review and "psychiatric-consultant" not in PROGRAMS[
        "bhi-general"].care_team_roles  # fmt: skip


def _broken(tmp_path: Path, change: Any) -> Path:
    for path in DATA_FOLDER.glob("*.json"):
        shutil.copy(path, tmp_path)
    target = tmp_path / "cocm-depression.json"
    data = json.loads(target.read_text())
    change(data)
    target.write_text(json.dumps(data))
    return tmp_path


@pytest.mark.parametrize(
    ("change", "message"),
    [(lambda d: d["measures"][0].update(instrument="phq99"), "unknown instrument 'phq99'"),
     (lambda d: d["outcome"].update(series="HbA1c"), "outcome series 'HbA1c' is not a score series"),
     (lambda d: d["flags"].append("sad"), "unknown flag(s): sad"),
     (lambda d: d.update(billing="fee-for-service"), "billing must be one of"),
     (lambda d: d["care_team_roles"].remove("psychiatric-consultant"), "case review needs a psychiatric consultant"),
     (lambda d: d["worklist_columns"].append("waist_hip"), "unknown worklist column(s): waist_hip"),
     (lambda d: d["worklist_columns"].append("bmi"), "column(s) bmi need whole_person"),
     (lambda d: d.update(whole_person={"symptoms": ["PHQ-9"], "medical": True}) or d["worklist_columns"].append(
         "housing"), "column(s) housing need whole_person"),
     (lambda d: d.update(whole_person={"symptoms": ["PHQ-12"]}), "whole_person: symptoms must name score series"),
     (lambda d: d.update(whole_person={"symptoms": ["PHQ-9"], "labs": True}), "whole_person: unknown field(s) labs"),
     (lambda d: d.update(default_columns=["bmi"]), "default_columns must be among"),
     (lambda d: d.update(tier=2), "unknown field(s): tier"),
     (lambda d: d["eligibility"].update(default=False), "exactly one program must be the default"),
     (lambda d: d.pop("outcome"), "missing or malformed 'outcome'"),
     (lambda d: d["eligibility"].update(ages_months=[24, 12]), "ages_months must be [lowest, highest]"),
     (lambda d: d["eligibility"].update(ages_months=[-1, None]), "ages_months must be [lowest, highest]"),
     (lambda d: d["eligibility"].update(ages_months=12), "ages_months must be [lowest, highest]"),
     (lambda d: d["eligibility"].update(diagnoses={"icd10cm_prefixes": []}), "eligibility.diagnoses lists")],
)  # fmt: skip
def test_a_broken_program_file_is_refused_naming_it(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ProgramError) as raised:
        load_programs(_broken(tmp_path, change))
    assert message in str(raised.value)


def _point(series: str, score: int, days_ago: int) -> ScorePoint:
    when = datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC)
    return ScorePoint(series, when, score, "EHR", "x")


def _condition(group: str, code: str | None = None, status: str = "active") -> ConditionRow:
    return ConditionRow(group, group, status, None, code)


@pytest.mark.parametrize(
    ("months", "expected"),
    [(None, "cocm-depression"),  # an unknown age rules nothing out
     (9, None), (36, None), (143, None),  # no adult program for an infant or a child under 12
     (144, "cocm-depression"), (216, "cocm-depression"), (900, "cocm-depression")],
)  # fmt: skip
def test_programs_are_offered_only_for_the_ages_they_are_for(
    months: int | None, expected: str | None
) -> None:
    program, _ = suggest_program([_point("PHQ-9", 14, 3)], [], months)
    assert program == expected
    adult = months is None or months >= 216
    teen = set(PROGRAMS) - {"cocm-smi"}  # the SMI program is for adults
    assert set(programs_for_age(months)) == (set(PROGRAMS) if adult else teen if expected else set())


@pytest.mark.parametrize(
    ("history", "conditions", "expected", "cautioned"),
    [([], [], "cocm-depression", False),
     ([_point("PHQ-9", 14, 3)], [], "cocm-depression", False),
     ([_point("GAD-7", 15, 3), _point("PHQ-9", 9, 3)], [], "cocm-anxiety", False),
     ([_point("GAD-7", 12, 3), _point("PHQ-9", 12, 3)], [], "cocm-depression", False),
     ([], ["anxiety"], "cocm-anxiety", False),
     ([], ["anxiety", "depression"], "cocm-depression", False),
     ([_point("PHQ-9", 5, 3)], ["anxiety"], "cocm-depression", False),
     ([_point("PHQ-9", 14, 3)], ["bipolar disorder"], "cocm-depression", True)],
)  # fmt: skip
def test_suggested_program(
    history: list[ScorePoint], conditions: list[str], expected: str, cautioned: bool
) -> None:
    program, cautions = suggest_program(history, [_condition(c) for c in conditions])
    assert program == expected and bool(cautions) is cautioned


@pytest.mark.parametrize(
    ("condition", "expected"),
    [(_condition("psychotic disorder", "F20.9"), "cocm-smi"),  # schizophrenia
     (_condition("psychotic disorder", "F25.0"), "cocm-smi"),  # schizoaffective
     (_condition("bipolar disorder", "F31.81"), "cocm-smi"),
     (_condition("bipolar disorder", "13746004"), "cocm-smi"),  # SNOMED CT
     (_condition("depression", "F33.1"), "cocm-smi"),  # recurrent major depression
     (_condition("depression", "F32.2"), "cocm-smi"),  # severe single episode
     (_condition("depression", "F32.1"), "cocm-depression"),  # moderate single episode: depression CoCM
     (_condition("psychotic disorder", "F20.9", "remission"), "cocm-depression"),  # not active
     (_condition("psychotic disorder", "2020"), "cocm-depression")],  # a number is not an ICD-10-CM code
)  # fmt: skip
def test_serious_mental_illness_is_eligible_by_diagnosis(condition: ConditionRow, expected: str) -> None:
    program, _ = suggest_program([_point("PHQ-9", 14, 3)], [condition], 40 * 12)
    assert program == expected
    # Not for a teenager, whatever the diagnosis (the SMI program is for adults).
    assert suggest_program([_point("PHQ-9", 14, 3)], [condition], 15 * 12)[0] != "cocm-smi"


@pytest.mark.parametrize(
    ("program", "history", "conditions", "age", "expected"),
    [("cocm-depression", [_point("PHQ-9", 14, 30)], [], 40, ["phq9"]),
     ("cocm-depression", [_point("PHQ-9", 14, 10)], [], 40, []),
     ("cocm-depression", [], [], 15, ["phq9-teen"]),
     ("cocm-depression", [_point("PHQ-9", 14, 10)], ["anxiety"], 40, ["gad7"]),
     ("cocm-anxiety", [_point("PHQ-9", 9, 3), _point("GAD-7", 12, 29)], [], 40, ["gad7"]),
     ("bhi-general", [_point("PHQ-9", 9, 40)], [], 40, ["phq9"])],
)  # fmt: skip
def test_measures_come_due_on_the_programs_cadence(program: str, history: list[ScorePoint], conditions: list[str],
                                                   age: int, expected: list[str]) -> None:  # fmt: skip
    due = measures_due(PROGRAMS[program], history, set(conditions), age, TODAY)
    assert [d.instrument for d in due] == expected
    assert all(PROGRAMS[program].title in d.reason for d in due)


def _enrolment(program: str) -> Enrolment:
    return Enrolment(id=f"cp-{program}", iss=ISS, patient_id="p1", patient_name="Ana Rivera", program=program,
                     phase="active-treatment", start=TODAY - timedelta(weeks=12),
                     team={"care-manager": Member("Practitioner/cm-1", "Teresa Lindqvist")}, consent_given=True,
                     consent_date=TODAY - timedelta(weeks=12), consent_method="verbal")  # fmt: skip


@pytest.mark.parametrize(
    ("program", "minutes", "code"),
    [("cocm-depression", 40, "99493"), ("cocm-anxiety", 20, "G2214"), ("bhi-general", 25, "99484"),
     ("bhi-general", 15, None)],
)  # fmt: skip
def test_billing_follows_the_programs_model(program: str, minutes: int, code: str | None) -> None:
    e = _enrolment(program)
    contact = Contact("c1", e.id, TODAY, minutes, "phone", "care-manager", None)
    assert month_code(e, [contact], TODAY).code == code


def test_worklist_flags_review_and_columns_follow_the_program() -> None:
    enrolments = [_enrolment("cocm-depression"), _enrolment("bhi-general")]
    key = PatientKey(ISS, "p1")
    scores = {key: [_point("PHQ-9", 16, 80), _point("PHQ-9", 14, 3)]}
    rows = build_rows(enrolments, [], [], scores, TODAY)
    flags = {row.enrolment.program: set(row.flags) for row in rows}
    # 12 weeks, never reviewed: CoCM's first review is overdue; BHI (no case review) is past "new" (4 weeks).
    assert flags["cocm-depression"] == {"not-improving", "no-contact", "first-review-overdue"}
    assert flags["bhi-general"] == {"not-improving", "no-contact"}
    assert [r.enrolment.program for r in review_priority(rows)] == ["cocm-depression"]
    assert "consultant" not in columns_for(["bhi-general"]) and "consultant" in columns_for(
        ["bhi-general", "cocm-anxiety"]
    )


def test_the_bipolar_caution_is_part_of_the_smi_program() -> None:
    program, cautions = suggest_program(
        [_point("PHQ-9", 14, 3)], [_condition("bipolar disorder", "F31.81")], 480
    )
    assert program == "cocm-smi" and len(cautions) == 1 and "ASRM" in cautions[0]
    _, schizophrenia = suggest_program([], [_condition("psychotic disorder", "F20.9")], 480)
    assert schizophrenia == []  # the caution is for bipolar disorder only
    # Depression CoCM still cautions, and points to the SMI program.
    _, depression = suggest_program([_point("PHQ-9", 14, 3)], [_condition("bipolar disorder")], 480)
    assert depression and "serious mental illness program" in depression[0]

"""Medical outcomes for SMI (smi.md §2), rule by rule: blood pressure from panels or pairs against < 140/90,
HbA1c against < 8 %, weight gain ≥ 5 % from the baseline at the antipsychotic start, smoking status, antipsychotics
by ingredient, the metabolic monitoring schedule (weight at 0/4/8/12 weeks then quarterly; glucose or HbA1c and
lipids at 0/12 weeks then yearly) and first-principles gap flags."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from fhir_mappings.smi.medical import MEDICAL, antipsychotics, readings, smoking_status, summarise

TODAY = date(2026, 11, 25)


def obs(code: str, day: date, value: float | None = None, unit: str = "", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "status": "final", "effectiveDateTime": day.isoformat(),
                                "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, **extra}  # fmt: skip
    if value is not None:
        resource["valueQuantity"] = {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
    return resource


def bp_panel(day: date, systolic: float, diastolic: float) -> dict[str, Any]:
    return obs("85354-9", day, component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": systolic}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": diastolic}},
    ])  # fmt: skip


def order(text: str, authored: date, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": status, "intent": "order",
            "authoredOn": authored.isoformat(), "medicationCodeableConcept": {"text": text}}  # fmt: skip


@pytest.mark.parametrize(
    ("observations", "expected", "controlled"),
    [
        ([bp_panel(TODAY, 128, 82)], "128/82", True),
        ([bp_panel(TODAY, 140, 82)], "140/82", False),  # < 140 is the target
        ([bp_panel(TODAY, 132, 90)], "132/90", False),
        (
            [obs("8480-6", TODAY, 150, "mm[Hg]"), obs("8462-4", TODAY, 95, "mm[Hg]")],
            "150/95",
            False,
        ),  # a pair
        ([bp_panel(TODAY - timedelta(days=30), 150, 95), bp_panel(TODAY, 120, 80)], "120/80", True),  # latest
        ([obs("8480-6", TODAY, 150, "mm[Hg]")], None, None),  # systolic alone is no blood pressure
        ([bp_panel(TODAY, 900, 80)], None, None),  # implausible
    ],
)
def test_blood_pressure_against_its_target(
    observations: list[dict[str, Any]], expected: str | None, controlled: bool | None
) -> None:
    summary = summarise(observations, [], TODAY)
    assert (summary.bp.text if summary.bp else None) == expected
    assert summary.bp_controlled is controlled
    assert ("bp-out-of-target" in summary.flags) is (controlled is False)


@pytest.mark.parametrize(
    ("value", "flagged", "poor"),
    [(6.9, False, False), (7.99, False, False), (8.0, True, False), (9.0, True, False), (9.1, True, True)],
)
def test_hba1c_target(value: float, flagged: bool, poor: bool) -> None:
    summary = summarise([obs("4548-4", TODAY, value, "%")], [], TODAY)
    assert ("hba1c-out-of-target" in summary.flags) is flagged and summary.hba1c_poor_control is poor


START = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("weights", "change", "flagged"),
    [
        ([(START - timedelta(days=10), 80.0), (TODAY, 84.0)], 5.0, True),  # exactly 5 %
        ([(START - timedelta(days=10), 80.0), (TODAY, 83.9)], 4.9, False),
        ([(START - timedelta(days=200), 70.0), (START + timedelta(days=5), 80.0), (TODAY, 83.0)], 3.8, False),
        ([(START - timedelta(days=10), 176.0, "[lb_av]"), (TODAY, 84.0)], 5.2, True),  # pounds converted
        ([(TODAY, 84.0)], None, False),  # one weight: no change
    ],
)
def test_weight_gain_from_the_baseline_at_the_antipsychotic_start(
    weights: list[tuple[Any, ...]], change: float | None, flagged: bool
) -> None:
    observations = [obs("29463-7", w[0], w[1], w[2] if len(w) > 2 else "kg") for w in weights]
    summary = summarise(observations, [order("OLANZapine 10 MG Oral Tablet", START)], TODAY)
    assert summary.weight_change_pct == change
    assert ("weight-gain" in summary.flags) is flagged


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ({"coding": [{"system": "http://snomed.info/sct", "code": "449868002"}]}, "current"),
        ({"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]}, "former"),
        ({"coding": [{"system": "http://snomed.info/sct", "code": "266919005"}]}, "never"),
        ({"text": "Current some day smoker"}, "current"),
        ({"text": "Smokes cigars occasionally"}, "Smokes cigars occasionally"),
    ],
)
def test_smoking_status(value: dict[str, Any], status: str) -> None:
    observations = [obs("72166-2", TODAY, valueCodeableConcept=value)]
    assert smoking_status(observations) == status
    assert ("current-smoker" in summarise(observations, [], TODAY).flags) is (status == "current")


def test_antipsychotics_by_ingredient_with_their_start() -> None:
    found = antipsychotics([
        order("risperidone 2 MG Oral Tablet", date(2026, 3, 1), "stopped"),
        order("risperidone 3 MG Oral Tablet", date(2026, 5, 1)),
        order("sertraline 50 MG Oral Tablet", date(2026, 1, 1)),
        order("Quetiapine 100 mg", date(2025, 1, 1), "completed"),
        order("haloperidol", date(2026, 1, 1), "entered-in-error"),
    ])  # fmt: skip
    assert [(a.name, a.start, a.active) for a in found] == [
        ("risperidone", date(2026, 3, 1), True),
        ("quetiapine", date(2025, 1, 1), False),
    ]


@pytest.mark.parametrize(
    ("weighed", "next_due", "overdue"),
    [
        ([], START, True),  # no baseline weight
        ([START], START + timedelta(weeks=4), True),  # baseline only: week 4 long passed
        ([START, START + timedelta(weeks=4), START + timedelta(weeks=8), START + timedelta(weeks=12)],
         START + timedelta(weeks=12, days=91), False),  # quarterly after week 12: due 2 days ago, within grace
        ([START, START + timedelta(weeks=12), TODAY - timedelta(days=20)], TODAY + timedelta(days=71), False),  # cadence from the last weighing
    ],
)  # fmt: skip
def test_weight_monitoring_schedule(weighed: list[date], next_due: date, overdue: bool) -> None:
    observations = [obs("29463-7", day, 80.0, "kg") for day in weighed]
    summary = summarise(observations, [order("aripiprazole 10 MG", START)], TODAY)
    weight = next(m for m in summary.monitoring if m.key == "weight")
    assert weight.next_due == next_due and weight.overdue is overdue
    assert ("monitoring-overdue" in summary.flags) is any(m.overdue for m in summary.monitoring)


def test_gap_flags_only_for_people_on_an_antipsychotic() -> None:
    old_lab = [
        obs("4548-4", TODAY - timedelta(days=400), 6.0, "%"),
        obs("13457-7", TODAY - timedelta(days=30), 90, "mg/dL"),
    ]
    on = summarise(old_lab, [order("clozapine 100 MG", START)], TODAY)
    assert "no-glycaemia-12m" in on.flags and "no-lipids-12m" not in on.flags
    assert [g.label for g in on.gaps] == ["On an antipsychotic, no glucose or HbA1c in 12 months"]
    off = summarise(old_lab, [order("clozapine 100 MG", START, "stopped")], TODAY)
    assert off.gaps == [] and off.monitoring == [] and not off.on_antipsychotic
    recent = summarise([*old_lab, obs("2345-7", TODAY - timedelta(days=10), 99, "mg/dL")],
                       [order("clozapine 100 MG", START)], TODAY)  # fmt: skip
    assert "no-glycaemia-12m" not in recent.flags


def test_odd_resources_are_skipped_and_codes_come_from_the_data_file() -> None:
    found, pressures = readings([{"resourceType": "Observation", "code": True}, obs("29463-7", TODAY, "80", "kg"),
                                 obs("29463-7", TODAY, 80, "stone"), {"status": "final"}, 7])  # fmt: skip
    assert found == [] and pressures == []
    assert (
        "http://loinc.org|4548-4" in MEDICAL.search_codes
        and "http://loinc.org|8480-6" in MEDICAL.search_codes
    )


@pytest.mark.parametrize(
    ("observations", "shown", "change", "flagged"),
    [
        # Targets compare the recorded values, unrounded (medical.json targets; issue 26 §2): a gain of 4.96 % shows
        # as 5.0 % but is not a gain of 5 % or more; 139.6 mmHg shows as 140 but is below the < 140 target.
        ([obs("29463-7", START - timedelta(days=10), 80.0, "kg"), obs("29463-7", TODAY, 83.968, "kg")],
         None, 5.0, False),
        ([obs("29463-7", START - timedelta(days=10), 80.0, "kg"), obs("29463-7", TODAY, 84.0, "kg")],
         None, 5.0, True),
        ([bp_panel(TODAY, 139.6, 82)], "140/82", None, False),
        ([obs("8480-6", TODAY, 128, "mm[Hg]"), obs("8462-4", TODAY, 89.6, "mm[Hg]")], "128/90", None, False),
        ([bp_panel(TODAY, 140.0, 82)], "140/82", None, True),
    ],
)  # fmt: skip
def test_targets_compare_unrounded_values_and_round_only_for_display(
    observations: list[dict[str, Any]], shown: str | None, change: float | None, flagged: bool
) -> None:
    summary = summarise(observations, [order("OLANZapine 10 MG Oral Tablet", START)], TODAY)
    assert summary.weight_change_pct == change
    if shown is not None:
        assert summary.bp is not None and summary.bp.text == shown
        assert ("bp-out-of-target" in summary.flags) is flagged
    else:
        assert ("weight-gain" in summary.flags) is flagged


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        # smi.md §2 [C]: HbA1c 4548-4; LDL 13457-7 (calculated), 18262-6 (direct), 18261-8 (eCQM LDL value set);
        # fasting glucose 1558-6, glucose 2345-7 [C3].
        ("4548-4", "hba1c"), ("13457-7", "ldl"), ("18262-6", "ldl"), ("18261-8", "ldl"), ("1558-6", "glucose"),
        ("2345-7", "glucose"),
        # Common codes added as data and labelled [K] in medical.json (not confirmed in the references).
        ("2089-1", "ldl"), ("17856-6", "hba1c"), ("4549-2", "hba1c"), ("2339-0", "glucose"), ("41653-7", "glucose"),
    ],
)  # fmt: skip
def test_every_common_loinc_code_of_a_lab_is_read(code: str, kind: str) -> None:
    assert MEDICAL.kind_of(obs(code, TODAY, 100.0, "mg/dL")) == kind
    assert f"http://loinc.org|{code}" in MEDICAL.search_codes.split(",")
    # A reading under any of its codes closes the lab's gap (no LDL in 12 months).
    summary = summarise([obs(code, TODAY, 100.0, "mg/dL")], [order("risperidone 1 MG", START)], TODAY)
    gap = {"ldl": "no-lipids-12m", "hba1c": "no-glycaemia-12m", "glucose": "no-glycaemia-12m"}[kind]
    assert gap not in summary.flags

"""HealthySteps instruments scored by their published rules (healthysteps.md §1), table by table: SWYC BPSC, PPSC,
POSI and Milestones with its age-form cutoffs, M-CHAT-R and its Follow-Up, ASQ:SE-2 zones, the AHC HRSN core
questions with their domains and HITS. Also: no licensed wording ships, and the prematurity correction."""

from __future__ import annotations

import json

import pytest

from fhir_mappings.screening.instruments import DATA_FOLDER, INSTRUMENTS
from fhir_mappings.screening.resources import result_flag
from fhir_mappings.screening.scoring import parse_answers, score


def _score(key: str, raw: dict[str, str], age_months: int | None = None):  # type: ignore[no-untyped-def]
    instrument = INSTRUMENTS[key]
    answers, problems = parse_answers(instrument, raw)
    assert not problems, problems
    return score(instrument, answers, age_months=age_months)


def _bpsc(irritability: list[int], inflexibility: list[int], routines: list[int]) -> dict[str, str]:
    values = [*irritability, *inflexibility, *routines]
    return {f"bpsc-{n}": f"a{v}" for n, v in enumerate(values, 1) if v is not None}


@pytest.mark.parametrize(
    ("raw", "positive", "shown"),
    [
        (_bpsc([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]), False, "irritability 0, inflexibility 0"),
        (
            _bpsc([1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]),
            False,
            "irritability 2",
        ),  # 6 in all, no subscale ≥3
        (_bpsc([2, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]), True, "irritability 3"),
        (_bpsc([0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0]), True, "difficulty with routines 3"),
        (_bpsc([2, 2, 2, 2], [2, 2, 2, 2], [2, 2, 2, 2]), True, "irritability 8"),
        ({"bpsc-1": "a2", "bpsc-2": "a1"}, True, "irritability 3"),  # missing items count as 0
        ({"bpsc-1": "a1", "bpsc-5": "a1", "bpsc-9": "a1"}, False, "irritability 1"),
        ({"bpsc-1": "a1"}, None, "inflexibility —"),  # a subscale with nothing answered: incomplete
        ({}, None, "incomplete"),
    ],
)
def test_bpsc_is_positive_at_three_on_any_subscale(
    raw: dict[str, str], positive: bool | None, shown: str
) -> None:
    result = _score("bpsc", raw)
    assert result.positive is positive and shown in result.interpretation
    assert result.total is None  # three subscales, no total


@pytest.mark.parametrize(
    ("key", "total", "positive", "band"),
    [
        ("ppsc", 8, False, "below the cutoff"),
        ("ppsc", 9, True, "at or above the cutoff: needs review"),
        ("posi", 2, False, "low risk"),
        ("posi", 3, True, "at risk for autism: evaluate"),
        ("mchat-rf", 0, False, "low risk"),
        ("mchat-rf", 2, False, "low risk"),
        ("mchat-rf", 3, True, "medium risk"),
        ("mchat-rf", 7, True, "medium risk"),
        ("mchat-rf", 8, True, "high risk"),
        ("mchat-rf", 20, True, "high risk"),
        ("mchat-rf-followup", 1, False, "screen negative"),
        ("mchat-rf-followup", 2, True, "screen positive"),
        ("hits", 10, False, "negative"),
        ("hits", 11, True, "positive: interpersonal violence risk"),
    ],
)
def test_totals_entered_from_the_licensed_form_meet_the_published_cutoffs(key: str, total: int,
                                                                          positive: bool, band: str) -> None:  # fmt: skip
    result = _score(key, {"total": str(total)})
    assert (result.total, result.positive, result.band) == (total, positive, band)


@pytest.mark.parametrize(
    ("total", "advice"),
    [(1, "screen again after the second birthday"), (5, "Do the M-CHAT-R/F Follow-Up"),
     (9, "The Follow-Up may be skipped")],
)  # fmt: skip
def test_mchat_bands_say_what_to_do(total: int, advice: str) -> None:
    assert any(advice in note for note in _score("mchat-rf", {"total": str(total)}).notes)


def test_mchat_risk_answers_are_yes_for_items_2_5_and_12_and_no_for_the_rest() -> None:
    instrument = INSTRUMENTS["mchat-rf"]
    for item in instrument.items:
        number = int(item.link_id.split("-")[1])
        risk = {a.code for a in item.answers if a.score == 1}
        assert risk == ({"yes"} if number in (2, 5, 12) else {"no"}), item.link_id
    assert len(instrument.items) == 20


def test_hits_positive_is_an_unmissable_safety_alert_and_a_negative_is_not() -> None:
    positive = _score("hits", {"total": "14"})
    assert [f.code for f in positive.safety] == ["interpersonal-safety"]
    assert "safety" in positive.safety[0].message
    assert _score("hits", {"total": "9"}).safety == ()


@pytest.mark.parametrize(
    ("total", "age", "positive", "text"),
    [
        # Per month of age (the SWYC scoring table; healthysteps.md §1a [C3]: 9 mo ≤ 8, 12 mo < 9).
        (8, 9, True, "needs review at ≤8 at 9 months"),
        (9, 9, False, "meets expectations"),
        (8, 12, True, "needs review"),
        (9, 12, False, "meets expectations"),
        # Months the reference gives no figure for are site data, never filled in from a neighbouring month.
        (8, 10, None, "No cutoff is set in Tandem for 10 months"),
        (8, 11, None, "No cutoff is set in Tandem for 11 months"),
        (9, 14, None, "No cutoff is set in Tandem for 14 months"),
        (5, 18, None, "No cutoff is set in Tandem for 18 months"),  # not shipped: the site adds it
        (5, None, None, "age unknown"),
    ],
)
def test_swyc_milestones_use_the_age_forms_cutoff_lower_is_worse(total: int, age: int | None,
                                                                 positive: bool | None, text: str) -> None:  # fmt: skip
    result = _score("swyc-milestones", {"total": str(total)}, age_months=age)
    assert result.positive is positive
    assert text in result.interpretation + " ".join(result.notes)


@pytest.mark.parametrize(
    ("zone", "level", "flag"),
    [("asqse-below", "below the monitoring zone", "negative"), ("asqse-monitoring", "monitoring zone", "monitor"),
     ("asqse-above", "above the cutoff: refer", "positive")],
)  # fmt: skip
def test_asq_se2_records_the_score_and_zone_never_items(zone: str, level: str, flag: str) -> None:
    result = _score("asq-se2", {"asqse2-score": "65", "asqse2-zone": zone})
    assert result.risk_level == level and result_flag(result) == flag


@pytest.mark.parametrize(
    ("answers", "positive", "domains"),
    [
        ({"ahc-1": "steady", "ahc-2": "no", "ahc-3": "never", "ahc-4": "never", "ahc-5": "no", "ahc-6": "no"}, False, None),
        ({"ahc-1": "worried", "ahc-2": "no", "ahc-3": "never", "ahc-4": "never", "ahc-5": "no", "ahc-6": "no"}, True, "housing"),
        ({"ahc-1": "steady", "ahc-2": "no", "ahc-3": "sometimes", "ahc-4": "never", "ahc-5": "yes", "ahc-6": "no"}, True,
         "food, transportation"),
        ({"ahc-1": "steady", "ahc-2": "no", "ahc-3": "never", "ahc-4": "never", "ahc-5": "no", "ahc-6": "already-shut-off"},
         True, "utilities"),
        ({"ahc-1": "steady"}, None, None),  # incomplete: no verdict
    ],
)  # fmt: skip
def test_ahc_hrsn_names_each_positive_domain(answers: dict[str, str], positive: bool | None,
                                             domains: str | None) -> None:  # fmt: skip
    result = _score("ahc-hrsn", answers)
    assert result.positive is positive
    if domains:
        assert f"Positive: {domains}." in result.notes


def test_no_licensed_wording_ships() -> None:
    """Site-supplied skeletons have no item text or answer displays; score-only forms ask only for scores."""
    for instrument in INSTRUMENTS.values():
        if instrument.licence_class == "bundled":
            continue
        shipped = json.loads((DATA_FOLDER / f"{instrument.key}.questionnaire.json").read_text())
        for item in shipped["item"]:
            if instrument.licence_class == "site-supplied":
                assert "text" not in item, (instrument.key, item["linkId"])
                assert all("display" not in o["valueCoding"] or o["valueCoding"]["display"] in ("Yes", "No", "Pass", "Fail",
                           "Not a risk answer", "A risk answer on the form") for o in item.get("answerOption", [])), instrument.key  # fmt: skip
            else:  # score-only: numbers and zones
                assert item["type"] == "integer" or "zone" in item["linkId"], (instrument.key, item["linkId"])
        assert instrument.copyright and instrument.questionnaire["copyright"] == instrument.copyright

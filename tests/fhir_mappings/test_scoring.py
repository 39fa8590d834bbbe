"""Scoring, table-driven against each instrument's published rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_mappings.screening.instruments import DATA_FOLDER, INSTRUMENTS, Instrument, load_catalogue
from fhir_mappings.screening.scoring import parse_answers, score
from sandbox import SITE_INSTRUMENTS

PHQ9, PHQ9_TEEN, PHQ2, GAD7 = (INSTRUMENTS[k] for k in ("phq9", "phq9-teen", "phq2", "gad7"))
AUDIT_C, HUNGER_VITAL_SIGN, CSSRS = (
    INSTRUMENTS[k] for k in ("audit-c", "hunger-vital-sign", "cssrs-screener")
)
#: The shipped EPDS: a skeleton without wording. Item-by-item scoring is tested with the demo's placeholder site copy.
EPDS_SKELETON = INSTRUMENTS["epds"]
EPDS = load_catalogue(SITE_INSTRUMENTS).instruments["epds"]


def by_scores(
    instrument: Instrument, scores: list[int | None], extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Answer codes for the given item scores (None = unanswered), in item order."""
    raw = {}
    for item, value in zip(instrument.scored_items, scores, strict=False):
        if value is not None:
            raw[item.link_id] = next(a.code for a in item.answers if a.score == value)
    return {**raw, **(extra or {})}


def run(instrument: Instrument, scores: list[int | None], sex: str | None = None):  # type: ignore[no-untyped-def]
    answers, errors = parse_answers(instrument, by_scores(instrument, scores))
    assert errors == []
    return score(instrument, answers, sex=sex)


@pytest.mark.parametrize(
    ("scores", "total", "band", "positive", "safety"),
    [
        ([0] * 9, 0, "minimal", False, False),
        ([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal", False, False),
        ([1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "mild", False, False),
        ([1, 1, 1, 1, 1, 1, 1, 1, 1], 9, "mild", False, True),
        ([2, 2, 2, 2, 1, 1, 0, 0, 0], 10, "moderate", True, False),
        ([2, 2, 2, 2, 2, 2, 2, 0, 0], 14, "moderate", True, False),
        ([3, 3, 3, 2, 2, 2, 0, 0, 0], 15, "moderately severe", True, False),
        ([3, 3, 3, 3, 3, 2, 2, 0, 0], 19, "moderately severe", True, False),
        ([3, 3, 3, 3, 3, 3, 2, 0, 0], 20, "severe", True, False),
        ([3] * 9, 27, "severe", True, True),
        ([0, 0, 0, 0, 0, 0, 0, 0, 1], 1, "minimal", False, True),  # item 9 flags whatever the total
    ],
)
def test_phq9(scores: list[int], total: int, band: str, positive: bool, safety: bool) -> None:
    for instrument in (PHQ9, PHQ9_TEEN):
        result = run(instrument, scores)
        assert (result.total, result.band, result.positive, result.has_safety_flag) == (
            total,
            band,
            positive,
            safety,
        )
        assert not result.prorated


@pytest.mark.parametrize(
    ("scores", "total", "prorated"),
    [
        ([2, 2, 2, 2, 2, 2, 2, None, 0], 16, True),  # 14 points over 8 items × 9 = 15.75, rounded half up
        ([1, 1, 1, 1, 1, 1, 1, None, None], 9, True),
        ([1, 1, 1, 1, 1, 1, None, None, None], None, False),
    ],
)
def test_phq9_missing_items_are_prorated_up_to_two(
    scores: list[int | None], total: int | None, prorated: bool
) -> None:
    result = run(PHQ9, scores)
    assert (result.total, result.prorated) == (total, prorated)
    assert len(result.missing) == scores.count(None)
    if result.total is None:
        assert "no total" in result.interpretation


def test_unanswered_item_9_is_never_read_as_negative() -> None:
    result = run(PHQ9, [1, 1, 1, 1, 1, 1, 1, 1, None])
    assert not result.has_safety_flag
    assert any("not answered: ask it today" in note for note in result.notes)


@pytest.mark.parametrize(
    ("scores", "total", "positive"),
    [([0, 0], 0, False), ([1, 1], 2, False), ([2, 1], 3, True), ([3, 3], 6, True)],
)
def test_phq2(scores: list[int], total: int, positive: bool) -> None:
    result = run(PHQ2, scores)
    assert (result.total, result.positive) == (total, positive)
    assert run(PHQ2, [3, None]).total is None  # both items are needed


@pytest.mark.parametrize(
    ("scores", "total", "band", "positive"),
    [([0] * 7, 0, "minimal", False), ([1, 1, 1, 1, 1, 0, 0], 5, "mild", False),
     ([2, 2, 2, 2, 1, 1, 0], 10, "moderate", True), ([3, 3, 3, 3, 3, 0, 0], 15, "severe", True),
     ([3] * 7, 21, "severe", True)],
)  # fmt: skip
def test_gad7(scores: list[int], total: int, band: str, positive: bool) -> None:
    result = run(GAD7, scores)
    assert (result.total, result.band, result.positive, result.has_safety_flag) == (
        total,
        band,
        positive,
        False,
    )


def test_epds_reverse_scored_items() -> None:
    first_answers = {item.link_id: item.answers[0].code for item in EPDS.items}
    answers, errors = parse_answers(EPDS, first_answers)
    assert errors == []
    result = score(EPDS, answers)
    # Items 1, 2, 4 score 0 for the first answer; items 3, 5-10 score 3.
    assert (
        result.item_scores["epds-1"] == 0
        and result.item_scores["epds-3"] == 3
        and result.item_scores["epds-4"] == 0
    )
    assert result.total == 21 and result.band == "probable depression" and result.positive
    assert result.has_safety_flag and result.safety[0].link_id == "epds-10"


@pytest.mark.parametrize(
    ("total", "band", "positive"),
    [(9, "depression unlikely", False), (10, "possible depression", True), (12, "possible depression", True),
     (13, "probable depression", True), (30, "probable depression", True)],
)  # fmt: skip
def test_epds_bands(total: int, band: str, positive: bool) -> None:
    scores = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    scores += [0] * (10 - len(scores))
    scores[9], scores[0] = scores[0], scores[9]  # keep item 10 at 0 where possible
    result = run(EPDS, scores)
    assert (result.total, result.band, result.positive) == (total, band, positive)
    assert result.has_safety_flag is (scores[9] > 0)


def test_epds_needs_every_item() -> None:
    assert run(EPDS, [1] * 9 + [None]).total is None


@pytest.mark.parametrize(
    ("scores", "sex", "positive"),
    [([1, 1, 1], "male", False), ([2, 1, 1], "male", True), ([1, 1, 1], "female", True), ([1, 1, 0], "female", False),
     ([1, 1, 1], None, True), ([4, 4, 4], "male", True)],
)  # fmt: skip
def test_audit_c_cutoff_by_sex(scores: list[int], sex: str | None, positive: bool) -> None:
    result = run(AUDIT_C, scores, sex=sex)
    assert result.total == sum(scores) and result.positive is positive


@pytest.mark.parametrize(
    ("scores", "risk"), [([0, 0], "no risk"), ([1, 0], "at risk"), ([0, 2], "at risk"), ([2, 2], "at risk")]
)
def test_hunger_vital_sign(scores: list[int], risk: str) -> None:
    result = run(HUNGER_VITAL_SIGN, scores)
    assert result.risk_level == risk and result.positive is (risk == "at risk")
    assert run(HUNGER_VITAL_SIGN, [None, 0]).risk_level is None


YES, NO = "LA33-6", "LA32-8"


@pytest.mark.parametrize(
    ("answers", "risk", "safety"),
    [
        ({"cssrs-1": NO, "cssrs-2": NO, "cssrs-6": "no"}, "none", False),
        ({"cssrs-1": YES, "cssrs-2": NO, "cssrs-6": "no"}, "low", False),
        (
            {"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": NO, "cssrs-4": NO, "cssrs-5": NO, "cssrs-6": "no"},
            "low",
            False,
        ),
        (
            {"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": YES, "cssrs-4": NO, "cssrs-5": NO, "cssrs-6": "no"},
            "moderate",
            True,
        ),
        ({"cssrs-1": NO, "cssrs-2": NO, "cssrs-6": "yes-lifetime"}, "moderate", True),
        (
            {"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": YES, "cssrs-4": YES, "cssrs-5": NO, "cssrs-6": "no"},
            "high",
            True,
        ),
        (
            {"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": YES, "cssrs-4": NO, "cssrs-5": YES, "cssrs-6": "no"},
            "high",
            True,
        ),
        ({"cssrs-1": NO, "cssrs-2": NO, "cssrs-6": "yes-3-months"}, "high", True),
        (
            {"cssrs-1": YES, "cssrs-2": YES, "cssrs-4": YES},
            "high",
            True,
        ),  # incomplete, but high is never delayed
        # The highest level any answered question reaches; a blank never lowers it (issue: Q3 yes, Q4 blank
        # was "incomplete" with no alert).
        ({"cssrs-1": YES, "cssrs-2": YES}, "low", False),
        ({"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": YES}, "moderate", True),
        ({"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": YES, "cssrs-6": "no"}, "moderate", True),
        ({"cssrs-2": YES, "cssrs-3": YES, "cssrs-5": NO}, "moderate", True),
        ({"cssrs-6": "yes-lifetime"}, "moderate", True),
        ({"cssrs-6": "yes-3-months"}, "high", True),
        ({"cssrs-1": YES}, "low", False),
        ({"cssrs-1": NO, "cssrs-2": NO}, None, False),  # nothing positive, question 6 not asked: no level
        ({}, None, False),
    ],
)
def test_cssrs_risk_levels(answers: dict[str, str], risk: str | None, safety: bool) -> None:
    parsed, errors = parse_answers(CSSRS, answers)
    assert errors == []
    result = score(CSSRS, parsed)
    assert result.risk_level == risk and result.has_safety_flag is safety
    if result.missing:
        assert "Ask" in result.notes[0] and (risk is None or "at least" in result.interpretation)


@pytest.mark.parametrize(
    ("instrument", "answers", "flagged"),
    [
        # Every instrument's safety item counts however many other items are blank.
        (PHQ9, {"phq9-9": "LA6569-3"}, True),
        (PHQ9, {"phq9-1": "LA6568-5", "phq9-9": "LA6570-1"}, True),
        (PHQ9, {"phq9-1": "LA6568-5", "phq9-9": "LA6568-5"}, False),
        (EPDS, {"epds-10": next(a.code for a in EPDS.item("epds-10").answers if a.score >= 1)}, True),  # type: ignore[union-attr]
        (EPDS, {"epds-10": next(a.code for a in EPDS.item("epds-10").answers if a.score == 0)}, False),  # type: ignore[union-attr]
    ],
)
def test_a_positive_safety_item_flags_even_when_the_rest_is_blank(instrument: Any, answers: dict[str, str],
                                                                   flagged: bool) -> None:  # fmt: skip
    parsed, errors = parse_answers(instrument, answers)
    assert errors == []
    result = score(instrument, parsed)
    assert result.has_safety_flag is flagged
    if result.total is None:
        assert "no total" in " ".join(result.notes)


@pytest.mark.parametrize(
    ("instrument", "raw", "message"),
    [
        (PHQ9, {"phq9-3": "LA9999-9"}, "question 3 (Trouble falling or staying asleep"),
        (PHQ9, {"phq9-10": "LA6568-5"}, "'phq9-10' is not a question of the PHQ-9"),
        (
            GAD7,
            {"gad7-1": "3"},
            "question 1 (Feeling nervous, anxious, or on edge): '3' is not one of its answers",
        ),
        (CSSRS, {"cssrs-2": NO, "cssrs-3": YES}, "is asked only when question 2 is yes"),
    ],
)
def test_invalid_answers_are_refused_naming_the_item(
    instrument: Instrument, raw: dict[str, str], message: str
) -> None:
    _, errors = parse_answers(instrument, raw)
    assert errors and any(message in error.message for error in errors)


def test_every_instrument_scores_an_empty_form_without_raising() -> None:
    for instrument in INSTRUMENTS.values():
        result = score(instrument, {})
        assert result.total is None and result.positive is None


def test_epds_ships_as_a_skeleton_without_its_wording() -> None:
    """RCPsych requires written permission to distribute the EPDS wording in software (healthysteps.md §0 #1)."""
    assert EPDS_SKELETON.licence_class == "site-supplied" and not EPDS_SKELETON.ships_wording
    assert "permission" in (EPDS_SKELETON.copyright or "")
    assert all(not item.text and all(not a.display for a in item.answers) for item in EPDS_SKELETON.items)
    shipped = json.loads((DATA_FOLDER / "epds.questionnaire.json").read_text())
    worded = [i["linkId"] for i in shipped["item"] if i.get("text") and i["linkId"] != "total"]
    displays = [o["valueCoding"].get("display") for i in shipped["item"] for o in i.get("answerOption", [])]
    assert worded == [] and not any(displays)


def test_without_the_site_copy_the_epds_form_takes_the_total_and_item_10() -> None:
    form = EPDS_SKELETON.form_items
    assert [item.link_id for item in form] == ["total", "epds-10"]
    assert form[0].kind == "integer" and (form[0].min_value, form[0].max_value) == (0, 30)
    item10 = {a.display: a.code for a in form[1].answers}
    answers, errors = parse_answers(EPDS_SKELETON, {"total": "14", "epds-10": item10["scored 2"]})
    assert errors == []
    result = score(EPDS_SKELETON, answers)
    assert (result.total, result.band, result.positive) == (14, "probable depression", True)
    assert result.safety[0].message.startswith("EPDS question 10 (self-harm) scored 2 of 3.")
    assert score(EPDS_SKELETON, parse_answers(EPDS_SKELETON, {"total": "9", "epds-10": item10["scored 0"]})[0]
                 ).safety == ()  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [({"total": "31"}, "not a whole number from 0 to 30"), ({"total": "-1"}, "not a whole number from 0 to 30"),
     ({"total": "ten"}, "not a whole number"), ({"total": "1", "epds-10": "a0-3"}, "lower than the score of"),
     ({"epds-1": "a0-0"}, "'epds-1' is not a question of the EPDS")],
)  # fmt: skip
def test_entered_epds_scores_are_checked(raw: dict[str, str], message: str) -> None:
    _, errors = parse_answers(EPDS_SKELETON, raw)
    assert any(message in error.message for error in errors)


def test_an_entered_form_without_a_total_has_none_but_keeps_the_safety_flag() -> None:
    answers, _ = parse_answers(EPDS_SKELETON, {"epds-10": "a1-2"})
    result = score(EPDS_SKELETON, answers)
    assert result.total is None and result.has_safety_flag

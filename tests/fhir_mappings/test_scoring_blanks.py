"""A blank never hides a positive result or a safety flag (issue 26 §2): for every instrument kind, answers with
blanks → the result the answered items already settle ("decided with N unanswered", the total as a range), the
instrument's published rule for blanks where it has one (PHQ-9/GAD-7 proration, BPSC counts a blank as 0), and
every safety flag an answered item — or the lowest possible total — raises. Each row cites its rule.

Site-supplied instruments are scored item by item here with placeholder copies generated from Tandem's own
skeletons (no licensed wording: "Placeholder question N")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.screening.instruments import (
    DATA_FOLDER,
    MISSING_RULES,
    Catalogue,
    Instrument,
    InstrumentError,
    load_catalogue,
)
from fhir_mappings.screening.resources import Submission, result_flag, screening_observations
from fhir_mappings.screening.scoring import ScoreResult, parse_answers, score


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    """The shipped catalogue with a placeholder site copy (no licensed wording) of every site-supplied skeleton."""
    folder = tmp_path_factory.mktemp("site")
    for path in DATA_FOLDER.glob("*.scoring.json"):
        key = path.name.removesuffix(".scoring.json")
        if json.loads(path.read_text(encoding="utf-8"))["licence"]["class"] != "site-supplied":
            continue
        copy = json.loads((DATA_FOLDER / f"{key}.questionnaire.json").read_text(encoding="utf-8"))
        for number, item in enumerate(copy["item"], 1):
            item["text"] = f"Placeholder question {number}"
        (folder / f"{key}.json").write_text(json.dumps(copy), encoding="utf-8")
    return load_catalogue(folder)


def _run(instrument: Instrument, answers: list[int | None] | dict[str, str], **kwargs: Any) -> ScoreResult:
    if isinstance(answers, dict):
        raw = answers
    else:  # item scores in item order, None = blank
        raw = {item.link_id: next(a.code for a in item.answers if a.score == value)
               for item, value in zip(instrument.scored_items, answers, strict=True) if value is not None}  # fmt: skip
    parsed, errors = parse_answers(instrument, raw)
    assert errors == []
    return score(instrument, parsed, **kwargs)


YES, NO = "LA33-6", "LA32-8"
_ = None  # a blank


@pytest.mark.parametrize(
    ("key", "answers", "kwargs", "positive", "band", "decided", "total_range", "safety"),
    [
        # HITS (healthysteps.md §1b: 4 items 1–5, a sum over 10 is positive, and a positive is a safety alert).
        # No published rule for blanks ("bounds"): 15 answered + one blank (1–5) = 16–20, positive whatever it is.
        ("hits", [5, 5, 5, _], {}, True, "positive: interpersonal violence risk", True, (16, 20),
         ["interpersonal-safety"]),
        ("hits", [4, 4, 3, _], {}, True, "positive: interpersonal violence risk", True, (12, 16),
         ["interpersonal-safety"]),
        ("hits", [1, 1, 1, _], {}, False, "negative", True, (4, 8), []),  # at most 8: negative
        ("hits", [3, 3, 2, _], {}, None, None, False, (9, 13), []),  # 9–13 straddles 11: ask
        ("hits", [_, _, _, _], {}, None, None, False, None, []),
        # PHQ-9 (clinical.md §1: ≥ 10 positive, item 9 > 0 a safety flag). Up to 2 blanks: prorated (published
        # rule); more: the answered 12 plus three blanks (0–3 each) is 12–21, positive in any case.
        ("phq9", [2, 2, 2, 2, 1, _, _, 0, 0], {}, True, "moderate", False, None, []),  # 9 × 9/7 = 11.6 → 12
        ("phq9", [3, 3, 3, 3, _, _, _, 0, 0], {}, True, None, True, (12, 21), []),
        ("phq9", [0, 0, 0, 0, 0, 0, _, _, 0], {}, False, "minimal", False, None, []),  # prorated 0
        ("phq9", [1, 1, 1, _, _, _, 0, 0, 0], {}, None, None, False, (3, 12), []),
        ("phq9", [_, _, _, _, _, _, _, _, 1], {}, None, None, False, (1, 25), ["self-harm"]),  # item 9 flags
        ("phq9-teen", [3, 3, 3, 3, _, _, _, 0, 2], {}, True, None, True, (14, 23), ["self-harm"]),
        # GAD-7 (clinical.md §1: ≥ 10 positive; 15–21 severe).
        ("gad7", [3, 3, 3, 1, _, _, _], {}, True, None, True, (10, 19), []),
        ("gad7", [3, 3, 3, 3, 3, _, _], {}, True, "severe", False, None, []),  # 2 blanks: prorated 21
        # PHQ-2 (clinical.md §1: ≥ 3 positive, NCQA).
        ("phq2", [3, _], {}, True, "positive", True, (3, 6), []),
        ("phq2", [1, _], {}, None, None, False, (1, 4), []),
        # AUDIT-C by sex (clinical.md §1: ≥ 4 men, ≥ 3 women [K]): 3 answered + a blank (0–4) = 3–7.
        ("audit-c", [2, 1, _], {"sex": "female"}, True, None, True, (3, 7), []),
        ("audit-c", [2, 1, _], {"sex": "male"}, None, None, False, (3, 7), []),
        ("audit-c", [2, 2, _], {"sex": "male"}, True, None, True, (4, 8), []),
        ("audit-c", [2, 1, _], {}, True, None, True, (3, 7), []),  # sex unknown: ≥ 3
        # EPDS (clinical.md §1: ≥ 10 possible, ≥ 13 probable; item 10 a safety flag): 10 + item 10 blank.
        ("epds", [3, 3, 3, 1, 0, 0, 0, 0, 0, _], {}, True, None, True, (10, 13), []),
        ("epds", [3, 3, 3, 3, 3, 0, 0, 0, _, 1], {}, True, "probable depression", True, (16, 19), ["self-harm"]),
        # M-CHAT-R (Robins et al. 2014: 0–2 low, 3–7 medium, 8–20 high).
        ("mchat-rf", [1] * 8 + [_] * 12, {}, True, "high risk", True, (8, 20), []),
        ("mchat-rf", [0] * 18 + [_] * 2, {}, False, "low risk", True, (0, 2), []),
        ("mchat-rf", [1, 1] + [0] * 16 + [_] * 2, {}, None, None, False, (2, 4), []),
        ("mchat-rf-followup", [1, 1] + [_] * 18, {}, True, "screen positive", True, (2, 20), []),  # ≥ 2 failed
        # POSI (healthysteps.md §1a: ≥ 3 of 7 risk answers [K]); PPSC (≥ 9 [K]).
        ("posi", [1, 1, 1, _, _, _, _], {}, True, "at risk for autism: evaluate", True, (3, 7), []),
        ("posi", [0, 0, 0, 0, 0, 0, _], {}, False, "low risk", True, (0, 1), []),
        ("ppsc", [2, 2, 2, 2, 1] + [_] * 13, {}, True, "at or above the cutoff: needs review", True, (9, 35), []),
        # ASRM (smi.md §1: ≥ 6 probable mania).
        ("asrm", [4, 2, _, _, _], {}, True, "probable mania or hypomania", True, (6, 18), []),
        # WHO-5 (smi.md §1: raw × 4, < 50 poor well-being, ≤ 28 likely depression; lower is worse).
        ("who5", [0, 0, 0, 0, _], {}, True, "likely depression", True, (0, 20), []),
        ("who5", [5, 5, 5, 5, _], {}, False, "adequate well-being", True, (80, 100), []),
        ("who5", [3, 3, 3, _, _], {}, None, None, False, (36, 76), []),
        # BPRS (smi.md §1): no cutoff and no bands, so blanks leave the result open.
        ("bprs", [7] * 17 + [_], {}, None, None, False, (120, 126), []),
        # SWYC Milestones (healthysteps.md §1a: needs review at or below the cutoff for the month of age; 9 months
        # ≤ 8 [C3]).
        ("swyc-milestones", [0] * 8 + [_] * 2, {"age_months": 9}, True, "needs review", True, (0, 4), []),
        ("swyc-milestones", [2] * 5 + [_] * 5, {"age_months": 9}, False, "meets expectations", True, (10, 20), []),
        ("swyc-milestones", [1] * 8 + [_] * 2, {"age_months": 9}, None, None, False, (8, 12), []),
        ("swyc-milestones", [0] * 8 + [_] * 2, {"age_months": 10}, None, None, False, (0, 4), []),  # no cutoff
        # Hunger Vital Sign (clinical.md §1: positive if either item is "often" or "sometimes true").
        ("hunger-vital-sign", [1, _], {}, True, "at risk", True, None, []),
        ("hunger-vital-sign", [0, _], {}, None, None, False, None, []),
        # AHC HRSN (healthysteps.md §1b: an underlined answer is positive, named by its domain).
        ("ahc-hrsn", {"ahc-1": "worried"}, {}, True, "one or more needs", True, None, []),
        ("ahc-hrsn", {"ahc-1": "steady"}, {}, None, None, False, None, []),
        # BPSC (healthysteps.md §1a: ≥ 3 on any subscale; its published rule counts a blank as 0).
        ("bpsc", {"bpsc-1": "a2", "bpsc-2": "a1"}, {}, True, "positive (a subscale at 3 or more)", True, None, []),
        # C-SSRS screener (clinical.md §1): the highest level any answer reaches; blanks only raise it. High is
        # the top level, so it is decided; moderate with questions 4–5 blank still alerts but could go higher.
        ("cssrs-screener", {"cssrs-1": YES, "cssrs-2": YES, "cssrs-4": YES}, {}, True, "high", True, None,
         ["suicide-risk"]),
        ("cssrs-screener", {"cssrs-1": YES, "cssrs-2": YES, "cssrs-3": YES}, {}, True, "moderate", False, None,
         ["suicide-risk"]),
        # ASQ-3 (healthysteps.md §1a: below the cutoff in any domain = refer), other zones not entered.
        ("asq3", {"asq3-communication-zone": "asq-below"}, {}, True, "refer (below the cutoff)", True, None, []),
    ],
)  # fmt: skip
def test_a_result_the_answered_items_settle_is_reported_and_never_hides_a_safety_flag(
    catalogue: Catalogue, key: str, answers: list[int | None] | dict[str, str], kwargs: dict[str, Any],
    positive: bool | None, band: str | None, decided: bool, total_range: tuple[int, int] | None,
    safety: list[str],
) -> None:  # fmt: skip
    instrument = catalogue.instruments[key]
    result = _run(instrument, answers, **kwargs)
    assert (result.positive, result.band, result.decided_with_blanks) == (positive, band, decided)
    assert result.total_range == total_range
    assert [flag.code for flag in result.safety] == safety
    if decided:
        assert f"decided with {len(result.missing)} unanswered" in result.interpretation
        assert result_flag(result) in ("positive", "negative")
    if total_range is not None and result.total is None:
        assert f"{total_range[0]}–{total_range[1]}" in result.interpretation
    if result.missing:  # the instrument's rule for blanks is said with the result
        assert instrument.missing_text in result.notes


def test_an_unanswered_safety_item_is_asked_even_when_the_rest_settles_a_negative(
    catalogue: Catalogue,
) -> None:
    # clinical.md §1 safety rule: item 9 must never be lost; here the answered items (0 with 3 blanks: 0–9) settle
    # a negative screen, and the result still says item 9 must be asked.
    result = _run(catalogue.instruments["phq9"], [0, 0, 0, 0, 0, 0, _, _, _])
    assert (result.positive, result.decided_with_blanks, result.total_range) == (False, True, (0, 9))
    assert any("was not answered: ask it today" in note for note in result.notes)


def test_a_decided_total_is_written_as_its_verdict_and_range_never_as_a_number(catalogue: Catalogue) -> None:
    instrument = catalogue.instruments["hits"]
    answers, _errors = parse_answers(instrument, {"hits-1": "f5", "hits-2": "f5", "hits-3": "f5"})
    result = score(instrument, answers)
    submission = Submission("s1", instrument, answers, result, "p1", datetime(2026, 12, 7, tzinfo=UTC),
                            iss="https://ehr.example")  # fmt: skip
    [observation] = screening_observations(submission, None)
    assert "valueInteger" not in observation
    assert observation["valueCodeableConcept"]["text"] == (
        "positive: interpersonal violence risk: total 16–20 (1 unanswered)"
    )
    assert observation["interpretation"][0]["coding"][0]["code"] == "positive"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("missing"), "missing must name its rule"),
        (lambda s: s.update(missing={"rule": "guess", "text": "x"}), "missing must name its rule"),
        (lambda s: s.update(missing={"rule": "bounds"}), "missing must name its rule"),
        (lambda s: s.update(missing={"rule": "prorate", "text": "x"}), "prorate_up_to goes with"),
        (lambda s: s.update(missing={"rule": "bounds", "text": "x", "prorate_up_to": 2}), "prorate_up_to goes with"),
        (lambda s: s.pop("source"), "source must cite"),
        (lambda s: s.update(source=" "), "source must cite"),
    ],
)  # fmt: skip
def test_start_up_requires_a_source_and_a_documented_rule_for_blanks(tmp_path: Path, change: Any,
                                                                    message: str) -> None:  # fmt: skip
    folder = tmp_path / "instruments"
    folder.mkdir()
    for suffix in ("questionnaire", "scoring"):
        (folder / f"phq9.{suffix}.json").write_text((DATA_FOLDER / f"phq9.{suffix}.json").read_text())
    rules = json.loads((folder / "phq9.scoring.json").read_text())
    change(rules)
    (folder / "phq9.scoring.json").write_text(json.dumps(rules))
    with pytest.raises(InstrumentError, match=message):
        load_catalogue(folder=folder)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # SWYC Milestones cutoffs are per month of age (healthysteps.md §1a): a range of months is refused.
        (lambda s: s["cutoffs_by_age"].append({"months": [13, 14], "needs_review_at_most": 9, "_source": "x"}),
         "one entry a month"),
        (lambda s: s["cutoffs_by_age"].append({"months": [13, 13], "needs_review_at_most": 9}), "cites its source"),
        (lambda s: s.pop("cutoffs_per"), "cutoffs_per"),
    ],
)  # fmt: skip
def test_month_of_age_cutoffs_are_one_a_month_each_with_its_source(tmp_path: Path, change: Any,
                                                                   message: str) -> None:  # fmt: skip
    folder = tmp_path / "instruments"
    folder.mkdir()
    for suffix in ("questionnaire", "scoring"):
        name = f"swyc-milestones.{suffix}.json"
        (folder / name).write_text((DATA_FOLDER / name).read_text())
    rules = json.loads((folder / "swyc-milestones.scoring.json").read_text())
    change(rules)
    (folder / "swyc-milestones.scoring.json").write_text(json.dumps(rules))
    with pytest.raises(InstrumentError, match=message):
        load_catalogue(folder=folder)


def test_every_shipped_instrument_cites_its_source_and_rule_for_blanks(catalogue: Catalogue) -> None:
    for instrument in catalogue:
        assert instrument.source.strip() and instrument.missing_text.strip(), instrument.key
        assert instrument.missing_rule in MISSING_RULES
        # The published blank rules: PHQ-9/GAD-7 prorate up to 2, BPSC counts a blank as 0 (see each file's source).
        expected = {"phq9": "prorate", "phq9-teen": "prorate", "gad7": "prorate", "bpsc": "zero"}
        if instrument.key in expected:
            assert instrument.missing_rule == expected[instrument.key]
        if (
            instrument.enters_scores
            and instrument.result_kind == "sum"
            and instrument.licence_class == "score-only"
        ):
            assert instrument.missing_rule == "entered"

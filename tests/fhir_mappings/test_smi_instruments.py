"""SMI instruments scored by their published rules (smi.md §1), table by table: WHO-5 (raw × 4, < 50 poor
well-being, ≤ 28 likely depression, a 10-point change meaningful), BPRS (18 items 1–7, a 20 % reduction is a
response), ASRM (≥ 6 probable mania; a site-supplied skeleton with no wording shipped); DLA-20, SDS and BASIS-24
as score-only entries; and the score series of results that carry Tandem's instrument code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.screening.history import REGISTRY_SCORE_CODE_PARAM, SCORE_CODE_PARAM, score_points
from fhir_mappings.screening.instruments import (
    DATA_FOLDER,
    INSTRUMENT_SYSTEM,
    INSTRUMENTS,
    Change,
    InstrumentError,
    load_catalogue,
)
from fhir_mappings.screening.scoring import parse_answers, score


def _score(key: str, raw: dict[str, str]) -> Any:
    instrument = INSTRUMENTS[key]
    answers, problems = parse_answers(instrument, raw)
    assert not problems, problems
    return score(instrument, answers)


def _who5(*values: int) -> dict[str, str]:
    return {f"who5-{n}": f"who5-{v}" for n, v in enumerate(values, 1)}


@pytest.mark.parametrize(
    ("values", "total", "band", "positive"),
    [
        ((5, 5, 5, 5, 5), 100, "adequate well-being", False),
        ((3, 3, 3, 2, 2), 52, "adequate well-being", False),
        ((3, 3, 2, 2, 2), 48, "poor well-being", True),  # < 50: screen for depression
        ((2, 2, 2, 1, 1), 32, "poor well-being", True),
        ((2, 2, 1, 1, 1), 28, "likely depression", True),  # ≤ 28
        ((0, 0, 0, 0, 0), 0, "likely depression", True),
    ],
)
def test_who5_percentage_score_and_bands(
    values: tuple[int, ...], total: int, band: str, positive: bool
) -> None:
    result = _score("who5", _who5(*values))
    assert (result.total, result.band, result.positive) == (total, band, positive)
    assert "positive at ≤49" in result.interpretation


def test_who5_with_an_unanswered_statement_has_no_total() -> None:
    raw = _who5(5, 5, 5, 5, 5)
    del raw["who5-3"]
    result = _score("who5", raw)
    assert result.total is None and result.missing == ("who5-3",)


@pytest.mark.parametrize(
    ("ratings", "total"),
    [([1] * 18, 18), ([7] * 18, 126), ([2] * 9 + [4] * 9, 54)],
)
def test_bprs_total_is_the_sum_of_18_ratings(ratings: list[int], total: int) -> None:
    result = _score("bprs", {f"bprs-{n}": f"r{v}" for n, v in enumerate(ratings, 1)})
    assert result.total == total and result.positive is None  # no fixed cutoff


@pytest.mark.parametrize(
    ("total", "positive"),
    [("0", False), ("5", False), ("6", True), ("20", True)],
)
def test_asrm_is_positive_at_six_from_the_entered_total(total: str, positive: bool) -> None:
    result = _score("asrm", {"total": total})
    assert result.total == int(total) and result.positive is positive


@pytest.mark.parametrize(
    ("key", "baseline", "latest", "verdict"),
    [
        ("who5", 40, 52, "improved"),  # ≥ 10 points up
        ("who5", 40, 48, "no meaningful change"),
        ("who5", 60, 50, "worsened"),  # exactly 10 down
        ("who5", None, 50, None),
        # BPRS response, by default minimum-corrected (bprs.scoring.json change.convention; the drop above the
        # lowest possible total, 18 — Leucht et al. 2005 / Obermeier et al. 2010 [K]; 20 % per smi.md §1 [K]).
        ("bprs", 60, 48, "improved"),  # 12 of 42 above the floor: 29 %
        ("bprs", 60, 49, "improved"),  # 11 of 42: 26 % (only 18 % of the raw total)
        ("bprs", 30, 28, "no meaningful change"),  # 2 of 12: 17 %
        ("bprs", 50, 60, "worsened"),
        ("bprs", 18, 18, None),  # no symptoms at baseline: no percent of nothing
    ],
)
def test_clinically_meaningful_change_rules_are_data(
    key: str, baseline: int | None, latest: int | None, verdict: str | None
) -> None:
    change = INSTRUMENTS[key].change
    assert isinstance(change, Change)
    assert change.meaningful(baseline, latest) == verdict


@pytest.mark.parametrize(
    ("baseline", "latest", "raw", "corrected"),
    [
        # A 20 % BPRS drop (smi.md §1 [K]) on the raw total vs above the minimum of 18 (18 items rated 1–7).
        (60, 48, "improved", "improved"),  # raw 20 %, corrected 29 %
        (60, 49, "no meaningful change", "improved"),  # raw 18 %, corrected 26 %
        (40, 35, "no meaningful change", "improved"),  # raw 12.5 %, corrected 23 %
        (30, 28, "no meaningful change", "no meaningful change"),  # raw 7 %, corrected 17 %
        (18, 18, "no meaningful change", None),  # corrected: nothing above the floor to drop
    ],
)
def test_bprs_response_offers_raw_and_corrected_and_defaults_to_corrected(
    baseline: int, latest: int, raw: str, corrected: str | None
) -> None:
    change = INSTRUMENTS["bprs"].change
    assert change is not None and (change.convention, change.floor) == ("corrected", 18)
    assert change.meaningful(baseline, latest, "raw") == raw
    assert change.meaningful(baseline, latest, "corrected") == corrected
    assert change.meaningful(baseline, latest) == corrected  # the file's default
    assert "lowest possible, 18" in change.size_text


def test_asrm_ships_no_wording_and_every_instrument_names_its_licence() -> None:
    shipped = json.loads((DATA_FOLDER / "asrm.questionnaire.json").read_text(encoding="utf-8"))
    assert all("text" not in item for item in shipped["item"])
    assert all("display" not in o["valueCoding"] for item in shipped["item"] for o in item["answerOption"])
    assert INSTRUMENTS["asrm"].enters_scores
    for key, licence in (("who5", "bundled"), ("bprs", "bundled"), ("asrm", "site-supplied")):
        assert INSTRUMENTS[key].licence_class == licence and INSTRUMENTS[key].copyright
        assert INSTRUMENTS[key].total_loinc is None  # no LOINC code is confirmed for any of them


@pytest.mark.parametrize(
    ("key", "entered", "total", "problem"),
    [
        ("dla20", "43", 43, None),
        ("dla20", "10", 10, None),
        ("dla20", "9", None, "from 10 to 70"),
        ("dla20", "71", None, "from 10 to 70"),
        ("dla20", "4.3", None, "whole number"),
        ("sds", "0", 0, None),
        ("sds", "30", 30, None),
        ("sds", "31", None, "from 0 to 30"),
        ("basis24", "125", 125, None),
        ("basis24", "401", None, "from 0 to 400"),
    ],
)
def test_score_only_instruments_take_only_the_licensed_forms_score(
    key: str, entered: str, total: int | None, problem: str | None
) -> None:
    instrument = INSTRUMENTS[key]
    assert instrument.licence_class == "score-only" and not instrument.ships_wording
    assert [item.link_id for item in instrument.form_items] == ["total"]
    answers, problems = parse_answers(instrument, {"total": entered})
    if problem:
        assert len(problems) == 1 and problem in problems[0].message
        return
    assert not problems
    result = score(instrument, answers)
    assert result.total == total and result.positive is None


def test_score_only_files_hold_no_item_wording() -> None:
    for key in ("dla20", "sds", "basis24"):
        questionnaire = json.loads((DATA_FOLDER / f"{key}.questionnaire.json").read_text())
        assert [item["linkId"] for item in questionnaire["item"]] == ["total"]
        assert "licence" in json.loads((DATA_FOLDER / f"{key}.scoring.json").read_text())


def _result(system: str, code: str, value: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o-{code}", "status": "final",
            "code": {"coding": [{"system": system, "code": code}]}, "effectiveDateTime": "2026-10-01T10:00:00Z",
            "subject": {"reference": "Patient/p1"}, "valueInteger": value}  # fmt: skip


@pytest.mark.parametrize(
    ("system", "code", "series"),
    [
        (INSTRUMENT_SYSTEM, "who5", "WHO-5"),
        (INSTRUMENT_SYSTEM, "bprs", "BPRS"),
        (INSTRUMENT_SYSTEM, "asrm", "ASRM"),
        (INSTRUMENT_SYSTEM, "dla20", "DLA-20"),
        ("http://loinc.org", "44261-6", "PHQ-9"),
        ("urn:oid:1.2.3", "who5", None),  # Tandem's code word under another system is not a WHO-5
        ("http://loinc.org", "who5", None),
    ],
)
def test_results_without_a_loinc_code_form_score_series_by_tandems_code(
    system: str, code: str, series: str | None
) -> None:
    points = score_points([_result(system, code, 48)], "Tandem")
    assert [p.instrument for p in points] == ([series] if series else [])


def test_only_the_registry_search_asks_for_tandems_codes() -> None:
    assert INSTRUMENT_SYSTEM not in SCORE_CODE_PARAM  # an EHR holds LOINC totals only
    for key in ("who5", "bprs", "asrm", "dla20", "sds", "basis24"):
        assert f"{INSTRUMENT_SYSTEM}|{key}" in REGISTRY_SCORE_CODE_PARAM
    assert set(SCORE_CODE_PARAM.split(",")) < set(REGISTRY_SCORE_CODE_PARAM.split(","))


@pytest.mark.parametrize("convention", [None, "median"])
def test_a_percent_change_must_name_its_convention(tmp_path: Path, convention: str | None) -> None:
    # Issue 26 §2: a response rule names its convention (raw or minimum-corrected); BPRS's file is checked.
    folder = tmp_path / "instruments"
    folder.mkdir()
    for suffix in ("questionnaire", "scoring"):
        (folder / f"bprs.{suffix}.json").write_text((DATA_FOLDER / f"bprs.{suffix}.json").read_text())
    rules = json.loads((folder / "bprs.scoring.json").read_text())
    rules["change"].pop("convention")
    if convention is not None:
        rules["change"]["convention"] = convention
    (folder / "bprs.scoring.json").write_text(json.dumps(rules))
    with pytest.raises(InstrumentError, match="names its convention"):
        load_catalogue(folder=folder)

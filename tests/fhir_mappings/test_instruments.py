"""The instrument catalogue: every shipped file loads and is checked; broken files and site copies are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.screening.instruments import (
    CATALOGUE,
    DATA_FOLDER,
    INSTRUMENTS,
    InstrumentError,
    load_catalogue,
)
from fhir_mappings.screening.scoring import parse_answers, score
from sandbox import SITE_INSTRUMENTS


@pytest.mark.parametrize(
    ("key", "licence_class", "wording_shipped"),
    [("phq9", "bundled", True), ("phq9-teen", "bundled", True), ("phq2", "bundled", True),
     ("gad7", "bundled", True), ("audit-c", "bundled", True), ("hunger-vital-sign", "bundled", True),
     ("cssrs-screener", "bundled", True), ("epds", "site-supplied", False), ("asq3", "score-only", False)],
)  # fmt: skip
def test_each_instrument_carries_its_licence(key: str, licence_class: str, wording_shipped: bool) -> None:
    instrument = INSTRUMENTS[key]
    assert instrument.licence_class == licence_class and instrument.copyright
    assert instrument.ships_wording is (licence_class == "bundled")
    assert all(bool(item.text) for item in instrument.items) is (
        wording_shipped or licence_class == "score-only"
    )
    assert instrument.questionnaire["copyright"] == instrument.copyright


def _copy(tmp_path: Path, key: str, change: Any) -> Path:
    folder = tmp_path / "instruments"
    folder.mkdir(exist_ok=True)
    for suffix in ("questionnaire", "scoring"):
        shutil.copy(DATA_FOLDER / f"{key}.{suffix}.json", folder)
    questionnaire = json.loads((folder / f"{key}.questionnaire.json").read_text())
    scoring = json.loads((folder / f"{key}.scoring.json").read_text())
    change(questionnaire, scoring)
    (folder / f"{key}.questionnaire.json").write_text(json.dumps(questionnaire))
    (folder / f"{key}.scoring.json").write_text(json.dumps(scoring))
    return folder


def _no_weight(q: dict[str, Any], s: dict[str, Any]) -> None:
    q["item"][0]["answerOption"][0]["extension"] = []


def _unknown_safety_item(q: dict[str, Any], s: dict[str, Any]) -> None:
    s["safety"][0]["item"] = "phq9-99"


def _band_gap(q: dict[str, Any], s: dict[str, Any]) -> None:
    s["bands"][1]["low"] = 6


def _bad_licence(q: dict[str, Any], s: dict[str, Any]) -> None:
    s["licence"]["class"] = "free"


def _typo(q: dict[str, Any], s: dict[str, Any]) -> None:
    s["postive"] = s.pop("positive")


def _not_r4(q: dict[str, Any], s: dict[str, Any]) -> None:
    q["date"] = "yesterday"


def _not_reversed(q: dict[str, Any], s: dict[str, Any]) -> None:
    s["reverse_scored"] = ["phq9-1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [(_no_weight, "no whole-number itemWeight"), (_unknown_safety_item, "items the Questionnaire does not have"),
     (_band_gap, "leave a gap or overlap"), (_bad_licence, "licence must name a class"),
     (_typo, "unknown scoring field(s): postive"), (_not_r4, "not a valid R4 Questionnaire"),
     (_not_reversed, "reverse-scored but its weights")],
)  # fmt: skip
def test_a_broken_instrument_file_is_refused_naming_it(tmp_path: Path, change: Any, message: str) -> None:
    folder = _copy(tmp_path, "phq9", change)
    with pytest.raises(InstrumentError) as raised:
        load_catalogue(folder=folder)
    assert "instrument phq9" in str(raised.value) and message in str(raised.value)


def _site_copy(tmp_path: Path, change: Any) -> Path:
    copy = json.loads((SITE_INSTRUMENTS / "epds.json").read_text())
    change(copy)
    (tmp_path / "epds.json").write_text(json.dumps(copy))
    return tmp_path


@pytest.mark.parametrize(
    ("change", "message"),
    [(lambda c: c["item"].pop(3), "item epds-4 is missing"),
     (lambda c: c["item"][0]["answerOption"].reverse(), "answer codes differ"),
     (lambda c: c["item"][2]["answerOption"][0]["extension"][0].update(valueDecimal=0), "weights differ"),
     (lambda c: c["item"][1].pop("text"), "item epds-2 has no wording"),
     (lambda c: c["item"].append({**c["item"][0], "linkId": "epds-11"}), "items Tandem's structure does not")],
)  # fmt: skip
def test_a_site_copy_must_match_the_structure(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(InstrumentError) as raised:
        load_catalogue(_site_copy(tmp_path, change))
    assert message in str(raised.value)


def test_a_site_copy_brings_the_wording_and_keeps_the_scoring(tmp_path: Path) -> None:
    epds = load_catalogue(SITE_INSTRUMENTS).instruments["epds"]
    assert epds.site_copy_loaded and epds.form_items == epds.items and epds.items[0].text
    assert [a.score for a in epds.items[2].answers] == [3, 2, 1, 0]  # item 3 stays reverse-scored
    (tmp_path / "phq9.json").write_text((SITE_INSTRUMENTS / "epds.json").read_text())
    with pytest.raises(InstrumentError, match="phq9 is bundled"):
        load_catalogue(tmp_path)


ASQ = INSTRUMENTS["asq3"]
DOMAINS = ("communication", "gross-motor", "fine-motor", "problem-solving", "personal-social")


@pytest.mark.parametrize(
    ("zones", "level", "positive"),
    [(["asq-above"] * 5, "on schedule", False),
     (["asq-above"] * 4 + ["asq-monitoring"], "monitor (monitoring zone)", True),
     (["asq-monitoring", "asq-below", "asq-above", "asq-above", "asq-above"], "refer (below the cutoff)", True),
     (["asq-above"] * 4 + [None], None, None),
     (["asq-below"] + [None] * 4, "refer (below the cutoff)", True)],
)  # fmt: skip
def test_asq3_records_scores_and_zones_only(zones: list[str | None], level: str | None, positive: bool | None
                                            ) -> None:  # fmt: skip
    raw = {f"asq3-{d}-score": "45" for d in DOMAINS}
    raw |= {f"asq3-{d}-zone": zone for d, zone in zip(DOMAINS, zones, strict=True) if zone}
    answers, errors = parse_answers(ASQ, raw)
    assert errors == []
    result = score(ASQ, answers)
    assert (result.band, result.positive) == (level, positive)
    assert result.item_scores["asq3-communication-score"] == 45 and not result.safety


def test_asq3_refuses_a_domain_score_out_of_range() -> None:
    _, errors = parse_answers(ASQ, {"asq3-communication-score": "65"})
    assert errors and "0 to 60" in errors[0].message
    assert ASQ.enters_scores and ASQ.for_age(9) and not ASQ.for_age(30 * 12)


FAMILY = {"hunger-vital-sign", "ahc-hrsn", "hits"}
AUTISM = {"mchat-rf", "mchat-rf-followup", "posi"}


# Who may answer what, by age (completed months): the patient about themself, or a caregiver about themself at
# a child's visit (recorded on the child with focus = the caregiver).
@pytest.mark.parametrize(
    ("months", "own", "as_caregiver"),
    [(0, set(), {"phq9", "phq2", "gad7", "epds", "audit-c", *FAMILY}),
     (1, {"asq3", "bpsc", "asq-se2"}, {"phq9", "phq2", "gad7", "epds", "audit-c", *FAMILY}),
     (9, {"asq3", "bpsc", "swyc-milestones", "asq-se2"}, {"phq9", "phq2", "gad7", "epds", "audit-c", *FAMILY}),
     (12, {"asq3", "bpsc", "swyc-milestones", "asq-se2"}, {"phq9", "phq2", "gad7", "epds", "audit-c", *FAMILY}),
     (13, {"asq3", "bpsc", "swyc-milestones", "asq-se2"}, {"phq9", "phq2", "gad7", "audit-c", *FAMILY}),  # EPDS: 1st year
     (16, {"asq3", "bpsc", "swyc-milestones", "asq-se2", *AUTISM}, {"phq9", "phq2", "gad7", "audit-c", *FAMILY}),
     (18, {"asq3", "bpsc", "ppsc", "swyc-milestones", "asq-se2", *AUTISM},
      {"phq9", "phq2", "gad7", "audit-c", *FAMILY}),
     (30, {"asq3", "ppsc", "swyc-milestones", "asq-se2", *AUTISM}, {"phq9", "phq2", "gad7", "audit-c", *FAMILY}),
     (31, {"asq3", "ppsc", "swyc-milestones", "asq-se2", "posi"}, {"phq9", "phq2", "gad7", "audit-c", *FAMILY}),
     (36, {"asq3", "ppsc", "swyc-milestones", "asq-se2"}, {"phq9", "phq2", "gad7", "audit-c", *FAMILY}),
     (37, {"asq3", "ppsc", "swyc-milestones", "asq-se2"}, FAMILY),
     (73, set(), FAMILY),
     (143, set(), FAMILY),
     (144, {"phq9-teen", "phq2", "gad7", "epds", "cssrs-screener"}, FAMILY),
     (215, {"phq9-teen", "phq2", "gad7", "epds", "cssrs-screener"}, FAMILY),
     (216, {"phq9", "phq2", "gad7", "epds", "audit-c", "cssrs-screener", "who5", "bprs", "asrm", "dla20", "sds", "basis24", *FAMILY}, set())],
)  # fmt: skip
def test_instruments_fit_ages_as_their_files_say(months: int, own: set[str], as_caregiver: set[str]) -> None:
    assert {i.key for i in CATALOGUE if i.for_age(months)} == own
    assert {i.key for i in CATALOGUE if i.for_caregiver_of(months)} == as_caregiver


def test_an_unknown_age_rules_out_no_own_instrument_and_makes_no_caregiver_screen() -> None:
    assert all(i.for_age(None) for i in CATALOGUE)
    assert not any(i.for_caregiver_of(None) for i in CATALOGUE)


@pytest.mark.parametrize("ages", [[12, 6], [-1, 5], [3], "12", [1.5, None]])
def test_bad_age_bounds_are_refused(tmp_path: Path, ages: Any) -> None:
    folder = _copy(tmp_path, "phq9", lambda q, s: s.update(ages_months=ages))
    with pytest.raises(InstrumentError, match="ages_months must be"):
        load_catalogue(folder=folder)

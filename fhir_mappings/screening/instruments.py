"""The instrument catalogue: each instrument is an SDC Questionnaire file plus a scoring description, read from
`fhir_mappings/data/instruments/` and validated when loaded (`InstrumentError` names the file and the problem).

Licence classes (shown to deployers by `tandem instruments`):
- `bundled`: free to redistribute; Tandem ships the full wording.
- `site-supplied`: free for a practice's own clinical use but not for redistribution in software (EPDS). Tandem
  ships the structure, codes and scoring without wording; a deployment loads its licensed copy from a folder
  (`<key>.json`), checked against that structure. Until then the form takes the total and the item scores the
  scoring needs (the safety items).
- `score-only`: no electronic reproduction at all (ASQ-3): Tandem's form records the scores the practice obtained
  elsewhere, never the items.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from fhir_mappings.common.dates import age_bounds
from fhir_mappings.common.validation import r4_errors

LOINC = "http://loinc.org"
TANDEM_ANSWERS = "https://tandem.health/fhir/CodeSystem/answer"
QUESTIONNAIRE_BASE = "https://tandem.health/fhir/Questionnaire"
#: Codes a result Observation carries when no LOINC code for the instrument's result is confirmed: Tandem's own,
#: never presented as LOINC.
INSTRUMENT_SYSTEM = "https://tandem.health/fhir/CodeSystem/instrument"
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
DATA_FOLDER = Path(__file__).resolve().parent.parent / "data" / "instruments"
LICENCE_CLASSES = ("bundled", "site-supplied", "score-only")
RESULT_KINDS = ("sum", "any-item", "levels", "subscales")
#: How unanswered items are handled (each scoring file names its rule in `missing.rule` and says so in
#: `missing.text`, shown with every result that has blanks):
#: - "prorate": the published rule prorates up to `prorate_up_to` blanks (PHQ-9, GAD-7); beyond that, as "bounds";
#: - "zero": the published rule counts a blank as 0 (BPSC);
#: - "bounds": no published rule: a blank may be any of its answers, so the result is reported only when the lowest
#:   and the highest possible totals agree (and a positive any-item answer is positive whatever the blanks);
#: - "at-least": a level result: an unanswered question can only raise the level (C-SSRS, ASQ zones);
#: - "entered": the practice enters the total from its licensed form; there are no items to leave blank.
MISSING_RULES = ("prorate", "zero", "bounds", "at-least", "entered")
#: A BPRS-style percentage change: on the raw totals, or after subtracting the lowest possible total (the
#: "corrected" drop, Leucht et al. 2005 / Obermeier et al. 2010: BPRS items start at 1, so 18 is "no symptoms").
CHANGE_CONVENTIONS = ("raw", "corrected")
TOTAL = "total"


class InstrumentError(ValueError):
    """An instrument file that cannot be used: named, with the reason."""


@dataclass(frozen=True)
class Answer:
    code: str
    display: str
    score: int
    system: str = LOINC
    #: An entered number (score-only and total-entry forms) rather than a chosen answer.
    integer: bool = False


@dataclass(frozen=True)
class Item:
    link_id: str
    text: str
    answers: tuple[Answer, ...]
    loinc: str | None = None
    #: Not part of the total (e.g. the PHQ-9 difficulty question).
    scored: bool = True
    #: Shown only when another item has one of these answers: (linkId, answer codes).
    enable_when: tuple[str, tuple[str, ...]] | None = None
    #: "choice" (answers with weights) or "integer" (an entered score between min_value and max_value).
    kind: str = "choice"
    min_value: int = 0
    max_value: int = 0


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    label: str
    #: What to do at this result (M-CHAT-R bands), shown with the result.
    advice: str | None = None


@dataclass(frozen=True)
class Change:
    """A clinically meaningful change between a baseline and a later total: by points (WHO-5: 10) or by percent
    of the baseline (BPRS response: a 20 % reduction). `better`: whether a higher total is better ("higher") or
    worse ("lower")."""

    better: str
    points: int | None = None
    percent: int | None = None
    #: For a percent change: "raw" (of the baseline total) or "corrected" (of the baseline less `floor`, the
    #: lowest possible total: BPRS 18). See CHANGE_CONVENTIONS.
    convention: str = "raw"
    floor: int = 0

    def meaningful(
        self, baseline: int | None, latest: int | None, convention: str | None = None
    ) -> str | None:
        """ "improved", "worsened" or "no meaningful change"; None when either total is missing. `convention`
        overrides the file's ("raw" or "corrected") for a percent change."""
        if baseline is None or latest is None:
            return None
        delta = latest - baseline
        floor = self.floor if (convention or self.convention) == "corrected" else 0
        if self.points is not None:
            threshold = float(self.points)
        elif self.percent is not None and baseline - floor > 0:
            threshold = (baseline - floor) * self.percent / 100
        else:
            return None
        if abs(delta) < threshold:
            return "no meaningful change"
        return "improved" if (delta > 0) == (self.better == "higher") else "worsened"

    @property
    def size_text(self) -> str:
        """The rule in words: "10-point", "20 %" or "20 % (of the total above its lowest possible, 18)"."""
        if self.points is not None:
            return f"{self.points}-point"
        if self.convention == "corrected" and self.floor:
            return f"{self.percent} % (of the total above its lowest possible, {self.floor})"
        return f"{self.percent} %"


@dataclass(frozen=True)
class AgeCutoff:
    """An age form's cutoff (SWYC Milestones): a score at or below it needs review."""

    low_months: int
    high_months: int
    needs_review_at_most: int


@dataclass(frozen=True)
class Level:
    """A result level (C-SSRS risk, ASQ zone): reached when any (item, answer code) pair was answered."""

    label: str
    when: tuple[tuple[str, str], ...]
    #: A level that means "monitor" rather than "refer" (ASQ monitoring zone).
    monitor: bool = False


@dataclass(frozen=True)
class Instrument:
    key: str
    name: str
    title: str
    items: tuple[Item, ...]
    preamble: str
    panel_loinc: str | None
    total_loinc: str | None
    total_display: str
    max_total: int
    bands: tuple[Band, ...] = ()
    #: Total at or above which the screen is positive (None: not decided by the total alone).
    positive_at: int | None = None
    #: Cutoffs by recorded sex (AUDIT-C); `positive_at` applies when sex is not recorded.
    positive_by_sex: dict[str, int] = field(default_factory=dict)
    #: How many scored items may be missing and still allow a (prorated) total; see scoring.py.
    max_missing: int = 0
    version: str = "1.0.0"
    #: linkId → answer scores at or above which it is a safety flag.
    safety_items: dict[str, int] = field(default_factory=dict)
    copyright: str | None = None
    licence_class: str = "bundled"
    #: For a site-supplied instrument: whether the practice's licensed copy (its wording) is loaded.
    site_copy_loaded: bool = False
    result_kind: str = "sum"
    levels: tuple[Level, ...] = ()
    #: The level when no listed level is reached and everything needed was answered.
    otherwise: str | None = None
    #: How the result reads, e.g. "{name}: {level} risk".
    phrase: str | None = None
    #: Levels that raise a safety flag → the advice given.
    safety_levels: dict[str, str] = field(default_factory=dict)
    safety_flag: str = "self-harm"
    #: any-item kind: the labels of a positive and a negative result, and the item score that is positive.
    labels: dict[str, str] = field(default_factory=dict)
    any_item_at_least: int = 1
    #: The score series the chart and worklist read this instrument's results into (teen PHQ-9 → "PHQ-9").
    history: str | None = None
    #: Ages (completed months) of a patient answering about themself; None: any age; an open upper bound: None.
    ages_months: tuple[int, int | None] | None = None
    #: A caregiver answers it about themself at the visit of a child of these ages (recorded on the child with
    #: focus = the caregiver); None: not a caregiver screen.
    caregiver_of_child_months: tuple[int, int | None] | None = None
    #: Where the instrument sits in menus (lower first).
    order: int = 0
    #: Patients (or a parent for a child) may answer it themselves, from a portal launch or a questionnaire link;
    #: only where the wording may be shown (bundled, or the practice's licensed copy loaded).
    self_report_allowed: bool = False
    #: subscales kind (BPSC): (name, item linkIds); positive when any reaches `any_item_at_least`.
    subscales: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Missing items count as 0 (BPSC) instead of leaving no result.
    missing_counts_as_zero: bool = False
    #: Domains of a needs screen (AHC HRSN): name → item linkIds; a positive item names its domain.
    domains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Per-age cutoffs where lower is worse (SWYC Milestones).
    cutoffs_by_age: tuple[AgeCutoff, ...] = ()
    #: Whether the published cutoffs are per month of age ("month") or per age form ("form").
    cutoffs_per: str | None = None
    #: Correct the age for prematurity below this age (months) when born at least this many weeks early.
    corrects_for_prematurity: tuple[int, int] | None = None
    #: A positive result is itself a safety alert (HITS): (flag, advice).
    safety_when_positive: tuple[str, str] | None = None
    #: The lowest total (an entered total below it is refused: DLA-20 × 10 starts at 10).
    min_total: int = 0
    #: The total is the item sum times this (WHO-5: raw 0–25 × 4 = 0–100).
    multiply: int = 1
    #: Lower is worse: positive at or below this total (WHO-5 < 50 → at most 49); None: not decided this way.
    positive_at_most: int | None = None
    #: What counts as a clinically meaningful change between two totals (see `Change`).
    change: Change | None = None
    #: How blanks are handled (MISSING_RULES) and what the result says about it.
    missing_rule: str = "bounds"
    missing_text: str = ""
    #: Where the scoring rules come from (the published source), as the file cites it.
    source: str = ""
    #: The Questionnaire as published to the registry store (without wording for a site-supplied skeleton).
    questionnaire: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def url(self) -> str:
        return f"{QUESTIONNAIRE_BASE}/{self.key}"

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    @property
    def result_coding(self) -> tuple[str, str, str]:
        """(system, code, display) of the result Observation: the confirmed LOINC total, else Tandem's code."""
        if self.total_loinc:
            return LOINC, self.total_loinc, self.total_display
        return INSTRUMENT_SYSTEM, self.key, f"{self.name} result"

    @property
    def ships_wording(self) -> bool:
        """Whether the form can show the questions: bundled, or a site copy is loaded."""
        return self.licence_class == "bundled" or self.site_copy_loaded

    @property
    def enters_scores(self) -> bool:
        """The form takes scores instead of answers: score-only, or a site-supplied one without its copy."""
        return self.licence_class == "score-only" or not self.ships_wording

    @cached_property
    def form_items(self) -> tuple[Item, ...]:
        """What the form asks: the items; without a site copy, the total and the items the scoring needs (safety
        items), or for a result that is not a sum (BPSC subscales) each item's score on the licensed form. A
        score-only sum (DLA-20, SDS, BASIS-24) asks only its total."""
        if self.ships_wording or (self.licence_class == "score-only" and self.result_kind != "sum"):
            return self.items
        if self.result_kind != "sum":
            return tuple(replace(item, text=f"{self.name} question {self.number(item)} — its score on the licensed form",
                                 answers=tuple(replace(a, display=f"scored {a.score}") for a in item.answers))
                         for item in self.items)  # fmt: skip
        total = Item(TOTAL, f"{self.total_display} (from the practice's licensed form)", (), self.total_loinc,
                     kind="integer", min_value=self.min_total, max_value=self.max_total)  # fmt: skip
        needed = tuple(
            replace(item, text=f"{self.name} question {self.number(item)} — its score on the licensed form",
                    answers=tuple(replace(a, display=f"scored {a.score}") for a in item.answers))
            for item in self.items if item.link_id in self.safety_items
        )  # fmt: skip
        return (total, *needed)

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    def item(self, link_id: str) -> Item | None:
        return next((item for item in (*self.items, *self.form_items) if item.link_id == link_id), None)

    def number(self, item: Item) -> int:
        return next((n for n, candidate in enumerate(self.items, 1) if candidate.link_id == item.link_id), 0)

    def band(self, total: int | None) -> str | None:
        found = self.band_of(total)
        return found.label if found else None

    def band_of(self, total: int | None) -> Band | None:
        if total is None:
            return None
        return next((band for band in self.bands if band.low <= total <= band.high), None)

    def cutoff_for(self, age_months: int | None) -> AgeCutoff | None:
        if age_months is None:
            return None
        return next((c for c in self.cutoffs_by_age if c.low_months <= age_months <= c.high_months), None)

    @property
    def self_report(self) -> bool:
        """Whether a patient may answer it without the care team: allowed by its file and its wording present."""
        return self.self_report_allowed and (self.licence_class == "bundled" or self.site_copy_loaded)

    def for_age(self, months: int | None) -> bool:
        """Whether a patient of this age answers it about themself (an unknown age does not rule it out)."""
        return _within(self.ages_months, months)

    def for_caregiver_of(self, child_months: int | None) -> bool:
        """Whether a caregiver answers it about themself at the visit of a child of this age."""
        return self.caregiver_of_child_months is not None and child_months is not None and _within(
            self.caregiver_of_child_months, child_months)  # fmt: skip


# --- reading the files ------------------------------------------------------------------------------------------


def _extension(element: Mapping[str, Any], url: str) -> Any:
    return next((e for e in element.get("extension", []) if e.get("url") == url), {})


def _loinc_code(element: Mapping[str, Any]) -> str | None:
    return next((c.get("code") for c in element.get("code", []) if c.get("system") == LOINC), None)


def _items(questionnaire: Mapping[str, Any], unscored: set[str]) -> tuple[Item, ...]:
    items: list[Item] = []
    for entry in questionnaire.get("item", []):
        link_id = entry["linkId"]
        if link_id == TOTAL:
            continue
        answers: list[Answer] = []
        for option in entry.get("answerOption", []):
            coding = option["valueCoding"]
            weight = _extension(option, ITEM_WEIGHT).get("valueDecimal")
            if not isinstance(weight, int | float) or int(weight) != weight:
                raise InstrumentError(
                    f"{link_id}: answer {coding.get('code')} has no whole-number itemWeight"
                )
            answers.append(Answer(coding["code"], coding.get("display", ""), int(weight),
                                  coding.get("system", LOINC)))  # fmt: skip
        enable_when = None
        if entry.get("enableWhen"):
            conditions = entry["enableWhen"]
            enable_when = (conditions[0]["question"], tuple(c["answerCoding"]["code"] for c in conditions))
        kind = entry.get("type")
        if kind not in ("choice", "integer"):
            raise InstrumentError(f"{link_id}: type {kind!r} (a scored item is a choice or an integer)")
        if kind == "choice" and not answers:
            raise InstrumentError(f"{link_id}: a choice item without answer options")
        items.append(Item(
            link_id, entry.get("text", ""), tuple(answers), _loinc_code(entry), link_id not in unscored,
            enable_when, kind, int(_extension(entry, MIN_VALUE).get("valueInteger", 0)),
            int(_extension(entry, MAX_VALUE).get("valueInteger", 0)),
        ))  # fmt: skip
    return tuple(items)


def _within(bounds: tuple[int, int | None] | None, months: int | None) -> bool:
    if bounds is None or months is None:
        return True
    low, high = bounds
    return low <= months and (high is None or months <= high)


def _age_bounds(value: Any, field_name: str) -> tuple[int, int | None] | None:
    bounds = age_bounds(value)
    if value is not None and bounds is None:
        raise InstrumentError(
            f"{field_name} must be [lowest, highest] completed months (highest may be null)"
        )
    return bounds


SCORING_KEYS = frozenset(
    {
        "key",
        "name",
        "order",
        "licence",
        "result",
        "unscored",
        "missing",
        "bands",
        "positive",
        "safety",
        "safety_levels",
        "safety_flag",
        "reverse_scored",
        "ages_months",
        "caregiver_of_child_months",
        "domains",
        "cutoffs_by_age",
        "corrects_for_prematurity",
        "safety_when_positive",
        "change",
        "self_report",
        "source",
        "cutoffs_per",
        "_comment",
    }
)


def _check_scoring(key: str, rules: Mapping[str, Any], items: tuple[Item, ...]) -> None:
    link_ids = {item.link_id for item in items}
    unknown_keys = sorted(set(rules) - SCORING_KEYS)
    if unknown_keys:
        raise InstrumentError(f"unknown scoring field(s): {', '.join(unknown_keys)}")
    if rules.get("key") != key:
        raise InstrumentError(f"key {rules.get('key')!r} does not match the file name {key!r}")
    if not isinstance(rules.get("source"), str) or not rules["source"].strip():
        raise InstrumentError("source must cite where the scoring rules come from")
    missing = rules.get("missing")
    if (
        not isinstance(missing, Mapping)
        or missing.get("rule") not in MISSING_RULES
        or not missing.get("text")
    ):
        raise InstrumentError(
            f"missing must name its rule ({', '.join(MISSING_RULES)}) and the text shown with a result that has "
            "blanks"
        )
    if (missing["rule"] == "prorate") != isinstance(missing.get("prorate_up_to"), int):
        raise InstrumentError('missing.prorate_up_to goes with (and only with) the "prorate" rule')
    if rules.get("cutoffs_per") not in (None, "month", "form"):
        raise InstrumentError('cutoffs_per is "month" or "form"')
    licence = rules.get("licence", {})
    if licence.get("class") not in LICENCE_CLASSES or not licence.get("text"):
        raise InstrumentError(f"licence must name a class ({', '.join(LICENCE_CLASSES)}) and its text")
    result = rules.get("result", {})
    if result.get("kind") not in RESULT_KINDS:
        raise InstrumentError(f"result.kind must be one of {', '.join(RESULT_KINDS)}")
    named = [s["item"] for s in rules.get("safety", [])] + list(rules.get("unscored", []))
    named += list(rules.get("reverse_scored", []))
    named += [c["item"] for level in result.get("levels", []) for c in level.get("when", [])]
    named += [i for sub in result.get("subscales", []) for i in sub["items"]]
    named += [i for members in rules.get("domains", {}).values() for i in members]
    if result.get("kind") == "subscales" and not result.get("subscales"):
        raise InstrumentError("a subscales result lists its subscales")
    if rules.get("cutoffs_by_age") and not rules.get("cutoffs_per"):
        raise InstrumentError(
            'cutoffs_by_age needs cutoffs_per: "month" or "form" (as the published table has them)'
        )
    for cutoff in rules.get("cutoffs_by_age", []):
        low, high = cutoff["months"]
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
            raise InstrumentError("cutoffs_by_age months must be [lowest, highest] completed months")
        if rules.get("cutoffs_per") == "month" and low != high:
            raise InstrumentError(
                f"cutoffs are per month of age: {low}–{high} months must be one entry a month"
            )
        if not cutoff.get("_source"):
            raise InstrumentError("every cutoff cites its source (_source)")
        if not 0 <= int(cutoff["needs_review_at_most"]) <= int(result.get("max", 0)):
            raise InstrumentError("a cutoff must lie between 0 and result.max")
    unknown = sorted(set(named) - link_ids)
    if unknown:
        raise InstrumentError(
            f"the scoring names items the Questionnaire does not have: {', '.join(unknown)}"
        )
    change = rules.get("change")
    if change is not None and (change.get("better") not in ("higher", "lower")
                               or (change.get("points") is None) == (change.get("percent") is None)):  # fmt: skip
        raise InstrumentError('change needs "better" (higher or lower) and either "points" or "percent"')
    if (
        change is not None
        and change.get("percent") is not None
        and change.get("convention") not in CHANGE_CONVENTIONS
    ):
        raise InstrumentError(f"a percent change names its convention ({', '.join(CHANGE_CONVENTIONS)})")
    if int(result.get("multiply", 1)) < 1:
        raise InstrumentError("result.multiply must be a whole number of at least 1")
    bands = rules.get("bands", [])
    for low, high in zip(bands, bands[1:], strict=False):
        if low["high"] + 1 != high["low"]:
            raise InstrumentError(f"bands {low['label']!r} and {high['label']!r} leave a gap or overlap")
    if bands and (bands[0]["low"] != 0 or bands[-1]["high"] != result.get("max")):
        raise InstrumentError("bands must cover 0 to result.max")
    for link_id in rules.get("reverse_scored", []):
        item = next(i for i in items if i.link_id == link_id)
        scores = [a.score for a in item.answers]
        if scores != sorted(scores, reverse=True):
            raise InstrumentError(
                f"{link_id} is listed as reverse-scored but its weights do not run high to low"
            )


def _instrument(key: str, questionnaire: dict[str, Any], rules: Mapping[str, Any]) -> Instrument:
    problems = r4_errors(questionnaire)
    if problems:
        raise InstrumentError(f"not a valid R4 Questionnaire: {problems[0]}")
    items = _items(questionnaire, set(rules.get("unscored", [])))
    _check_scoring(key, rules, items)
    result = rules["result"]
    positive = rules.get("positive", {})
    ages = _age_bounds(rules.get("ages_months"), "ages_months")
    caregiver_ages = _age_bounds(rules.get("caregiver_of_child_months"), "caregiver_of_child_months")
    return Instrument(
        key=key,
        name=rules["name"],
        title=questionnaire.get("title", rules["name"]),
        items=items,
        preamble=questionnaire.get("description", ""),
        panel_loinc=_loinc_code(questionnaire),
        total_loinc=result.get("code"),
        total_display=result.get("display", rules["name"]),
        max_total=int(result.get("max", 0)),
        min_total=int(result.get("min", 0)),
        bands=tuple(Band(b["low"], b["high"], b["label"], b.get("advice")) for b in rules.get("bands", [])),
        positive_at=positive.get("at_least", positive.get("otherwise")),
        positive_by_sex=dict(positive.get("at_least_by_sex", {})),
        max_missing=int(rules["missing"].get("prorate_up_to", 0)),
        missing_rule=str(rules["missing"]["rule"]),
        missing_text=str(rules["missing"]["text"]),
        source=str(rules["source"]),
        version=questionnaire.get("version", "1.0.0"),
        safety_items={s["item"]: int(s["at_least"]) for s in rules.get("safety", [])},
        copyright=rules["licence"]["text"],
        licence_class=rules["licence"]["class"],
        result_kind=result["kind"],
        levels=tuple(
            Level(
                level["level"],
                tuple((c["item"], c["answer"]) for c in level["when"]),
                bool(level.get("monitor")),
            )
            for level in result.get("levels", [])
        ),  # fmt: skip
        otherwise=result.get("otherwise"),
        phrase=result.get("phrase"),
        safety_levels={s["level"]: s["advice"] for s in rules.get("safety_levels", [])},
        safety_flag=rules.get("safety_flag", "suicide-risk" if rules.get("safety_levels") else "self-harm"),
        labels=dict(result.get("labels", {})),
        any_item_at_least=int(result.get("at_least", 1)),
        history=result.get("history"),
        ages_months=ages,
        caregiver_of_child_months=caregiver_ages,
        order=int(rules.get("order", 0)),
        self_report_allowed=bool(rules.get("self_report")),
        subscales=tuple((str(s["name"]), tuple(s["items"])) for s in result.get("subscales", [])),
        missing_counts_as_zero=rules["missing"]["rule"] == "zero",
        domains={str(name): tuple(members) for name, members in rules.get("domains", {}).items()},
        cutoffs_by_age=tuple(
            AgeCutoff(int(c["months"][0]), int(c["months"][1]), int(c["needs_review_at_most"]))
            for c in rules.get("cutoffs_by_age", [])
        ),  # fmt: skip
        cutoffs_per=rules.get("cutoffs_per"),
        corrects_for_prematurity=(
            (
                int(rules["corrects_for_prematurity"]["below_months"]),
                int(rules["corrects_for_prematurity"]["weeks_early_at_least"]),
            )
            if rules.get("corrects_for_prematurity")
            else None
        ),  # fmt: skip
        safety_when_positive=(
            (str(rules["safety_when_positive"]["flag"]), str(rules["safety_when_positive"]["advice"]))
            if rules.get("safety_when_positive")
            else None
        ),  # fmt: skip
        multiply=int(result.get("multiply", 1)),
        positive_at_most=positive.get("at_most"),
        change=Change(
            rules["change"]["better"],
            rules["change"].get("points"),
            rules["change"].get("percent"),
            str(rules["change"].get("convention", "raw")),
            int(result.get("min", 0)),
        )
        if rules.get("change")
        else None,
        questionnaire={
            **questionnaire,
            "id": f"tandem-{key}",
            "url": f"{QUESTIONNAIRE_BASE}/{key}",
            "copyright": rules["licence"]["text"],
        },  # fmt: skip
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InstrumentError(f"{path.name}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise InstrumentError(f"{path.name}: not a JSON object")
    return data


def _with_site_copy(instrument: Instrument, site: Mapping[str, Any]) -> Instrument:
    """The skeleton with the wording of the practice's licensed copy, which must have the same structure."""
    problems = r4_errors(dict(site))
    if problems:
        raise InstrumentError(f"not a valid R4 Questionnaire: {problems[0]}")
    site_items = {entry.get("linkId"): entry for entry in site.get("item", []) if isinstance(entry, Mapping)}
    worded: list[Item] = []
    for item in instrument.items:
        entry = site_items.get(item.link_id)
        if entry is None:
            raise InstrumentError(f"item {item.link_id} is missing from the site copy")
        options = [o.get("valueCoding", {}) for o in entry.get("answerOption", [])]
        if [(o.get("system"), o.get("code")) for o in options] != [(a.system, a.code) for a in item.answers]:
            raise InstrumentError(f"item {item.link_id}: the answer codes differ from Tandem's structure")
        weights = [_extension(o, ITEM_WEIGHT).get("valueDecimal") for o in entry.get("answerOption", [])]
        if any(w is not None and w != a.score for w, a in zip(weights, item.answers, strict=True)):
            raise InstrumentError(f"item {item.link_id}: the answer weights differ from Tandem's scoring")
        if not entry.get("text"):
            raise InstrumentError(f"item {item.link_id} has no wording in the site copy")
        answers = tuple(replace(a, display=o.get("display") or a.display)
                        for a, o in zip(item.answers, options, strict=True))  # fmt: skip
        worded.append(replace(item, text=entry["text"], answers=answers))
    extra = sorted(str(k) for k in set(site_items) - {i.link_id for i in instrument.items} - {TOTAL})
    if extra:
        raise InstrumentError(f"the site copy has items Tandem's structure does not: {', '.join(extra)}")
    preamble = site.get("description") or instrument.preamble
    return replace(instrument, items=tuple(worded), preamble=preamble, site_copy_loaded=True)


@dataclass(frozen=True)
class Catalogue:
    """Every instrument Tandem knows, keyed by its key, with the site copies a deployment loaded."""

    instruments: Mapping[str, Instrument]

    def get(self, key: str | None) -> Instrument | None:
        return self.instruments.get(key or "")

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self.instruments.values())

    def history_codings(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Score series name → the (system, code) of the results read into it: the LOINC total where one is
        confirmed, else Tandem's instrument code (WHO-5, BPRS, ASRM: results kept only in the registry)."""
        series: dict[str, tuple[tuple[str, str], ...]] = {}
        for instrument in self.instruments.values():
            if instrument.history:
                series[instrument.history] = (
                    *series.get(instrument.history, ()),
                    instrument.result_coding[:2],
                )
        return series

    def history_codes(self) -> dict[str, tuple[str, ...]]:
        """Score series name → the LOINC codes of the totals read into it (what an EHR can hold)."""
        return {name: codes for name, codings in self.history_codings().items()
                if (codes := tuple(code for system, code in codings if system == LOINC))}  # fmt: skip

    def series_instrument(self, series: str) -> Instrument | None:
        """The instrument whose bands and scale a score series is drawn on (the first one feeding it)."""
        return next((i for i in self.instruments.values() if i.history == series), None)

    def by_result_code(self) -> dict[tuple[str, str], Instrument]:
        """(system, code) of a result Observation → its instrument."""
        return {i.result_coding[:2]: i for i in self.instruments.values()}

    def score_code_param(self, *, registry: bool = False) -> str:
        """The `code` search parameter for every score series: the LOINC totals (the EHR's), and with `registry`
        also Tandem's own instrument codes (only the registry store holds those)."""
        return ",".join(f"{system}|{code}" for codings in self.history_codings().values()
                        for system, code in codings if registry or system == LOINC)  # fmt: skip


def load_catalogue(site_folder: Path | None = None, folder: Path = DATA_FOLDER) -> Catalogue:
    """Read and check every instrument; a site folder supplies licensed copies (`<key>.json`)."""
    instruments: dict[str, Instrument] = {}
    for path in sorted(folder.glob("*.scoring.json")):
        key = path.name.removesuffix(".scoring.json")
        try:
            instrument = _instrument(key, _read_json(folder / f"{key}.questionnaire.json"), _read_json(path))
            site_copy = site_folder / f"{key}.json" if site_folder else None
            if site_copy is not None and site_copy.is_file():
                if instrument.licence_class != "site-supplied":
                    raise InstrumentError(
                        f"{site_copy} is a site copy, but {key} is {instrument.licence_class}"
                    )
                instrument = _with_site_copy(instrument, _read_json(site_copy))
        except (KeyError, TypeError, IndexError) as exc:
            raise InstrumentError(f"instrument {key}: missing or malformed {exc}") from None
        except InstrumentError as exc:
            raise InstrumentError(f"instrument {key}: {exc}") from None
        instruments[key] = instrument
    if site_folder is not None and not site_folder.is_dir():
        raise InstrumentError(f"the site instrument folder {site_folder} does not exist")
    return Catalogue(dict(sorted(instruments.items(), key=lambda pair: (pair[1].order, pair[0]))))


#: The shipped catalogue without site copies: what pure code and tests read.
CATALOGUE = load_catalogue()
INSTRUMENTS: Mapping[str, Instrument] = CATALOGUE.instruments


def instrument_for(key: str | None) -> Instrument | None:
    return CATALOGUE.get(key)

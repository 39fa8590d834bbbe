"""Scoring by each instrument's published rules. Pure and total: odd input gives errors or None, never raises.

Rules for incomplete answers (stated here and shown to clinicians):
- PHQ-9, teen PHQ-9 and GAD-7: with up to 2 scored items unanswered the total is prorated (the mean of the
  answered items times the number of items, rounded half up) and marked as prorated; with more, there is no total.
- PHQ-2, EPDS, AUDIT-C and the Hunger Vital Sign: every item is needed; otherwise there is no total.
- C-SSRS screener: questions 1, 2 and 6 are always needed, and 3-5 when question 2 is yes.
- A safety item that is unanswered never counts as negative: the result says it must be asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from fhir_mappings.screening.instruments import AUDIT_C, CSSRS, HUNGER_VITAL_SIGN, Answer, Instrument, Item


@dataclass(frozen=True)
class AnswerError:
    link_id: str
    message: str


@dataclass(frozen=True)
class SafetyFlag:
    code: str
    message: str
    link_id: str | None = None


@dataclass(frozen=True)
class ScoreResult:
    instrument: str
    total: int | None
    band: str | None
    positive: bool | None
    interpretation: str
    safety: tuple[SafetyFlag, ...] = ()
    item_scores: dict[str, int] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    prorated: bool = False
    #: C-SSRS risk level, or the Hunger Vital Sign's risk ("at risk" / "no risk").
    risk_level: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def has_safety_flag(self) -> bool:
        return bool(self.safety)


def _label(instrument: Instrument, item: Item) -> str:
    number = instrument.items.index(item) + 1
    return f"question {number} ({item.text[:60]}{'…' if len(item.text) > 60 else ''})"


def _enabled(item: Item, answers: Mapping[str, Answer]) -> bool:
    if item.enable_when is None:
        return True
    link_id, codes = item.enable_when
    answer = answers.get(link_id)
    return answer is not None and answer.code in codes


def parse_answers(
    instrument: Instrument, raw: Mapping[str, str]
) -> tuple[dict[str, Answer], list[AnswerError]]:
    """Answers keyed by linkId from submitted answer codes; every invalid answer is named in an error."""
    answers: dict[str, Answer] = {}
    errors: list[AnswerError] = []
    for link_id in raw:
        if instrument.item(link_id) is None:
            errors.append(AnswerError(link_id, f"{link_id!r} is not a question of the {instrument.name}"))
    for item in instrument.items:
        value = (raw.get(item.link_id) or "").strip()
        if not value:
            continue
        answer = next((a for a in item.answers if a.code == value), None)
        if answer is None:
            errors.append(
                AnswerError(item.link_id, f"{_label(instrument, item)}: {value!r} is not one of its answers")
            )
            continue
        answers[item.link_id] = answer
    for item in instrument.items:
        if item.link_id in answers and not _enabled(item, answers):
            errors.append(AnswerError(item.link_id, f"{_label(instrument, item)} is asked only when question "
                                                    f"{item.enable_when[0].rsplit('-', 1)[-1] if item.enable_when else ''}"
                                                    " is yes"))  # fmt: skip
    return answers, errors


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def score(instrument: Instrument, answers: Mapping[str, Answer], *, sex: str | None = None) -> ScoreResult:
    if instrument is CSSRS:
        return _score_cssrs(answers)
    scored = [item for item in instrument.scored_items if _enabled(item, answers)]
    item_scores = {item.link_id: answers[item.link_id].score for item in scored if item.link_id in answers}
    missing = tuple(item.link_id for item in scored if item.link_id not in answers)
    safety, notes = _safety(instrument, answers)

    total: int | None = None
    prorated = False
    if not missing:
        total = sum(item_scores.values())
    elif len(missing) <= instrument.max_missing and item_scores:
        total = _round_half_up(Decimal(sum(item_scores.values())) * len(scored) / len(item_scores))
        prorated = True
        notes += (
            f"{len(missing)} of {len(scored)} items unanswered: total prorated from the answered items.",
        )
    else:
        notes += (f"{len(missing)} of {len(scored)} items unanswered: no total (the {instrument.name} allows "
                  f"{instrument.max_missing}).",)  # fmt: skip

    if instrument is HUNGER_VITAL_SIGN:
        at_risk = None if missing else any(s >= 1 for s in item_scores.values())
        risk = None if at_risk is None else ("at risk" if at_risk else "no risk")
        text = "Incomplete" if risk is None else f"Food insecurity: {risk}"
        return ScoreResult(instrument.key, None, risk, at_risk, text, safety, item_scores, missing, False, risk,
                           notes)  # fmt: skip

    positive_at = instrument.positive_at
    if instrument is AUDIT_C:
        positive_at = 4 if sex == "male" else 3
        notes += ("Positive at ≥4 for men and ≥3 for women" + ("" if sex in ("male", "female") else
                  "; sex not recorded, so the lower cutoff (≥3) applies") + ".",)  # fmt: skip
    positive = None if total is None or positive_at is None else total >= positive_at
    band = instrument.band(total)
    return ScoreResult(
        instrument=instrument.key,
        total=total,
        band=band,
        positive=positive,
        interpretation=_interpretation(instrument, total, band, positive, positive_at, prorated),
        safety=safety,
        item_scores=item_scores,
        missing=missing,
        prorated=prorated,
        notes=notes,
    )


def _safety(
    instrument: Instrument, answers: Mapping[str, Answer]
) -> tuple[tuple[SafetyFlag, ...], tuple[str, ...]]:
    flags = []
    notes = []
    for link_id, threshold in instrument.safety_items.items():
        item = instrument.item(link_id)
        if item is None:
            continue
        answer = answers.get(link_id)
        if answer is None:
            notes.append(
                f"The self-harm question ({_label(instrument, item)}) was not answered: ask it today."
            )
        elif answer.score >= threshold:
            number = instrument.items.index(item) + 1
            asked = (f"(“{item.text}”) was answered “{answer.display}”" if instrument.ships_wording
                     else f"(self-harm) scored {answer.score} of 3")  # fmt: skip
            flags.append(SafetyFlag(
                "self-harm",
                f"{instrument.name} question {number} {asked}. Assess suicide risk today and arrange same-day "
                "follow-up.",
                link_id,
            ))  # fmt: skip
    return tuple(flags), tuple(notes)


def _interpretation(instrument: Instrument, total: int | None, band: str | None, positive: bool | None,
                    positive_at: int | None, prorated: bool) -> str:  # fmt: skip
    if total is None:
        return f"{instrument.name}: incomplete, no total"
    text = f"{instrument.name} {total}{' (prorated)' if prorated else ''}"
    if band:
        text += f": {band}"
    if positive is not None and positive_at is not None:
        text += f"; {'positive' if positive else 'negative'} screen (positive at ≥{positive_at})"
    return text


def _score_cssrs(answers: Mapping[str, Answer]) -> ScoreResult:
    def yes(link_id: str) -> bool:
        answer = answers.get(link_id)
        return answer is not None and answer.code == "LA33-6"

    required = ["cssrs-1", "cssrs-2", "cssrs-6"] + (
        ["cssrs-3", "cssrs-4", "cssrs-5"] if yes("cssrs-2") else []
    )
    missing = tuple(link_id for link_id in required if link_id not in answers)
    behaviour = answers.get("cssrs-6")
    # The highest level any answered question reaches; an unanswered question never lowers it (it can only
    # be asked): "yes" to 3 with 4 blank is moderate risk, not "incomplete".
    risk: str | None
    if yes("cssrs-4") or yes("cssrs-5") or (behaviour is not None and behaviour.code == "yes-3-months"):
        risk = "high"
    elif yes("cssrs-3") or (behaviour is not None and behaviour.code == "yes-lifetime"):
        risk = "moderate"
    elif yes("cssrs-1") or yes("cssrs-2"):
        risk = "low"
    elif missing:
        risk = None  # nothing positive yet, but not everything was asked: no level can be given
    else:
        risk = "none"
    safety: tuple[SafetyFlag, ...] = ()
    if risk in ("moderate", "high"):
        safety = (SafetyFlag("suicide-risk", f"C-SSRS screener: {risk} risk. Assess today; "
                             + ("do not leave the patient alone; arrange emergency evaluation."
                                if risk == "high" else "arrange same-day follow-up with a behavioral health "
                                "clinician.")),)  # fmt: skip
    asked = ", ".join("question " + link_id.rsplit("-", 1)[-1] for link_id in missing)
    notes = (f"Not answered: {asked}. Ask {'it' if len(missing) == 1 else 'them'} today: the risk level can "
             "only go up.",) if missing else ()  # fmt: skip
    text = "C-SSRS screener: incomplete" if risk is None else f"C-SSRS screener: {risk} risk"
    if risk is not None and missing:
        text += f" (at least; {asked} not answered)"
    return ScoreResult(
        instrument=CSSRS.key,
        total=None,
        band=risk,
        positive=None if risk is None else risk != "none",
        interpretation=text,
        safety=safety,
        item_scores={k: a.score for k, a in answers.items()},
        missing=missing,
        risk_level=risk,
        notes=notes,
    )

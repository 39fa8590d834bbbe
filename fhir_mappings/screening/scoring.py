"""One scoring engine for every instrument, driven by its scoring description (data/instruments/*.scoring.json).
Pure and total: odd input gives errors or None, never raises.

Result kinds: `sum` (a total, bands, a positive cutoff — by sex where the description says so), `any-item` (positive
when any item reaches a score: Hunger Vital Sign) and `levels` (the highest level any answered question reaches:
C-SSRS risk, ASQ zones).

Rules for incomplete answers (stated here and shown to clinicians):
- PHQ-9, teen PHQ-9 and GAD-7: with up to 2 scored items unanswered the total is prorated (the mean of the
  answered items times the number of items, rounded half up) and marked as prorated; with more, there is no total.
- PHQ-2, EPDS, AUDIT-C and the Hunger Vital Sign: every item is needed; otherwise there is no total.
- C-SSRS screener: questions 1, 2 and 6 are always needed, and 3-5 when question 2 is yes.
- A site-supplied instrument without its licensed copy (EPDS): the entered total, checked against the range, and
  the safety item's score; a total lower than the safety item's score is refused.
- A safety item that is unanswered never counts as negative: the result says it must be asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

from fhir_mappings.screening.instruments import TOTAL, Answer, Instrument, Item


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
    #: A positive result that means "monitor" rather than "refer" (ASQ monitoring zone).
    monitor: bool = False

    @property
    def has_safety_flag(self) -> bool:
        return bool(self.safety)


def _label(instrument: Instrument, item: Item) -> str:
    number = instrument.number(item)
    if not item.text or number == 0:
        return item.text or f"question {number}"
    return f"question {number} ({item.text[:60]}{'…' if len(item.text) > 60 else ''})"


def _enabled(item: Item, answers: Mapping[str, Answer]) -> bool:
    if item.enable_when is None:
        return True
    link_id, codes = item.enable_when
    answer = answers.get(link_id)
    return answer is not None and answer.code in codes


def _integer(item: Item, value: str) -> Answer | None:
    try:
        number = int(value)
    except ValueError:
        return None
    if not item.min_value <= number <= item.max_value:
        return None
    return Answer(str(number), str(number), number, "", integer=True)


def parse_answers(
    instrument: Instrument, raw: Mapping[str, str]
) -> tuple[dict[str, Answer], list[AnswerError]]:
    """Answers keyed by linkId from submitted answer codes (or entered scores); every invalid one is named."""
    answers: dict[str, Answer] = {}
    errors: list[AnswerError] = []
    form = instrument.form_items
    for link_id in raw:
        if not any(item.link_id == link_id for item in form):
            errors.append(AnswerError(link_id, f"{link_id!r} is not a question of the {instrument.name}"))
    for item in form:
        value = (raw.get(item.link_id) or "").strip()
        if not value:
            continue
        if item.kind == "integer":
            answer = _integer(item, value)
            if answer is None:
                errors.append(AnswerError(item.link_id, f"{item.text or item.link_id}: {value!r} is not a whole "
                                                        f"number from {item.min_value} to {item.max_value}"))  # fmt: skip
                continue
        else:
            answer = next((a for a in item.answers if a.code == value), None)
            if answer is None:
                errors.append(AnswerError(item.link_id, f"{_label(instrument, item)}: {value!r} is not one of "
                                                        "its answers"))  # fmt: skip
                continue
        answers[item.link_id] = answer
    for item in form:
        if item.link_id in answers and not _enabled(item, answers):
            asked = instrument.item(item.enable_when[0]) if item.enable_when else None
            number = instrument.number(asked) if asked else 0
            errors.append(AnswerError(item.link_id, f"{_label(instrument, item)} is asked only when question "
                                                    f"{number} is yes"))  # fmt: skip
    entered = answers.get(TOTAL)
    for link_id in instrument.safety_items:
        if entered is not None and link_id in answers and answers[link_id].score > entered.score:
            errors.append(AnswerError(TOTAL, f"the total ({entered.score}) is lower than the score of "
                                             f"{_label(instrument, instrument.item(link_id) or form[0])}"))  # fmt: skip
    return answers, errors


def _round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def score(instrument: Instrument, answers: Mapping[str, Answer], *, sex: str | None = None,
          age_months: int | None = None) -> ScoreResult:  # fmt: skip
    """`age_months`: the child's age (corrected where the instrument says) for per-age-form cutoffs."""
    if instrument.result_kind == "levels":
        return _score_levels(instrument, answers)
    if instrument.result_kind == "subscales":
        return _score_subscales(instrument, answers)
    result = _score(instrument, answers, sex, age_months)
    if result.positive and instrument.safety_when_positive:
        flag, advice = instrument.safety_when_positive
        message = f"{instrument.name} positive ({result.interpretation}). {advice}"
        result = replace(result, safety=(*result.safety, SafetyFlag(flag, message)))
    return result


def _score(instrument: Instrument, answers: Mapping[str, Answer], sex: str | None,
           age_months: int | None) -> ScoreResult:  # fmt: skip
    safety, notes = _safety(instrument, answers)
    total: int | None = None
    prorated = False
    if instrument.enters_scores and instrument.result_kind == "sum":
        entered = answers.get(TOTAL)
        item_scores = {k: a.score for k, a in answers.items() if k != TOTAL}
        missing: tuple[str, ...] = () if entered else (TOTAL,)
        total = entered.score if entered else None
        notes += ("Total entered from the practice's licensed form." if entered else
                  f"No total entered: the {instrument.name} needs it.",)  # fmt: skip
    else:
        scored = [item for item in instrument.scored_items if _enabled(item, answers)]
        item_scores = {
            item.link_id: answers[item.link_id].score for item in scored if item.link_id in answers
        }
        missing = tuple(item.link_id for item in scored if item.link_id not in answers)
        if not missing:
            total = sum(item_scores.values()) * instrument.multiply
        elif len(missing) <= instrument.max_missing and item_scores:
            total = _round_half_up(
                Decimal(sum(item_scores.values())) * len(scored) / len(item_scores) * instrument.multiply
            )
            prorated = True
            notes += (
                f"{len(missing)} of {len(scored)} items unanswered: total prorated from the answered items.",
            )
        else:
            notes += (f"{len(missing)} of {len(scored)} items unanswered: no total (the {instrument.name} allows "
                      f"{instrument.max_missing}).",)  # fmt: skip

    if instrument.result_kind == "any-item":
        at_risk = None if missing else any(s >= instrument.any_item_at_least for s in item_scores.values())
        risk = None if at_risk is None else instrument.labels.get("positive" if at_risk else "negative")
        needs = [name for name, members in instrument.domains.items()
                 if any(item_scores.get(m, 0) >= instrument.any_item_at_least for m in members)]  # fmt: skip
        if needs:
            notes += (f"Positive: {', '.join(needs)}.",)
        text = (
            "Incomplete"
            if risk is None
            else (instrument.phrase or "{level}").format(name=instrument.name, level=risk)
        )
        return ScoreResult(instrument.key, None, risk, at_risk, text, safety, item_scores, missing, False, risk,
                           notes)  # fmt: skip

    positive_at = instrument.positive_at
    if instrument.positive_by_sex:
        positive_at = instrument.positive_by_sex.get(sex or "", instrument.positive_at)
        cutoffs = " and ".join(f"≥{cut} for {'men' if s == 'male' else 'women' if s == 'female' else s}"
                               for s, cut in instrument.positive_by_sex.items())  # fmt: skip
        notes += (f"Positive at {cutoffs}" + ("" if sex in instrument.positive_by_sex else
                  f"; sex not recorded, so the cutoff ≥{instrument.positive_at} applies") + ".",)  # fmt: skip
    positive = None if total is None or positive_at is None else total >= positive_at
    if instrument.positive_at_most is not None and total is not None:
        positive = total <= instrument.positive_at_most
    band = instrument.band(total)
    advice = instrument.band_of(total)
    if advice is not None and advice.advice:
        notes += (advice.advice,)
    if instrument.cutoffs_by_age:
        return _score_age_form(instrument, total, age_months, safety, item_scores, missing, notes)
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


def _score_age_form(instrument: Instrument, total: int | None, age_months: int | None,
                    safety: tuple[SafetyFlag, ...], item_scores: dict[str, int], missing: tuple[str, ...],
                    notes: tuple[str, ...]) -> ScoreResult:  # fmt: skip
    """Lower is worse, and the cutoff is the age form's (SWYC Milestones): at or below it needs review. A form
    whose cutoff the site has not set is recorded with the score and no verdict."""
    cutoff = instrument.cutoff_for(age_months)
    if total is None:
        text, positive, band = f"{instrument.name}: incomplete, no score", None, None
    elif cutoff is None:
        where = f"the {age_months}-month form" if age_months is not None else "this form (age unknown)"
        text, positive, band = f"{instrument.name} {total}", None, None
        notes += (f"No cutoff is set in Tandem for {where}: read it from the SWYC scoring table.",)
    else:
        positive = total <= cutoff.needs_review_at_most
        band = "needs review" if positive else "meets expectations"
        text = (f"{instrument.name} {total}: {band} (needs review at ≤{cutoff.needs_review_at_most} on the "
                f"{cutoff.low_months}–{cutoff.high_months}-month form)")  # fmt: skip
    return ScoreResult(
        instrument.key, total, band, positive, text, safety, item_scores, missing, False, None, notes
    )


def _score_subscales(instrument: Instrument, answers: Mapping[str, Answer]) -> ScoreResult:
    """Each subscale's sum; positive when any reaches the cutoff (BPSC: ≥3 on any subscale). Missing items count
    as 0 where the instrument says so; otherwise a subscale with a missing item has no score."""
    item_scores = {k: a.score for k, a in answers.items()}
    missing = tuple(item.link_id for item in instrument.scored_items if item.link_id not in answers)
    sums: dict[str, int | None] = {}
    for name, members in instrument.subscales:
        answered = [m for m in members if m in item_scores]
        # Missing items count as 0 (BPSC), but a subscale with nothing answered has no score: a blank form is
        # incomplete, never negative.
        if (instrument.missing_counts_as_zero and answered) or len(answered) == len(members):
            sums[name] = sum(item_scores.get(m, 0) for m in members)
        else:
            sums[name] = None
    cut = instrument.any_item_at_least
    high = [name for name, value in sums.items() if value is not None and value >= cut]
    positive: bool | None = True if high else (None if any(v is None for v in sums.values()) else False)
    label = None if positive is None else instrument.labels.get("positive" if positive else "negative")
    shown = ", ".join(f"{name} {'—' if value is None else value}" for name, value in sums.items())
    text = f"{instrument.name}: {label or 'incomplete'} ({shown}; positive at ≥{cut} on any subscale)"
    notes: tuple[str, ...] = ()
    if missing and instrument.missing_counts_as_zero:
        notes = (f"{len(missing)} item{'s' if len(missing) != 1 else ''} unanswered, counted as 0.",)
    return ScoreResult(
        instrument.key, None, label, positive, text, (), item_scores, missing, False, label, notes
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
            number = instrument.number(item)
            top = max((a.score for a in item.answers), default=answer.score)
            asked = (f"(“{item.text}”) was answered “{answer.display}”" if instrument.ships_wording
                     else f"(self-harm) scored {answer.score} of {top}")  # fmt: skip
            flags.append(SafetyFlag(
                instrument.safety_flag,
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
    elif positive is not None and instrument.positive_at_most is not None:
        text += (
            f"; {'positive' if positive else 'negative'} screen (positive at ≤{instrument.positive_at_most})"
        )
    return text


def _score_levels(instrument: Instrument, answers: Mapping[str, Answer]) -> ScoreResult:
    """The highest level any answered question reaches; an unanswered question never lowers it (it can only be
    asked): "yes" to C-SSRS question 3 with 4 blank is moderate risk, not "incomplete"."""
    required = [item for item in instrument.items if item.scored and _enabled(item, answers)]
    missing = tuple(item.link_id for item in required if item.link_id not in answers)
    reached = next(
        (level for level in instrument.levels
         if any(answers.get(link_id) is not None and answers[link_id].code == code for link_id, code in level.when)),
        None,
    )  # fmt: skip
    level: str | None = reached.label if reached else None
    if level is None and not missing:
        level = instrument.otherwise
    safety: tuple[SafetyFlag, ...] = ()
    if level in instrument.safety_levels:
        safety = (SafetyFlag(instrument.safety_flag, f"{instrument.name}: {level} risk. Assess today; "
                             f"{instrument.safety_levels[level]}"),)  # fmt: skip
    numbers = [instrument.number(item) for item in required if item.link_id in missing]
    asked = ", ".join(f"question {number}" for number in numbers)
    notes = (f"Not answered: {asked}. Ask {'it' if len(missing) == 1 else 'them'} today: the "
             f"{'risk ' if instrument.safety_levels else ''}level can only go up.",) if missing else ()  # fmt: skip
    phrase = instrument.phrase or "{name}: {level}"
    text = (
        f"{instrument.name}: incomplete"
        if level is None
        else phrase.format(name=instrument.name, level=level)
    )
    if level is not None and missing:
        text += f" (at least; {asked} not answered)"
    return ScoreResult(
        instrument=instrument.key,
        total=None,
        band=level,
        positive=None if level is None else level != instrument.otherwise,
        interpretation=text,
        safety=safety,
        item_scores={k: a.score for k, a in answers.items()},
        missing=missing,
        risk_level=level,
        notes=notes,
        monitor=bool(reached and reached.monitor),
    )

"""One scoring engine for every instrument, driven by its scoring description (data/instruments/*.scoring.json).
Pure and total: odd input gives errors or None, never raises.

Result kinds: `sum` (a total, bands, a positive cutoff — by sex where the description says so), `any-item` (positive
when any item reaches a score: Hunger Vital Sign) and `levels` (the highest level any answered question reaches:
C-SSRS risk, ASQ zones).

Rules for incomplete answers (each instrument's file names its rule in `missing`; the rule's text is shown with
every result that has blanks). A blank never hides a positive result or a safety flag:
- "prorate" (PHQ-9, teen PHQ-9, GAD-7: their published rule): with up to 2 scored items unanswered the total is
  prorated (the mean of the answered items times the number of items, rounded half up) and marked as prorated;
  with more, as "bounds".
- "zero" (BPSC: its published rule): a blank counts as 0.
- "bounds" (no published rule): a blank may be any of its answers. The lowest and the highest possible totals are
  computed; when both fall on the same side of the cutoff (and in the same band, or the same verdict of an
  age form's cutoff), that result is reported, "decided with N unanswered", with the total shown as a range; when
  they do not, there is no result. An any-item screen is positive once any answered item is (Hunger Vital Sign).
- "at-least" (levels: C-SSRS, ASQ zones): an unanswered question can only raise the level.
- A site-supplied instrument without its licensed copy (EPDS): the entered total, checked against the range, and
  the safety item's score; a total lower than the safety item's score is refused.
- A safety item that is unanswered never counts as negative: the result says it must be asked; an answered one
  flags whatever the rest. A positive result that is itself an alert (HITS) alerts when decided with blanks.
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
    #: With blanks and no total: the lowest and highest possible totals (bounds rule).
    total_range: tuple[int, int] | None = None
    #: The result (positive/negative, band or level) was settled by the answered items although some were blank.
    decided_with_blanks: bool = False

    @property
    def has_safety_flag(self) -> bool:
        return bool(self.safety)

    @property
    def range_text(self) -> str | None:
        """ "16–20 (1 unanswered)": how a total with blanks is shown (lowest–highest possible)."""
        if self.total_range is None:
            return None
        low, high = self.total_range
        return f"{low}–{high} ({len(self.missing)} unanswered)"


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


def _bounds(item: Item) -> tuple[int, int]:
    """The lowest and highest score a blank item could have had."""
    if item.kind == "integer":
        return item.min_value, item.max_value
    scores = [a.score for a in item.answers] or [0]
    return min(scores), max(scores)


def _side(low: int, high: int, at_least: int | None, at_most: int | None) -> bool | None:
    """Positive / negative when every total from low to high gives the same verdict; None when it depends."""
    if at_least is not None:
        return True if low >= at_least else False if high < at_least else None
    if at_most is not None:
        return True if high <= at_most else False if low > at_most else None
    return None


def _score(instrument: Instrument, answers: Mapping[str, Answer], sex: str | None,
           age_months: int | None) -> ScoreResult:  # fmt: skip
    safety, notes = _safety(instrument, answers)
    total: int | None = None
    total_range: tuple[int, int] | None = None
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
        blanks = [item for item in scored if item.link_id not in answers]
        missing = tuple(item.link_id for item in blanks)
        answered = sum(item_scores.values())
        if not missing:
            total = answered * instrument.multiply
        elif instrument.missing_rule == "prorate" and len(missing) <= instrument.max_missing and item_scores:
            total = _round_half_up(Decimal(answered) * len(scored) / len(item_scores) * instrument.multiply)
            prorated = True
            notes += (
                f"{len(missing)} of {len(scored)} items unanswered: total prorated from the answered items.",
            )
        elif instrument.missing_rule == "zero" and item_scores:
            total = answered * instrument.multiply
            notes += (f"{len(missing)} of {len(scored)} items unanswered, counted as 0.",)
        elif item_scores and instrument.result_kind == "sum":
            total_range = (
                (answered + sum(_bounds(item)[0] for item in blanks)) * instrument.multiply,
                (answered + sum(_bounds(item)[1] for item in blanks)) * instrument.multiply,
            )
        else:
            notes += (f"{len(missing)} of {len(scored)} items unanswered: no total.",)
        if missing and instrument.missing_text:
            notes += (instrument.missing_text,)

    if instrument.result_kind == "any-item":
        hit = any(s >= instrument.any_item_at_least for s in item_scores.values())
        at_risk = True if hit else (None if missing else False)
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
        decided = bool(missing) and at_risk is not None
        if decided:
            text += f" (decided with {len(missing)} unanswered)"
        return ScoreResult(instrument.key, None, risk, at_risk, text, safety, item_scores, missing, False, risk,
                           notes, decided_with_blanks=decided)  # fmt: skip

    positive_at = instrument.positive_at
    if instrument.positive_by_sex:
        positive_at = instrument.positive_by_sex.get(sex or "", instrument.positive_at)
        cutoffs = " and ".join(f"≥{cut} for {'men' if s == 'male' else 'women' if s == 'female' else s}"
                               for s, cut in instrument.positive_by_sex.items())  # fmt: skip
        notes += (f"Positive at {cutoffs}" + ("" if sex in instrument.positive_by_sex else
                  f"; sex not recorded, so the cutoff ≥{instrument.positive_at} applies") + ".",)  # fmt: skip
    if instrument.cutoffs_by_age:
        return _score_age_form(
            instrument, total, total_range, age_months, safety, item_scores, missing, notes
        )
    if total_range is not None:
        return _score_range(instrument, total_range, positive_at, safety, item_scores, missing, notes)
    positive = None if total is None or positive_at is None else total >= positive_at
    if instrument.positive_at_most is not None and total is not None:
        positive = total <= instrument.positive_at_most
    band = instrument.band(total)
    advice = instrument.band_of(total)
    if advice is not None and advice.advice:
        notes += (advice.advice,)
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


def _score_range(instrument: Instrument, total_range: tuple[int, int], positive_at: int | None,
                 safety: tuple[SafetyFlag, ...], item_scores: dict[str, int], missing: tuple[str, ...],
                 notes: tuple[str, ...]) -> ScoreResult:  # fmt: skip
    """A sum with blanks and no published proration: the result the lowest and the highest possible totals agree
    on, or none."""
    low, high = total_range
    positive = _side(low, high, positive_at, instrument.positive_at_most)
    low_band, high_band = instrument.band_of(low), instrument.band_of(high)
    band = low_band.label if low_band is not None and low_band == high_band else None
    has_verdict = positive_at is not None or instrument.positive_at_most is not None
    decided = positive is not None if has_verdict else band is not None
    shown = f"{instrument.name} {low}–{high} ({len(missing)} unanswered)"
    if not decided:
        notes += (f"{len(missing)} unanswered: no total. It could be {low} to {high}, which does not settle the "
                  f"result: ask the unanswered question{'s' if len(missing) != 1 else ''}.",)  # fmt: skip
        return ScoreResult(instrument.key, None, None, None, f"{instrument.name}: incomplete, no total ({low}–{high} "
                           f"possible with {len(missing)} unanswered)", safety, item_scores, missing, notes=notes,
                           total_range=total_range)  # fmt: skip
    text = (
        shown
        + _verdict(instrument, band, positive, positive_at)
        + f" — decided with {len(missing)} unanswered"
    )
    if low_band is not None and low_band == high_band and low_band.advice:
        notes += (low_band.advice,)
    return ScoreResult(instrument.key, None, band, positive, text, safety, item_scores, missing, notes=notes,
                       total_range=total_range, decided_with_blanks=True)  # fmt: skip


def _score_age_form(instrument: Instrument, total: int | None, total_range: tuple[int, int] | None,
                    age_months: int | None, safety: tuple[SafetyFlag, ...], item_scores: dict[str, int],
                    missing: tuple[str, ...], notes: tuple[str, ...]) -> ScoreResult:  # fmt: skip
    """Lower is worse, and the cutoff is the one for the child's age (SWYC Milestones: per month of age): at or
    below it needs review. An age whose cutoff the site has not set is recorded with the score and no verdict. With
    blanks, the verdict stands when the lowest and the highest possible totals agree."""
    cutoff = instrument.cutoff_for(age_months)
    low, high = (total, total) if total is not None else (total_range or (None, None))
    shown = (f"{total}" if total is not None
             else f"{low}–{high} ({len(missing)} unanswered)" if total_range is not None else None)  # fmt: skip
    decided = False
    if low is None or high is None:
        text, positive, band = f"{instrument.name}: incomplete, no score", None, None
    elif cutoff is None:
        where = (f"{age_months} months" if instrument.cutoffs_per == "month" else f"the {age_months}-month form") \
            if age_months is not None else "this form (age unknown)"  # fmt: skip
        text, positive, band = f"{instrument.name} {shown}", None, None
        notes += (f"No cutoff is set in Tandem for {where}: read it from the SWYC scoring table.",)
    else:
        positive = _side(low, high, None, cutoff.needs_review_at_most)
        where = (f"at {cutoff.low_months} months" if cutoff.low_months == cutoff.high_months
                 else f"on the {cutoff.low_months}–{cutoff.high_months}-month form")  # fmt: skip
        if positive is None:
            band = None
            text = (f"{instrument.name}: incomplete, {shown} possible (needs review at ≤"
                    f"{cutoff.needs_review_at_most} {where})")  # fmt: skip
        else:
            band = "needs review" if positive else "meets expectations"
            text = (
                f"{instrument.name} {shown}: {band} (needs review at ≤{cutoff.needs_review_at_most} {where})"
            )
            decided = total is None
            if decided:
                text += f" — decided with {len(missing)} unanswered"
    return ScoreResult(
        instrument.key,
        total,
        band,
        positive,
        text,
        safety,
        item_scores,
        missing,
        False,
        None,
        notes,
        total_range=total_range,
        decided_with_blanks=decided,
    )


def _score_subscales(instrument: Instrument, answers: Mapping[str, Answer]) -> ScoreResult:
    """Each subscale's sum; positive when any reaches the cutoff (BPSC: ≥3 on any subscale). Missing items count
    as 0 where the instrument's published rule says so; otherwise a subscale with blanks counts only when its lowest
    and highest possible sums agree (a lowest sum at the cutoff is positive whatever the blanks)."""
    item_scores = {k: a.score for k, a in answers.items()}
    missing = tuple(item.link_id for item in instrument.scored_items if item.link_id not in answers)
    cut = instrument.any_item_at_least
    sums: dict[str, int | None] = {}
    highs: dict[str, int | None] = {}
    for name, members in instrument.subscales:
        answered = [m for m in members if m in item_scores]
        if not answered:
            # A subscale with nothing answered has no score: a blank form is incomplete, never negative.
            sums[name] = highs[name] = None
        elif instrument.missing_counts_as_zero or len(answered) == len(members):
            sums[name] = highs[name] = sum(item_scores.get(m, 0) for m in members)
        else:
            blanks = [
                item for m in members if m not in item_scores and (item := instrument.item(m)) is not None
            ]
            sums[name] = sum(item_scores[m] for m in answered) + sum(_bounds(item)[0] for item in blanks)
            highs[name] = sum(item_scores[m] for m in answered) + sum(_bounds(item)[1] for item in blanks)
    high = [name for name, value in sums.items() if value is not None and value >= cut]
    undecided = any(h is None or (h >= cut and sums[n] != h) for n, h in highs.items())
    positive: bool | None = True if high else (None if undecided else False)
    label = None if positive is None else instrument.labels.get("positive" if positive else "negative")

    def _shown(name: str) -> str:
        low, top = sums[name], highs[name]
        return f"{name} {'—' if low is None else low if low == top else f'{low}–{top}'}"

    shown = ", ".join(_shown(name) for name in sums)
    text = f"{instrument.name}: {label or 'incomplete'} ({shown}; positive at ≥{cut} on any subscale)"
    decided = bool(missing) and positive is not None
    if decided:
        text += f" — decided with {len(missing)} unanswered"
    notes: tuple[str, ...] = ()
    if missing and instrument.missing_counts_as_zero:
        notes = (f"{len(missing)} item{'s' if len(missing) != 1 else ''} unanswered, counted as 0.",)
    if missing and instrument.missing_text:
        notes += (instrument.missing_text,)
    return ScoreResult(
        instrument.key,
        None,
        label,
        positive,
        text,
        (),
        item_scores,
        missing,
        False,
        label,
        notes,
        decided_with_blanks=decided,
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
    return f"{instrument.name} {total}{' (prorated)' if prorated else ''}" + _verdict(
        instrument, band, positive, positive_at
    )


def _verdict(instrument: Instrument, band: str | None, positive: bool | None, positive_at: int | None) -> str:
    """ ": moderate; positive screen (positive at ≥10)": the band and the screen's verdict with its cutoff."""
    text = f": {band}" if band else ""
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
        if reached is not None and reached == instrument.levels[0]:
            text += f" — decided with {len(missing)} unanswered"
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
        notes=(*notes, instrument.missing_text) if missing and instrument.missing_text else notes,
        monitor=bool(reached and reached.monitor),
        decided_with_blanks=bool(missing) and reached is not None and reached == instrument.levels[0],
    )

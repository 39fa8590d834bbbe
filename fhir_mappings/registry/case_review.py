"""The psychiatric case review's list: whether a case is still "to review" after a review, and why each case is on
the list, in words (the safety reason first). The interval is data (`fhir_mappings/data/review/case_review.json`).
Pure and total."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from fhir_mappings.registry.resources import WorkTask
from fhir_mappings.registry.worklist import REVIEW_GROUPS, Row
from fhir_mappings.smi.row import MEDICAL_FLAG_LABELS

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "review" / "case_review.json"
_QUESTION = re.compile(r"\bquestion (\d+)\b")
_FROM = re.compile(r"^Safety alert from ([^:]+):")


@dataclass(frozen=True)
class ReviewRules:
    #: A case reviewed fewer days ago than this leaves "to review" unless a new reason arose after the review.
    reviewed_recently_days: int


def load_rules(path: Path = DATA_FILE) -> ReviewRules:
    data = json.loads(path.read_text(encoding="utf-8"))
    return ReviewRules(int(data["reviewed_recently_days"]))


RULES = load_rules()


@dataclass(frozen=True)
class Reason:
    """Why a case is on the review list: the words and, where there is one, the day it arose."""

    key: str
    text: str
    day: date | None = None
    #: The word before the day: "on 3 Dec", "enrolled 3 Dec".
    day_word: str = "on"


def to_review(flags: Iterable[str], last_review: date | None, today: date, *, safety_raised: datetime | None,
              reviewed_at: datetime | None = None, rules: ReviewRules = RULES) -> bool:  # fmt: skip
    """Whether a case with these flags still waits for the consultant. Never reviewed: yes, when a flag brings it
    to review. Reviewed: only for a reason that arose after the review, or when the review is
    `reviewed_recently_days` old or older. The reasons that arise: a safety alert raised after the review (None:
    raised but not dated, so yes; compared by the instant when both are known, else by the day, where an alert of
    the review's own day counts as after it — a safety alert is never taken as seen on a guess), and the care
    manager asking again (a review clears the request, so one that stands is newer)."""
    groups = [key for key, _ in REVIEW_GROUPS if key in set(flags)]
    if not groups:
        return False
    if last_review is None:
        return True
    if "safety" in groups:
        if safety_raised is None:
            return True
        if reviewed_at is not None and safety_raised.tzinfo is not None and reviewed_at.tzinfo is not None:
            if safety_raised > reviewed_at:
                return True
        elif safety_raised.date() >= last_review:
            return True
    if "review" in groups:
        return True
    return (today - last_review).days >= rules.reviewed_recently_days


def safety_reason(tasks: Iterable[WorkTask]) -> Reason | None:
    """The latest open safety follow-up in words: "PHQ-9 question 9 positive", raised on its day."""
    open_tasks = [t for t in tasks if t.kind == "safety-follow-up" and t.open]
    if not open_tasks:
        return None
    task = max(open_tasks, key=lambda t: t.authored or date.min)
    description = task.description or ""
    instrument = _FROM.match(description)
    question = _QUESTION.search(description)
    if instrument and question:
        words = f"{instrument.group(1).strip()} question {question.group(1)} (self-harm) positive"
    elif instrument:
        words = f"Safety alert from {instrument.group(1).strip()}"
    else:  # another writer's wording ("PHQ-9 item 9 positive at the last visit: same-day follow-up"): its lead
        words = description.split(":")[0].strip() or "Safety alert"
    day = task.authored_at.date() if task.authored_at else task.authored
    return Reason("safety", words, day)


def reasons(row: Row, today: date, *, safety_pending: bool = False) -> list[Reason]:
    """Every reason the case is on the list, most urgent first (the review groups' order)."""
    found: list[Reason] = []
    flags = set(row.flags)
    if "safety" in flags:
        reason = safety_reason(row.open_tasks)
        if reason is None or safety_pending:
            reason = Reason(
                "safety", "Safety alert raised; the same-day follow-up is not yet in the registry"
            )
        found.append(reason)
    if "mania" in flags:
        plan = row.program.whole_person
        mania = row.whole.symptom(plan.mania_series) if row.whole and plan and plan.mania_series else None
        if mania is not None and mania.scores.latest_point is not None:
            found.append(Reason("mania", f"{mania.series} mania screen positive ({mania.scores.latest})",
                                mania.scores.latest_point.day))  # fmt: skip
        else:
            found.append(Reason("mania", "Mania screen positive"))
    if "review" in flags:
        asked = [t.authored for t in row.open_tasks if t.kind == "case-review" and t.authored]
        found.append(Reason("review", "Requested by the care manager", max(asked) if asked else None))
    if "not-improving" in flags:
        outcome = row.program.outcome
        series = row.phq9 if outcome.series == "PHQ-9" else row.gad7 if outcome.series == "GAD-7" else None
        change = ""
        if series is not None and series.first is not None and series.latest is not None:
            pct = f" ({series.change_pct:+.0f} %)" if series.change_pct is not None else ""
            change = f": {outcome.series} {series.first} → {series.latest}{pct}"
        found.append(Reason("not-improving", f"Not improving after {row.weeks_in_treatment} weeks{change}; the "
                                             f"target is a {outcome.response_drop_pct} % drop"))  # fmt: skip
    if "medical" in flags and row.whole is not None:
        labels = [MEDICAL_FLAG_LABELS.get(f, f) for f in row.whole.medical_flags]
        found.append(Reason("medical", "Medical: " + ("; ".join(labels) if labels else "out of target")))
    if "first-review-overdue" in flags and row.last_review is None:
        weeks = row.program.first_review_weeks
        within = f" (due within {weeks} weeks of enrolment)" if weeks else ""
        found.append(Reason("first-review-overdue", f"Never reviewed: the first review is overdue{within};",
                            row.enrolment.start, "enrolled"))  # fmt: skip
    if "new" in flags and row.last_review is None:
        found.append(Reason("new", "New to the caseload, never reviewed;", row.enrolment.start, "enrolled"))
    return found

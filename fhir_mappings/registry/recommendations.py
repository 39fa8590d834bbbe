"""Psychiatric case review recommendations: structured items (medication change, dose, therapy, referral, other)
plus free text, kept on the completed review Task and written to the EHR as a consult note. Pure and total."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_mappings.common.access import code as _code
from fhir_mappings.common.access import obj, objs, text
from fhir_mappings.common.dates import parse_date, parse_datetime

RECOMMENDATION_SYSTEM = "https://tandem.health/fhir/CodeSystem/review-recommendation"
NOTE_SYSTEM = "https://tandem.health/fhir/consult-note"
KINDS = {
    "medication-start": "Start a medication",
    "medication-change": "Change medication",
    "dose-change": "Change the dose",
    "therapy": "Psychotherapy",
    "referral": "Referral",
    "continue": "Continue the current treatment",
    "other": "Other",
}
MAX_ITEMS = 5
#: What became of a recommendation, as the care manager or the PCP marks it on the review Task's output (issue 28).
STATUS_URL = "https://tandem.health/fhir/StructureDefinition/recommendation-status"
STATUSES = {"not-yet": "Not yet", "accepted": "Accepted", "started": "Started", "declined": "Declined"}


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str
    detail: str
    #: One of STATUSES; who marked it (a name) and when (None while nobody has).
    status: str = "not-yet"
    status_by: str | None = None
    status_at: datetime | None = None

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, "Other")

    @property
    def status_label(self) -> str:
        return STATUSES.get(self.status, STATUSES["not-yet"])

    def line(self) -> str:
        return f"{self.label}: {self.detail}" if self.detail else self.label


@dataclass(frozen=True, slots=True)
class Review:
    items: tuple[Recommendation, ...]
    text: str

    def summary(self) -> str:
        """One readable text of everything recommended (the free text last)."""
        lines = [item.line() for item in self.items]
        if self.text:
            lines.append(self.text)
        return "; ".join(lines)

    @property
    def empty(self) -> bool:
        return not self.items and not self.text


def review_from_form(
    kinds: Iterable[str], details: Iterable[str], free_text: str
) -> tuple[Review, list[str]]:
    """A review from the form's rows of (kind, detail) and its free text, and the problems to show on the form.
    A row with neither is ignored; a detail without a kind, or an unknown kind, is a problem."""
    items: list[Recommendation] = []
    problems: list[str] = []
    for number, (kind, detail) in enumerate(zip(kinds, details, strict=False), start=1):
        kind, detail = (kind or "").strip(), (detail or "").strip()
        if not kind and not detail:
            continue
        if kind not in KINDS:
            problems.append(f"Recommendation {number}: choose what kind of recommendation it is.")
            continue
        if kind in ("medication-start", "medication-change", "dose-change") and not detail:
            problems.append(f"Recommendation {number}: name the medication and dose.")
            continue
        items.append(Recommendation(kind, detail))
    if len(items) > MAX_ITEMS:  # refused with the limit named: nothing written is dropped
        problems.append(f"Give at most {MAX_ITEMS} structured recommendations; put the rest in the notes.")
    # Details and notes are taken whole (FHIR strings have no length limit): nothing a person wrote is cut.
    review = Review(tuple(items), (free_text or "").strip())
    if review.empty and not problems:
        problems.append("Write at least one recommendation before closing the review.")
    return review, problems


def review_outputs(review: Review) -> list[dict[str, Any]]:
    """Task.output entries: the readable summary (what older readers show) and one entry per structured item."""
    outputs: list[dict[str, Any]] = [{"type": {"text": "recommendations"}, "valueString": review.summary()}]
    for item in review.items:
        outputs.append({
            "type": {"coding": [{"system": RECOMMENDATION_SYSTEM, "code": item.kind, "display": item.label}],
                     "text": "recommendation"},
            "valueString": item.detail or item.label,
        })  # fmt: skip
    if review.text:
        outputs.append({"type": {"text": "recommendation-note"}, "valueString": review.text})
    return outputs


def review_from_outputs(outputs: Any) -> Review | None:
    """The structured review a completed Task holds; None when it holds none (an older free-text review)."""
    items: list[Recommendation] = []
    note = None
    for output in objs(outputs):
        kind = _code(output.get("type"), RECOMMENDATION_SYSTEM)
        if kind in KINDS:
            detail = text(output.get("valueString")) or ""
            status, by, at = _status_of(output)
            items.append(Recommendation(kind, "" if detail == KINDS[kind] else detail, status, by, at))
        elif text(obj(output.get("type")).get("text")) == "recommendation-note":
            note = text(output.get("valueString"))
    if not items and note is None:
        return None
    return Review(tuple(items), note or "")


def _status_of(output: Mapping[str, Any]) -> tuple[str, str | None, datetime | None]:
    """The status an output carries (not yet, by nobody, when no one has marked it)."""
    extension = next((e for e in objs(output.get("extension")) if e.get("url") == STATUS_URL), None)
    parts = {text(e.get("url")): e for e in objs(obj(extension).get("extension"))}
    status = text(obj(parts.get("status")).get("valueCode"))
    if status not in STATUSES:
        return "not-yet", None, None
    by = obj(obj(parts.get("by")).get("valueReference"))
    return status, text(by.get("display")) or text(by.get("reference")), parse_datetime(
        obj(parts.get("at")).get("valueDateTime"))  # fmt: skip


def with_status(task: Mapping[str, Any], index: int, status: str, *, by_reference: str | None,
                by_name: str | None, at: datetime) -> dict[str, Any] | None:  # fmt: skip
    """The review Task with its `index`-th structured recommendation (from 0) marked `status` by that person at
    that instant; None when the Task has no such recommendation or the status is not one of STATUSES."""
    if status not in STATUSES or index < 0:
        return None
    outputs = [dict(o) for o in objs(task.get("output"))]
    structured = [i for i, o in enumerate(outputs) if _code(o.get("type"), RECOMMENDATION_SYSTEM) in KINDS]
    if index >= len(structured):
        return None
    target = outputs[structured[index]]
    by: dict[str, Any] = {}
    if by_reference:
        by["reference"] = by_reference
    if by_name:
        by["display"] = by_name
    parts: list[dict[str, Any]] = [{"url": "status", "valueCode": status}]
    if by:
        parts.append({"url": "by", "valueReference": by})
    parts.append({"url": "at", "valueDateTime": at.isoformat()})
    others = [e for e in objs(target.get("extension")) if e.get("url") != STATUS_URL]
    target["extension"] = [*others, {"url": STATUS_URL, "extension": parts}]
    outputs[structured[index]] = target
    return {**task, "output": outputs}


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A recorded review as the care team reads it: when, by whom, and each recommendation with its status."""

    task_id: str
    careplan_id: str | None
    completed: date | None
    reviewer: str | None
    review: Review
    #: The instant it was recorded (what a safety alert raised the same day is compared with).
    completed_at: datetime | None = None


def review_record(task: Any) -> ReviewRecord | None:
    """A completed case review Task's record; None for anything else, or a review without structured parts."""
    task = obj(task)
    if (
        task.get("resourceType") != "Task"
        or task.get("status") != "completed"
        or text(task.get("id")) is None
    ):
        return None
    review = review_from_outputs(task.get("output"))
    if review is None:
        return None
    careplan = next((text(obj(b).get("reference")) for b in objs(task.get("basedOn"))), None)
    return ReviewRecord(
        task_id=str(task["id"]),
        careplan_id=careplan.removeprefix("CarePlan/")
        if careplan and careplan.startswith("CarePlan/")
        else None,
        completed=parse_date(obj(task.get("executionPeriod")).get("end")),
        reviewer=text(obj(task.get("owner")).get("display")),
        review=review,
        completed_at=parse_datetime(obj(task.get("executionPeriod")).get("end")),
    )


def consult_note(review: Review, *, patient_id: str, task_id: str, reviewed: datetime, reviewer: str | None,
                 reviewer_name: str | None, program_title: str, scores: Mapping[str, str]) -> dict[str, Any]:  # fmt: skip
    """A consult note (DocumentReference, LOINC 11488-4) for the EHR: the recommendations and the scores reviewed.
    Its identifier is derived from the review Task, so a retried write is recognisable."""
    lines = [f"Psychiatric case review, {program_title}", f"Date: {reviewed.date().isoformat()}"]
    if reviewer_name:
        lines.append(f"Psychiatric consultant: {reviewer_name}")
    lines += [f"{name}: {value}" for name, value in scores.items()]
    lines.append("Recommendations:")
    lines += [f"- {item.line()}" for item in review.items]
    if review.text:
        lines.append(f"- {review.text}")
    lines.append("Recorded in the Tandem Collaborative Care registry; the PCP decides on any change.")
    body = "\n".join(lines)
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:32]
    note: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": NOTE_SYSTEM, "value": digest}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}],
                 "text": "Consult note"},
        "category": [{"coding": [{
            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "code": "clinical-note", "display": "Clinical Note"}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": reviewed.isoformat(),
        "description": "Psychiatric case review recommendations",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                    "data": base64.b64encode(body.encode()).decode(),
                                    "title": "Psychiatric case review"}}],
    }  # fmt: skip
    if reviewer:
        note["author"] = [{"reference": reviewer}]
    return note

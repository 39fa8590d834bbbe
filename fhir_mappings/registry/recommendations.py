"""Psychiatric case review recommendations: structured items (medication change, dose, therapy, referral, other)
plus free text, kept on the completed review Task and written to the EHR as a consult note. Pure and total."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_mappings.common.access import code as _code
from fhir_mappings.common.access import obj, objs, text

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


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str
    detail: str

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, "Other")

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
            items.append(Recommendation(kind, "" if detail == KINDS[kind] else detail))
        elif text(obj(output.get("type")).get("text")) == "recommendation-note":
            note = text(output.get("valueString"))
    if not items and note is None:
        return None
    return Review(tuple(items), note or "")


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

"""What became of the psychiatric consultant's recommendations (issue 28): each one's status — not yet, accepted,
started, declined — marked by the care manager or the PCP, kept on the review Task in the registry (who, when), and
read back for the care manager's patient page, the chart and the next case review."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import g

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.recommendations import ReviewRecord, review_record, with_status
from fhir_mappings.registry.resources import Enrolment, Member, work_task_from
from launch import errors
from launch.fhir import etag_for
from smartapp.caseload.service import CaseloadService
from smartapp.outgoing import validated

log = logging.getLogger(__name__)

EARLIEST = datetime.min.replace(tzinfo=UTC)
#: The roles that mark a recommendation's status: the care manager carries it out with the PCP, who decides.
MARKING_ROLES = ("care-manager", "pcp")


@dataclass(frozen=True)
class RecommendationsView:
    """What `_recommendations.html` shows: the reviews, latest first, and whether this user marks them."""

    reviews: list[ReviewRecord]
    may_mark: bool


def may_mark(enrolment: Enrolment, user: Member | None) -> bool:
    """Whether the signed-in user is this enrolment's care manager or PCP."""
    if user is None or not user.reference:
        return False
    return any(
        (m := enrolment.member(role)) is not None and m.reference == user.reference for role in MARKING_ROLES
    )


def reviews_of(caseload: CaseloadService, keys: Iterable[PatientKey]) -> dict[str, list[ReviewRecord]] | None:
    """The recorded reviews (latest first) of these patients' enrolments, by enrolment id: one registry search per
    patient, kept for the request. None when the registry cannot be read (the caller says so on the page)."""
    cache: dict[PatientKey, list[ReviewRecord]] = g.setdefault("review_records", {})
    try:
        for key in keys:
            if key in cache:
                continue
            found = caseload.case_review_tasks(key)
            cache[key] = [r for r in (review_record(t) for t in found) if r is not None]
    except errors.TandemError as exc:
        log.warning("recommendation statuses not read: %s", type(exc).__name__)
        return None
    by_plan: dict[str, list[ReviewRecord]] = {}
    for records in cache.values():
        for record in records:
            if record.careplan_id:
                by_plan.setdefault(record.careplan_id, []).append(record)
    for records in by_plan.values():
        records.sort(key=lambda r: r.completed_at or EARLIEST, reverse=True)  # two reviews a day: by instant
    return by_plan


def mark(caseload: CaseloadService, enrolment: Enrolment, task_id: str, index: int, status: str,
         user: Member | None) -> bool:  # fmt: skip
    """Mark the review's `index`-th recommendation; False when the review has no such recommendation. If-Match on
    the version read; someone marking another recommendation meanwhile is read again and kept (one retry)."""
    for attempt in (1, 2):
        current = caseload._client().read("Task", task_id)
        task = work_task_from(current)
        if (
            task is None
            or task.kind != "case-review"
            or task.careplan_id != enrolment.id
            or task.iss != enrolment.iss
        ):
            raise errors.FHIRNotFound("no such review")
        marked = with_status(current, index, status, by_reference=user.reference if user else None,
                             by_name=user.display if user else None, at=datetime.now(UTC))  # fmt: skip
        if marked is None:
            return False
        try:
            caseload._client().update(validated(marked), if_match=etag_for(current))
        except errors.FHIRConflict:
            if attempt == 2:
                raise
            continue
        caseload.invalidate(enrolment.key)
        return True
    return False  # pragma: no cover - the loop returns or raises

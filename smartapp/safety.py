"""Safety follow-ups: every open same-day safety Task of the launch's EHR, enrolled or not, oldest first, and
closing one with an outcome. A screening whose safety Task has not reached the registry store yet is listed too
(it cannot be closed until it has)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from fhir_mappings.identity import PatientKey
from fhir_mappings.patient import display_name
from fhir_mappings.registry import SAFETY_OUTCOMES, WorkTask
from launch import errors
from smartapp.screenings import ScreeningRecord

from .access import Access
from .web import check_id, current_access, current_launch, current_user, header_context, services

log = logging.getLogger(__name__)
bp = Blueprint("safety", __name__, url_prefix="/app/<launch_id>")


@dataclass(frozen=True)
class SafetyItem:
    key: PatientKey
    since: date
    reason: str
    task: WorkTask | None = None
    record: ScreeningRecord | None = None  # the safety Task has not reached the registry store yet


def safety_pending(access: Access) -> set[PatientKey]:
    """Patients with a positive safety item whose safety Task is not in the registry store yet."""
    return {PatientKey(r.iss, r.patient_id) for r in _unsaved_safety_records(access)}


def _unsaved_safety_records(access: Access) -> list[ScreeningRecord]:
    return [r for r in services().screenings.pending() if r.iss == access.iss and r.result.has_safety_flag
            and r.registry.status != "saved" and access.allows_patient(r.patient_id)]  # fmt: skip


def safety_items(access: Access) -> list[SafetyItem]:
    data = services().caseload.load().for_issuer(access.iss)
    items = [
        SafetyItem(t.key, t.authored or date.min, t.description or "Same-day safety follow-up", task=t)
        for t in data.tasks
        if t.kind == "safety-follow-up" and t.open and t.key and access.allows_patient(t.patient_id)
    ]
    in_registry = {t.id for t in data.tasks}
    for record in _unsaved_safety_records(access):
        if f"tandem-{record.id}-safety"[:64] not in in_registry:
            reason = " ".join(flag.message for flag in record.result.safety)
            items.append(SafetyItem(PatientKey(record.iss, record.patient_id),
                                    datetime.fromisoformat(record.authored).date(), reason, record=record))  # fmt: skip
    return sorted(items, key=lambda item: (item.since, item.key))


def open_safety_count(access: Access) -> int | None:
    """For every page's header; None when it cannot be counted now (the page still renders)."""
    try:
        return len(safety_items(access))
    except errors.TandemError as error:
        log.warning("safety follow-ups could not be counted: %s", type(error).__name__)
        return None


@bp.get("/safety")
def queue(launch_id: str) -> str:
    session, access = current_launch(launch_id), current_access()
    svc = services()
    ehr = svc.ehr_client(session)
    items = safety_items(access)
    names: dict[str, str] = {}
    for patient_id in sorted({item.key.patient_id for item in items})[:50]:
        try:
            names[patient_id] = display_name(ehr.read("Patient", patient_id)) or ""
        except errors.TandemError:
            continue  # the id still identifies the patient within this EHR
    enrolled = {e.patient_id: e for e in svc.caseload.load().for_issuer(access.iss).enrolments if e.active}
    return render_template("safety.html", **header_context(session, ehr), patient=None, show_banner=False,
                           items=items, names=names, enrolled=enrolled, outcomes=SAFETY_OUTCOMES)  # fmt: skip


@bp.post("/safety/<task_id>/close")
def close(launch_id: str, task_id: str) -> Any:
    session, access = current_launch(launch_id), current_access()
    svc = services()
    outcome = request.form.get("outcome", "")
    note = (request.form.get("note") or "").strip()[:1000]
    if outcome not in SAFETY_OUTCOMES or not note:
        raise errors.InvalidLaunchRequest("closing a safety follow-up needs an outcome and a note")
    closer = current_user(session, svc.ehr_client(session))
    svc.caseload.close_safety_task(check_id(task_id, "task id"), None if access.caseload else access.patient_key,
                                   access.iss, outcome, note, closer)  # fmt: skip
    return redirect(url_for("safety.queue", launch_id=launch_id), code=303)

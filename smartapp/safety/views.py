"""Safety follow-ups: every open same-day safety Task of the launch's EHR, enrolled or not, oldest first, and
closing one with an outcome. A screening whose safety Task has not reached the registry store yet is listed too
(it cannot be closed until it has)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient import display_name
from fhir_mappings.registry.resources import SAFETY_OUTCOMES, WorkTask
from fhir_mappings.screening.resources import resource_id
from launch import errors
from smartapp.access import Access
from smartapp.request_context import (
    caseload_data,
    current_access,
    current_ehr,
    current_launch,
    current_user,
    header_context,
    launch_required,
    pending_records,
    services,
)
from smartapp.screening.service import ScreeningRecord

log = logging.getLogger(__name__)
bp = Blueprint("safety", __name__, url_prefix="/app/<launch_id>", template_folder="templates")


@dataclass(frozen=True)
class SafetyItem:
    key: PatientKey
    since: date
    reason: str
    task: WorkTask | None = None
    record: ScreeningRecord | None = None  # the safety Task has not reached the registry store yet


def safety_pending(access: Access) -> set[PatientKey]:
    """Patients with a positive safety item whose safety Task is not in the registry store yet."""
    return {r.key for r in _unsaved_safety_records(access)}


def _unsaved_safety_records(access: Access) -> list[ScreeningRecord]:
    return [r for r in pending_records() if r.result.has_safety_flag and r.registry.status != "saved"
            and access.allows_patient(r.key)]  # fmt: skip


def safety_items(access: Access) -> list[SafetyItem]:
    data = caseload_data(access.iss)
    items = [
        SafetyItem(t.key, t.authored or date.min, t.description or "Same-day safety follow-up", task=t)
        for t in data.tasks
        if t.kind == "safety-follow-up" and t.open and t.key and access.allows_patient(t.key)
    ]
    in_registry = {t.id for t in data.tasks}
    for record in _unsaved_safety_records(access):
        if resource_id(record.id, "safety") not in in_registry:
            reason = " ".join(flag.message for flag in record.result.safety)
            items.append(SafetyItem(record.key, datetime.fromisoformat(record.authored).date(), reason,
                                    record=record))  # fmt: skip
    # A positive screening posted after its launch ended (parked) whose safety Task has not reached the registry.
    from smartapp.parking.views import parked_forms

    listed = {r.id for r in _unsaved_safety_records(access)}
    for parked in parked_forms().pending_safety():
        key = parked.key
        if key is None or key.iss != access.iss or not access.allows_patient(key) or not parked.submission_id:
            continue
        if parked.submission_id in listed or resource_id(parked.submission_id, "safety") in in_registry:
            continue
        items.append(
            SafetyItem(key, datetime.fromisoformat(parked.parked_at).date(), " ".join(parked.safety))
        )
    return sorted(items, key=lambda item: (item.since, item.key))


def open_safety_count(access: Access) -> int | None:
    """For every page's header; None when it cannot be counted now (the page still renders)."""
    try:
        return len(safety_items(access))
    except errors.TandemError as error:
        log.warning("safety follow-ups could not be counted: %s", type(error).__name__)
        return None


@bp.get("/safety")
@launch_required
def queue(launch_id: str) -> str:
    session, access = current_launch(), current_access()
    ehr = current_ehr()
    items = safety_items(access)
    names: dict[PatientKey, str] = {}
    for key in sorted({item.key for item in items})[:50]:
        try:
            names[key] = display_name(ehr.read("Patient", key.patient_id)) or ""
        except errors.TandemError:
            continue  # the id still identifies the patient within this EHR
    enrolled = {e.key for e in caseload_data(access.iss).enrolments if e.active}
    return render_template("safety.html", **header_context(session, ehr), patient=None, show_banner=False,
                           items=items, names=names, enrolled=enrolled, outcomes=SAFETY_OUTCOMES)  # fmt: skip


@bp.post("/safety/<task_id>/close")
@launch_required
def close(launch_id: str, task_id: str) -> Any:
    session, access = current_launch(), current_access()
    svc = services()
    outcome = request.form.get("outcome", "")
    note = (request.form.get("note") or "").strip()[:1000]
    if outcome not in SAFETY_OUTCOMES or not note:
        raise errors.InvalidLaunchRequest("closing a safety follow-up needs an outcome and a note")
    closer = current_user(session, current_ehr())
    svc.caseload.close_safety_task(task_id, None if access.caseload else access.patient_key, access.iss, outcome,
                                   note, closer)  # fmt: skip
    return redirect(url_for("safety.queue", launch_id=launch_id), code=303)

"""Safety follow-ups: every open same-day safety Task of the launch's EHR, enrolled or not, oldest first, and
closing one with an outcome. A screening whose safety Task has not reached the registry store yet is listed too
(it cannot be closed until it has)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from flask import Blueprint, g, redirect, render_template, request, url_for

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient_summary import PatientLabel, label_of_patient
from fhir_mappings.healthysteps.program import HEALTHYSTEPS_PROGRAM
from fhir_mappings.registry.resources import SAFETY_OUTCOMES, Enrolment, Member, WorkTask
from fhir_mappings.registry.safety import identity_text, label_for, overdue, owner_name
from fhir_mappings.registry.safety import owner as safety_owner
from fhir_mappings.screening.resources import resource_id
from launch import errors
from smartapp import clock
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
    #: When it was raised (an instant; a Task of an older release knows only its day) and by whom.
    raised: datetime | date | None = None
    requester: Member | None = None
    #: Who the patient is, as kept with the Task or the screening record when it was raised.
    label: PatientLabel | None = None

    @property
    def record_id(self) -> str | None:
        """The screening it came from (a safety Task's id is `tandem-<submission>-safety`)."""
        if self.record is not None:
            return self.record.id
        task_id = self.task.id if self.task else ""
        if task_id.startswith("tandem-") and task_id.endswith("-safety"):
            return task_id.removeprefix("tandem-").removesuffix("-safety")
        return None

    def overdue(self, now: datetime) -> bool:
        return overdue(self.raised, now, clock.zone())


@dataclass(frozen=True)
class SafetyRow:
    """One follow-up as the list shows it: never a FHIR id, always an owner or a red line saying there is none."""

    item: SafetyItem
    name: str | None
    identity: str
    raised_by: str | None
    raised_at: str
    owner: str | None
    overdue: bool
    link: str | None
    enrolled: bool


def safety_pending(access: Access) -> set[PatientKey]:
    """Patients with a positive safety item whose safety Task is not in the registry store yet."""
    return {r.key for r in _unsaved_safety_records(access)}


def _unsaved_safety_records(access: Access) -> list[ScreeningRecord]:
    return [r for r in pending_records() if r.result.has_safety_flag and r.registry.status != "saved"
            and access.allows_patient(r.key)]  # fmt: skip


def safety_items(access: Access) -> list[SafetyItem]:
    """Every open safety follow-up this launch may see, oldest first: read once per request (the header's two
    counts, the list and a record's top section share it)."""
    cached = cast(list[SafetyItem] | None, g.get("safety_items"))
    if cached is None:
        cached = g.safety_items = _read_safety_items(access)
    return list(cached)


class _Registry:
    """What the safety list reads of the registry: the open safety Tasks, whether a Task is there, whose an
    enrolment is. A caseload launch reads the worklist's ready rows (the few open follow-ups and the patients
    named, never the whole caseload); a patient launch, its patient's data (patient searches)."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.ready = services().ready if access.caseload else None
        self._data = None if self.ready is not None else caseload_data(access.iss)

    def open_tasks(self) -> list[WorkTask]:
        if self.ready is not None:
            return self.ready.open_safety_tasks(self.access.iss, clock.today())
        assert self._data is not None  # noqa: S101
        return [t for t in self._data.tasks if t.kind == "safety-follow-up" and t.open]

    def task_ids(self, keys: list[PatientKey]) -> set[str]:
        """The ids of every Task of these patients in the registry."""
        if self.ready is not None:
            found = self.ready.patients(keys, clock.today())
            return {t.id for data in found.values() for t in data.tasks}
        assert self._data is not None  # noqa: S101
        return {t.id for t in self._data.tasks}

    def enrolment_patient(self, careplan_id: str) -> PatientKey | None:
        if self.ready is not None:
            key = self.ready.enrolment_patient(careplan_id)
            return key if key is not None and key.iss == self.access.iss else None
        assert self._data is not None  # noqa: S101
        return next((e.key for e in self._data.enrolments if e.id == careplan_id), None)


def _read_safety_items(access: Access) -> list[SafetyItem]:
    registry = _Registry(access)
    items = [
        SafetyItem(t.key, t.authored or date.min, t.description or "Same-day safety follow-up", task=t,
                   raised=t.authored_at or t.authored, requester=t.requester, label=t.patient)
        for t in registry.open_tasks()
        if t.kind == "safety-follow-up" and t.open and t.key and access.allows_patient(t.key)
    ]  # fmt: skip
    unsaved = _unsaved_safety_records(access)
    from smartapp.parking.views import parked_forms

    parked_safety = parked_forms().pending_safety()
    named = [r.key for r in unsaved] + [p.key for p in parked_safety if p.key is not None]
    in_registry = registry.task_ids(list(dict.fromkeys(named))) if named else set()
    for record in unsaved:
        if resource_id(record.id, "safety") not in in_registry:
            reason = " ".join(flag.message for flag in record.result.safety)
            authored = datetime.fromisoformat(record.authored)
            submission = record.submission()
            raiser = submission.raised_by
            requester = Member(record.author or "", raiser) if record.author or raiser else None
            items.append(SafetyItem(record.key, authored.date(), reason, record=record, raised=authored,
                                    requester=requester, label=record.patient_label))  # fmt: skip
    # A positive screening posted after its launch ended (parked) whose safety Task has not reached the registry.
    listed = {r.id for r in unsaved}
    for parked in parked_safety:
        key = parked.key
        careplan_id = parked.args.get("careplan_id")
        if key is None and careplan_id and parked.iss == access.iss:
            # Kept while the registry was away, its enrolment's patient not yet known to it: the caseload names
            # the enrolment's patient now, so the follow-up is listed at once (not only after the worker's sweep).
            key = registry.enrolment_patient(careplan_id)
            if key is not None:
                in_registry |= registry.task_ids([key])
        if key is None or key.iss != access.iss or not access.allows_patient(key) or not parked.submission_id:
            continue
        if parked.submission_id in listed or resource_id(parked.submission_id, "safety") in in_registry:
            continue
        parked_at = datetime.fromisoformat(parked.parked_at)
        raised_by = Member(parked.user, parked.user_name) if parked.user else None  # their launch had ended
        items.append(SafetyItem(key, parked_at.date(), " ".join(parked.safety), raised=parked_at,
                                requester=raised_by, label=parked.patient_label))  # fmt: skip
    return sorted(items, key=lambda item: (item.since, item.key))


def open_safety_count(access: Access) -> int | None:
    """For every page's header; None when it cannot be counted now (the page still renders)."""
    try:
        return len(safety_items(access))
    except errors.TandemError as error:
        log.warning("safety follow-ups could not be counted: %s", type(error).__name__)
        return None


def overdue_safety_count(access: Access) -> int | None:
    """Open follow-ups not closed by the end of the local day they were raised on, for every care-team page's
    header ("1 safety follow-up overdue", red); None when they cannot be counted now."""
    try:
        now = datetime.now(UTC)
        return sum(1 for item in safety_items(access) if item.overdue(now))
    except errors.TandemError as error:
        log.warning("overdue safety follow-ups could not be counted: %s", type(error).__name__)
        return None


def safety_rows(access: Access, launch_id: str, context_patient: str | None,
                chart_label: PatientLabel | None = None) -> list[SafetyRow]:  # fmt: skip
    """The list's rows, named from the registry's copies (the worklist's), never by reading the EHR per patient:
    a worklist launch may not read Patient at all."""
    now, today = datetime.now(UTC), clock.today()
    rows = []
    items = safety_items(access)
    keys = list(dict.fromkeys(item.key for item in items))
    if access.caseload:  # the patients listed only (the worklist's ready rows), never the whole caseload
        found = services().ready.patients(keys, today) if keys else {}
        enrolments_of = {k: found[k].enrolments_of(k) if k in found else [] for k in keys}
    else:
        data = caseload_data(access.iss)
        enrolments_of = {k: data.enrolments_of(k) for k in keys}
    for item in items:
        enrolments = enrolments_of[item.key]
        in_chart = item.key.patient_id == context_patient
        label = label_for(enrolments, item.label, chart_label if in_chart else None)
        owner = safety_owner(enrolments, item.requester)
        rows.append(SafetyRow(
            item=item, name=label.name if label else None, identity=identity_text(label, today),
            raised_by=item.requester.display if item.requester and item.requester.display else None,
            raised_at=clock.local_time(item.raised) if isinstance(item.raised, datetime)
            else (item.raised.isoformat() if item.raised else "time not recorded"),
            owner=owner_name(owner), overdue=item.overdue(now), link=_record_link(item, enrolments, launch_id, in_chart),
            enrolled=any(e.active for e in enrolments),
        ))  # fmt: skip
    return rows


def patient_safety_rows(access: Access, key: PatientKey, launch_id: str) -> list[SafetyRow]:
    """The open safety follow-ups of one patient, for the top of their registry record (none when they cannot be
    read now: the record still shows, and the header says the count is unknown)."""
    try:
        return [row for row in safety_rows(access, launch_id, None) if row.item.key == key]
    except errors.TandemError as error:
        log.warning("a patient's safety follow-ups could not be read: %s", type(error).__name__)
        return []


def _record_link(item: SafetyItem, enrolments: list[Enrolment], launch_id: str, in_chart: bool) -> str | None:
    """The patient's registry record (the program's page), else the chart (a chart launch), else the screening."""
    if in_chart:
        return url_for("chart.home", launch_id=launch_id)
    for enrolment in enrolments:
        if enrolment.program == HEALTHYSTEPS_PROGRAM.key:
            return url_for("healthysteps.family", launch_id=launch_id, careplan_id=enrolment.id)
        return url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=enrolment.id)
    record_id = item.record_id
    if record_id and services().screenings.load(record_id) is not None:
        return url_for("chart.result", launch_id=launch_id, record_id=record_id)
    return None


@bp.get("/safety")
@launch_required
def queue(launch_id: str) -> tuple[str, int]:
    return _queue_page()


def _queue_page(*, failed: str | None = None, problems: list[tuple[str, str]] | None = None,
                entered: dict[str, str] | None = None) -> tuple[str, int]:  # fmt: skip
    """The queue; `failed`: the follow-up whose closing form came back with `problems` (message, field id) and
    what was `entered` (kept in its form)."""
    session, access = current_launch(), current_access()
    ehr = current_ehr()
    chart_label = None
    if (
        session.context.patient
    ):  # a chart launch: its one patient, read once (the registry's copy comes first)
        try:
            chart_label = label_of_patient(ehr.read("Patient", session.context.patient))
        except errors.TandemError:
            chart_label = None
    rows = safety_rows(access, session.id, session.context.patient, chart_label)
    return render_template("safety.html", **header_context(session, ehr), patient=None, show_banner=False,
                           rows=rows, outcomes=SAFETY_OUTCOMES, failed=failed, problems=problems or [],
                           entered=entered or {}), 422 if problems else 200  # fmt: skip


@bp.post("/safety/<task_id>/close")
@launch_required
def close(launch_id: str, task_id: str) -> Any:
    session, access = current_launch(), current_access()
    svc = services()
    outcome = request.form.get("outcome", "")
    note = (request.form.get("note") or "").strip()
    problems = []
    if outcome not in SAFETY_OUTCOMES:
        problems.append(("Choose the outcome of the follow-up.", f"outcome-{task_id}-0"))
    if not note:
        problems.append(("Write a note: what was done, and by whom.", f"note-{task_id}"))
    if problems:  # the form comes back at the top of the queue, what was entered kept
        return _queue_page(failed=task_id, problems=problems, entered={"outcome": outcome, "note": note})
    closer = current_user(session, current_ehr())
    svc.caseload.close_safety_task(task_id, None if access.caseload else access.patient_key, access.iss, outcome,
                                   note, closer)  # fmt: skip
    return redirect(url_for("safety.queue", launch_id=launch_id), code=303)

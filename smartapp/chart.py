"""The patient's chart view inside the EHR: screening history and trend, conditions, what is due, screenings
with their results and safety alerts, and the state of every write-back."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from fhir_mappings.capability import supports_conditional_create
from fhir_mappings.conditions import ConditionRow, behavioral_conditions
from fhir_mappings.due import DueItem, due_screenings
from fhir_mappings.history import ScorePoint, merge_history, score_points, series
from fhir_mappings.instruments import AUDIT_C, HISTORY_CODES, INSTRUMENTS, LOINC, instrument_for
from fhir_mappings.patient import (
    administrative_gender,
    age_in_years,
    birth_date,
    birth_date_text,
    display_name,
    identifier_value,
)
from fhir_mappings.scoring import parse_answers, score
from fhir_mappings.screening import Submission
from fhir_mappings.writeback import plan_writeback
from launch import errors
from launch.fhir import FHIRClient
from launch.screenings import ScreeningRecord
from launch.sessions import LaunchSession

from .charts import trend_svg
from .web import check_csrf, current_launch, header_context, services

log = logging.getLogger(__name__)
bp = Blueprint("chart", __name__, url_prefix="/app/<launch_id>")

HISTORY_CODE_PARAM = ",".join(f"{LOINC}|{code}" for codes in HISTORY_CODES.values() for code in codes)


@dataclass
class ChartData:
    history: list[ScorePoint] = field(default_factory=list)
    conditions: list[ConditionRow] = field(default_factory=list)
    due: list[DueItem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _common(session: LaunchSession, ehr: FHIRClient) -> dict[str, Any]:
    """What every chart page shows: the header, and the patient banner."""
    context = session.context
    patient = ehr.read("Patient", context.patient) if context.patient else None
    return {
        **header_context(session, ehr),
        "names": {instrument.key: instrument.name for instrument in INSTRUMENTS.values()},
        "patient": patient,
        "patient_name": display_name(patient),
        "birth_date": birth_date_text(patient),
        "age": age_in_years(patient, date.today()),
        "gender": administrative_gender(patient),
        "mrn": identifier_value(patient),
        "show_banner": context.need_patient_banner,
    }


def load_chart(session: LaunchSession, ehr: FHIRClient, patient: dict[str, Any]) -> ChartData:
    svc = services()
    data = ChartData()
    patient_id = str(patient["id"])
    ehr_observations: list[dict[str, Any]] = []
    try:
        ehr_observations = ehr.search_all("Observation", {"patient": patient_id, "code": HISTORY_CODE_PARAM,
                                                          "_count": "200"}, max_pages=10)  # fmt: skip
    except (errors.FHIRForbidden, errors.FHIRBadRequest) as error:
        data.notices.append(f"Screening results could not be read from the EHR ({error.message}).")
    try:
        data.conditions = behavioral_conditions(
            ehr.search_all("Condition", {"patient": patient_id}, max_pages=10)
        )
    except (errors.FHIRForbidden, errors.FHIRBadRequest) as error:
        data.notices.append(f"Conditions could not be read from the EHR ({error.message}).")
    registry_observations: list[dict[str, Any]] = []
    if svc.registry is not None:
        try:
            registry_observations = svc.registry.search_all(
                "Observation",
                {"subject": f"Patient/{patient_id}", "code": HISTORY_CODE_PARAM, "_count": "200"},
                max_pages=10,
            )
        except errors.FHIRError as error:
            data.notices.append(f"The Tandem registry could not be read ({error.message}).")
    data.history = merge_history(
        score_points(ehr_observations, "EHR"), score_points(registry_observations, "Tandem")
    )
    born = birth_date(patient)
    today = date.today()
    data.due = due_screenings(data.history, data.conditions, age_in_years(patient, today),
                              (today - born).days if born else None, today)  # fmt: skip
    return data


def _retry_due(session: LaunchSession, ehr: FHIRClient) -> list[ScreeningRecord]:
    """This patient's screenings, after retrying any pending write-back whose wait is over."""
    svc = services()
    if not session.context.patient:
        return []
    records = svc.screenings.for_patient(session.iss, session.context.patient)
    for record in records:
        if not record.complete:
            svc.screenings.run(record, ehr)
    return records


@bp.get("/")
def home(launch_id: str) -> Any:
    session = current_launch(launch_id)
    if not session.context.patient:  # launched without a patient (user context): the care manager's worklist
        return redirect(url_for("caseload.worklist", launch_id=launch_id), code=303)
    ehr = services().ehr_client(session)
    page = _common(session, ehr)
    chart = load_chart(session, ehr, page["patient"]) if page["patient"] else None
    try:
        enrolments = services().caseload.enrolments_for(session.iss, session.context.patient)
    except errors.TandemError as error:
        enrolments = []
        if chart:
            chart.notices.append(f"Registry enrolments could not be read ({error.message}).")
    records = _retry_due(session, ehr)
    trends = []
    if chart:
        for name in HISTORY_CODES:
            points = series(chart.history, name)
            if points:
                trends.append((name, points, trend_svg(points, name)))
    return render_template(
        "chart.html",
        **page,
        chart=chart,
        trends=trends,
        instruments=list(INSTRUMENTS.values()),
        alerts=[r for r in records if r.needs_acknowledgement],
        enrolments=enrolments,
        unfinished=[r for r in records if not r.complete],
    )


@bp.route("/screen/<key>", methods=["GET", "POST"])
def screen(launch_id: str, key: str) -> Any:
    session = current_launch(launch_id)
    instrument = instrument_for(key)
    if instrument is None:
        abort(404)
    if not session.context.patient:
        raise errors.InvalidLaunchRequest("screenings need a patient in context: open Tandem from a chart")
    svc = services()
    ehr = svc.ehr_client(session)
    if request.method == "GET":
        return render_template("screen_form.html", **_common(session, ehr), instrument=instrument,
                               submission_id=uuid.uuid4().hex, selected={}, problems={})  # fmt: skip
    check_csrf(session)
    submission_id = request.form.get("submission_id", "")
    if len(submission_id) != 32 or not all(c in "0123456789abcdef" for c in submission_id):
        raise errors.CSRFError("the form has no valid submission id; reload it")
    raw = {k: v for k, v in request.form.items() if k not in ("csrf_token", "submission_id")}
    answers, problems = parse_answers(instrument, raw)
    if problems:
        return render_template("screen_form.html", **_common(session, ehr), instrument=instrument,
                               submission_id=submission_id, selected=raw,
                               problems={p.link_id: p.message for p in problems}), 422  # fmt: skip
    # Only AUDIT-C's cutoff depends on sex: read the Patient for it alone (one request fewer per submit).
    sex = (
        administrative_gender(ehr.read("Patient", session.context.patient)) if instrument is AUDIT_C else None
    )
    submission = Submission(
        submission_id=submission_id,
        instrument=instrument,
        answers=answers,
        result=score(instrument, answers, sex=sex),
        patient_id=session.context.patient,
        authored=datetime.now(UTC).replace(microsecond=0),
        author=session.context.fhir_user if session.context.fhir_user_type else None,
        encounter_id=session.context.encounter,
    )
    reg = svc.registrations.get(session.iss)
    vendor = reg.vendor.value if reg else "generic"
    try:
        capability = svc.discovery.capability_statement(session.iss)
    except errors.DiscoveryError:
        capability = {}
    plan = plan_writeback(
        capability, session.scope.split(), vendor, has_encounter=bool(session.context.encounter)
    )
    conditional = bool(plan.ehr_types) and all(
        supports_conditional_create(capability, t) for t in plan.ehr_types
    )
    record = svc.screenings.record(submission, iss=session.iss, vendor=vendor, sex=sex, plan=plan,
                                   ehr_conditional_create=conditional)  # fmt: skip
    svc.screenings.run(record, ehr)
    return redirect(url_for("chart.result", launch_id=launch_id, record_id=record.id), code=303)


def _record_for(session: LaunchSession, record_id: str) -> ScreeningRecord:
    record = services().screenings.load(record_id)
    if record is None or record.iss != session.iss or record.patient_id != session.context.patient:
        abort(404)
    return record


@bp.get("/screenings/<record_id>")
def result(launch_id: str, record_id: str) -> str:
    session = current_launch(launch_id)
    record = _record_for(session, record_id)
    ehr = services().ehr_client(session)
    submission = record.submission()
    return render_template("screening_result.html", **_common(session, ehr), record=record, submission=submission,
                           result=submission.result)  # fmt: skip


@bp.post("/screenings/<record_id>/acknowledge")
def acknowledge(launch_id: str, record_id: str) -> Response:
    session = current_launch(launch_id)
    check_csrf(session)
    record = _record_for(session, record_id)
    services().screenings.acknowledge(record, session.context.fhir_user)
    return redirect(url_for("chart.result", launch_id=launch_id, record_id=record_id), code=303)  # type: ignore[return-value]


@bp.get("/writebacks")
def writebacks(launch_id: str) -> str:
    session = current_launch(launch_id)
    svc = services()
    ehr = svc.ehr_client(session)
    pending = [r for r in svc.screenings.pending() if r.iss == session.iss]
    return render_template("writebacks.html", **_common(session, ehr), pending=pending)


@bp.post("/writebacks/retry")
def retry_writebacks(launch_id: str) -> Response:
    session = current_launch(launch_id)
    check_csrf(session)
    svc = services()
    ehr = svc.ehr_client(session)
    for record in svc.screenings.pending():
        if record.iss != session.iss:
            continue
        # The EHR write needs this launch's patient; other patients' registry writes can go now.
        same_patient = record.patient_id == session.context.patient
        svc.screenings.run(record, ehr if same_patient else None, force=True)
    return redirect(url_for("chart.writebacks", launch_id=launch_id), code=303)  # type: ignore[return-value]


@bp.post("/end")
def end(launch_id: str) -> Response:
    session = current_launch(launch_id)
    check_csrf(session)
    services().sessions.end(session.id)
    return redirect(url_for("site.ended"), code=303)  # type: ignore[return-value]

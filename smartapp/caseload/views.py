"""The care manager's side: enrolment, worklist, patient detail, contacts, psychiatric case review, billing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from fhir_mappings.common.capability import supports_conditional_create
from fhir_mappings.common.dates import age_months, age_range_text
from fhir_mappings.common.export import csv_text
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient import birth_date, identifier_value
from fhir_mappings.common.validation import r4_errors
from fhir_mappings.registry.billing import (
    CODE_DESCRIPTIONS,
    NOT_CHECKED,
    billing_totals,
    code_description,
    month_code,
    month_of,
    month_readiness,
)
from fhir_mappings.registry.care_team import Person, Picker, care_team_people, default_member, pickers
from fhir_mappings.registry.case_review import RULES as REVIEW_RULES
from fhir_mappings.registry.case_review import reasons as review_reasons
from fhir_mappings.registry.case_review import to_review as still_to_review
from fhir_mappings.registry.patient_page import due_now, safety_source
from fhir_mappings.registry.programs import PROGRAMS, program_or_default, programs_for_age, suggest_program
from fhir_mappings.registry.recommendations import KINDS as RECOMMENDATION_KINDS
from fhir_mappings.registry.recommendations import STATUSES as RECOMMENDATION_STATUSES
from fhir_mappings.registry.recommendations import Review, consult_note, review_from_form
from fhir_mappings.registry.resources import (
    CONTACT_TYPES,
    PHASES,
    PROGRAM_TITLES,
    ROLES,
    Contact,
    Enrolment,
    Member,
)
from fhir_mappings.registry.worklist import (
    FLAG_LABELS,
    REVIEW_GROUPS,
    MedicalInputs,
    build_rows,
    columns_for,
    patient_identity,
    review_group,
    rows_csv,
)
from fhir_mappings.screening.history import series
from fhir_mappings.screening.resources import MEASUREMENT_MODES
from fhir_mappings.screening.writeback import plan_consult_note
from fhir_mappings.smi.row import MEDICAL_FLAG_LABELS
from fhir_mappings.smi.social import SOCIAL
from launch import errors
from launch.fhir import FHIRClient
from launch.scopes import allows, allows_create
from launch.sessions import LaunchSession
from smartapp import clock
from smartapp import errors as app_errors
from smartapp.caseload.columns import COLUMNS as COLUMN_DEFS
from smartapp.caseload.columns import PrefsStore, WorklistPrefs, available_columns
from smartapp.caseload.ehr_refresh import RefreshReport, last_refresh
from smartapp.caseload.followup import where_it_went
from smartapp.caseload.ready import (
    Entry,
    entry_stats,
    filter_entries,
    review_entries,
    review_group_of,
    sort_entries,
)
from smartapp.caseload.recommendation_status import RecommendationsView, mark, may_mark, reviews_of
from smartapp.caseload.review_medications import read_psychotropics
from smartapp.caseload.service import EnrolmentChanged
from smartapp.caseload.snapshot import CaseloadData
from smartapp.chart.trends import trend_svg
from smartapp.request_context import (
    caseload_data,
    current_access,
    current_ehr,
    current_launch,
    current_user,
    ehr_profile,
    entered_fields,
    form_id_valid,
    header_context,
    launch_required,
    mint_form_id,
    services,
    sign_form_id,
)
from smartapp.safety.views import patient_safety_rows, safety_pending
from smartapp.screening.service import FAILED, SAVED, UNCONFIRMED, ScreeningRecord
from smartapp.smi.page import medical_inputs, whole_person_page

log = logging.getLogger(__name__)
bp = Blueprint("caseload", __name__, url_prefix="/app/<launch_id>", template_folder="templates")


def _page(session: LaunchSession, ehr: FHIRClient, **extra: Any) -> dict[str, Any]:
    return {
        **header_context(session, ehr),
        "patient": None,
        "show_banner": False,
        "programs": PROGRAM_TITLES,
        "phases": PHASES,
        "roles": ROLES,
        "contact_types": CONTACT_TYPES,
        "flag_labels": FLAG_LABELS,
        "identity": lambda e: patient_identity(e, clock.today()),
        "medical_labels": MEDICAL_FLAG_LABELS,
        **extra,
    }


def _medical(iss: str, enrolments: list[Enrolment]) -> dict[PatientKey, MedicalInputs]:
    """The EHR medical copy, read only when a shown program tracks medical outcomes (one store read)."""
    if not any(program_or_default(e.program).tracks_medical for e in enrolments if e.active):
        return {}
    return medical_inputs(services().ehr_medical, iss)


def _patient_data(key: PatientKey) -> CaseloadData:
    """One patient's registry data with the EHR's scores. A caseload launch reads the patient's kept data (the
    worklist's ready rows, synced first), never the whole caseload; a patient launch, its patient searches."""
    if not current_access().caseload:
        return caseload_data(key.iss).for_patient(key)
    svc = services()
    cache: dict[PatientKey, CaseloadData] = g.setdefault("ready_patient_data", {})
    if key not in cache:
        found = svc.ready.patients([key], clock.today()).get(key) or CaseloadData([], [], [], {}, 0)
        cache[key] = found.with_ehr_scores({key: svc.ehr_scores.for_patient(key)})
    return cache[key]


def _paged(items: list[Any], size: int) -> tuple[list[Any], int, int]:
    """The page the `page` argument asks for (clamped), its number, and the number of pages."""
    try:
        number = max(1, int(request.args.get("page") or 1))
    except ValueError:
        number = 1
    pages = max(1, -(-len(items) // size))
    number = min(number, pages)
    return items[(number - 1) * size : number * size], number, pages


def _prefs_user(session: LaunchSession) -> str | None:
    return session.context.fhir_user or None


def _ready_entries(today: date, user: Member | None) -> tuple[list[Entry], list[Entry], dict[str, str]]:
    """The worklist's kept entries of the launch's EHR (safety alerts not yet in the registry laid over), and
    those the page's filters choose, in its order: no row is built, none decoded on a warm view."""
    access = current_access()
    access.check_caseload()
    pending = safety_pending(access)
    entries = [
        e.with_safety() if e.key in pending else e for e in services().ready.entries(access.iss, today)
    ]
    args = {
        k: request.args.get(k, "")
        for k in ("flag", "who", "program", "q", "sort", "order", "column", "value")
    }
    args["who"] = who = args["who"] or ("mine" if user else "all")
    chosen = filter_entries(entries, flag=args["flag"] or None, program=args["program"] or None,
                            text=args["q"] or None, member=user.reference if who == "mine" and user else None,
                            column=args["column"] or None, value=args["value"] or None)  # fmt: skip
    return entries, sort_entries(chosen, args["sort"] or "flags", descending=args["order"] == "desc"), args


@bp.get("/worklist")
@launch_required
def worklist(launch_id: str) -> str:
    """Served from the ready rows: the cost of a view is the rows it shows, not the caseload's size."""
    session = current_launch()
    ehr = current_ehr()
    page = _page(session, ehr)
    today = clock.today()
    entries, chosen, args = _ready_entries(today, page["user"])
    ready = services().ready
    prefs = PrefsStore(services().store).load(session.iss, _prefs_user(session))
    programs = {e.program for e in entries}
    offered = available_columns(columns_for(programs or PROGRAMS))
    shown_entries, number, pages = _paged(chosen, prefs.page_size)
    shown = ready.rows(shown_entries, today, safety_pending(current_access()))
    program = args["program"] or None
    only = {program} if program else programs
    columns = prefs.shown(offered, program_or_default(only.pop()).default_columns if len(only) == 1 else ())
    return render_template("worklist.html", **page, rows=shown, args=args, columns=columns,
                           offered=[COLUMN_DEFS[k] for k in offered], prefs=prefs, page_number=number, pages=pages,
                           first_shown=(number - 1) * prefs.page_size + 1 if shown else 0,
                           stats=entry_stats(chosen), total=len(entries), matching=len(chosen),
                           requests_made=ready.last_requests, today=today, **_refresh_status(session.iss))  # fmt: skip


def _refresh_status(iss: str) -> dict[str, Any]:
    """When the worker last read this EHR's scores (a failed read of the status only hides it)."""
    try:
        last = last_refresh(services(), iss)
    except errors.StoreUnavailable:
        last = None
    report = RefreshReport.from_json(last)
    return {
        "ehr_refresh": last if report else None,
        "ehr_refresh_summary": report.summary() if report else None,
    }


@bp.post("/worklist/columns")
@launch_required
def worklist_columns(launch_id: str) -> Response:
    """Save this user's columns, their order, the density and the page size (or restore the defaults)."""
    session = current_launch()
    user = _prefs_user(session)
    if not user:
        raise errors.InvalidLaunchRequest(
            "the EHR did not say who you are, so column choices cannot be saved"
        )
    store = PrefsStore(services().store)
    if request.form.get("reset"):
        store.reset(session.iss, user)
        flash("Worklist columns restored to the defaults.")
    else:
        store.save(session.iss, user, WorklistPrefs.from_form(request.form, request.form.getlist("col")))
        flash("Worklist columns saved.")
    return redirect(url_for("caseload.worklist", launch_id=launch_id), code=303)  # type: ignore[return-value]


@bp.get("/worklist.csv")
@launch_required
def worklist_csv(launch_id: str) -> Response:
    session = current_launch()
    ehr = current_ehr()
    today = clock.today()
    _, chosen_entries, _ = _ready_entries(today, current_user(session, ehr))
    chosen = services().ready.rows(chosen_entries, today, safety_pending(current_access()))
    return Response(rows_csv(chosen, clock.zone()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=caseload-{clock.today()}.csv"})  # fmt: skip


def registry_enrolment(careplan_id: str) -> Enrolment:
    """The enrolment in the URL: another EHR's is not found, another patient's is refused to a patient launch."""
    access = current_access()
    try:
        enrolment = services().caseload.get(careplan_id, access.iss)
    except errors.FHIRNotFound:
        abort(404)
    access.check_patient(enrolment.key)
    if not enrolment.collaborative:  # a HealthySteps family has its own page
        abort(
            redirect(url_for("healthysteps.family", launch_id=current_launch().id, careplan_id=careplan_id))
        )
    return enrolment


@bp.get("/enrolments/<careplan_id>")
@launch_required
def enrolment_page(launch_id: str, careplan_id: str, conflict: EnrolmentChanged | None = None,
                   problem: str | None = None, entered: dict[str, str] | None = None,
                   social_problem: str | None = None, problem_status: int = 422,
                   problem_field: str | None = None) -> Any:  # fmt: skip
    session = current_launch()
    ehr = current_ehr()
    enrolment = conflict.current if conflict else registry_enrolment(careplan_id)
    data = _patient_data(enrolment.key)
    program = program_or_default(enrolment.program)
    medical = {}
    if program.tracks_medical:
        record = services().ehr_medical.for_patient(enrolment.key)
        medical = {enrolment.key: (record.observations, record.requests, record.read_at)} if record else {}
    rows = build_rows([enrolment], data.contacts, data.tasks, data.scores, clock.today(),
                      safety_pending=safety_pending(current_access()), medical=medical, social=data.social)  # fmt: skip
    contacts = sorted(
        (c for c in data.contacts if c.careplan_id == enrolment.id), key=lambda c: c.when, reverse=True
    )
    points = data.scores.get(enrolment.key, [])
    whole = None
    if rows and rows[0].whole is not None:  # SMI: three trends side by side instead of the score trends alone
        whole = whole_person_page(program, rows[0], points, data.social.get(enrolment.key, []), clock.today())
    trends = [(name, series(points, name), trend_svg(series(points, name), name)) for name in ("PHQ-9", "GAD-7")
              if series(points, name) and whole is None]  # fmt: skip
    months = sorted({c.when.replace(day=1) for c in contacts} | {clock.today().replace(day=1)}, reverse=True)
    billing = [(m, month_code(enrolment, contacts, m)) for m in months if m >= enrolment.start.replace(day=1)]
    tasks = [t for t in data.tasks if t.careplan_id == enrolment.id or t.kind == "safety-follow-up"]
    contact_id, contact_sig = mint_form_id("contact", session.id, enrolment.id)
    safety_open = patient_safety_rows(current_access(), enrolment.key, launch_id)
    own_points = [p for p in points if p.focus is None]
    sources = [safety_source(s.item.since, s.item.reason, s.item.record_id, _instrument_name(s.item.record),
                             own_points) for s in safety_open]  # fmt: skip
    return render_template("enrolment.html", **_page(session, ehr), enrolment=enrolment, safety_sources=sources,
                           due_now=due_now(rows[0], tasks, clock.today()) if rows else [],
                           contact_id=contact_id, contact_sig=contact_sig,
                           row=rows[0] if rows else None, contacts=contacts, trends=trends, billing=billing,
                           tasks=sorted(tasks, key=lambda t: (not t.open, t.due or date.max)),
                           conflict=conflict, today=clock.today(), problem=problem, entered=entered or {},
                           problem_field=problem_field,
                           measures=list(program.measures), whole=whole, social_problem=social_problem,
                           social_config=SOCIAL,
                           safety_open=safety_open), (
                               409 if conflict else problem_status if problem or social_problem else 200)  # fmt: skip


def _instrument_name(record: ScreeningRecord | None) -> str | None:
    """The instrument's name ("PHQ-9") of the screening a safety follow-up came from, when Tandem holds it."""
    instrument = services().catalogue.get(record.instrument) if record is not None else None
    return instrument.name if instrument is not None else None


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def _form_date(name: str, default: date) -> date:
    try:
        return date.fromisoformat(request.form.get(name) or default.isoformat())
    except ValueError:
        raise errors.InvalidLaunchRequest(f"{name} is not a date (YYYY-MM-DD)") from None


@bp.post("/enrolments/<careplan_id>/contact")
@launch_required
def log_contact(launch_id: str, careplan_id: str) -> Any:
    session = current_launch()
    svc = services()
    enrolment = registry_enrolment(careplan_id)
    try:
        minutes = int(request.form.get("minutes", ""))
    except ValueError:
        minutes = -1
    contact_type = request.form.get("contact_type", "")
    role = request.form.get("role", "care-manager")
    when = _form_date("date", clock.today())
    problem, field = None, None
    if not 1 <= minutes <= 600:
        problem, field = "Enter the minutes spent (1 to 600).", "minutes"
    elif contact_type not in CONTACT_TYPES or role not in ROLES:
        problem, field = "Choose the contact's type and your role from the lists.", "contact-type"
    elif when > clock.today():
        problem, field = "The contact's date cannot be in the future.", "contact-date"
    if problem:  # the form comes back with what was entered
        return enrolment_page(
            launch_id,
            careplan_id,
            problem=problem,
            problem_field=field,
            entered=entered_fields(),
        )
    ehr = current_ehr()
    # The id was minted with the page and bound to this launch and enrolment: a resubmission writes the same
    # Task, and no form can name another record.
    form_id = request.form.get("contact_id", "")
    if not form_id_valid("contact", form_id, request.form.get("contact_sig", ""), session.id, enrolment.id):
        raise app_errors.BadAddress("the contact form was not issued for this enrolment; reload the page")
    contact_id = f"contact-{form_id}"
    # The enrolment's contacts as loaded for this request (before the write: no reload after it).
    earlier = [c for c in _patient_data(enrolment.key).contacts if c.careplan_id == enrolment.id]
    svc.caseload.log_contact(enrolment, when, minutes, contact_type, role, current_user(session, ehr),
                             (request.form.get("note") or "").strip() or None, contact_id)  # fmt: skip
    contacts = [c for c in earlier if c.id != contact_id]
    contacts.append(Contact(contact_id, enrolment.id, when, minutes, contact_type, role, None))
    code = month_code(enrolment, contacts, when)
    reached = f"{code.label} reached this month" if code.code else f"no code reached yet ({code.description})"
    flash(f"Contact saved: {minutes} min on {when.isoformat()}, {code.minutes} min in {when:%B}; {reached}.")
    if request.form.get("discuss"):
        svc.caseload.request_review(
            svc.caseload.get(careplan_id, enrolment.iss), "Discuss with the psychiatric consultant"
        )
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id), code=303
    )


@bp.post("/enrolments/<careplan_id>/update")
@launch_required
def update(launch_id: str, careplan_id: str) -> Any:
    """Phase changes and review flags, saved with If-Match on the version the user saw."""
    svc = services()
    current = registry_enrolment(careplan_id)
    version = request.form.get("version")
    if version and not version.isalnum():
        raise app_errors.BadAddress("the form's version is not valid")
    if not version:  # which version the user saw is unknown: never saved over whatever is there now
        missing = EnrolmentChanged(
            "the form did not say which version of the enrolment it was opened at", current, []
        )
        return enrolment_page(launch_id, careplan_id, conflict=missing)
    seen = replace(current, version=version)
    changed = seen
    phase = request.form.get("phase")
    if phase:
        if phase not in PHASES:
            raise errors.InvalidLaunchRequest("unknown status")
        ends = phase in ("discharged", "withdrawn")
        changed = replace(changed, phase=phase, end=clock.today() if ends else None)
    if "flag" in request.form:
        changed = replace(changed, flagged_for_review=request.form["flag"] == "1")
    try:
        svc.caseload.save(changed)
    except EnrolmentChanged as conflict:
        return enrolment_page(launch_id, careplan_id, conflict=conflict)
    said = [f"status {PHASES[changed.phase][1].lower()}"] if changed.phase != current.phase else []
    if changed.flagged_for_review != current.flagged_for_review:
        said.append("flagged for psychiatric review" if changed.flagged_for_review else "review flag removed")
    flash(f"Saved: {', '.join(said)}." if said else "Nothing changed.")
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id), code=303
    )


@bp.post("/enrolments/<careplan_id>/follow-up")
@launch_required
def follow_up(launch_id: str, careplan_id: str) -> Any:
    try:
        due = date.fromisoformat(request.form.get("due") or "")
    except ValueError:
        return enrolment_page(launch_id, careplan_id, problem="Give the follow-up a due date.", problem_field="due",
                              entered=entered_fields())  # fmt: skip
    description = (request.form.get("description") or "").strip() or "Follow-up contact"
    services().caseload.add_task(
        "follow-up", registry_enrolment(careplan_id), due=due, description=description
    )
    flash(f"Follow-up added: {description}, due {due.isoformat()}.")
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id), code=303
    )


@bp.post("/enrolments/<careplan_id>/tasks/<task_id>/done")
@launch_required
def task_done(launch_id: str, careplan_id: str, task_id: str) -> Response:
    """A follow-up of this enrolment is done (it must exist, be a follow-up, and belong to the enrolment)."""
    try:
        services().caseload.complete_task(task_id, registry_enrolment(careplan_id))
    except errors.FHIRNotFound:
        abort(404)
    flash("Follow-up marked done.")
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id), code=303
    )  # type: ignore[return-value]


@bp.route("/enrolments/<careplan_id>/measure/<key>", methods=["GET", "POST"])
@launch_required
def measure(launch_id: str, careplan_id: str, key: str) -> Any:
    """A follow-up measurement (PHQ-9, GAD-7, …) for an enrolled patient, from the worklist or the registry page:
    no patient context needed, the patient is the enrolment's (of this EHR, and one this launch may see)."""
    from smartapp.chart.views import Subject, screening_page

    enrolment = registry_enrolment(careplan_id)
    if not enrolment.active:
        raise errors.InvalidLaunchRequest(
            "this enrolment has ended: follow-up measurements are for active ones"
        )
    response = screening_page(current_launch(), key, Subject(enrolment.patient_id, enrolment))
    return _back_to_the_patient(response, launch_id, careplan_id)


def _back_to_the_patient(response: Any, launch_id: str, careplan_id: str) -> Any:
    """A saved follow-up returns to the patient's registry page, which says once, in words, what was measured and
    where it went. A result with a safety flag keeps its result page: the alert and its next steps are there."""
    if not isinstance(response, Response) or response.status_code != 303 or not response.location:
        return response  # the form again (a problem to correct) or anything but a saved result
    result_page = url_for("chart.result", launch_id=launch_id, record_id="-").removesuffix("-")
    path = urlsplit(response.location).path
    record_id = path.removeprefix(result_page) if path.startswith(result_page) else ""
    record = services().screenings.load(record_id) if record_id and "/" not in record_id else None
    if record is None or record.careplan_id != careplan_id:
        return response
    submission = record.submission(services().catalogue)
    result = submission.result
    if result.has_safety_flag:
        return response
    what = submission.instrument.name
    if result.total is not None:
        what += f" {result.total}" + (f" ({result.band})" if result.band else "")
    how = MEASUREMENT_MODES.get(record.mode or "", "")
    flash(f"{what}{', ' + how.lower() if how else ''}. {where_it_went(record)}")
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id), code=303
    )


REVIEW_PAGE_SIZE = 10
#: How many recently reviewed cases the folded list names (the count says how many there are).
REVIEWED_SHOWN = 30


def _review_page(launch_id: str, *, problem: tuple[str, list[str], dict[str, Any]] | None = None,
                 status: int = 200) -> tuple[str, int]:  # fmt: skip
    """The case review list: grouped in review order, paged, each case with its trend and last recommendations.
    `problem`: (careplan id, messages, what was entered) of a review form that needs correcting."""
    session = current_launch()
    ehr = current_ehr()
    page = _page(session, ehr)
    user = page["user"]
    today = clock.today()
    access = current_access()
    access.check_caseload()
    pending = safety_pending(access)
    # From the ready rows: the order and the counts from the kept entries, the page's cases built alone.
    entries = [
        e.with_safety() if e.key in pending else e for e in services().ready.entries(access.iss, today)
    ]
    to_review, reviewed = _split_reviewed(review_entries(entries), pending, today)
    on_team = user is not None and any(user.reference in e.members for e in to_review + reviewed)
    who = request.args.get("who") or ("mine" if on_team else "all")
    if who == "mine" and user is not None:
        to_review = [e for e in to_review if user.reference in e.members]
        reviewed = [e for e in reviewed if user.reference in e.members]
    if problem is not None:  # the case whose form needs correcting is shown whatever page it is on
        to_review = [e for e in to_review if e.id == problem[0]] or to_review
    shown_entries, number, pages = _paged(to_review, REVIEW_PAGE_SIZE)
    scores: dict[PatientKey, list[Any]] = {}
    shown = services().ready.rows(shown_entries, today, pending, scores)
    trends = {}
    for row in shown:
        points = series(scores.get(row.enrolment.key, []), row.program.outcome.series)
        trends[row.enrolment.id] = (
            trend_svg(points, row.program.outcome.series, compact=True, titled=True) if points else ""
        )
    groups = [(key, label, [r for r in shown if review_group(r) == key]) for key, label in REVIEW_GROUPS]
    counts = {key: sum(1 for e in to_review if review_group_of(e) == key) for key, _ in REVIEW_GROUPS}
    reasons = {
        r.enrolment.id: review_reasons(r, today, safety_pending=r.enrolment.key in pending) for r in shown
    }
    medications = read_psychotropics(ehr, access.iss, [r.enrolment.key for r in shown])
    # The recently reviewed, folded under the list: by name and date of birth (the kept rows; the first few).
    reviewed_rows = services().ready.rows(reviewed[:REVIEWED_SHOWN], today, pending) if reviewed else []
    records = reviews_of(services().caseload, [r.enrolment.key for r in shown])
    return render_template("review.html", **page, groups=[g for g in groups if g[2]], counts=counts,
                           total=len(to_review), who=who, page_number=number, pages=pages, trends=trends,
                           kinds=RECOMMENDATION_KINDS, problem=problem, max_items=3, reasons=reasons,
                           medications=medications, records=records, reviewed=reviewed,
                           reviewed_rows=reviewed_rows,
                           recently_days=REVIEW_RULES.reviewed_recently_days), status  # fmt: skip


def _split_reviewed(
    entries: list[Entry], pending: set[PatientKey], today: date
) -> tuple[list[Entry], list[Entry]]:
    """The cases still to review, and those reviewed recently with no new reason since (`case_review.to_review`):
    a safety alert counts from the day it was raised (one not yet in the registry: not dated, still to review)."""
    raised: dict[PatientKey, datetime] = {}
    for task in services().ready.open_safety_tasks(current_access().iss, today) if any(
            "safety" in e.flags for e in entries) else []:  # fmt: skip
        when = task.authored_at or (
            datetime.combine(task.authored, datetime.min.time(), UTC) if task.authored else None)  # fmt: skip
        if task.key is not None and when is not None:
            raised[task.key] = max(when, raised.get(task.key, when))
    # A safety case reviewed on or after the day of its alert: the review's instant decides (its Task's end).
    reviewed_safety = [e.key for e in entries if "safety" in e.flags and e.shown("last_review")]
    records = reviews_of(services().caseload, reviewed_safety) if reviewed_safety else {}
    waiting: list[Entry] = []
    reviewed: list[Entry] = []
    for e in entries:
        shown = e.shown("last_review")
        last = date.fromisoformat(shown) if shown else None
        instants = [r.completed_at for r in (records or {}).get(e.id, []) if r.completed_at]
        safety_at = None if e.key in pending else raised.get(e.key)
        keep = still_to_review(e.flags, last, today, safety_raised=safety_at,
                               reviewed_at=max(instants) if instants else None)  # fmt: skip
        (waiting if keep else reviewed).append(e)
    return waiting, reviewed


@bp.get("/review")
@launch_required
def review(launch_id: str) -> tuple[str, int]:
    return _review_page(launch_id)


@bp.post("/review/<careplan_id>")
@launch_required
def record_review(launch_id: str, careplan_id: str) -> Any:
    """Close the case's review with structured recommendations; write them to the EHR as a consult note where
    the EHR accepts notes from this launch. The registry copy is written first: nothing is lost if the EHR refuses."""
    session = current_launch()
    current_access().check_caseload()
    enrolment = registry_enrolment(careplan_id)
    kinds, details = request.form.getlist("kind"), request.form.getlist("detail")
    free_text = request.form.get("recommendations") or ""
    entered = {"kind": kinds, "detail": details, "text": free_text}
    review, problems = review_from_form(kinds, details, free_text)
    if problems:
        return _review_page(launch_id, problem=(careplan_id, problems, entered), status=422)
    svc = services()
    ehr = current_ehr()
    reviewer = current_user(session, ehr)
    _, task_id = svc.caseload.record_review(enrolment, review, reviewer)
    outcome = _write_consult_note(session, ehr, enrolment, review, task_id, reviewer)
    flash(
        f"Review recorded for {enrolment.patient_name or 'the patient'}: {review.summary()[:160]}. {outcome}"
    )
    return redirect(url_for("caseload.review", launch_id=launch_id, who=request.args.get("who")), code=303)


@bp.app_template_global("recommendation_reviews")
def recommendation_reviews(enrolment: Enrolment) -> RecommendationsView | None:
    """For `_recommendations.html`: the enrolment's reviews (latest first) and whether this user marks them;
    None when the registry cannot be read (the section says so; the page still loads)."""
    found = reviews_of(services().caseload, [enrolment.key])
    if found is None:
        return None
    try:
        user = current_user(current_launch(), current_ehr())
    except errors.TandemError:
        user = None
    return RecommendationsView(found.get(enrolment.id, []), may_mark(enrolment, user))


@bp.app_template_global("recommendation_statuses")
def recommendation_statuses() -> dict[str, str]:
    return dict(RECOMMENDATION_STATUSES)


@bp.post("/enrolments/<careplan_id>/recommendations/<task_id>/<int:index>")
@launch_required
def mark_recommendation(launch_id: str, careplan_id: str, task_id: str, index: int) -> Any:
    """The care manager or the PCP marks what became of one recommendation (form_once: a replay saves nothing)."""
    session = current_launch()
    enrolment = registry_enrolment(careplan_id)
    user = current_user(session, current_ehr())
    if not may_mark(enrolment, user):
        raise app_errors.NotRecommendationMarker("not the patient's care manager or PCP")
    status = request.form.get("status") or ""
    if status not in RECOMMENDATION_STATUSES:
        abort(400)
    try:
        marked = mark(services().caseload, enrolment, task_id, index, status, user)
    except errors.FHIRNotFound:
        abort(404)
    if not marked:
        abort(404)
    flash(f"Recommendation marked “{RECOMMENDATION_STATUSES[status].lower()}”.")
    back = request.args.get("back")
    if back == "chart":
        return redirect(url_for("chart.home", launch_id=launch_id), code=303)
    if back == "review":
        return redirect(url_for("caseload.review", launch_id=launch_id), code=303)
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id), code=303
    )


def _write_consult_note(session: LaunchSession, ehr: FHIRClient, enrolment: Enrolment, review: Review,
                        task_id: str, reviewer: Member | None) -> str:  # fmt: skip
    """The consult note's write-back: saved first, then written through the same attempts, lock and queue as a
    screening's (retried by the worker; a refusal stays on the write-backs page). What happened, in words."""
    vendor, capability = ehr_profile(session)
    granted = session.scope.split()
    if enrolment.patient_id == session.context.patient:
        may_create = lambda resource_type: allows_create(granted, resource_type)  # noqa: E731
    else:  # the worklist (no patient in context): only user-level scopes reach this patient's chart
        may_create = lambda resource_type: allows(granted, "user", resource_type, "c")  # noqa: E731
    encounter = session.context.encounter if enrolment.patient_id == session.context.patient else None
    plan = plan_consult_note(capability, may_create, vendor, has_encounter=bool(encounter))
    if not plan.ehr_types:
        return plan.reason
    row = next(iter(build_rows([enrolment], [], [], caseload_data(session.iss).scores, clock.today())), None)
    scores = {}
    if row is not None and row.phq9.latest is not None:
        scores["PHQ-9"] = f"baseline {row.phq9.first}, latest {row.phq9.latest}"
    if row is not None and row.gad7.latest is not None:
        scores["GAD-7"] = f"baseline {row.gad7.first}, latest {row.gad7.latest}"
    note = consult_note(review, patient_id=enrolment.patient_id, task_id=task_id, reviewed=datetime.now(UTC),
                        reviewer=session.context.fhir_user if session.context.fhir_user_type else None,
                        reviewer_name=reviewer.display if reviewer else None,
                        program_title=PROGRAM_TITLES.get(enrolment.program, enrolment.program), scores=scores)  # fmt: skip
    if encounter:
        note["context"] = {"encounter": [{"reference": f"Encounter/{encounter}"}]}
    problems = r4_errors(note)
    if problems:  # pragma: no cover - the note is built from validated parts
        log.error("consult note failed R4 validation: %s", problems[0])
        return "The consult note could not be built; the recommendations are kept in the Tandem registry."
    svc = services()
    record = svc.screenings.record_note(
        note, iss=session.iss, vendor=vendor, patient_id=enrolment.patient_id, plan=plan,
        ehr_conditional_create=supports_conditional_create(capability, "DocumentReference"),
        launch_id=session.id, careplan_id=enrolment.id,
        author=session.context.fhir_user if session.context.fhir_user_type else None,
    )  # fmt: skip
    record = svc.screenings.run(record, ehr)  # the first attempt now, under the record's lock
    try:
        svc.writebacks.schedule([record], launch_id=session.id)
    except errors.StoreUnavailable:
        log.warning("consult note write-back not queued: the worker's sweeper will pick it up")
    status = record.ehr.status
    if status == SAVED:
        return "Written to the EHR as a consult note."
    if status == UNCONFIRMED:
        return ("The EHR did not confirm the consult note: check the patient's chart (it is listed on Pending and "
                "failed write-backs).")  # fmt: skip
    if status == FAILED:
        return (
            f"{record.ehr.detail} It stays listed on Pending and failed write-backs until someone checks it."
        )
    return ("The consult note will be written to the EHR: Tandem retries by itself (see Pending and failed "
            "write-backs).")  # fmt: skip


#: Patient-months per page of the billing report (the summary and the totals cover them all).
BILLING_PAGE_SIZE = 25


@bp.get("/billing")
@launch_required
def billing(launch_id: str) -> Any:
    """The month's billing report: per patient-month the code reached, the billing practitioner and whether it is
    ready to bill (what is missing, in words); per-code totals; filtered by care manager and program; as CSV."""
    session = current_launch()
    access = current_access()
    access.check_caseload()
    ehr = current_ehr()
    try:
        month = date.fromisoformat((request.args.get("month") or clock.today().strftime("%Y-%m")) + "-01")
    except ValueError:
        abort(400)
    data = caseload_data(access.iss)
    in_month = [e for e in data.enrolments if e.collaborative  # HealthySteps bills per instrument, on its own page
                and month_of(e.start) <= month and not (e.end and month_of(e.end) < month)]  # fmt: skip
    care_managers = {m.reference: m.name for e in in_month if (m := e.member("care-manager"))}
    programs = {e.program: PROGRAM_TITLES.get(e.program, "Other program") for e in in_month}
    # A care manager opens their own patients; "all" (or a launch by someone else) shows everyone's.
    user = current_user(session, ehr)
    mine = user.reference if user is not None and user.reference in care_managers else ""
    chosen = {"cm": request.args.get("cm", mine), "program": request.args.get("program", "")}
    if chosen["cm"] == "all":
        chosen["cm"] = ""
    lines: list[dict[str, Any]] = []
    for enrolment in in_month:
        cm = enrolment.member("care-manager")
        if chosen["cm"] and (cm.reference if cm else "none") != chosen["cm"]:
            continue
        if chosen["program"] and enrolment.program != chosen["program"]:
            continue
        contacts = [c for c in data.contacts if c.careplan_id == enrolment.id]
        scored = [p.day for p in data.scores.get(enrolment.key, []) if p.focus is None]
        reviewed = [t.completed for t in data.tasks if t.careplan_id == enrolment.id and t.kind == "case-review"
                    and not t.open and t.completed]  # fmt: skip
        readiness = month_readiness(enrolment, contacts, month, scored=scored, reviewed=reviewed)
        by_owner: dict[str, int] = {}
        for c in contacts:
            if month_of(c.when) == month:
                owner = c.owner.name if c.owner else "unknown"
                by_owner[owner] = by_owner.get(owner, 0) + c.minutes
        pcp = enrolment.member("pcp")
        lines.append({"care_manager": cm.name if cm else "unassigned", "enrolment": enrolment,
                      "code": readiness.code, "readiness": readiness, "by_owner": by_owner,
                      "billing_practitioner": pcp.name if pcp else "",
                      "program": PROGRAM_TITLES.get(enrolment.program, "Other program")})  # fmt: skip
    lines.sort(key=lambda line: (line["care_manager"], line["enrolment"].patient_name or ""))
    totals = billing_totals([line["readiness"] for line in lines])
    if request.args.get("format") == "csv":
        text = csv_text(
            ("Month", "Care manager", "Billing practitioner", "Patient", "Date of birth", "MRN", "Program",
             "Minutes", "Code", "Add-on units", "Code description", "Ready to bill", "Missing"),
            ([month.strftime("%Y-%m"), line["care_manager"], line["billing_practitioner"],
              line["enrolment"].patient_name or "", _iso(line["enrolment"].birth_date), line["enrolment"].mrn or "",
              line["program"], line["code"].minutes, line["code"].code or "", line["code"].units,
              code_description(line["code"]), "yes" if line["readiness"].ready else "no",
              "; ".join(line["readiness"].missing)] for line in lines),
        )  # fmt: skip
        return Response(text, mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=billing-{month:%Y-%m}.csv"})  # fmt: skip
    shown, number, pages = _paged(lines, BILLING_PAGE_SIZE)
    return render_template("billing.html", **_page(session, ehr), lines=lines, shown=shown, page_number=number,
                           pages=pages, first_shown=(number - 1) * BILLING_PAGE_SIZE + 1, month=month, totals=totals,
                           care_managers=dict(sorted(care_managers.items(), key=lambda kv: kv[1] or "")),
                           program_choices=programs, chosen=chosen, not_checked=NOT_CHECKED,
                           descriptions=CODE_DESCRIPTIONS)  # fmt: skip


# --- enrolment from the chart -------------------------------------------------------------------------


@dataclass(frozen=True)
class CareTeamPickers:
    everyone: list[Person]
    by_role: dict[str, Picker]

    def defaults(self, gp: str | None, user: str | None, consultant: str | None) -> dict[str, str | None]:
        """The patient's own PCP for the PCP; the launching user and the site's consultant each only for a role
        they hold (a PCP who opens the form is never the default care manager)."""
        return {
            "pcp": gp if self.by_role["pcp"].offers(gp) else None,
            "care-manager": default_member(self.by_role["care-manager"], [user]),
            "psychiatric-consultant": default_member(self.by_role["psychiatric-consultant"], [consultant]),
            "hs-specialist": default_member(self.by_role["hs-specialist"], [user]),
        }


def _care_team_pickers(session: LaunchSession, ehr: FHIRClient) -> CareTeamPickers:
    """The EHR's practitioners by the roles they hold: PractitionerRole where the launch may read it (its roles
    and specialties), else each Practitioner's qualification (the demo's)."""
    try:
        practitioners = ehr.search_all("Practitioner", {"_count": "100"}, max_pages=2)
    except errors.FHIRError:
        practitioners = []
    practitioner_roles: list[dict[str, Any]] = []
    if allows(session.scope.split(), "user", "PractitionerRole", "s"):
        try:
            practitioner_roles = ehr.search_all("PractitionerRole", {"_count": "100"}, max_pages=2)
        except errors.FHIRError:
            log.warning("PractitionerRole search failed; care-team roles from qualifications only")
    everyone = care_team_people(practitioners, practitioner_roles)
    return CareTeamPickers(everyone, pickers(everyone, ROLES))


@bp.route("/enrol", methods=["GET", "POST"])
@launch_required
def enrol(launch_id: str) -> Any:
    from smartapp.chart.views import _common, load_chart

    session = current_launch()
    if not session.context.patient:
        raise errors.InvalidLaunchRequest("enrolment needs a patient in context: open Tandem from a chart")
    svc = services()
    ehr = current_ehr()
    page = _common(session, ehr)
    chart = load_chart(session, ehr, session.context.patient, page["patient"])
    months = age_months(birth_date(page["patient"]), clock.today())
    suggested, cautions = suggest_program(chart.history, chart.conditions, months)
    offered = {k: p.title for k, p in programs_for_age(months).items()}
    team_pickers = _care_team_pickers(session, ehr)
    people = [(p.reference, p.name, p.role_text) for p in team_pickers.everyone]
    user = current_user(session, ehr)
    existing = svc.caseload.enrolments_for(session.iss, session.context.patient)
    binding = (session.id, session.iss, session.context.patient)
    if request.method == "GET":
        gp = next((g.get("reference") for g in (page["patient"] or {}).get("generalPractitioner") or []
                   if isinstance(g, dict)), None)  # fmt: skip
        enrolment_id, enrolment_sig = mint_form_id("enrolment", *binding)
        return render_template("enrol.html", **page, suggested=suggested, cautions=cautions, people=people,
                               pickers=team_pickers.by_role,
                               defaults=team_pickers.defaults(gp, user.reference if user else None,
                                                              svc.settings.default_consultant),
                               existing=existing, programs=PROGRAM_TITLES, offered=offered, roles=ROLES, problem=None,
                               enrolment_id=enrolment_id, enrolment_sig=enrolment_sig, today=clock.today())  # fmt: skip
    form = request.form
    enrolment_id = form.get("enrolment_id", "")
    if not form_id_valid("enrolment", enrolment_id, form.get("enrolment_sig", ""), *binding):
        raise app_errors.BadAddress(
            "the enrolment form was not issued for this patient in this launch; reload it"
        )
    names = {ref: name for ref, name, _ in people}
    program = form.get("program", "")
    problem, problem_field = None, None
    consent_date: date | None = None
    try:
        consent_date = date.fromisoformat(form.get("consent_date") or clock.today().isoformat())
    except ValueError:
        consent_date = None
    if program not in PROGRAMS:
        problem, problem_field = "Choose a program.", "program-0"
    elif program not in offered:
        problem = (f"{PROGRAMS[program].title} is for patients aged {age_range_text(PROGRAMS[program].ages_months)}; "
                   f"this patient is {page['age_label'] or 'of unknown age'}.")  # fmt: skip
        problem_field = "program-0"
    elif any(form.get(role) and not team_pickers.by_role[role].offers(form[role]) for role in ROLES):
        problem, problem_field = (
            "Choose each care team member from the list (practitioners of this EHR).",
            next(
                role for role in ROLES if form.get(role) and not team_pickers.by_role[role].offers(form[role])
            ),
        )
    elif PROGRAMS[program].consent_required and form.get("consent") != "yes":
        problem = f"{PROGRAMS[program].title} needs the patient's consent (verbal or written), documented before enrolment."
        problem_field = "consent"
    elif form.get("consent_method") not in ("verbal", "written"):
        problem, problem_field = "Record how consent was given (verbal or written).", "consent-verbal"
    elif consent_date is None or not clock.today() - timedelta(days=365) <= consent_date <= clock.today():
        problem, problem_field = (
            "The consent date must be a date within the past year, not in the future.",
            "consent_date",
        )
    if problem:
        return render_template("enrol.html", **page, suggested=program or suggested, cautions=cautions, people=people,
                               pickers=team_pickers.by_role,
                               defaults={r: form.get(r) for r in ROLES}, existing=existing, programs=PROGRAM_TITLES,
                               offered=offered,
                               roles=ROLES, problem=problem, problem_field=problem_field, enrolment_id=enrolment_id,
                               enrolment_sig=sign_form_id("enrolment", enrolment_id, *binding),
                               today=clock.today()), 422  # fmt: skip
    team = {role: Member(form[role], names.get(form[role])) for role in ROLES if form.get(role)}
    enrolment = Enrolment(
        id=f"cocm-{enrolment_id}"[:64],
        iss=session.iss,
        patient_id=session.context.patient,
        patient_name=page["patient_name"],
        program=program,
        phase="active-treatment",
        start=clock.today(),
        team=team,
        consent_given=True,
        consent_date=consent_date,
        consent_method=form.get("consent_method"),
        birth_date=birth_date(page["patient"]),
        mrn=identifier_value(page["patient"]),
    )
    if not any(e.id == enrolment.id for e in existing):  # a resubmitted form must not enrol twice
        svc.caseload.enrol(enrolment)
    return redirect(
        url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=enrolment.id), code=303
    )

"""The HealthySteps Specialist's side: the program worklist, a family's page (tier and its history, suggested
moves, referrals, contacts, screens, billing suggestions), the program report, and enrolment from a child's chart."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from fhir_mappings.common.caregivers import find
from fhir_mappings.common.dates import age_months
from fhir_mappings.common.patient import birth_date, identifier_value
from fhir_mappings.healthysteps.billing import billing_days, visit_billing
from fhir_mappings.healthysteps.referrals import CLOSING_STATUSES, STATUSES, WHOM
from fhir_mappings.healthysteps.report import build_report, report_csv
from fhir_mappings.healthysteps.worklist import FLAGS, Row, build_rows
from fhir_mappings.registry.resources import Enrolment, Member
from launch import errors
from smartapp import clock
from smartapp.caseload.service import EnrolmentChanged
from smartapp.healthysteps.ready import filter_entries as filter_hs_entries
from smartapp.healthysteps.service import HealthyStepsData, HealthyStepsProblem, ReferralChanged
from smartapp.request_context import (
    current_access,
    current_ehr,
    current_launch,
    current_user,
    header_context,
    launch_required,
    services,
)
from smartapp.safety.views import patient_safety_rows, safety_pending

bp = Blueprint(
    "healthysteps", __name__, url_prefix="/app/<launch_id>/healthysteps", template_folder="templates"
)
#: Billing suggestions cover this many days back from today.
BILLING_DAYS = 90


def _page(**extra: Any) -> dict[str, Any]:
    session, ehr = current_launch(), current_ehr()
    program = services().healthysteps.program
    return {**header_context(session, ehr), "patient": None, "show_banner": False, "program": program,
            "flag_labels": FLAGS, "statuses": STATUSES, "whom": WHOM, "today": clock.today(), **extra}  # fmt: skip


def _data(only: Any = None) -> HealthyStepsData:
    svc, access = services(), current_access()
    scores = ({only: svc.ehr_scores.for_patient(only)} if only is not None
              else svc.ehr_scores.for_issuer(access.iss))  # fmt: skip
    return svc.healthysteps.load(access.iss, scores, only=only)


def _rows(data: HealthyStepsData) -> list[Row]:
    svc, access = services(), current_access()
    pending = safety_pending(access)
    rows = build_rows(svc.healthysteps.program, svc.schedule, data.enrolments, caregivers=data.caregivers,
                      events=data.events, referrals=data.referrals, contacts=data.contacts,
                      safety_tasks=data.safety_tasks, today=clock.today(), catalogue=svc.catalogue,
                      gestations=data.gestations)  # fmt: skip
    # A safety item whose Task has not reached the registry yet still flags the family.
    flagged = [r if "safety" in r.flags or r.enrolment.key not in pending else replace(r, flags=("safety", *r.flags))
               for r in rows]  # fmt: skip
    return sorted(flagged, key=lambda r: (r.priority, r.enrolment.patient_name or "", r.enrolment.id))


#: Families per worklist page.
HS_PAGE_SIZE = 50


@bp.get("/")
@launch_required
def worklist(launch_id: str) -> Any:
    """Served from the ready rows: the filters, counts and order from the kept entries, the page's rows built
    from searches naming its children (the cost of a view is the page, not the program's size)."""
    access = current_access()
    access.check_caseload()
    ready, today = services().hs_ready, clock.today()
    pending = safety_pending(access)
    entries = [e.with_safety() if e.key in pending else e for e in ready.entries(access.iss, today)]
    user = current_user(current_launch(), current_ehr())
    args = {k: request.args.get(k, "") for k in ("flag", "tier", "who")}
    args["who"] = args["who"] or "all"
    chosen = filter_hs_entries(entries, flag=args["flag"] or None, tier=args["tier"] or None,
                               specialist=user.reference if args["who"] == "mine" and user else None)  # fmt: skip
    counts = {flag: sum(flag in e.flags for e in entries) for flag in FLAGS}
    try:
        number = max(1, int(request.args.get("page") or 1))
    except ValueError:
        number = 1
    pages = max(1, -(-len(chosen) // HS_PAGE_SIZE))
    number = min(number, pages)
    shown = chosen[(number - 1) * HS_PAGE_SIZE : number * HS_PAGE_SIZE]
    rows = [r if "safety" in r.flags or r.enrolment.key not in pending else replace(r, flags=("safety", *r.flags))
            for r in ready.rows(access.iss, shown, today)]  # fmt: skip
    return render_template("hs_worklist.html", **_page(), rows=rows, total=len(entries), args=args, counts=counts,
                           matching=len(chosen), page_number=number, pages=pages,
                           requests_made=ready.last_requests)  # fmt: skip


def _family(careplan_id: str) -> Enrolment:
    access = current_access()
    try:
        enrolment = services().healthysteps.enrolment(careplan_id, access.iss)
    except errors.FHIRNotFound:
        abort(404)
    access.check_patient(enrolment.key)
    return enrolment


#: The field each form's problem links to from the page's error summary.
PROBLEM_FIELDS = {"healthysteps.move_tier": "tier-choice", "healthysteps.exit_program": "exit-reason",
                  "healthysteps.log_contact": "c-when", "healthysteps.refer": "ref-service"}  # fmt: skip


def _problem_field() -> str | None:
    if request.endpoint == "healthysteps.update_referral":
        return f"st-{(request.view_args or {}).get('referral_id', '')}"
    return PROBLEM_FIELDS.get(request.endpoint or "")


def _family_page(careplan_id: str, *, problem: str | None = None, status: int = 200) -> tuple[str, int]:
    enrolment = _family(careplan_id)
    data = _data(enrolment.key)
    rows = [r for r in _rows(data) if r.enrolment.id == enrolment.id]
    today = clock.today()
    program = services().healthysteps.program
    events = data.events.get(enrolment.key, [])
    concerns = {r.concern for r in data.referrals if r.careplan_id == enrolment.id and r.concern}
    payer = request.args.get("payer") or "default"
    billing = [(day, visit_billing(program, day, events, concerns=concerns, payer=payer,
                                   catalogue=services().catalogue))
               for day in billing_days(events, today - timedelta(days=BILLING_DAYS), today)]  # fmt: skip
    contacts = sorted(
        (c for c in data.contacts if c.careplan_id == enrolment.id), key=lambda c: c.when, reverse=True
    )
    flagged = [
        e for e in sorted(events, key=lambda e: e.when, reverse=True) if e.flag in ("positive", "monitor")
    ]
    return render_template("hs_family.html", **_page(), enrolment=enrolment, row=rows[0] if rows else None,
                           caregivers=data.caregivers.get(enrolment.key, []), contacts=contacts, billing=billing,
                           payer=payer, flagged=flagged, problem=problem, problem_field=_problem_field(),
                           minutes_by_present=_minutes_by_present(contacts),
                           find=find, closing=CLOSING_STATUSES,
                           safety_open=patient_safety_rows(current_access(), enrolment.key, current_launch().id)), status  # fmt: skip


def _minutes_by_present(contacts: list[Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for contact in contacts:
        totals[contact.present or "unrecorded"] = (
            totals.get(contact.present or "unrecorded", 0) + contact.minutes
        )
    return totals


@bp.get("/families/<careplan_id>")
@launch_required
def family(launch_id: str, careplan_id: str) -> Any:
    return _family_page(careplan_id)


def _back(careplan_id: str, anchor: str) -> Response:
    url = url_for("healthysteps.family", launch_id=current_launch().id, careplan_id=careplan_id)
    return redirect(f"{url}#{anchor}", code=303)  # type: ignore[return-value]


def _user() -> Member | None:
    return current_user(current_launch(), current_ehr())


#: A form that changes a family's record came back without the version of the record it was opened at.
NO_VERSION = ("Someone else may have changed this family's record since you opened it, and this form did not say "
              "which version you saw, so nothing was saved. Reload the page, check the family's record and make "
              "your change again.")  # fmt: skip
CHANGED = ("Someone else changed this family's record since you opened it, so nothing was saved. Reload the page, "
           "check the family's record and make your change again.")  # fmt: skip


def seen_version(form: Any) -> str | None:
    """The version of the record the user saw (the form's hidden `version`): required by every form that changes
    an existing record, so that If-Match refuses a change made on a stale page. None when missing or malformed."""
    version = form.get("version") or ""
    return version if version.isalnum() and len(version) <= 64 else None


@bp.post("/families/<careplan_id>/tier")
@launch_required
def move_tier(launch_id: str, careplan_id: str) -> Any:
    enrolment = _family(careplan_id)
    form = request.form
    version = seen_version(form)  # the version the Specialist saw: If-Match refuses the move when it is stale
    if version is None:
        return _family_page(careplan_id, problem=NO_VERSION, status=409)
    enrolment = replace(enrolment, version=version)
    basis = tuple(b for b in form.getlist("basis") if b.startswith("Observation/") and len(b) < 80)
    try:
        services().healthysteps.move_tier(enrolment, form.get("tier", ""), form.get("reason", ""), form.get("note"),
                                          _user(), basis, clock.today())  # fmt: skip
    except HealthyStepsProblem as problem:
        return _family_page(careplan_id, problem=str(problem), status=422)
    except EnrolmentChanged:
        return _family_page(careplan_id, problem=CHANGED, status=409)
    return _back(careplan_id, "tier")


@bp.post("/families/<careplan_id>/exit")
@launch_required
def exit_program(launch_id: str, careplan_id: str) -> Any:
    version = seen_version(request.form)
    if version is None:
        _family(careplan_id)  # another issuer's or patient's family is refused first
        return _family_page(careplan_id, problem=NO_VERSION, status=409)
    enrolment = replace(_family(careplan_id), version=version)
    try:
        services().healthysteps.exit(enrolment, request.form.get("reason", ""), clock.today())
    except HealthyStepsProblem as problem:
        return _family_page(careplan_id, problem=str(problem), status=422)
    except EnrolmentChanged:
        return _family_page(careplan_id, problem=CHANGED, status=409)
    return _back(careplan_id, "tier")


@bp.post("/families/<careplan_id>/contact")
@launch_required
def log_contact(launch_id: str, careplan_id: str) -> Any:
    enrolment = _family(careplan_id)
    form = request.form
    try:
        when = date.fromisoformat(form.get("when") or "")
        minutes = int(form.get("minutes") or "")
    except ValueError:
        return _family_page(careplan_id, problem="Give the contact's date and its minutes as a whole number.",
                            status=422)  # fmt: skip
    try:
        services().healthysteps.log_contact(enrolment, when=when, minutes=minutes, contact_type=form.get("type", ""),
                                            present=form.get("present", ""), owner=_user(), note=form.get("note"),
                                            today=clock.today())  # fmt: skip
    except HealthyStepsProblem as problem:
        return _family_page(careplan_id, problem=str(problem), status=422)
    return _back(careplan_id, "contacts")


@bp.post("/families/<careplan_id>/referrals")
@launch_required
def refer(launch_id: str, careplan_id: str) -> Any:
    enrolment = _family(careplan_id)
    form = request.form
    held, _ = services().caregivers.for_child(enrolment.key, None, [])  # the registry's copies: one search
    caregiver = find(held, form.get("caregiver") or None)
    basis = tuple(b for b in form.getlist("basis") if b.startswith("Observation/") and len(b) < 80)
    try:
        services().healthysteps.refer(enrolment, service=form.get("service", ""), for_whom=form.get("for", ""),
                                      caregiver=caregiver, concern=form.get("concern") or None, goal=form.get("goal"),
                                      organisation=form.get("organisation"), note=form.get("note"), basis=basis,
                                      requester=_user())  # fmt: skip
    except HealthyStepsProblem as problem:
        return _family_page(careplan_id, problem=str(problem), status=422)
    return _back(careplan_id, "referrals")


@bp.post("/families/<careplan_id>/referrals/<referral_id>")
@launch_required
def update_referral(launch_id: str, careplan_id: str, referral_id: str) -> Any:
    enrolment = _family(careplan_id)
    version = seen_version(request.form)
    if version is None:
        return _family_page(careplan_id, problem=NO_VERSION, status=409)
    try:
        services().healthysteps.update_referral(enrolment, referral_id, request.form.get("status", ""),
                                                request.form.get("note"), _user(), version=version)  # fmt: skip
    except errors.FHIRNotFound:
        abort(404)
    except HealthyStepsProblem as problem:
        return _family_page(careplan_id, problem=str(problem), status=422)
    except ReferralChanged:
        return _family_page(careplan_id, problem=CHANGED, status=409)
    return _back(careplan_id, "referrals")


@bp.get("/report")
@launch_required
def report(launch_id: str) -> Any:
    current_access().check_caseload()
    svc = services()
    data = _data()
    result = build_report(svc.healthysteps.program, svc.schedule, data.enrolments, data.events, data.referrals,
                          data.contacts, clock.today(), svc.catalogue)  # fmt: skip
    if request.args.get("format") == "csv":
        return Response(report_csv(result), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=healthysteps-{clock.today()}.csv"})  # fmt: skip
    return render_template("hs_report.html", **_page(), report=result)


@bp.post("/enrol")
@launch_required
def enrol(launch_id: str) -> Any:
    """Enrol the child in context (Tier 1), with the signed-in user as the Specialist."""
    from smartapp.chart.views import _common

    session = current_launch()
    if not session.context.patient:
        raise errors.InvalidLaunchRequest("enrolment needs a patient in context: open Tandem from a chart")
    svc, ehr = services(), current_ehr()
    page = _common(session, ehr)
    key = current_access().patient_key
    if key is None:
        abort(403)
    existing = svc.caseload.enrolments_for(session.iss, session.context.patient)
    born = birth_date(page["patient"])
    try:
        enrolment = svc.healthysteps.enrol(key, name=page["patient_name"], birth_date=born,
                                           mrn=identifier_value(page["patient"]), specialist=_user(), pcp=None,
                                           today=clock.today(), existing=existing)  # fmt: skip
    except HealthyStepsProblem as problem:
        return render_template("hs_not_enrolled.html", **page, problem=str(problem),
                               months=age_months(born, clock.today())), 409  # fmt: skip
    return redirect(url_for("healthysteps.family", launch_id=launch_id, careplan_id=enrolment.id), code=303)

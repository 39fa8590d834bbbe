"""A form posted after its launch ended is never lost: with a valid launch binding (see `form_fields`) it is
parked — a screening is scored at once, its safety alert shown and its same-day safety Task written — and the next
launch that may see it (a chart launch for the patient, or the same user) offers to reopen it, prefilled, or to
discard it. A forged, expired or mismatched binding gets the ordinary "session ended" page and nothing is kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from fhir_mappings.common.patient_summary import PatientLabel
from launch import errors
from launch.sessions import LaunchSession
from smartapp import form_once
from smartapp.parking.service import TASK_PENDING, ParkedForm, ParkedForms, now_iso, result_of
from smartapp.request_context import (
    FORM_BINDING_FIELD,
    HIDDEN_FORM_FIELDS,
    FormBinding,
    current_access,
    current_launch,
    form_id_valid,
    launch_required,
    read_form_binding,
    services,
    sign_form_id,
)

log = logging.getLogger(__name__)
bp = Blueprint("parking", __name__, url_prefix="/app/<launch_id>", template_folder="templates")
#: The patient's own parked questionnaires, reopened in the portal (the portal's access: see PORTAL_BLUEPRINTS).
portal_bp = Blueprint(
    "parking_portal", __name__, url_prefix="/app/<launch_id>/me", template_folder="templates"
)


@dataclass(frozen=True)
class FormKind:
    label: str
    #: A screening: scored at once, its safety alert shown and its safety Task written.
    screening: bool = False


#: The forms kept when posted after their launch ended (endpoint → what the person is told it was). Actions that
#: carry nothing typed (end, acknowledge, retry, column choices, ticking a task done) are not kept: the person
#: simply does them again.
PARKABLE: dict[str, FormKind] = {
    "chart.screen": FormKind("Screening", screening=True),
    "caseload.measure": FormKind("Follow-up measurement", screening=True),
    "chart.record_gestation": FormKind("Gestational age at birth"),
    "chart.add_caregiver": FormKind("Caregiver"),
    "caseload.log_contact": FormKind("Contact"),
    "caseload.update": FormKind("Enrolment status"),
    "caseload.follow_up": FormKind("Follow-up"),
    "caseload.record_review": FormKind("Case review"),
    "caseload.enrol": FormKind("Enrolment"),
    "healthysteps.move_tier": FormKind("Tier move"),
    "healthysteps.exit_program": FormKind("Leaving HealthySteps"),
    "healthysteps.log_contact": FormKind("HealthySteps contact"),
    "healthysteps.refer": FormKind("Referral"),
    "healthysteps.update_referral": FormKind("Referral update"),
    "healthysteps.enrol": FormKind("HealthySteps enrolment"),
    "smi.record_social": FormKind("Social status answers"),
    "safety.close": FormKind("Safety follow-up outcome"),
    # The patient's own questionnaire in the portal (each step posts the answers so far).
    "selfreport.answer": FormKind("Questionnaire", screening=True),
}

#: Forms only a chart launch (its patient in context) can save: never offered in a worklist launch.
CHART_ONLY = frozenset({"chart.screen", "chart.record_gestation", "chart.add_caregiver", "caseload.enrol"})

#: Never kept: the ended launch's CSRF token and binding, and the portal step controls.
_NOT_KEPT = HIDDEN_FORM_FIELDS | {"parked_item"}
#: Ids a form carries that are minted and signed per launch: re-signed for the launch that reopens the form.
_SIGNED = {"contact_id": "contact_sig", "enrolment_id": "enrolment_sig", "submission_id": "submission_sig"}
_HIDDEN = {"version", *_SIGNED, *_SIGNED.values()}


def parked_forms() -> ParkedForms:
    return ParkedForms.of(services())


def _max_age() -> int:
    return services().settings.form_binding_hours * 3600


def remember_launch_names(session: LaunchSession, label: PatientLabel | None, user_name: str | None) -> None:
    """Called by the chart's pages with what they read: kept (encrypted) while the launch's forms may be parked."""
    try:
        parked_forms().remember_names(session.id, label, user_name, _max_age())
    except errors.TandemError as error:
        log.warning("the launch's names could not be kept for its forms: %s", type(error).__name__)


def park_ended_post(launch_id: str) -> Response | None:
    """Called by `load_launch` when a request's launch is gone: a POST to a form Tandem keeps, carrying a valid
    binding for this launch, is parked and answered with a page that says so; anything else returns None (the
    caller raises today's SessionExpired)."""
    if request.method != "POST" or request.endpoint not in PARKABLE:
        return None
    binding = read_form_binding(request.form.get(FORM_BINDING_FIELD), launch_id, max_age_seconds=_max_age())
    if binding is None:
        log.warning("a form posted after its launch ended carried no valid binding: not kept")
        return None
    kind = PARKABLE[str(request.endpoint)]
    if form_once.already_saved() or _screening_saved():
        # Sent again (Back, then resubmit) after it was saved and the launch ended: nothing to keep, and never a
        # second record or a safety follow-up written over one a person may have closed since.
        log.info("a form posted after its launch ended had already been saved: not kept")
        return Response(render_template("parked_already_saved.html", kind=kind), status=200)
    args = {k: str(v) for k, v in (request.view_args or {}).items() if k != "launch_id"}
    agrees, patient = _patient_of(binding, args)
    if not agrees:
        log.warning("a form posted after its launch ended names another patient than its binding: not kept")
        return None
    store = parked_forms()
    posted = [(k, v) for k, v in request.form.items(multi=True) if k not in _NOT_KEPT]
    fingerprint = store.fingerprint_of(
        request.form.get(FORM_BINDING_FIELD, ""), str(request.endpoint), args, posted
    )
    earlier = store.posted_before(fingerprint)
    if earlier is not None:  # the same post again (a double click): one item, the same page
        return _parked_page(earlier, kind, _score_of(earlier))
    item = ParkedForm(
        id=store.new_id(),
        endpoint=str(request.endpoint),
        args=args,
        fields=posted,
        iss=binding.iss,
        patient=patient or None,
        user=binding.user,
        launch_id=launch_id,
        parked_at=now_iso(),
        fingerprint=fingerprint,
    )
    names = store.names_of(launch_id)  # what the launch's pages read: the safety follow-up names both
    item.user_name = names.get("user")
    if item.patient and item.patient == binding.patient:
        item.patient_name, item.patient_birth_date = names.get("name"), names.get("born")
        item.patient_mrn = names.get("mrn")
    result = None
    if kind.screening:
        item, result = _park_screening(store, item, binding)
    store.save(item)
    log.info("a form posted after its launch ended was parked (%s)", item.endpoint)
    return _parked_page(item, kind, result)


def _screening_saved() -> bool:
    """Whether the screening this form carries (its submission id) has already been recorded."""
    submission_id = request.form.get("submission_id", "")
    if not submission_id:
        return False
    try:
        return services().screenings.load(submission_id) is not None
    except errors.TandemError:
        return False


def _parked_page(item: ParkedForm, kind: FormKind, result: Any) -> Response:
    if item.self_reported:
        from smartapp.selfreport.views import CRISIS

        page = render_template("parked_portal.html", item=item, safety=bool(result and result.safety),
                               crisis=CRISIS, days=services().settings.parked_days)  # fmt: skip
        return Response(page, status=202)
    html = render_template("parked.html", item=item, kind=kind, result=result,
                           instrument=services().catalogue.get(item.instrument or ""),
                           days=services().settings.parked_days)  # fmt: skip
    return Response(html, status=202)


def _score_of(item: ParkedForm) -> Any:
    return result_of(item, services().catalogue)


def _patient_of(binding: FormBinding, args: dict[str, str]) -> tuple[bool, str | None]:
    """Whether the post is about the binding's patient, and that patient: the binding's (a chart launch), or an
    enrolment's in the address (looked up in the registry with backend services); (False, None) when the two
    disagree (never parked)."""
    careplan_id = args.get("careplan_id")
    if not careplan_id:
        return True, binding.patient
    try:
        enrolment = services().caseload.get(careplan_id, binding.iss)
    except errors.FHIRNotFound:
        return False, None
    except errors.TandemError:
        # The registry is away: bound to the launch's patient (if any) and the user.
        return True, binding.patient
    if enrolment.iss != binding.iss or (binding.patient and enrolment.patient_id != binding.patient):
        return False, None
    return True, enrolment.patient_id


def _park_screening(store: ParkedForms, item: ParkedForm, binding: FormBinding) -> tuple[ParkedForm, Any]:
    """Score a parked screening with the normal engine, keep its submission id (when the form's own signature
    holds) so confirming it later never doubles it, and write its same-day safety Task now."""
    instrument = services().catalogue.get(item.args.get("key", ""))
    if instrument is None:
        return item, None
    values = item.values
    submission_id = values.get("submission_id", "")
    if item.endpoint == "selfreport.answer":
        # The patient (or a parent, about themself) answering in the portal.
        item.self_reported = True
        caregiver = item.user if item.user and item.user.startswith("RelatedPerson/") else None
        valid = form_id_valid("self-report", submission_id, values.get("submission_sig", ""), binding.iss,
                              item.patient or "", binding.launch_id, instrument.key)  # fmt: skip
    else:
        caregiver = request.args.get("caregiver") or values.get("caregiver") or None
        subject = (item.patient or "", caregiver) if caregiver else (item.patient or "",)
        valid = form_id_valid("submission", submission_id, values.get("submission_sig", ""), binding.iss,
                              *subject, binding.launch_id)  # fmt: skip
    if not valid:
        submission_id = store.new_id()
    item.instrument, item.submission_id, item.caregiver = instrument.key, submission_id, caregiver
    earlier = store.by_submission(submission_id)
    if (
        earlier is not None
        and not earlier.discarded
        and (earlier.iss, earlier.patient) == (item.iss, item.patient)
    ):
        item.id = earlier.id  # the same form posted again with changed answers: one item, the latest answers
    # Scored at once (answers so far; an invalid answer leaves it as typed, for the next launch to correct).
    item = store.write_safety_task(item)
    return item, result_of(item, services().catalogue)


# --- the next launch ---------------------------------------------------------------------------------------


def _launch_user(session: LaunchSession) -> str | None:
    if not (session.context.fhir_user and session.context.fhir_user_type):
        return None
    return f"{session.context.fhir_user_type}/{session.context.fhir_user.rstrip('/').split('/')[-1]}"


def visible_parked() -> list[ParkedForm]:
    """The parked forms this launch may see (its patient's, and its user's own); [] outside a care-team launch."""
    session = g.get("launch")
    portal = g.get("portal")
    if session is None or (g.get("access") is None and portal is None):
        return []
    if "parked_visible" not in g:
        try:
            if portal is not None:  # the patient's own questionnaires only, never what the care team typed
                found = parked_forms().visible(session.iss, None, portal.answerer)
                g.parked_visible = [i for i in found if i.self_reported and i.patient == portal.patient]
            else:
                found = parked_forms().visible(session.iss, session.context.patient, _launch_user(session))
                patient = session.context.patient
                # A chart launch offers its own patient's forms only: a form typed for another patient is never
                # reopened where it would be saved for this one (the user's others wait for their own launch).
                # A worklist launch (no patient) offers only the forms it can save: not the chart's own forms.
                g.parked_visible = [
                    i
                    for i in found
                    if not i.self_reported
                    and (i.patient == patient if patient else i.endpoint not in CHART_ONLY)
                ]
        except errors.TandemError:
            g.parked_visible = []
    return list(g.parked_visible)


@bp.app_template_global()
def parked_notice() -> list[ParkedForm]:
    return visible_parked()


@bp.app_template_global()
def parked_label(item: ParkedForm) -> str:
    """What a parked form was, in words: 'Screening: PHQ-9', 'Contact'."""
    kind = PARKABLE.get(item.endpoint)
    instrument = services().catalogue.get(item.instrument or "") if item.instrument else None
    label = kind.label if kind else "Form"
    return f"{label}: {instrument.name}" if instrument else label


#: Labels of the fields a reopened form shows (anything else is shown by its name, made readable).
FIELD_LABELS = {"minutes": "Minutes", "note": "Note", "date": "Date", "when": "Date", "contact_type": "Contact type",
                "type": "Contact type", "role": "Your role", "tier": "Tier", "reason": "Reason", "phase": "Status",
                "flag": "Flag for psychiatric review", "outcome": "Outcome", "weeks": "Weeks", "days": "Days",
                "name": "Name", "relationship": "Relationship", "program": "Program", "service": "Service",
                "status": "Status", "goal": "Goal", "concern": "Concern", "organisation": "Organisation"}  # fmt: skip


@bp.app_template_global()
def field_label(name: str) -> str:
    return FIELD_LABELS.get(name) or name.replace("_", " ").replace("-", " ").capitalize()


def _visible(item_id: str) -> ParkedForm:
    item = next((i for i in visible_parked() if i.id == item_id), None)
    if item is None:
        abort(404)
    return item


@bp.get("/parked/<item_id>")
@launch_required
def reopen(launch_id: str, item_id: str) -> Any:
    """The parked form again, prefilled with what was typed, for this launch: the person reviews and submits."""
    item = _visible(item_id)
    session = current_launch()
    kind = PARKABLE.get(item.endpoint)
    if kind is None:
        abort(404)
    if kind.screening:
        return _reopen_screening(session, item)
    args: dict[str, Any] = dict(item.args)
    values = dict(item.fields)
    resigned: dict[str, str] = {}
    careplan = args.get("careplan_id", "")
    for name, signature in _SIGNED.items():
        if values.get(name):
            binding = {"contact_id": ("contact", session.id, careplan),
                       "enrolment_id": ("enrolment", session.id, session.iss, session.context.patient or "")}.get(name)  # fmt: skip
            if binding:
                resigned[signature] = sign_form_id(binding[0], values[name], *binding[1:])
    fields = [(k, resigned.get(k, v)) for k, v in item.fields]
    who = None
    if careplan:  # whose form it is, as the registry names the enrolment's patient
        try:
            who = services().caseload.get(careplan, session.iss).patient_name
        except errors.TandemError:
            who = None
    return render_template("parked_review.html", item=item, kind=kind, fields=fields, hidden=_HIDDEN, who=who,
                           action=url_for(item.endpoint, launch_id=session.id, **args), launch=session,
                           access=current_access(), patient=None, show_banner=False)  # fmt: skip


def _reopen_screening(session: LaunchSession, item: ParkedForm) -> Any:
    from smartapp.caseload.views import registry_enrolment
    from smartapp.chart.views import Subject, _form
    from smartapp.request_context import current_ehr

    instrument = services().catalogue.get(item.instrument or "")
    if instrument is None:
        abort(404)
    ehr = current_ehr()
    careplan_id = item.args.get("careplan_id")
    if careplan_id:
        enrolment = registry_enrolment(careplan_id)
        subject = Subject(enrolment.patient_id, enrolment)
    else:
        if not session.context.patient or session.context.patient != item.patient:
            abort(404)
        caregiver = None
        if item.caregiver:
            found, _ = services().caregivers.for_child(item.key, ehr, session.scope.split())  # type: ignore[arg-type]
            caregiver = next((c for c in found if c.id == item.caregiver), None)
        subject = Subject(session.context.patient, caregiver=caregiver)
    selected = {k: v for k, v in item.fields if k not in _HIDDEN}
    when = item.parked_at
    return _form(session, ehr, instrument, subject, selected=selected, submission_id=item.submission_id,
                 notice=f"These answers were entered at {_local(when)}, after that Tandem session had ended, and "
                 "were kept. Check them, then save: the screening is then recorded and written back like any other "
                 "(once only).")  # fmt: skip


def _local(value: str) -> str:
    from smartapp.clock import local_time

    return local_time(value)


@bp.post("/parked/<item_id>/discard")
@launch_required
def discard(launch_id: str, item_id: str) -> Response:
    """Discard a parked form explicitly (a screening's safety Task, when written, stays in the registry)."""
    item = _visible(item_id)
    parked_forms().discard(item)
    target = request.form.get("next") or ""
    if not target.startswith(f"/app/{launch_id}/"):
        target = url_for("chart.home", launch_id=launch_id)
    return redirect(target, code=303)  # type: ignore[return-value]


@bp.after_app_request
def resolve_reopened(response: Response) -> Response:
    """A reopened form that was saved (the view answered with a redirect) is no longer parked: by its parked id,
    or, for a screening, by its submission id once the screening is recorded."""
    if request.method != "POST" or response.status_code not in (302, 303):
        return response
    if g.get("access") is None and g.get("portal") is None:
        return response
    try:
        store = parked_forms()
        item_id = request.form.get("parked_item")
        item = next((i for i in visible_parked() if i.id == item_id), None) if item_id else None
        submission_id = request.form.get("submission_id")
        if item is None and submission_id and services().screenings.load(submission_id) is not None:
            item = store.by_submission(submission_id)
            session, portal = g.get("launch"), g.get("portal")
            if item is not None and (session is None or item.iss != session.iss):
                item = None
            if item is not None and portal is not None and item.user != portal.answerer:
                item = None
        if item is not None:
            if item.task == TASK_PENDING and item.submission_id:
                item.task = None  # recorded now: its safety Task travels with the screening's own write-back
            store.discard(item)
    except errors.TandemError as error:
        log.warning("a saved parked form could not be cleared: %s", type(error).__name__)
    return response


# --- the portal ------------------------------------------------------------------------------------------


@portal_bp.get("/parked/<item_id>")
@launch_required
def portal_reopen(launch_id: str, item_id: str) -> Any:
    """The patient's own parked questionnaire, prefilled, to send (the same submission id: sent once)."""
    from smartapp.selfreport.views import _form, _instrument

    item = _visible(item_id)
    instrument = _instrument(item.instrument or "")  # only a questionnaire still due for them opens
    selected = {k: v for k, v in item.fields if k not in _HIDDEN and k not in ("step", "go")}
    return _form(instrument, selected=selected, submission_id=item.submission_id)


@portal_bp.post("/parked/<item_id>/discard")
@launch_required
def portal_discard(launch_id: str, item_id: str) -> Response:
    parked_forms().discard(_visible(item_id))
    return redirect(url_for("selfreport.home", launch_id=launch_id), code=303)  # type: ignore[return-value]


__all__ = ["PARKABLE", "bp", "park_ended_post", "parked_notice", "portal_bp"]

"""The patient's own pages (`/app/<launch>/me/…`, portal launches only): their due questionnaires, one form (all
questions, or one question per screen), and a thank-you page with crisis resources when a safety item is positive.
Never a score of anyone else, never the caseload: `load_launch` gives these routes the portal's access only."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from fhir_mappings.common.capability import supports_conditional_create
from fhir_mappings.screening.instruments import Instrument
from launch.errors import TandemError
from launch.scopes import allows_create
from smartapp.request_context import (
    current_ehr,
    current_launch,
    current_portal,
    ehr_profile,
    entered_fields,
    form_id_valid,
    launch_required,
    mint_form_id,
    services,
    sign_form_id,
)
from smartapp.screening.service import ScreeningRecord
from smartapp.selfreport.service import (
    Answerer,
    answer_items,
    may_answer,
    next_screen,
    portal_plan,
    save_answers,
    self_report_due,
)

log = logging.getLogger(__name__)
bp = Blueprint("selfreport", __name__, url_prefix="/app/<launch_id>/me", template_folder="templates")

#: Crisis resources shown at once when a safety item is positive (US: the 988 Suicide & Crisis Lifeline).
CRISIS = {"name": "988 Suicide & Crisis Lifeline", "call": "988", "text": "988", "emergency": "911"}


def answerer() -> Answerer:
    portal = current_portal()
    return Answerer(portal.patient_key, portal.answerer)


@bp.get("/")
@launch_required
def home(launch_id: str) -> str:
    due, patient = self_report_due(services(), answerer(), current_ehr())
    return render_template("me_home.html", due=due, launch_id=launch_id, proxy=answerer().proxy,
                           first_name=_first_name(patient))  # fmt: skip


def _first_name(patient: dict[str, Any] | None) -> str | None:
    for name in (patient or {}).get("name") or []:
        given = name.get("given") if isinstance(name, dict) else None
        if isinstance(given, list) and given and isinstance(given[0], str):
            return given[0]
    return None


def _instrument(key: str) -> Instrument:
    instrument = may_answer(services(), answerer(), current_ehr(), key)
    if instrument is None:
        abort(404)  # only the patient's own due questionnaires open
    return instrument


def _form(instrument: Instrument, *, selected: dict[str, str] | None = None, problems: dict[str, str] | None = None,
          submission_id: str | None = None, step: int | None = None, status: int = 200) -> tuple[str, int]:  # fmt: skip
    session = current_launch()
    who = answerer()
    # Bound to the instrument too: a valid id proves the form was opened while it was due for this patient.
    binding = (session.iss, who.key.patient_id, session.id, instrument.key)
    if submission_id is None:
        submission_id, signature = mint_form_id("self-report", *binding)
    else:
        signature = sign_form_id("self-report", submission_id, *binding)
    items = answer_items(instrument)
    return render_template("me_form.html", instrument=instrument, items=items, selected=selected or {},
                           problems=problems or {}, submission_id=submission_id, submission_sig=signature,
                           step=step, action=url_for("selfreport.answer", launch_id=session.id, key=instrument.key),
                           proxy=who.proxy), status  # fmt: skip


@bp.route("/q/<key>", methods=["GET", "POST"])
@launch_required
def answer(launch_id: str, key: str) -> Any:
    """One form: every question on one page, or one question per screen (`?one=1`): each step posts the answers
    so far back (nothing is saved until the last), so a phone's back button and a reload lose nothing."""
    if request.method == "GET":
        return _form(_instrument(key), step=0 if request.args.get("one") == "1" else None)
    raw = entered_fields("submission_id", "submission_sig", "step", "go")
    submission_id = request.form.get("submission_id", "")
    session, who = current_launch(), answerer()
    opened = services().catalogue.get(key)
    if opened is None or not opened.self_report or not form_id_valid(
            "self-report", submission_id, request.form.get("submission_sig", ""), session.iss, who.key.patient_id,
            session.id, key):  # fmt: skip
        # Not a form this launch opened for this questionnaire: answers kept, and only if it is due.
        return _form(_instrument(key), selected=raw, status=409, problems={"form": "This form was opened in "
                     "another window. Your answers are kept: please send them again."})  # fmt: skip
    # The signed form was opened while the questionnaire was due: each step needs no new EHR reads.
    instrument = opened
    items = answer_items(instrument)
    screen = next_screen(items, request.form, raw)
    if screen is not None:
        return _form(instrument, selected=raw, submission_id=submission_id, step=screen[0], problems=screen[1],
                     status=422 if screen[1] else 200)  # fmt: skip
    ehr = current_ehr()
    vendor, capability = ehr_profile(session)
    granted = session.scope.split()
    plan = portal_plan(
        capability, lambda resource_type: allows_create(granted, resource_type), vendor, who.proxy
    )
    conditional = bool(plan.ehr_types) and all(
        supports_conditional_create(capability, t) for t in plan.ehr_types
    )
    patient = _patient(ehr, who)
    saved = save_answers(services(), who, instrument, raw, submission_id, patient=patient, plan=plan, vendor=vendor,
                         launch_id=session.id, ehr=ehr, conditional=conditional)  # fmt: skip
    if not isinstance(saved, ScreeningRecord):
        return _form(instrument, selected=raw, submission_id=submission_id, status=422,
                     problems={p.link_id: _plain(p.message) for p in saved})  # fmt: skip
    return redirect(url_for("selfreport.done", launch_id=session.id, record_id=saved.id), code=303)


def _patient(ehr: Any, who: Answerer) -> dict[str, Any] | None:
    """The Patient (sex and age for scoring), when the portal token may read it."""
    try:
        found: dict[str, Any] = ehr.read("Patient", who.key.patient_id)
        return found
    except TandemError:
        return None


def _plain(message: str) -> str:
    return message if message.endswith(".") else message + "."


@bp.get("/done/<record_id>")
@launch_required
def done(launch_id: str, record_id: str) -> str:
    record = services().screenings.load(record_id)
    who = answerer()
    if record is None or record.key != who.key or record.author != who.reference:
        abort(404)
    return render_template("me_done.html", record=record, safety=record.result.has_safety_flag, crisis=CRISIS,
                           home=url_for("selfreport.home", launch_id=launch_id))  # fmt: skip

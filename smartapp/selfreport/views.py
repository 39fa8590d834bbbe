"""The patient's own pages (`/app/<launch>/me/…`, portal launches only): their due questionnaires, one form (all
questions, or one question per screen), and a thank-you page with crisis resources when a safety item is positive.
Never a score of anyone else, never the caseload: `load_launch` gives these routes the portal's access only."""

from __future__ import annotations

import logging
from secrets import token_hex
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from fhir_mappings.common.capability import supports_conditional_create
from fhir_mappings.screening.instruments import Instrument
from fhir_mappings.screening.scoring import AnswerError
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
from smartapp.selfreport.drafts import Draft, Drafts
from smartapp.selfreport.service import (
    Answerer,
    answer_items,
    first_unanswered,
    may_answer,
    portal_plan,
    save_answers,
    self_report_due,
    step_after,
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
    """One form with every question on one page; `?one=1` begins one question per screen (`step`)."""
    if request.method == "GET":
        instrument = _instrument(key)
        if request.args.get("one") != "1":
            return _form(instrument)
        drafts, owner = Drafts(services().store), Drafts.portal_owner(launch_id, key)
        draft = drafts.get(owner)
        if draft is None or draft.record is not None:  # a new visit begins a new draft
            drafts.save(owner, Draft(token_hex(16)))
        return redirect(url_for("selfreport.step", launch_id=launch_id, key=key, number=1), code=303)
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
    # The signed form was opened while the questionnaire was due: no new EHR reads.
    saved = _save(opened, raw, submission_id)
    if not isinstance(saved, ScreeningRecord):
        return _form(opened, selected=raw, submission_id=submission_id, status=422,
                     problems={p.link_id: _plain(p.message) for p in saved})  # fmt: skip
    return redirect(url_for("selfreport.done", launch_id=session.id, record_id=saved.id), code=303)


@bp.route("/q/<key>/<int:number>", methods=["GET", "POST"])
@launch_required
def step(launch_id: str, key: str, number: int) -> Any:
    """One question per screen, each question its own page (Post/Redirect/Get): an answer is posted, kept in the
    launch's draft and followed by a redirect to the next question's page; the phone's Back button goes to the
    previous question's page (a GET, with its saved answer), never a form sent again. Nothing reaches the care
    team before the last question; a question reached again after the answers were sent shows the thank-you page."""
    drafts, owner = Drafts(services().store), Drafts.portal_owner(launch_id, key)
    draft = drafts.get(owner)
    if draft is not None and draft.record is not None:
        return redirect(url_for("selfreport.done", launch_id=launch_id, record_id=draft.record), code=303)
    if draft is None:  # the draft ended (or a step's address opened directly): only while it is due
        _instrument(key)
        draft = Draft(token_hex(16))
        drafts.save(owner, draft)
    instrument = services().catalogue.get(key)
    items = answer_items(instrument) if instrument is not None and instrument.self_report else []
    if not 1 <= number <= len(items) or instrument is None:
        abort(404)
    here = items[number - 1]
    if request.method == "GET":
        missing = request.args.get("missing") == "1" and not draft.answers.get(here.link_id)
        return render_template("me_form.html", instrument=instrument, items=items, selected=draft.answers,
                               problems={here.link_id: "Please choose an answer to go on."} if missing else {},
                               step=number - 1, action=request.path, proxy=answerer().proxy)  # fmt: skip
    chosen = request.form.get(here.link_id, "")
    if chosen in {a.code for a in here.answers}:
        draft = drafts.answer(owner, draft, {here.link_id: chosen})
    move = step_after(len(items), number - 1, request.form.get("go"), bool(draft.answers.get(here.link_id)))
    if move is None:
        saved = _save(instrument, draft.answers, draft.submission_id)
        if isinstance(saved, ScreeningRecord):
            drafts.sent(owner, draft, saved.id)
            return redirect(url_for("selfreport.done", launch_id=launch_id, record_id=saved.id), code=303)
        move = first_unanswered(items, saved), True
    return redirect(url_for("selfreport.step", launch_id=launch_id, key=key, number=move[0] + 1,
                            missing="1" if move[1] else None), code=303)  # fmt: skip


def _save(
    instrument: Instrument, raw: dict[str, str], submission_id: str
) -> ScreeningRecord | list[AnswerError]:
    """Save the patient's answers (the safety alert and same-day Task on a positive item 9), with the write-back
    plan of the portal token's own scopes."""
    session, who, ehr = current_launch(), answerer(), current_ehr()
    vendor, capability = ehr_profile(session)
    granted = session.scope.split()
    plan = portal_plan(
        capability, lambda resource_type: allows_create(granted, resource_type), vendor, who.proxy
    )
    conditional = bool(plan.ehr_types) and all(
        supports_conditional_create(capability, t) for t in plan.ehr_types
    )
    return save_answers(services(), who, instrument, raw, submission_id, patient=_patient(ehr, who), plan=plan,
                        vendor=vendor, launch_id=session.id, ehr=ehr, conditional=conditional)  # fmt: skip


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

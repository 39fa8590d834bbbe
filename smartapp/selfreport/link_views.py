"""Questionnaire links: the care manager makes one on the registry page (`/app/<launch>/enrolments/<id>/link`), the
patient opens it (`/r/<token>`), confirms their date of birth, answers, and the link is spent. No launch, no EHR
token: the answers go to the registry store (with the safety Task) and reach the chart and worklist; the EHR
write-back planner finds no token that may create anything, so the result is not written to the EHR."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from secrets import token_hex
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from fhir_mappings.common.patient import birth_date
from fhir_mappings.screening.instruments import Instrument, Item
from fhir_mappings.screening.scoring import AnswerError
from fhir_mappings.screening.writeback import plan_writeback
from launch.errors import TandemError
from smartapp.caseload.views import registry_enrolment
from smartapp.clock import zone
from smartapp.form_once import saved_without_redirect
from smartapp.request_context import (
    current_ehr,
    current_launch,
    entered_fields,
    header_context,
    launch_required,
    public_base,
    services,
)
from smartapp.screening.service import ScreeningRecord
from smartapp.selfreport.drafts import Draft, Drafts
from smartapp.selfreport.links import VISIT_SECONDS, QuestionnaireLinks
from smartapp.selfreport.service import (
    Answerer,
    answer_items,
    answer_problems,
    first_unanswered,
    save_answers,
    step_after,
)
from smartapp.selfreport.views import CRISIS, _plain

log = logging.getLogger(__name__)
care_bp = Blueprint("selflink_care", __name__, url_prefix="/app/<launch_id>", template_folder="templates")
bp = Blueprint("selflink", __name__, url_prefix="/r", template_folder="templates")
VISIT_COOKIE = "tandem_link_visit"
#: How long a link works.
LINK_DAYS = 7


def links() -> QuestionnaireLinks:
    return QuestionnaireLinks(services().store, services().secret_key)


@care_bp.route("/enrolments/<careplan_id>/link", methods=["GET", "POST"])
@launch_required
def make_link(launch_id: str, careplan_id: str) -> Any:
    """The form (GET) and a new link (POST), shown once for the care manager to send by the practice's channel."""
    session, ehr = current_launch(), current_ehr()
    enrolment = registry_enrolment(careplan_id)
    svc = services()
    choices = [i for i in svc.catalogue if i.self_report]
    page = {**header_context(session, ehr), "patient": None, "show_banner": False, "enrolment": enrolment,
            "choices": choices, "days": LINK_DAYS}  # fmt: skip
    if request.method == "GET":
        return render_template("link_make.html", **page)
    instrument = svc.catalogue.get(request.form.get("instrument"))
    if instrument is None or not instrument.self_report:
        return render_template("link_make.html", **page, problem="Choose a questionnaire."), 422
    try:
        born = birth_date(ehr.read("Patient", enrolment.patient_id)) or enrolment.birth_date
    except TandemError:
        born = enrolment.birth_date  # copied at enrolment
    if born is None:
        return render_template("link_make.html", **page, problem="No date of birth is on record, so the patient "
                               "could not confirm who they are: a link cannot be made."), 422  # fmt: skip
    token, expires_at = links().create(
        enrolment.key, instrument.key, born, session.context.fhir_user, LINK_DAYS
    )
    url = public_base() + url_for("selflink.open_link", token=token)
    log.info("questionnaire link made (%s, %d days)", instrument.name, LINK_DAYS)
    # The link is a secret shown once (the store keeps only its hash): the page is not a redirect, but the form is
    # spent; sent again (Back, a double click) it goes to the enrolment page and makes no second link.
    saved_without_redirect(url_for("caseload.enrolment_page", launch_id=launch_id, careplan_id=careplan_id))
    # In the deployment's time zone, as a care manager tells a patient: "until December 14, 2026, 3:05 PM".
    expires = datetime.fromtimestamp(expires_at, UTC).astimezone(zone())
    shown = f"{expires:%B} {expires.day}, {expires.year}, {expires.hour % 12 or 12}:{expires:%M %p}"
    return render_template("link_made.html", **page, url=url, instrument=instrument, expires=shown,
                           expires_iso=expires.isoformat(timespec="minutes"))  # fmt: skip


@dataclass(frozen=True)
class DatePart:
    name: str  # the form field (and its autocomplete token: bday-<name>)
    label: str
    size: int
    example: str


#: The parts of a typed date of birth; their order is the deployment's (TANDEM_DATE_ORDER, default MDY: the US).
DATE_PARTS = {"M": DatePart("month", "Month", 2, "03"), "D": DatePart("day", "Day", 2, "14"),
              "Y": DatePart("year", "Year", 4, "1985")}  # fmt: skip


def dob_parts(order: str) -> list[DatePart]:
    """The date-of-birth fields in the deployment's order ("MDY": month / day / year)."""
    return [DATE_PARTS[letter] for letter in (order if sorted(order) == ["D", "M", "Y"] else "MDY")]


def _dob_page(**page: Any) -> str:
    parts = dob_parts(services().settings.date_order)
    hint = " / ".join(p.label.lower() for p in parts).capitalize()
    example = " / ".join(p.example for p in parts)
    return render_template("link_dob.html", dob_parts=parts, dob_hint=hint, dob_example=example, **page)


def _gone() -> tuple[str, int]:
    return render_template("link_gone.html"), 410


def _born(form: Any) -> date | None:
    try:
        return date(int(form.get("year", "")), int(form.get("month", "")), int(form.get("day", "")))
    except ValueError:
        return None


@bp.route("/<token>", methods=["GET", "POST"])
def open_link(token: str) -> Any:
    store = links()
    if store.get(token) is None:
        return _gone()
    if request.method == "GET":
        return _dob_page(action=request.path)
    secret = store.confirm(token, _born(request.form))
    if secret is None:
        left = store.attempts_left(token)
        if left <= 0:
            return _gone()
        return _dob_page(action=request.path, entered=request.form,
                         problem=f"That date of birth does not match. {left} tries left."), 422  # fmt: skip
    # Post/Redirect/Get: Back or a reload never sends the date of birth again.
    response = redirect(url_for("selflink.confirmed", token=token), code=303)
    response.set_cookie(VISIT_COOKIE, secret, path=f"/r/{token}", secure=True, httponly=True, samesite="Strict",
                        max_age=45 * 60)  # fmt: skip
    return response


@bp.get("/<token>/start")
def confirmed(token: str) -> Any:
    """After the date of birth: the choice of one page or one question at a time (for the confirmed visit)."""
    if links().visit(token, request.cookies.get(VISIT_COOKIE)) is None:
        return _gone()
    return render_template("link_confirmed.html", form_url=url_for("selflink.answer", token=token))


@bp.get("/<token>/done")
def done(token: str) -> Any:
    """The thank-you page of the answers this visit sent (the Get of Post/Redirect/Get): reads the saved record."""
    record_id = links().done(token, request.cookies.get(VISIT_COOKIE))
    record = services().screenings.load(record_id) if record_id else None
    if record is None:
        return _gone()
    return render_template("me_done.html", record=record, safety=record.result.has_safety_flag, crisis=CRISIS,
                           home=None)  # fmt: skip


def _form(token: str, link_instrument: str, *, selected: dict[str, str] | None = None,
          problems: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:  # fmt: skip
    instrument = services().catalogue.get(link_instrument)
    assert instrument is not None  # noqa: S101 - made from the catalogue
    items = answer_items(instrument)
    return render_template("me_form.html", instrument=instrument, items=items, selected=selected or {},
                           problems=problems or {}, submission_id=None, submission_sig=None, step=None,
                           action=url_for("selflink.answer", token=token), proxy=False, csrf=False), status  # fmt: skip


@bp.route("/<token>/q", methods=["GET", "POST"])
@bp.route("/<token>/q/<int:number>", methods=["GET", "POST"])
def answer(token: str, number: int | None = None) -> Any:
    """The questionnaire, only for the browser that confirmed the date of birth (its cookie is SameSite=Strict,
    so no other site can post here in the patient's name): every question on one page, or (`?one=1`) one question
    per page, each its own address (Post/Redirect/Get: the phone's Back button is a GET of the previous question,
    with its answer kept in the visit's draft)."""
    store = links()
    secret = request.cookies.get(VISIT_COOKIE)
    drafts = Drafts(services().store, VISIT_SECONDS)
    owner = Drafts.link_owner(token, secret) if secret else None
    draft = drafts.get(owner) if owner else None
    if draft is not None and draft.record is not None:  # a question reached again after the answers were sent
        return redirect(url_for("selflink.done", token=token), code=303)
    link = store.visit(token, secret)
    if link is None or owner is None:
        return _gone()
    instrument = services().catalogue.get(link.instrument)
    if instrument is None or not instrument.self_report:
        return _gone()
    items = answer_items(instrument)
    if number is not None:
        return _step(token, secret or "", instrument, items, number, drafts, owner, draft)
    if request.method == "GET":
        if request.args.get("one") == "1":
            if draft is None:
                drafts.save(owner, Draft(token_hex(16)))
            return redirect(url_for("selflink.answer", token=token, number=1), code=303)
        return _form(token, link.instrument)
    raw = entered_fields("step", "go", "submission_id", "submission_sig")
    problems = answer_problems(instrument, raw)
    if problems:
        return _form(token, link.instrument, selected=raw, status=422,
                     problems={p.link_id: _plain(p.message) for p in problems})  # fmt: skip
    saved = _save(token, secret, instrument, raw, token_hex(16))
    if saved is None:
        return _gone()
    if not isinstance(saved, ScreeningRecord):  # validated above; kept for totality
        return _form(token, link.instrument, selected=raw, status=422,
                     problems={p.link_id: _plain(p.message) for p in saved})  # fmt: skip
    return redirect(url_for("selflink.done", token=token), code=303)


def _step(token: str, secret: str, instrument: Instrument, items: list[Item], number: int, drafts: Drafts,
          owner: str, draft: Draft | None) -> Any:  # fmt: skip
    """One question of the link's questionnaire (GET), or its answer (POST, then a redirect to the next one)."""
    if not 1 <= number <= len(items):
        return _gone()
    if draft is None:
        draft = Draft(token_hex(16))
        drafts.save(owner, draft)
    here = items[number - 1]
    if request.method == "GET":
        missing = request.args.get("missing") == "1" and not draft.answers.get(here.link_id)
        return render_template("me_form.html", instrument=instrument, items=items, selected=draft.answers,
                               problems={here.link_id: "Please choose an answer to go on."} if missing else {},
                               step=number - 1, action=request.path, proxy=False, csrf=False)  # fmt: skip
    chosen = request.form.get(here.link_id, "")
    if chosen in {a.code for a in here.answers}:
        draft = drafts.answer(owner, draft, {here.link_id: chosen})
    move = step_after(len(items), number - 1, request.form.get("go"), bool(draft.answers.get(here.link_id)))
    if move is None:
        problems = answer_problems(instrument, draft.answers)
        if not problems:
            saved = _save(token, secret, instrument, draft.answers, draft.submission_id)
            if saved is None:
                return _gone()
            if isinstance(saved, ScreeningRecord):
                drafts.sent(owner, draft, saved.id)
                return redirect(url_for("selflink.done", token=token), code=303)
            problems = saved
        move = first_unanswered(items, problems), True
    return redirect(url_for("selflink.answer", token=token, number=move[0] + 1,
                            missing="1" if move[1] else None), code=303)  # fmt: skip


def _save(token: str, secret: str | None, instrument: Instrument, raw: dict[str, str],
          submission_id: str) -> ScreeningRecord | list[AnswerError] | None:  # fmt: skip
    """Spend the link and save the answers; None when the link was spent meanwhile."""
    spent = links().use(token, secret)
    if spent is None:
        return None
    registration = services().registrations.get(spent.iss)
    vendor = registration.vendor.value if registration else "generic"
    # No EHR token here: the planner finds nothing it may create, and says so on the record.
    plan = plan_writeback(None, lambda resource_type: False, vendor, has_encounter=False)
    saved = save_answers(services(), Answerer(spent.key, f"Patient/{spent.patient}"), instrument, raw, submission_id,
                         patient=None, plan=plan, vendor=vendor, launch_id=None, ehr=None, via="link")  # fmt: skip
    if isinstance(saved, ScreeningRecord):
        # Post/Redirect/Get: the thank-you page reads the saved record; Back and resend give that page again (the
        # form's single-use id), never a second record. The visit's cookie ends with the visit (VISIT_SECONDS).
        links().remember_done(token, secret, saved.id)
    return saved

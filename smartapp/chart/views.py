"""The patient's chart view inside the EHR: screening history and trend, conditions, what is due, screenings
with their results and safety alerts, and the state of every write-back."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from fhir_mappings.common.capability import supports_conditional_create
from fhir_mappings.common.caregivers import RELATIONSHIPS, Caregiver, find
from fhir_mappings.common.conditions import ConditionRow, behavioral_conditions
from fhir_mappings.common.dates import age_months, age_text
from fhir_mappings.common.gestation import Gestation, corrected_age_months
from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.common.patient import (
    administrative_gender,
    age_in_months,
    age_in_years,
    birth_date,
    birth_date_text,
    display_name,
    identifier_value,
)
from fhir_mappings.common.patient_summary import PatientLabel, label_of_patient
from fhir_mappings.registry.programs import due_with_programs, program_or_default
from fhir_mappings.registry.resources import PROGRAM_TITLES, SAFETY_STEPS, Enrolment, WorkTask
from fhir_mappings.screening.caregiver_screens import caregiver_screens
from fhir_mappings.screening.due import DueItem, due_screenings
from fhir_mappings.screening.events import ScreenEvent, events_from_observations, events_from_points
from fhir_mappings.screening.events import merged as merged_events
from fhir_mappings.screening.history import (
    SCORE_CODE_PARAM,
    SERIES_CODES,
    ScorePoint,
    merge_history,
    score_points,
    series,
)
from fhir_mappings.screening.instruments import Instrument
from fhir_mappings.screening.layout import blocks as form_blocks
from fhir_mappings.screening.resources import MEASUREMENT_MODES, Submission, resource_id, result_flag
from fhir_mappings.screening.schedule import ScheduledScreen, scheduled
from fhir_mappings.screening.scoring import AnswerError, parse_answers, score
from fhir_mappings.screening.writeback import plan_writeback
from fhir_mappings.smi.medical import MedicalSummary, summarise
from fhir_mappings.smi.row import MEDICAL_FLAG_LABELS
from launch import errors
from launch.fhir import FHIRClient
from launch.scopes import allows, allows_create
from launch.sessions import LaunchSession
from smartapp import clock
from smartapp import errors as app_errors
from smartapp.chart.trends import trend_svg
from smartapp.dyad.service import CaregiverError
from smartapp.form_once import FIELD as FORM_ONCE_FIELD
from smartapp.healthysteps.gestation import GestationProblem
from smartapp.parking.views import remember_launch_names
from smartapp.request_context import (
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
    patient_caseload,
    pending_records,
    services,
    sign_form_id,
)
from smartapp.screening.service import ScreeningRecord
from smartapp.selfreport.service import caregiver_item_level
from smartapp.smi.medical import read_patient
from smartapp.smi.page import BODY_TARGETS

log = logging.getLogger(__name__)
bp = Blueprint("chart", __name__, url_prefix="/app/<launch_id>", template_folder="templates")

_T = TypeVar("_T")
#: From this age (completed months) a patient has no caregiver section on their chart.
ADULT_MONTHS = 216


@dataclass
class ChartData:
    history: list[ScorePoint] = field(default_factory=list)
    conditions: list[ConditionRow] = field(default_factory=list)
    due: list[DueItem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    #: Whether the EHR's scores were read (a failed read must not replace the registry's copy with nothing).
    ehr_scores_read: bool = False


def _common(session: LaunchSession, ehr: FHIRClient, patient_id: str | None = None) -> dict[str, Any]:
    """What every chart page shows: the header, and the patient banner (a failed Patient read leaves a notice,
    never a broken page: the safety alert must still show). `patient_id`: a registry patient in a launch
    without patient context (the banner is then always shown: the EHR is not showing one)."""
    context = session.context
    patient, notice = None, None
    patient_id = patient_id or context.patient
    if patient_id:
        try:
            patient = ehr.read("Patient", patient_id)
        except errors.FHIRNotFound as error:
            if patient_id == context.patient:
                refuse_unknown_patient(session)
            notice = f"The patient's demographics could not be read from the EHR ({error.message})."
        except errors.TandemError as error:
            notice = f"The patient's demographics could not be read from the EHR ({error.message})."
    header = header_context(session, ehr)
    if patient is not None and patient_id == context.patient:
        remember_launch_names(session, label_of_patient(patient), header.get("user_name"))
    return {
        **header,
        "names": {instrument.key: instrument.name for instrument in services().catalogue},
        "patient": patient,
        "patient_notice": notice,
        "patient_name": display_name(patient),
        "birth_date": birth_date_text(patient),
        "age": age_in_years(patient, clock.today()),
        "age_label": age_text(birth_date(patient), clock.today()),
        "age_months": age_in_months(patient, clock.today()),
        "gender": administrative_gender(patient),
        "mrn": identifier_value(patient),
        "show_banner": context.need_patient_banner
        or (patient_id is not None and patient_id != context.patient),
    }


def _unknown_marker(session: LaunchSession) -> str:
    return f"unknown-patient:{session.id}"


def refuse_unknown_patient(session: LaunchSession) -> None:
    """The EHR launched a patient its FHIR server does not have (Patient read 404): stop, and remember it for the
    launch so no form of it is taken either (a nameless chart would file screenings under an unknown id)."""
    services().store.set(_unknown_marker(session), "1", services().settings.session_ttl)
    log.warning("chart launch refused: the EHR's FHIR server does not know the launch's patient")
    raise app_errors.UnknownPatient("the EHR's FHIR server answered 404 to the launch patient's Patient read")


def check_patient_known(session: LaunchSession) -> None:
    """Refuse (before anything is recorded) a launch whose patient the EHR was found not to know."""
    if session.context.patient and services().store.get(_unknown_marker(session)):
        raise app_errors.UnknownPatient(
            "the EHR's FHIR server answered 404 to the launch patient's Patient read"
        )


def _part(data: ChartData, what: str, load: Callable[[], _T], default: _T) -> _T:
    """Load one part of the chart; a failure of its source leaves a short notice, never a broken page."""
    try:
        return load()
    except (errors.LaunchError, errors.FHIRUnauthorized, errors.StoreUnavailable):
        raise  # the launch itself is over (or Tandem's store is down): the whole page says so
    except errors.TandemError as error:
        log.warning("chart part %s failed: %s", what, type(error).__name__)
        data.notices.append(f"{what} could not be read ({error.message}).")
        return default


def load_chart(session: LaunchSession, ehr: FHIRClient, patient_id: str,
               patient: dict[str, Any] | None) -> ChartData:  # fmt: skip
    svc = services()
    data = ChartData()
    key = PatientKey(session.iss, patient_id)
    read: list[dict[str, Any]] | None = _part(data, "Screening results from the EHR", lambda: ehr.search_all(
        "Observation", {"patient": patient_id, "code": SCORE_CODE_PARAM, "_count": "200"}, max_pages=10), None)  # fmt: skip
    data.ehr_scores_read = read is not None
    ehr_observations = read or []
    data.conditions = _part(data, "Conditions from the EHR", lambda: behavioral_conditions(
        ehr.search_all("Condition", {"patient": patient_id}, max_pages=10)), [])  # fmt: skip
    registry_points: list[ScorePoint] = []
    if svc.registry is not None:
        # The registry's own scores, from the same patient searches as the chart's enrolments (one read).
        registry_points = _part(data, "Screening results in the Tandem registry",
                                lambda: patient_caseload(key).scores.get(key, []), [])  # fmt: skip
    data.history = merge_history(score_points(ehr_observations, "EHR"), registry_points)
    born = birth_date(patient)
    today = clock.today()
    data.due = due_screenings(data.history, data.conditions, age_in_years(patient, today),
                              (today - born).days if born else None, today)  # fmt: skip
    return data


@bp.get("/")
@launch_required
def home(launch_id: str) -> Any:
    session = current_launch()
    if not session.context.patient:  # launched without a patient (user context): a worklist
        # The EHR's launch `intent` picks the HealthySteps Specialist's worklist; otherwise the care manager's.
        target = (
            "healthysteps.worklist"
            if session.context.intent == "healthysteps-worklist"
            else "caseload.worklist"
        )
        return redirect(url_for(target, launch_id=launch_id), code=303)
    svc = services()
    patient_id = session.context.patient
    # The safety alerts first: they come from Tandem's own store and render whatever the FHIR servers do.
    records = svc.screenings.for_patient(session.iss, patient_id)
    ehr = current_ehr()
    page = _common(session, ehr)
    chart = load_chart(session, ehr, patient_id, page["patient"])
    if page["patient_notice"]:
        chart.notices.insert(0, page["patient_notice"])
    enrolments: list[Any] = _part(chart, "Registry enrolments", lambda: patient_caseload(PatientKey(session.iss, patient_id)).enrolments_of(PatientKey(session.iss, patient_id)),
                       [])  # fmt: skip
    key = PatientKey(session.iss, patient_id)
    # The PCP sees the consultant's latest recommendations for each enrolment (from the same patient searches).
    no_tasks: list[WorkTask] = []
    tasks = (
        _part(chart, "Registry reviews", lambda: patient_caseload(key).tasks, no_tasks) if enrolments else []
    )
    reviews: dict[str, WorkTask] = {}
    for task in sorted(
        (t for t in tasks if t.kind == "case-review" and t.completed), key=lambda t: t.completed or date.min
    ):
        if task.careplan_id:
            reviews[task.careplan_id] = task
    if chart.ehr_scores_read and any(e.active for e in enrolments):
        # The worklist shows the EHR's scores too, without reading the EHR per patient: keep what was just read.
        _part(chart, "Registry copy of the EHR scores",
              lambda: svc.ehr_scores.remember(key, [p for p in chart.history if p.source == "EHR"]), None)  # fmt: skip
    chart.due = due_with_programs(
        chart.due,
        [e.program for e in enrolments if e.active],
        chart.history,
        {c.group for c in chart.conditions if c.active},
        page.get("age"),
        clock.today(),
    )
    unfinished = [r for r in records if not r.complete]
    # A GET never writes: unfinished write-backs are handed to the worker (this launch's token is valid now).
    _part(chart, "Write-back status", lambda: svc.writebacks.schedule(unfinished, launch_id=session.id), None)
    body = None
    if any(e.active and program_or_default(e.program).tracks_medical for e in enrolments):
        # SMI: the EHR's vitals, labs and antipsychotic orders, read with this launch's token; the copy feeds the
        # worklist and the patient page.
        body = _part(chart, "Vitals, labs and medications from the EHR",
                     lambda: _read_body(key, ehr), None)  # fmt: skip
    months = page.get("age_months")
    caregivers: list[Caregiver] = []
    if months is not None and months < ADULT_MONTHS:
        caregivers, caregiver_notices = services().caregivers.for_child(key, ehr, session.scope.split())
        chart.notices += caregiver_notices
    birth = _birth(chart, key, ehr, birth_date(page["patient"]), months)
    # The child's own screens are timed by the age corrected for prematurity where the schedule says so.
    schedule_lines, schedule_events = _schedule_lines(chart, key, birth_date(page["patient"]), records,
                                                      birth.gestation if birth else None)  # fmt: skip
    caregiver_instruments = [i for i in services().catalogue if i.for_caregiver_of(months)]
    # Each caregiver's screen buttons by due status: due now, done, not due yet (issue 28).
    by_caregiver = caregiver_screens(caregivers, schedule_lines, [i.key for i in caregiver_instruments],
                                     schedule_events)  # fmt: skip
    trends = []
    for name in SERIES_CODES:
        points = series(chart.history, name)
        if points:
            trends.append((name, points, trend_svg(points, name)))
    # Caregivers' screens recorded on the child: a series per caregiver, always labelled with whose it is.
    for focus in sorted({p.focus for p in chart.history if p.focus}):
        whose = find(caregivers, focus)
        label = whose.label if whose else "Caregiver"
        for name in SERIES_CODES:
            points = series(chart.history, name, focus)
            if points:
                trends.append((f"{label}: {name}", points, trend_svg(points, name)))
    fitting = [i for i in services().catalogue if i.for_age(months)]
    return render_template(
        "chart.html",
        **page,
        chart=chart,
        trends=trends,
        instruments=fitting,
        own_keys={i.key for i in fitting},
        caregivers=caregivers,
        schedule=services().schedule,
        schedule_lines=schedule_lines,
        caregiver_instruments=caregiver_instruments,
        caregiver_screens=by_caregiver,
        relationships=RELATIONSHIPS,
        may_record_caregivers=services().registry is not None,
        alerts=[r for r in records if r.needs_acknowledgement],
        enrolments=enrolments,
        program_titles=PROGRAM_TITLES,
        birth=birth,
        hs_program=services().healthysteps.program,
        hs_fits=services().registry is not None and services().healthysteps.program.fits_age(months),
        reviews=reviews,
        unfinished=unfinished,
        body=body,
        body_targets=BODY_TARGETS,
        medical_labels=MEDICAL_FLAG_LABELS,
    )


def _read_body(key: PatientKey, ehr: FHIRClient) -> MedicalSummary:
    observations, requests = read_patient(ehr, key.patient_id)
    record = services().ehr_medical.remember(key, observations, requests)
    return summarise(record.observations, record.requests, clock.today())


@dataclass(frozen=True)
class Birth:
    """What the chart says about a young child's birth: the gestational age and the corrected age it gives."""

    gestation: Gestation | None
    corrected_months: int | None
    rule: tuple[int, int]
    instruments: tuple[str, ...]


def _correction_rule() -> tuple[tuple[int, int], tuple[str, ...]] | None:
    """The catalogue's prematurity rule (the widest, should instruments differ) and the instruments using it."""
    using = [i for i in services().catalogue if i.corrects_for_prematurity]
    if not using:
        return None
    rule = max(i.corrects_for_prematurity for i in using if i.corrects_for_prematurity)
    return rule, tuple(i.name for i in using)


def _birth(chart: ChartData, key: PatientKey, ehr: FHIRClient, born: date | None, months: int | None
           ) -> Birth | None:  # fmt: skip
    """For a child young enough for an instrument's prematurity correction: the gestational age at birth."""
    found = _correction_rule()
    if found is None or months is None or born is None or months >= found[0][0]:
        return None
    rule, names = found
    gestation, notices = services().gestation.for_child(key, ehr)
    chart.notices += notices
    corrected = corrected_age_months(born, clock.today(), gestation, rule)
    return Birth(gestation, corrected if corrected != months else None, rule, names)


def _launch_patient(session: LaunchSession) -> PatientKey:
    """The launch's patient, for a form about them (no patient in context: there is no such page)."""
    if not session.context.patient:
        abort(404)
    return PatientKey(session.iss, session.context.patient)


@bp.post("/gestation")
@launch_required
def record_gestation(launch_id: str) -> Any:
    """Record the launch's child's gestational age at birth in the registry (never written to the EHR)."""
    session = current_launch()
    child = _launch_patient(session)
    ehr = current_ehr()
    try:
        born = birth_date(ehr.read("Patient", child.patient_id))
    except (errors.LaunchError, errors.FHIRUnauthorized):
        raise
    except errors.TandemError:
        born = None  # the birth day only dates the record; the gestational age is what is kept
    try:
        services().gestation.record(child, request.form.get("weeks", ""), request.form.get("days", ""), born=born,
                                    performer=session.context.fhir_user if session.context.fhir_user_type else None)  # fmt: skip
    except GestationProblem as error:
        # Only a refused entry needs the page around it (header, banner): a saved one goes back to the chart.
        return render_template("gestation_problem.html", **_common(session, ehr), problem=str(error),
                               entered=request.form), 422  # fmt: skip
    return redirect(url_for("chart.home", launch_id=launch_id) + "#birth-title", code=303)


def _schedule_lines(
    chart: ChartData, key: PatientKey, born: date | None, records: list[ScreeningRecord],
    gestation: Gestation | None = None,
) -> tuple[list[ScheduledScreen], list[ScreenEvent]]:  # fmt: skip
    """The visit schedule's due and overdue screens for a child in its ages (nothing for anyone else), and the
    screens done they were read from. Screens done come from the registry's result Observations, the EHR's scores
    and Tandem's own records not yet written; a registry that cannot be read leaves a notice and no schedule
    (never a wrong "due")."""
    svc = services()
    schedule = svc.schedule
    today = clock.today()
    if born is None or (today - born).days > max(v.to_days for v in schedule.visits) or svc.registry is None:
        return [], []
    registry = svc.registry
    found: list[dict[str, Any]] | None = _part(chart, "Screens recorded in the Tandem registry", lambda: [
        o for o in registry.search_all("Observation", {"subject": key.relative, "_count": "200"}, max_pages=10)
        if patient_key(o.get("subject")) == key], None)  # fmt: skip
    if found is None:
        return [], []
    own_records = [ScreenEvent(r.instrument, datetime.fromisoformat(r.authored),
                               r.caregiver_of_record.reference if r.caregiver_of_record else None,
                               result_flag(r.result), r.result.interpretation) for r in records]  # fmt: skip
    events = merged_events(events_from_observations(found, svc.catalogue), events_from_points(
        [p for p in chart.history if p.source == "EHR"], svc.catalogue), own_records)  # fmt: skip
    return scheduled(schedule, born, today, events, gestation), events


def registry_banner(enrolment: Enrolment) -> dict[str, Any]:
    """The banner from what the registry copied at enrolment, when this launch may not read the EHR's Patient
    (a worklist launch with patient-level scopes only): name, birth date, age and MRN still identify the patient."""
    born = enrolment.birth_date
    return {"patient": {"resourceType": "Patient"}, "patient_name": enrolment.patient_name,
            "birth_date": born.isoformat() if born else None, "age": enrolment.age(clock.today()),
            "age_label": age_text(born, clock.today()),
            "mrn": enrolment.mrn, "gender": None, "show_banner": True, "patient_notice": None}  # fmt: skip


@dataclass(frozen=True)
class Subject:
    """Whom a screening is for: the launch's patient, or, from the registry (a launch without patient context),
    the patient of an enrolment the user may work; with a caregiver, the caregiver answers about themself at the
    child's visit and it is recorded on the child."""

    patient_id: str
    enrolment: Enrolment | None = None
    caregiver: Caregiver | None = None

    def form_url(self, launch_id: str, key: str) -> str:
        if self.enrolment is not None:
            return url_for("caseload.measure", launch_id=launch_id, careplan_id=self.enrolment.id, key=key)
        if self.caregiver is not None:
            return url_for("chart.screen", launch_id=launch_id, key=key, caregiver=self.caregiver.id)
        return url_for("chart.screen", launch_id=launch_id, key=key)

    @property
    def binding(self) -> tuple[str, ...]:
        """What a form's submission id is bound to beyond the launch: the patient, and the caregiver answering."""
        return (self.patient_id, self.caregiver.id) if self.caregiver else (self.patient_id,)


def _form(session: LaunchSession, ehr: FHIRClient, instrument: Any, subject: Subject, *,
          selected: dict[str, str] | None = None, problems: dict[str, str] | None = None, notice: str | None = None,
          submission_id: str | None = None, status: int = 200) -> tuple[str, int]:  # fmt: skip
    """The screening form; a submission id is minted per form and bound to (issuer, patient, launch)."""
    binding = (session.iss, *subject.binding, session.id)
    if submission_id is None:
        submission_id, signature = mint_form_id("submission", *binding)
    else:
        signature = sign_form_id("submission", submission_id, *binding)
    common = _common(session, ehr, subject.patient_id)
    if common["patient"] is None and subject.enrolment is not None:
        common.update(registry_banner(subject.enrolment))
    born = birth_date(common["patient"]) or (subject.enrolment.birth_date if subject.enrolment else None)
    months = age_months(born, clock.today())
    fits = instrument.for_caregiver_of(months) if subject.caregiver else instrument.for_age(months)
    if request.method == "GET" and not fits:
        # Offered only where it fits; an address typed or kept from elsewhere says why (a POST is still kept).
        fitting = [i for i in services().catalogue
                   if (i.for_caregiver_of(months) if subject.caregiver else i.for_age(months))]  # fmt: skip
        return render_template("not_for_age.html", **common, instrument=instrument, fitting=fitting,
                               caregiver=subject.caregiver), 409  # fmt: skip
    age = (
        instrument_age(ehr, session, subject, instrument, born)
        if instrument.corrects_for_prematurity
        else None
    )
    return render_template("screen_form.html", **common, instrument=instrument, instrument_age=age,
                           blocks=form_blocks(instrument.form_items),
                           submission_id=submission_id, submission_sig=signature, selected=selected or {},
                           problems=problems or {}, form_notice=notice, subject=subject,
                           form_url=subject.form_url(session.id, instrument.key), modes=MEASUREMENT_MODES), status  # fmt: skip


@bp.route("/screen/<key>", methods=["GET", "POST"])
@launch_required
def screen(launch_id: str, key: str) -> Any:
    session = current_launch()
    if not session.context.patient:
        raise errors.InvalidLaunchRequest(
            "screenings need a patient: open Tandem from a chart, or record a follow-up from the worklist"
        )
    caregiver_id = request.values.get("caregiver")
    caregiver = None
    if caregiver_id:
        key_ = PatientKey(session.iss, session.context.patient)
        found, _ = services().caregivers.for_child(key_, current_ehr(), session.scope.split())
        caregiver = next((c for c in found if c.id == caregiver_id), None)
        if caregiver is None:
            abort(404)
    return screening_page(session, key, Subject(session.context.patient, caregiver=caregiver))


@dataclass(frozen=True)
class InstrumentAge:
    """The age an instrument reads (corrected for prematurity where it says) beside the chronological age."""

    chronological: int | None
    months: int | None
    gestation: Gestation | None = None
    notices: tuple[str, ...] = ()
    #: The instrument corrects for prematurity at this age, but no gestational age is known.
    gestation_unknown: bool = False

    @property
    def corrected(self) -> bool:
        return self.months != self.chronological


def instrument_age(ehr: FHIRClient, session: LaunchSession, subject: Subject, instrument: Instrument,
                   born: date | None) -> InstrumentAge:  # fmt: skip
    """The child's age for `instrument`; the gestational age is read only when the correction could apply."""
    today = clock.today()
    chronological = age_months(born, today)
    rule = instrument.corrects_for_prematurity
    if subject.caregiver is not None or rule is None or chronological is None or chronological >= rule[0]:
        return InstrumentAge(chronological, chronological)
    gestation, notices = services().gestation.for_child(PatientKey(session.iss, subject.patient_id), ehr)
    return InstrumentAge(chronological, corrected_age_months(born, today, gestation, rule), gestation,
                         tuple(notices), gestation_unknown=gestation is None)  # fmt: skip


def _patient_facts(ehr: FHIRClient, session: LaunchSession, subject: Subject, instrument: Instrument
                   ) -> tuple[str | None, InstrumentAge | None]:  # fmt: skip
    """Sex (AUDIT-C's cutoff) and age (per-age-form cutoffs, SWYC, corrected for prematurity) from one Patient
    read, made only when the instrument's scoring needs them (one request fewer per submit otherwise). A
    caregiver's screen needs neither: the child's sex and age are not the caregiver's."""
    if subject.caregiver is not None or not (instrument.positive_by_sex or instrument.cutoffs_by_age):
        return None, None
    patient = None
    try:
        patient = ehr.read("Patient", subject.patient_id)
    except (errors.LaunchError, errors.FHIRUnauthorized):
        raise  # the launch is over: the page says so (the form keeps nothing it did not already)
    except errors.FHIRNotFound:
        if subject.patient_id == session.context.patient:
            refuse_unknown_patient(session)  # nothing is recorded under an id the EHR does not know
        log.warning("Patient read for scoring failed; scoring without sex and age")
    except errors.TandemError:
        # The screening is still kept: scored without sex and age rather than lost.
        log.warning("Patient read for scoring failed; scoring without sex and age")
    born = birth_date(patient) or (subject.enrolment.birth_date if subject.enrolment else None)
    return administrative_gender(patient), instrument_age(ehr, session, subject, instrument, born)


def _safety_names(session: LaunchSession, ehr: FHIRClient, subject: Subject
                  ) -> tuple[PatientLabel | None, str | None]:  # fmt: skip
    """For a screening that raises a safety follow-up: who the patient is (the registry's copy, else the EHR's
    Patient) and the name of who raised it, kept on the safety Task so every later list names both, also from a
    launch that may not read Patient (a worklist launch). Read only when there is a safety flag."""
    enrolment = subject.enrolment
    label = PatientLabel(enrolment.patient_name, enrolment.birth_date, enrolment.mrn) if enrolment else None
    if label is None or not label.name:
        try:
            label = label_of_patient(ehr.read("Patient", subject.patient_id)) or label
        except errors.TandemError:
            log.warning("Patient read for the safety follow-up's label failed; the registry's copy is used")
    try:
        user = current_user(session, ehr)
    except errors.TandemError:
        user = None
    return label, (user.display if user else None)


def screening_page(session: LaunchSession, key: str, subject: Subject) -> Any:
    """The screening form (GET) and its submission (POST) for one subject."""
    instrument = services().catalogue.get(key)
    if instrument is None:
        abort(404)
    svc = services()
    ehr = current_ehr()
    if subject.patient_id == session.context.patient:
        check_patient_known(session)
    if request.method == "GET":
        return _form(session, ehr, instrument, subject)
    raw = entered_fields("submission_id", "submission_sig", "mode", "caregiver", SAFETY_FIELD)
    submission_id = request.form.get("submission_id", "")
    if not form_id_valid("submission", submission_id, request.form.get("submission_sig", ""), session.iss,
                         *subject.binding, session.id):  # fmt: skip
        # Another launch's or another patient's form: keep what was entered, under a new id for this patient.
        log.warning("screening form refused: its submission id belongs to another launch or patient")
        return _form(session, ehr, instrument, subject, selected=raw, status=409, notice=(
            "This form was opened for another patient or in another Tandem window, so it was not saved. Your "
            "answers are kept below: check that this is the right patient, then save again."))  # fmt: skip
    answers, problems = parse_answers(instrument, raw)
    mode = request.form.get("mode") or None
    if subject.enrolment is not None and mode not in MEASUREMENT_MODES:
        problems = [
            *problems,
            AnswerError("mode", "Say how this follow-up was measured (phone, in person or video)."),
        ]
    if problems:
        return _form(session, ehr, instrument, subject, selected={**raw, "mode": mode or ""},
                     submission_id=submission_id, status=422,
                     problems={p.link_id: p.message for p in problems})  # fmt: skip
    sex, age = _patient_facts(ehr, session, subject, instrument)
    months = age.months if age else None
    caregiver = subject.caregiver
    result = score(instrument, answers, sex=sex, age_months=months)
    label, author_name = _safety_names(session, ehr, subject) if result.has_safety_flag else (None, None)
    submission = Submission(
        submission_id=submission_id,
        instrument=instrument,
        answers=answers,
        result=result,
        patient_id=subject.patient_id,
        authored=datetime.now(UTC).replace(microsecond=0),
        author=session.context.fhir_user if session.context.fhir_user_type else None,
        # A registry follow-up is not part of the launch's encounter (there is none without a patient).
        encounter_id=session.context.encounter if subject.enrolment is None else None,
        iss=session.iss,
        mode=mode if mode in MEASUREMENT_MODES else None,
        focus=caregiver.reference if caregiver else None,
        focus_label=caregiver.label if caregiver else None,
        ehr_focus=caregiver.ehr_reference if caregiver else None,
        caregiver_item_level=caregiver_item_level(services(), session.iss),
        patient_label=label,
        author_name=author_name,
    )
    vendor, capability = ehr_profile(session)
    granted = session.scope.split()
    if subject.patient_id == session.context.patient:
        may_create = lambda resource_type: allows_create(granted, resource_type)  # noqa: E731
    else:  # a registry patient outside the launch's context: only user-level scopes reach their chart
        may_create = lambda resource_type: allows(granted, "user", resource_type, "c")  # noqa: E731
    plan = plan_writeback(
        capability,
        may_create,
        vendor,
        has_encounter=submission.encounter_id is not None,
        caregiver_in_ehr=None if caregiver is None else caregiver.ehr_reference is not None,
    )
    conditional = bool(plan.ehr_types) and all(
        supports_conditional_create(capability, t) for t in plan.ehr_types
    )
    record = svc.screenings.record(submission, iss=session.iss, vendor=vendor, sex=sex, plan=plan,
                                   ehr_conditional_create=conditional, launch_id=session.id,
                                   careplan_id=subject.enrolment.id if subject.enrolment else None,
                                   caregiver=caregiver, age_months=months,
                                   gestation=age.gestation.text if age and age.corrected and age.gestation else None,
                                   chronological_months=age.chronological if age else None)  # fmt: skip
    # The first attempt runs now (under the screening's lock: a double-click storm writes once); anything left
    # is the worker's.
    record = svc.screenings.run(record, ehr)
    svc.writebacks.schedule([record], launch_id=session.id)
    if instrument.key == CSSRS and request.form.get(SAFETY_FIELD):
        _cssrs_on_follow_up(session, ehr, request.form[SAFETY_FIELD], record)
    return redirect(url_for("chart.result", launch_id=session.id, record_id=record.id), code=303)


def _cssrs_on_follow_up(
    session: LaunchSession, ehr: FHIRClient, alert_id: str, cssrs: ScreeningRecord
) -> None:
    """A C-SSRS screener started from a safety alert: its result is kept on that alert's safety follow-up too
    (the safety list and the care manager see the risk level). The screener itself is saved whatever happens
    here; one step per submission (a resubmitted form records once)."""
    alert = services().screenings.load(alert_id)
    if (
        alert is None
        or alert.iss != cssrs.iss
        or alert.patient_id != cssrs.patient_id
        or not alert.result.has_safety_flag
        or alert.registry.status != "saved"
    ):
        return
    try:
        services().caseload.record_safety_step(resource_id(alert.id, "safety"), alert.key, alert.iss,
                                               f"step-{cssrs.id}"[:64], "cssrs-done", cssrs.result.interpretation,
                                               current_user(session, ehr))  # fmt: skip
    except errors.TandemError as error:
        log.warning("the C-SSRS result could not be kept on its safety follow-up: %s", type(error).__name__)


@bp.post("/caregivers")
@launch_required
def add_caregiver(launch_id: str) -> Any:
    """Record a caregiver of the launch's child in the registry (the EHR's own list is never written)."""
    session = current_launch()
    child = _launch_patient(session)
    svc = services()
    existing = None
    if request.form.get("caregiver"):
        found, _ = svc.caregivers.for_child(child, current_ehr(), session.scope.split())
        existing = next((c for c in found if c.id == request.form["caregiver"]), None)
        if existing is None:
            abort(404)
    try:
        svc.caregivers.record(child, name=request.form.get("name", ""),
                              relationship=request.form.get("relationship", "") if existing is None
                              else existing.relationship or "GUARD",
                              patient_id=request.form.get("patient_id"), existing=existing)  # fmt: skip
    except CaregiverError as error:
        return render_template("caregiver_problem.html", **_common(session, current_ehr()),
                               problem=error.message, entered=request.form, relationships=RELATIONSHIPS), 422  # fmt: skip
    return redirect(url_for("chart.home", launch_id=launch_id) + "#caregivers-title", code=303)


def _record_for(session: LaunchSession, record_id: str) -> ScreeningRecord:
    """A screening of the launch's patient; in a launch without a patient, one the user's caseload may see."""
    record = services().screenings.load(record_id)
    if record is None or record.iss != session.iss:
        abort(404)
    if record.note is not None and request.endpoint == "chart.result":
        abort(404)  # a consult note's write-back has no result page (it is listed on the write-backs page)
    if session.context.patient:
        if record.patient_id != session.context.patient:
            abort(404)
    elif not (current_access().caseload and current_access().allows_patient(record.key)):
        abort(404)
    return record


@bp.get("/screenings/<record_id>")
@launch_required
def result(launch_id: str, record_id: str) -> Any:
    session = current_launch()
    return _result_page(session, _record_for(session, record_id))


def _result_page(session: LaunchSession, record: ScreeningRecord, *, problems: dict[str, str] | None = None,
                 entered: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:  # fmt: skip
    """The result; with a safety alert, the next steps (C-SSRS, safety plan, referral) and those already taken.
    `problems`: a step form that came back (field → message), with what was `entered`."""
    ehr = current_ehr()
    submission = record.submission(services().catalogue)
    common = _common(session, ehr, record.patient_id)
    if common["patient"] is None and record.careplan_id:
        try:
            common.update(registry_banner(services().caseload.get(record.careplan_id, record.iss)))
        except errors.TandemError:
            pass  # the result still shows; the notice says the demographics could not be read
    safety_task, steps_notice = None, None
    if submission.result.safety and record.registry.status == "saved":
        try:
            safety_task = services().caseload.safety_task(
                resource_id(record.id, "safety"), record.iss, record.key
            )
        except errors.TandemError as error:
            log.warning("a safety follow-up could not be read: %s", type(error).__name__)
            steps_notice = "The steps taken on this safety follow-up could not be read just now."
    return render_template("screening_result.html", **common, record=record, submission=submission,
                           result=submission.result, modes=MEASUREMENT_MODES, safety_task=safety_task,
                           steps_notice=steps_notice, steps=SAFETY_STEPS, cssrs_url=_cssrs_url(session, record, common),
                           step_problems=problems or {}, step_entered=entered or {}), status  # fmt: skip


#: The catalogue key of the C-SSRS screener (fhir_mappings/data/instruments/cssrs-screener.*).
CSSRS = "cssrs-screener"
#: The C-SSRS form's field naming the screening whose safety alert it was started from (`safety_alert=` below).
SAFETY_FIELD = "safety_alert"


def _cssrs_url(session: LaunchSession, record: ScreeningRecord, common: dict[str, Any]) -> str | None:
    """Where the C-SSRS screener is started for this patient; None when the catalogue has none, the alert is
    about a caregiver (the C-SSRS here is the patient's own), or the patient is outside its ages."""
    instrument = services().catalogue.get(CSSRS)
    if instrument is None or record.about:
        return None
    months = common.get("age_months")
    if months is not None and not instrument.for_age(months):
        return None
    if session.context.patient == record.patient_id:
        return url_for("chart.screen", launch_id=session.id, key=CSSRS, safety_alert=record.id)
    if record.careplan_id:
        return url_for("caseload.measure", launch_id=session.id, careplan_id=record.careplan_id, key=CSSRS,
                       safety_alert=record.id)  # fmt: skip
    return None


@bp.post("/screenings/<record_id>/safety-step")
@launch_required
def safety_step(launch_id: str, record_id: str) -> Any:
    """Record a next step on the screening's safety follow-up: the C-SSRS screener started (then its form opens),
    a safety plan or a referral (each with a note of what was done). Kept on the registry's safety Task, with who
    and when, so the safety list and the care manager see it. The alert and its acknowledgement stay as they are."""
    session = current_launch()
    record = _record_for(session, record_id)
    kind = request.form.get("step", "")
    note = (request.form.get("note") or "").strip()
    problems = {}
    if kind not in SAFETY_STEPS or not record.result.has_safety_flag:
        problems["step"] = "Choose a next step."
    elif kind != "cssrs-started" and not note:
        problems[f"note-{kind}"] = (
            "Write the safety plan: warning signs, coping steps, people and places, crisis lines."
            if kind == "safety-plan"
            else "Write where the patient was referred, and when they are expected."
        )
    cssrs = (
        _cssrs_url(session, record, _common(session, current_ehr(), record.patient_id))
        if kind == "cssrs-started"
        else None
    )
    if kind == "cssrs-started" and cssrs is None:
        problems["step"] = "The C-SSRS screener is not offered for this patient."
    if record.registry.status != "saved":
        problems["step"] = ("The safety follow-up has not reached the Tandem registry yet: record this step "
                            "once it has (the alert and its acknowledgement work now).")  # fmt: skip
    if problems:
        return _result_page(
            session, record, problems=problems, entered={"step": kind, "note": note}, status=422
        )
    by = current_user(session, current_ehr())
    # One id per form (its single-use field): Back and resubmit records the step once.
    step_id = (
        "step-"
        + hashlib.sha256(request.form.get(FORM_ONCE_FIELD, secrets.token_hex(8)).encode()).hexdigest()[:16]
    )
    services().caseload.record_safety_step(resource_id(record.id, "safety"), record.key, record.iss, step_id, kind,
                                           note, by)  # fmt: skip
    if cssrs is not None:
        return redirect(cssrs, code=303)
    return redirect(
        url_for("chart.result", launch_id=launch_id, record_id=record_id) + "#safety-steps", code=303
    )


@bp.post("/screenings/<record_id>/acknowledge")
@launch_required
def acknowledge(launch_id: str, record_id: str) -> Response:
    session = current_launch()
    record = _record_for(session, record_id)
    user = current_user(session, current_ehr())
    services().screenings.acknowledge(record, session.context.fhir_user, user.display if user else None)
    return redirect(url_for("chart.result", launch_id=launch_id, record_id=record_id), code=303)  # type: ignore[return-value]


def _visible_pending(session: LaunchSession) -> list[ScreeningRecord]:
    access = current_access()
    return [r for r in pending_records() if access.allows_patient(r.key)]


@bp.get("/writebacks")
@launch_required
def writebacks(launch_id: str) -> str:
    session = current_launch()
    ehr = current_ehr()
    return render_template("writebacks.html", **_common(session, ehr), pending=_visible_pending(session))


@bp.post("/writebacks/retry")
@launch_required
def retry_writebacks(launch_id: str) -> Response:
    """Retry now: the worker takes every visible pending write-back at once (EHR writes of this launch's patient
    with this launch's token)."""
    session = current_launch()
    services().writebacks.schedule(_visible_pending(session), launch_id=session.id, now=True, force=True)
    return redirect(url_for("chart.writebacks", launch_id=launch_id), code=303)  # type: ignore[return-value]


@bp.post("/writebacks/<record_id>/checked")
@launch_required
def checked(launch_id: str, record_id: str) -> Response:
    """A person found an unconfirmed write-back in the EHR's chart: it is done (nothing is re-created)."""
    session = current_launch()
    user = current_user(session, current_ehr())
    services().screenings.mark_checked(_record_for(session, record_id), session.context.fhir_user,
                                       user.display if user else None)  # fmt: skip
    return redirect(url_for("chart.writebacks", launch_id=launch_id), code=303)  # type: ignore[return-value]


@bp.post("/end")
@launch_required
def end(launch_id: str) -> Response:
    session = current_launch()
    services().sessions.end(session.id)
    return redirect(url_for("site.ended"), code=303)  # type: ignore[return-value]

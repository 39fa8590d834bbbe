"""The patient's own questionnaires: what is due for them, and saving what they answered exactly as a screening
the care team enters is saved (registry transaction with the safety Task, the write-back planner for the EHR),
with the patient (or parent) as author and source and the result tagged patient-reported."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir_mappings.cds.cards import DueScreen
from fhir_mappings.common.caregivers import Caregiver
from fhir_mappings.common.conditions import behavioral_conditions
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient import administrative_gender, age_in_months
from fhir_mappings.common.patient_summary import label_of_patient
from fhir_mappings.screening.history import SCORE_CODE_PARAM, merge_history, score_points
from fhir_mappings.screening.instruments import Instrument, Item
from fhir_mappings.screening.resources import Submission
from fhir_mappings.screening.scoring import AnswerError, parse_answers, score
from fhir_mappings.screening.writeback import WritebackPlan, plan_writeback
from launch import errors
from launch.fhir import FHIRClient
from smartapp import clock
from smartapp.due import due_screens, schedule_gestation
from smartapp.screening.service import ScreeningRecord

if TYPE_CHECKING:
    from smartapp.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answerer:
    """Who answers, about whom: the patient themself, or a parent (RelatedPerson) answering about themself at
    their child's visits (the caregiver's own screens, recorded on the child)."""

    key: PatientKey
    reference: str  # Patient/… or RelatedPerson/…

    @property
    def proxy(self) -> bool:
        return self.reference.startswith("RelatedPerson/")


def self_report_due(
    svc: Services, who: Answerer, ehr: FHIRClient | None
) -> tuple[list[DueScreen], dict[str, Any] | None]:
    """The questionnaires due for this answerer that a patient may fill in themself, and the Patient read. Reads
    the EHR with the portal's own token where it allows (a refused read leaves the registry's data)."""
    key = who.key
    patient: dict[str, Any] | None = None
    observations: list[dict[str, Any]] = []
    conditions: list[dict[str, Any]] = []
    if ehr is not None:
        for what, load in (("patient", lambda: ehr.read("Patient", key.patient_id)),
                           ("scores", lambda: ehr.search_all("Observation", {"patient": key.patient_id, "code": SCORE_CODE_PARAM, "_count": "200"}, max_pages=5)),
                           ("conditions", lambda: ehr.search_all("Condition", {"patient": key.patient_id}, max_pages=5))):  # fmt: skip
            try:
                found = load()
            except (errors.FHIRForbidden, errors.FHIRNotFound, errors.FHIRBadRequest) as error:
                log.info("self-report: the portal token may not read %s (%s)", what, type(error).__name__)
                continue
            if what == "patient":
                patient = found if isinstance(found, dict) else None
            elif what == "scores" and isinstance(found, list):
                observations = found
            elif isinstance(found, list):
                conditions = found
    data = svc.caseload.load().for_patient(key) if svc.registry is not None else None
    history = merge_history(score_points(observations, "EHR"), data.scores.get(key, []) if data else [])
    records = svc.screenings.for_patient(key.iss, key.patient_id)
    today = clock.today()
    screens = due_screens(patient, history, behavioral_conditions(conditions),
                          data.enrolments_of(key) if data else [], records, svc.catalogue, svc.schedule, today,
                          schedule_gestation(svc.gestation, key, patient, svc.schedule, today))  # fmt: skip
    own = [s for s in screens if s.caregiver == who.proxy and (i := svc.catalogue.get(s.instrument)) is not None
           and i.self_report]  # fmt: skip
    return list({s.instrument: s for s in own}.values()), patient


def may_answer(svc: Services, who: Answerer, ehr: FHIRClient | None, key: str) -> Instrument | None:
    """The instrument, if it is due for this answerer and self-reportable (nothing else can be opened)."""
    due, _ = self_report_due(svc, who, ehr)
    return svc.catalogue.get(key) if any(d.instrument == key for d in due) else None


def answer_items(instrument: Instrument) -> list[Item]:
    """The questions a patient answers (choices; never an entered score)."""
    return [i for i in instrument.items if i.kind == "choice"]


def step_after(count: int, step: int, go: str | None, answered: bool) -> tuple[int, bool] | None:
    """One question per screen: after `go` ("next" or "back") on `step` (from 0) of `count`, the step to show and
    whether it is shown asking for its missing answer; None when the answers are to be saved (the last step went
    on). Back needs no answer; going on does (the step is shown again, asking for it)."""
    if go == "back":
        return max(step - 1, 0), False
    if not answered:
        return step, True
    return (step + 1, False) if step + 1 < count else None


def first_unanswered(items: Sequence[Item], problems: Sequence[AnswerError]) -> int:
    """The step of the first question with a problem (where a patient is sent back to answer it)."""
    named = {p.link_id for p in problems}
    return next((n for n, item in enumerate(items) if item.link_id in named), 0)


def answer_problems(instrument: Instrument, raw: Mapping[str, str]) -> list[AnswerError]:
    """What is wrong with a patient's answers. A patient answers every scored question (no prorating of a form
    nobody reviewed with them; a skipped safety item must never read as negative either)."""
    _, problems = parse_answers(instrument, dict(raw))
    named = {p.link_id for p in problems}
    return [*problems, *(AnswerError(i.link_id, "Please choose an answer to this question.") for i in instrument.items
                         if i.scored and i.kind == "choice" and i.enable_when is None and not raw.get(i.link_id)
                         and i.link_id not in named)]  # fmt: skip


def save_answers(svc: Services, who: Answerer, instrument: Instrument, raw: Mapping[str, str], submission_id: str,
                 *, patient: Mapping[str, Any] | None, plan: WritebackPlan, vendor: str, launch_id: str | None,
                 ehr: FHIRClient | None, conditional: bool = False,
                 via: str = "portal") -> ScreeningRecord | list[AnswerError]:  # fmt: skip
    """Save the answers (or the problems with them). Saved in Tandem's store before any write, so nothing the
    patient entered is lost when a server is down; a positive safety item raises the care team's alert and
    same-day safety Task exactly as a clinician-entered one. `via`: "portal" or "link" (what the EHR note says)."""
    answers, _ = parse_answers(instrument, dict(raw))
    problems = answer_problems(instrument, raw)
    if problems:
        return problems
    sex = administrative_gender(patient) if patient else None
    months = age_in_months(patient, clock.today()) if patient else None
    # A parent answers about themself at the child's visit: recorded on the child with the parent as focus.
    caregiver = (
        Caregiver(who.reference.split("/")[-1], who.key, None, None, ehr_reference=who.reference)
        if who.proxy
        else None
    )
    submission = Submission(
        submission_id=submission_id, instrument=instrument, answers=answers,
        result=score(instrument, answers, sex=None if who.proxy else sex, age_months=None if who.proxy else months),
        patient_id=who.key.patient_id, authored=datetime.now(UTC).replace(microsecond=0), author=who.reference,
        iss=who.key.iss, self_reported=True, focus=caregiver.reference if caregiver else None,
        focus_label=caregiver.label if caregiver else None, ehr_focus=who.reference if who.proxy else None,
        answered_via=via, caregiver_item_level=caregiver_item_level(svc, who.key.iss),
        patient_label=label_of_patient(patient) if patient else None,
    )  # fmt: skip
    record = svc.screenings.record(submission, iss=who.key.iss, vendor=vendor, sex=sex, plan=plan,
                                   ehr_conditional_create=conditional, launch_id=launch_id, caregiver=caregiver)  # fmt: skip
    record = svc.screenings.run(record, ehr)
    svc.writebacks.schedule([record], launch_id=launch_id)
    if record.result.has_safety_flag:
        log.warning(
            "patient-reported screening with a safety flag (%s): alert and safety Task raised",
            instrument.name,
        )
    return record


def caregiver_item_level(svc: Services, iss: str) -> bool:
    """Whether the EHR's registration allows a caregiver's item-level answers on the child's chart."""
    registration = svc.registrations.get(iss)
    return bool(registration and registration.caregiver_note_item_level)


def portal_plan(capability: Mapping[str, Any] | None, may_create: Callable[[str], bool], vendor: str,
                proxy: bool) -> WritebackPlan:  # fmt: skip
    """The same write-back planner as the care team's, with the portal token's scopes (no encounter)."""
    return plan_writeback(
        capability, may_create, vendor, has_encounter=False, caregiver_in_ehr=True if proxy else None
    )

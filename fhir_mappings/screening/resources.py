"""FHIR resources for one submitted screening: QuestionnaireResponse, screening Observations, safety Task,
clinical note, and the registry transaction. Pure functions over the scored result."""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient_summary import PatientLabel, summary_extension
from fhir_mappings.screening.instruments import LOINC, TOTAL, Answer, Instrument
from fhir_mappings.screening.scoring import ScoreResult

SUBMISSION_SYSTEM = "https://tandem.health/fhir/submission"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
SCREENING_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment"
QR_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse"


#: A screen's result as the worklists flag it. Tandem's own codes (the v3 ObservationInterpretation POS/NEG pair
#: has no "monitoring zone").
RESULT_FLAG_SYSTEM = "https://tandem.health/fhir/CodeSystem/screen-result"
RESULT_FLAGS = {"positive": "Positive screen", "monitor": "Monitoring zone", "negative": "Negative screen"}


def result_flag(result: ScoreResult) -> str | None:
    """positive / monitor / negative for a scored result; None when it is incomplete."""
    if result.positive is None:
        return None
    if result.positive and result.monitor:
        return "monitor"
    return "positive" if result.positive else "negative"


#: How a follow-up measurement was taken. Tandem's own codes: no standard value set for survey administration mode
#: is confirmed in the reference (clinical.md), so this is data, not a claimed standard code.
MODE_SYSTEM = "https://tandem.health/fhir/CodeSystem/measurement-mode"
MODE_URL = "https://tandem.health/fhir/StructureDefinition/measurement-mode"
MEASUREMENT_MODES = {"phone": "By phone", "in-person": "In person", "video": "By video"}


@dataclass(frozen=True)
class Submission:
    """One screening as the clinician entered it, with who, whom and when."""

    submission_id: str
    instrument: Instrument
    answers: Mapping[str, Answer]
    result: ScoreResult
    patient_id: str
    authored: datetime
    author: str | None = None  # a reference, e.g. Practitioner/123
    encounter_id: str | None = None
    #: The caregiver the answers are about, in dyadic care (RelatedPerson/… in the registry): recorded on the child
    #: as `focus`, and as the QuestionnaireResponse's author and source and the Observations' performer.
    focus: str | None = None
    #: Whom the answers are about, as every reader is told ("Mother (Ana Diaz)").
    focus_label: str | None = None
    #: The same caregiver's RelatedPerson in the EHR, when the EHR holds one (None: only a note can say whose).
    ehr_focus: str | None = None
    #: The EHR issuer of the patient: the registry copy names the patient as (issuer, id).
    iss: str | None = None
    #: How a follow-up measurement was taken (phone, in-person, video); None for a screening in the visit.
    mode: str | None = None
    #: The patient (or a parent, RelatedPerson) answered it themself, from the portal or a questionnaire link:
    #: `author` is then who answered, the QuestionnaireResponse's `source` too, and every resource is tagged.
    self_reported: bool = False
    #: How a self-reported screening reached Tandem: "portal" (the patient portal) or "link" (a questionnaire
    #: link); every EHR reader is told who answered and how (`answered_by`).
    answered_via: str | None = None
    #: The registration allows a caregiver's item-level answers on the child's EHR chart
    #: (`caregiver_note_item_level` under `[[issuer]]`); by default the child's chart gets who was screened, the
    #: result and the plan, and the answers stay in the registry for the care team.
    caregiver_item_level: bool = False
    #: Set by `for_ehr()`: this copy goes to the child's EHR chart without the caregiver's item-level answers.
    withhold_items: bool = False
    #: Who the patient is (name, date of birth, MRN) as the submitting launch knew them, and the submitting user's
    #: name: kept on the registry's safety Task, so every list can name the patient and who raised it later,
    #: also from a launch that may not read Patient or Practitioner.
    patient_label: PatientLabel | None = None
    author_name: str | None = None

    def resource_id(self, part: str) -> str:
        return resource_id(self.submission_id, part)

    @property
    def about(self) -> str | None:
        """'Caregiver's screen — Mother (Ana Diaz)' for a caregiver's answers; None for the patient's own."""
        return caregiver_screen(self.focus_label) if self.focus else None

    def for_ehr(self) -> Submission:
        """The submission as the EHR sees it: the caregiver named by the EHR's own RelatedPerson, and (unless the
        registration allows it) without the caregiver's item-level answers."""
        if not self.focus:
            return self
        return replace(self, focus=self.ehr_focus, withhold_items=not self.caregiver_item_level)

    @property
    def answered_by_parent(self) -> bool:
        """A parent answered (about themself, recorded on the child), not the patient."""
        return bool(self.focus) or (self.author or "").startswith("RelatedPerson/")

    @property
    def raised_by(self) -> str | None:
        """Who raised a safety follow-up, as a person reads it: the clinician's name, or how the patient answered."""
        if self.self_reported:
            who = "a parent" if self.answered_by_parent else "the patient"
            return f"{who}, {ANSWERED_VIA.get(self.answered_via or '', ANSWERED_VIA['portal'])}"
        return self.author_name

    @property
    def answered_by(self) -> str | None:
        """'Answered by the patient in the patient portal' for a self-reported screening; None otherwise."""
        if not self.self_reported:
            return None
        who = "the parent" if self.answered_by_parent else "the patient"
        how = ANSWERED_VIA.get(self.answered_via or "", ANSWERED_VIA["portal"])
        return f"Answered by {who} {how}."

    @property
    def identifier(self) -> dict[str, str]:
        return {"system": SUBMISSION_SYSTEM, "value": self.submission_id}

    def part_identifier(self, part: str) -> dict[str, str]:
        return {"system": SUBMISSION_SYSTEM, "value": f"{self.submission_id}#{part}"}


#: How a self-reported screening reached Tandem, as the EHR's readers are told.
ANSWERED_VIA = {"portal": "in the patient portal", "link": "by questionnaire link"}


def caregiver_screen(label: str | None) -> str:
    """How every reader is told a screen is a caregiver's, not the patient's own."""
    return f"Caregiver's screen — {label or 'caregiver'}"


#: Tandem's mark on results a patient or parent entered themself ("patient-reported" on the chart and worklist).
#: No EHR convention for patient-entered data is confirmed (../shared/reference/ehr-integration.md), so Tandem
#: uses its own tag.
PATIENT_REPORTED_TAG = {"system": "https://tandem.health/fhir/CodeSystem/report-source", "code": "patient-reported",
                        "display": "Reported by the patient or a parent"}  # fmt: skip


def resource_id(submission_id: str, part: str) -> str:
    """The registry id of one part (qr, total, item9, safety, note) of a submission."""
    return f"tandem-{submission_id}-{part}"[:64]


def _coding(answer: Answer) -> dict[str, str]:
    coding = {"system": answer.system, "code": answer.code}
    return {**coding, "display": answer.display} if answer.display else coding


def _loinc(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def questionnaire(instrument: Instrument) -> dict[str, Any]:
    """The instrument's SDC Questionnaire as published to the registry store (its file; no licensed wording)."""
    return copy.deepcopy(dict(instrument.questionnaire))


def _caregiver_ref(submission: Submission) -> dict[str, str]:
    reference = {"reference": str(submission.focus)}
    return {**reference, "display": submission.focus_label} if submission.focus_label else reference


def _answer_value(answer: Answer) -> dict[str, Any]:
    return {"valueInteger": answer.score} if answer.integer else {"valueCoding": _coding(answer)}


def questionnaire_response(submission: Submission) -> dict[str, Any]:
    instrument, result = submission.instrument, submission.result
    items: list[dict[str, Any]] = []
    for item in instrument.form_items:
        answer = submission.answers.get(item.link_id)
        if answer is None or item.link_id == TOTAL or submission.withhold_items:
            continue
        entry: dict[str, Any] = {"linkId": item.link_id, "answer": [_answer_value(answer)]}
        if item.text:
            entry["text"] = item.text
        items.append(entry)
    if result.total is not None and instrument.total_loinc and instrument.result_kind == "sum":
        items.append(
            {"linkId": "total", "text": instrument.total_display, "answer": [{"valueInteger": result.total}]}
        )
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": submission.resource_id("qr"),
        "meta": {"profile": [QR_PROFILE]},
        "identifier": submission.identifier,
        "questionnaire": instrument.canonical,
        "status": "completed" if not result.missing else "amended",
        "subject": {"reference": f"Patient/{submission.patient_id}"},
        "authored": submission.authored.isoformat(),
    }
    if items:
        resource["item"] = items
    if submission.focus:  # the caregiver answered about themself (healthysteps.md §5b)
        caregiver = _caregiver_ref(submission)
        resource["author"], resource["source"] = caregiver, caregiver
    elif submission.author:
        resource["author"] = {"reference": submission.author}
        if submission.self_reported:
            resource["source"] = {"reference": submission.author}
    if submission.self_reported:
        resource["meta"]["tag"] = [PATIENT_REPORTED_TAG]
    if submission.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{submission.encounter_id}"}
    if submission.mode in MEASUREMENT_MODES:
        resource["extension"] = [{"url": MODE_URL, "valueCoding": {"system": MODE_SYSTEM, "code": submission.mode,
                                                                  "display": MEASUREMENT_MODES[submission.mode]}}]  # fmt: skip
    return resource


def _observation(submission: Submission, part: str, code: dict[str, Any], value: dict[str, Any],
                 derived_from: str | None) -> dict[str, Any]:  # fmt: skip
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": submission.resource_id(part),
        "meta": {"profile": [SCREENING_PROFILE]},
        "identifier": [submission.part_identifier(part)],
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "survey", "display": "Survey"}]}],
        "code": code,
        "subject": {"reference": f"Patient/{submission.patient_id}"},
        "effectiveDateTime": submission.authored.isoformat(),
        "issued": submission.authored.isoformat(),
        **value,
    }
    if derived_from:
        observation["derivedFrom"] = [{"reference": derived_from}]
    if submission.focus:
        observation["focus"] = [_caregiver_ref(submission)]
        observation["performer"] = [_caregiver_ref(submission)]
    elif submission.author:
        observation["performer"] = [{"reference": submission.author}]
    if submission.self_reported:
        observation["meta"]["tag"] = [PATIENT_REPORTED_TAG]
    if submission.encounter_id:
        observation["encounter"] = {"reference": f"Encounter/{submission.encounter_id}"}
    if submission.mode in MEASUREMENT_MODES:
        observation["method"] = {"coding": [{"system": MODE_SYSTEM, "code": submission.mode,
                                             "display": MEASUREMENT_MODES[submission.mode]}],
                                 "text": MEASUREMENT_MODES[submission.mode]}  # fmt: skip
    return observation


def screening_observations(
    submission: Submission, questionnaire_response_ref: str | None
) -> list[dict[str, Any]]:
    """The total (or risk level) and, for the PHQ-9 family, item 9; `derivedFrom` the QuestionnaireResponse."""
    instrument, result = submission.instrument, submission.result
    observations = []
    system, code_value, display = instrument.result_coding
    code = {"coding": [{"system": system, "code": code_value, "display": display}], "text": display}
    value: dict[str, Any] | None = None
    if result.total is not None:
        value = {"valueInteger": result.total}
    elif result.risk_level is not None:
        value = {"valueCodeableConcept": {"text": result.risk_level}}
    elif result.decided_with_blanks and result.range_text:
        # A result settled despite blanks has no total: it is written as its verdict with the possible range, never
        # as a number a chart would plot.
        verdict = result.band or ("positive" if result.positive else "negative")
        value = {"valueCodeableConcept": {"text": f"{verdict}: total {result.range_text}"}}
    if value is not None:
        observation = _observation(submission, "total", code, value, questionnaire_response_ref)
        flag = result_flag(result)
        if flag is not None:
            observation["interpretation"] = [{"coding": [{"system": RESULT_FLAG_SYSTEM, "code": flag,
                                                          "display": RESULT_FLAGS[flag]}], "text": RESULT_FLAGS[flag]}]  # fmt: skip
        observations.append(observation)
    for link_id in instrument.safety_items:
        item = instrument.item(link_id)
        answer = submission.answers.get(link_id)
        if item is not None and answer is not None and item.loinc and not submission.withhold_items:
            observations.append(_observation(submission, "item9", _loinc(item.loinc, item.text),
                                             {"valueCodeableConcept": {"coding": [_coding(answer)],
                                                                       "text": answer.display}},
                                             questionnaire_response_ref))  # fmt: skip
    notes = [safety_line(submission)] if result.safety else []
    notes += [submission.answered_by] if submission.answered_by else []
    if notes and observations:
        # The safety line (and who answered) travel with the score, whichever way it is written back.
        observations[0]["note"] = [{"text": text} for text in notes]
    return observations


def safety_task(submission: Submission, due: datetime) -> dict[str, Any] | None:
    """A same-day, high-priority follow-up Task for a positive safety item; None when there is none."""
    if not submission.result.safety:
        return None
    reasons = "; ".join(flag.message for flag in submission.result.safety)
    if submission.focus:
        reasons = f"{submission.about}: {reasons}"
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": submission.resource_id("safety"),
        "identifier": [submission.part_identifier("safety")],
        "status": "requested",
        "intent": "order",
        "priority": "stat",
        "code": {
            "coding": [
                {
                    "system": "https://tandem.health/fhir/CodeSystem/task",
                    "code": "safety-follow-up",
                    "display": "Same-day safety follow-up",
                }
            ],
            "text": "Same-day safety follow-up",
        },  # fmt: skip
        "description": f"Safety alert from {submission.instrument.name}: {reasons}",
        "for": {"reference": f"Patient/{submission.patient_id}"},
        "focus": {"reference": f"QuestionnaireResponse/{submission.resource_id('qr')}"},
        "authoredOn": submission.authored.isoformat(),
        "restriction": {"period": {"start": submission.authored.isoformat(), "end": due.isoformat()}},
        "reasonCode": {"text": reasons},
    }
    if submission.author or submission.raised_by:
        task["requester"] = {
            **({"reference": submission.author} if submission.author else {}),
            **({"display": submission.raised_by} if submission.raised_by else {}),
        }
    summary = summary_extension(submission.patient_label)
    if summary:
        task["extension"] = [summary]
    if submission.encounter_id:
        task["encounter"] = {"reference": f"Encounter/{submission.encounter_id}"}
    if submission.focus:  # the follow-up is for the caregiver; it is worked from the child's record
        task["input"] = [{"type": {"text": "caregiver"}, "valueReference": _caregiver_ref(submission)}]
    return task


def safety_line(submission: Submission) -> str:
    """The alert as every reader sees it; a caregiver's is named as the caregiver's (on the child's EHR chart
    without the caregiver's answer, unless the registration allows item level)."""
    messages = " ".join(flag.message for flag in submission.result.safety)
    if submission.withhold_items:
        messages = "safety follow-up started (same-day follow-up with the caregiver by the care team)."
    return (
        f"SAFETY ALERT ({submission.about}): {messages}" if submission.focus else f"SAFETY ALERT: {messages}"
    )


def note_text(submission: Submission) -> str:
    """The readable clinical note: instrument, date, who answered, answers, total, band, and the safety line. A
    caregiver's screen on the child's chart says who was screened, the result and the plan, without item-level
    answers (`withhold_items`)."""
    instrument, result = submission.instrument, submission.result
    lines = []
    if result.safety:  # first, so no reader of the note (or of its preview) can miss it
        lines += [safety_line(submission), ""]
    lines += [f"{instrument.title}", f"Date: {submission.authored.strftime('%Y-%m-%d %H:%M %Z').strip()}", ""]
    if submission.focus:
        lines += [f"{submission.about}. The caregiver answered about themself at the child's visit; this is "
                  "not the child's own result.", ""]  # fmt: skip
    if submission.answered_by:
        lines += [submission.answered_by, ""]
    lines.append(f"Result: {result.interpretation}")
    if submission.withhold_items:
        lines += ["", f"Plan: {_caregiver_plan(submission)}", "",
                  "The caregiver's answers to each question are kept in the Tandem registry for the care team.",
                  "", f"Recorded with Tandem (submission {submission.submission_id})."]  # fmt: skip
        return "\n".join(lines)
    lines += [f"Note: {note}" for note in result.notes]
    lines += ["", "Answers:"]
    for number, item in enumerate(instrument.form_items, start=1):
        answer = submission.answers.get(item.link_id)
        if answer is None:
            shown = "not answered"
        elif answer.integer or not item.scored:
            shown = answer.display
        else:
            shown = f"{answer.display} ({answer.score})"
        lines.append(f"  {number}. {item.text} — {shown}")
    if result.safety:
        lines += ["", "Safety: same-day follow-up requested in the Tandem registry."]
    lines += ["", f"Recorded with Tandem (submission {submission.submission_id})."]
    return "\n".join(lines)


def _caregiver_plan(submission: Submission) -> str:
    """The plan a caregiver's screen leaves on the child's chart (no item-level answers)."""
    result = submission.result
    if result.safety:
        return "safety follow-up started: a same-day follow-up with the caregiver is open in the Tandem registry."
    if result.positive:
        return "positive screen: the care team follows up with the caregiver (Tandem registry)."
    if result.positive is None:
        return "the screen is incomplete: the care team reviews it in the Tandem registry."
    return "no follow-up needed from this screen."


def clinical_note(submission: Submission) -> dict[str, Any]:
    """A DocumentReference clinical note: what Epic and Oracle Health accept today."""
    text = note_text(submission)
    note: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": submission.resource_id("note"),
        "identifier": [submission.part_identifier("note")],
        "status": "current",
        "docStatus": "final",
        "type": _loinc("11506-3", "Progress note"),
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                        "code": "clinical-note",
                        "display": "Clinical Note",
                    }
                ]
            }
        ],  # fmt: skip
        "subject": {"reference": f"Patient/{submission.patient_id}"},
        "date": submission.authored.isoformat(),
        "description": (f"{submission.about}: " if submission.focus else "")
        + f"{submission.instrument.name} screening: {submission.result.interpretation}",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": f"{submission.instrument.name} screening",
                }
            }
        ],  # fmt: skip
    }
    if submission.author:
        note["author"] = [{"reference": submission.author}]
    if submission.encounter_id:
        note["context"] = {"encounter": [{"reference": f"Encounter/{submission.encounter_id}"}]}
    return note


def registry_transaction(submission: Submission, due: datetime,
                         caregiver: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """One transaction for the registry store. Ids derive from the submission id and every entry is a PUT
    (update-as-create), so replaying it never duplicates anything, also on stores that cannot search
    QuestionnaireResponse by identifier. A caregiver's screen carries the caregiver's RelatedPerson, so the focus
    resolves in the registry whether the caregiver came from the EHR or was recorded in Tandem."""
    if not submission.iss:
        raise ValueError("registry resources need the patient's EHR issuer")
    patient = PatientKey(submission.iss, submission.patient_id).reference()
    qr = {**questionnaire_response(submission), "subject": patient}
    observations = [{**o, "subject": patient}
                    for o in screening_observations(submission, f"QuestionnaireResponse/{qr['id']}")]  # fmt: skip
    resources = [*([dict(caregiver)] if caregiver else []), qr, *observations]
    task = safety_task(submission, due)
    if task:  # the Task names the patient (display), so a list can show who it is without reading Patient
        name = submission.patient_label.name if submission.patient_label else None
        resources.append({**task, "for": PatientKey(submission.iss, submission.patient_id).reference(name)})
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],  # fmt: skip
    }

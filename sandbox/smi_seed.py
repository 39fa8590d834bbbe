"""A community mental health centre's SMI caseload for the demo: people with schizophrenia, bipolar disorder and
severe recurrent depression, on antipsychotics or not, with vitals and labs over time in the EHR (improving,
worsening, overdue), PRAPARE answers that change (housing lost and regained, a job lost, a jail stay), and a mania
episode. The EHR side (`add_smi_patients`) goes into the cohort; the registry side (`seed_smi`) is written through
Tandem's own services. Launcher labels come from the computed worklist rows, never asserted."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.recommendations import Recommendation, Review
from fhir_mappings.registry.resources import Enrolment, Member
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.smi.social import SOCIAL, social_observation
from smartapp.caseload.ehr_refresh import backend_client
from smartapp.outgoing import validated
from smartapp.smi.medical import refresh_medical
from smartapp.smi.page import medical_inputs

from .data import ICD10, LOINC, SNOMED, Cohort, _coding
from .healthysteps_seed import record_demo_screen

log = logging.getLogger(__name__)

CARE_MANAGER = Member("Practitioner/pr-cm-3", "Rosa Delgado")
CONSULTANT = Member("Practitioner/pr-psy-1", "Irene Castellanos")
PCP = Member("Practitioner/pr-pcp-2", "Marcus Oyelaran")
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class SmiPerson:
    pid: str
    given: str
    family: str
    gender: str
    age_years: int
    #: (ICD-10-CM, SNOMED CT, display) of the SMI diagnosis.
    diagnosis: tuple[str, str, str]
    enrolled_days_ago: int
    #: (medication text, started days ago, active).
    medications: tuple[tuple[str, int, bool], ...] = ()
    #: kind → [(days ago, value)]: weight (kg), bmi, hba1c (%), ldl (mg/dL), bp as (systolic, diastolic).
    vitals: dict[str, tuple[tuple[int, Any], ...]] = field(default_factory=dict)
    smoking: str | None = None  # SNOMED code of the status
    #: instrument key → [(days ago, total)] (WHO-5 raw 0–25; BPRS 18–126).
    scores: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    #: [(days ago, {domain: answer code})].
    social: tuple[tuple[int, dict[str, str]], ...] = ()


PEOPLE = (
    # Schizophrenia on olanzapine for 20 weeks: symptoms better, weight up 8 %, a smoker, housing lost and regained.
    SmiPerson(
        "smi-0001",
        "Marcus",
        "Reyes",
        "male",
        34,
        ("F20.0", "58214004", "Paranoid schizophrenia"),
        150,
        medications=(("olanzapine 10 MG Oral Tablet", 140, True),),
        vitals={
            "weight": ((145, 82.0), (112, 84.1), (84, 86.0), (56, 87.2), (10, 88.6)),
            "bmi": ((145, 26.8), (10, 28.9)),
            "bp": ((145, (128, 82)), (56, (126, 80)), (10, (130, 84))),
            "hba1c": ((145, 5.6), (56, 5.9)),
            "ldl": ((145, 118), (56, 131)),
        },
        smoking="449868002",
        scores={
            "phq9": ((150, 16), (90, 12), (30, 9), (5, 7)),
            "bprs": ((148, 52), (60, 44), (6, 38)),
            "who5": ((150, 8), (30, 12), (5, 14)),
        },
        social=(
            (152, {"housing": "housed", "employment": "not-seeking", "justice": "no", "connection": "1-2"}),
            (60, {"housing": "unhoused", "housing-worry": "yes"}),
            (7, {"housing": "housed", "employment": "part-time", "connection": "3-5"}),
        ),
    ),
    # Bipolar I on quetiapine: a mania episode now (ASRM 9), BP and HbA1c out of target, a job lost, social due.
    SmiPerson(
        "smi-0002",
        "Dolores",
        "Whitaker",
        "female",
        47,
        ("F31.2", "13746004", "Bipolar I disorder, manic, severe"),
        280,
        medications=(("quetiapine fumarate 200 MG Oral Tablet", 270, True),),
        vitals={
            "weight": ((268, 71.0), (240, 71.5), (212, 72.0), (180, 71.8), (90, 72.4)),
            "bmi": ((268, 27.1), (90, 27.6)),
            "bp": ((268, (138, 88)), (90, (144, 92)), (12, (148, 95))),
            "hba1c": ((268, 7.6), (180, 8.1), (20, 8.6)),
            "ldl": ((268, 104), (180, 110)),
        },
        smoking="8517006",
        scores={
            "phq9": ((280, 11), (120, 6), (30, 4)),
            "asrm": ((270, 2), (90, 3), (4, 9)),
            "who5": ((280, 11), (30, 16)),
        },
        social=(
            (281, {"housing": "housed", "employment": "part-time", "justice": "no", "connection": "3-5"}),
            (100, {"employment": "seeking", "connection": "3-5"}),
        ),
    ),
    # Schizoaffective on aripiprazole for 2 years: no HbA1c or LDL in over a year, weighing overdue, a jail stay.
    SmiPerson(
        "smi-0003",
        "Terrence",
        "Okafor",
        "male",
        29,
        ("F25.0", "69322001", "Schizoaffective disorder, bipolar type"),
        420,
        medications=(
            ("aripiprazole 15 MG Oral Tablet", 730, True),
            ("risperidone 2 MG Oral Tablet", 900, False),
        ),
        vitals={
            "weight": ((400, 90.0), (300, 91.0), (200, 91.5), (150, 92.0)),
            "bp": ((400, (124, 78)), (150, (122, 76))),
            "hba1c": ((430, 5.4),),
            "ldl": ((430, 98),),
        },
        smoking="266919005",
        scores={
            "phq9": ((420, 14), (200, 12), (40, 13)),
            "bprs": ((415, 48), (200, 47), (40, 46)),
            "dla20": ((410, 38), (40, 41)),
        },
        social=(
            (421, {"housing": "housed", "employment": "not-seeking", "justice": "no", "connection": "1-2"}),
            (35, {"housing": "housed", "justice": "yes", "connection": "lt-1"}),
        ),
    ),
    # Severe recurrent depression, no antipsychotic: responding, well-being up, seeing people again.
    SmiPerson(
        "smi-0004",
        "Grace",
        "Lindholm",
        "female",
        56,
        ("F33.2", "", "Major depressive disorder, recurrent severe without psychotic features"),
        120,
        vitals={
            "weight": ((118, 64.0), (20, 63.5)),
            "bp": ((118, (118, 76)), (20, (116, 74))),
            "hba1c": ((118, 5.3),),
            "ldl": ((118, 96),),
        },
        smoking="266919005",
        scores={
            "phq9": ((120, 21), (90, 15), (56, 10), (28, 7), (3, 6)),
            "who5": ((120, 6), (56, 10), (3, 15)),
        },
        social=(
            (121, {"housing": "housed", "employment": "seeking", "justice": "no", "connection": "lt-1"}),
            (10, {"employment": "full-time", "connection": "3-5"}),
        ),
    ),
    # Schizophrenia, new this month: risperidone started 9 days ago, baseline labs done, the 4-week weighing ahead.
    SmiPerson(
        "smi-0005",
        "Samuel",
        "Bright",
        "male",
        22,
        ("F20.9", "58214004", "Schizophrenia, unspecified"),
        12,
        medications=(("risperidone 1 MG Oral Tablet", 9, True),),
        vitals={
            "weight": ((10, 70.5),),
            "bmi": ((10, 22.4),),
            "bp": ((10, (120, 78)),),
            "hba1c": ((10, 5.2),),
            "ldl": ((10, 92),),
        },
        smoking="449868002",
        scores={"phq9": ((12, 12),), "bprs": ((11, 58),)},
        social=(
            (11, {"housing": "housed", "employment": "in-school", "justice": "no", "connection": "3-5"}),
        ),
    ),
)
CODES = {"weight": ("29463-7", "Body weight", "kg"), "bmi": ("39156-5", "Body mass index", "kg/m2"),
         "hba1c": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%"),
         "ldl": ("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL")}  # fmt: skip


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def add_smi_patients(cohort: Cohort, today: date) -> None:
    """The SMI patients' Patients, diagnoses, orders, vitals, labs and today's encounters in the EHR; they join the
    EHR's behavioral-health Group (the worker's Bulk Data export)."""
    group = next((g for g in cohort.of_type("Group")), None)
    for p in PEOPLE:
        if group is not None:
            group.setdefault("member", []).append({"entity": {"reference": f"Patient/{p.pid}"}})
        ref = {"reference": f"Patient/{p.pid}"}
        cohort.add({
            "resourceType": "Patient", "id": p.pid, "active": True,
            "identifier": [{"type": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")]},
                            "system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN7{p.pid[-4:]}"}],
            "name": [{"use": "official", "family": p.family, "given": [p.given]}], "gender": p.gender,
            "birthDate": (today - timedelta(days=365 * p.age_years + 40)).isoformat(),
            "generalPractitioner": [{"reference": PCP.reference}],
        })  # fmt: skip
        cohort.add({
            "resourceType": "Encounter", "id": f"{p.pid}-enc", "status": "in-progress",
            "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
            "type": [{"text": "Behavioral health visit"}], "subject": ref, "period": {"start": today.isoformat()},
        })  # fmt: skip
        icd, snomed, display = p.diagnosis
        codings = [_coding(ICD10, icd, display)] + ([_coding(SNOMED, snomed, display)] if snomed else [])
        cohort.add({
            "resourceType": "Condition", "id": f"{p.pid}-cond-smi",
            "clinicalStatus": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active")]},
            "verificationStatus": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed")]},
            "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")]}],
            "code": {"coding": codings, "text": display}, "subject": ref,
            "onsetDateTime": (today - timedelta(days=p.enrolled_days_ago + 400)).isoformat(),
        })  # fmt: skip
        for n, (text, started, active) in enumerate(p.medications):
            cohort.add({
                "resourceType": "MedicationRequest", "id": f"{p.pid}-med-{n}", "status": "active" if active else "stopped",
                "intent": "order", "medicationCodeableConcept": {"text": text}, "subject": ref,
                "authoredOn": (today - timedelta(days=started)).isoformat(),
            })  # fmt: skip
        for kind, readings in p.vitals.items():
            for days, value in readings:
                day = (today - timedelta(days=days)).isoformat()
                oid = f"{p.pid}-{kind}-{days}"
                if kind == "bp":
                    cohort.add({
                        "resourceType": "Observation", "id": oid, "status": "final",
                        "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")]}],
                        "code": {"coding": [_coding(LOINC, "85354-9", "Blood pressure panel")]}, "subject": ref,
                        "effectiveDateTime": day,
                        "component": [
                            {"code": {"coding": [_coding(LOINC, "8480-6", "Systolic blood pressure")]},
                             "valueQuantity": _quantity(value[0], "mm[Hg]")},
                            {"code": {"coding": [_coding(LOINC, "8462-4", "Diastolic blood pressure")]},
                             "valueQuantity": _quantity(value[1], "mm[Hg]")}],
                    })  # fmt: skip
                    continue
                code, display, unit = CODES[kind]
                category = "laboratory" if kind in ("hba1c", "ldl") else "vital-signs"
                cohort.add({
                    "resourceType": "Observation", "id": oid, "status": "final",
                    "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", category)]}],
                    "code": {"coding": [_coding(LOINC, code, display)]}, "subject": ref, "effectiveDateTime": day,
                    "valueQuantity": _quantity(value, unit),
                })  # fmt: skip
        if p.smoking:
            cohort.add({
                "resourceType": "Observation", "id": f"{p.pid}-smoking", "status": "final",
                "code": {"coding": [_coding(LOINC, "72166-2", "Tobacco smoking status")]}, "subject": ref,
                "effectiveDateTime": (today - timedelta(days=30)).isoformat(),
                "valueCodeableConcept": {"coding": [_coding(SNOMED, p.smoking)]},
            })  # fmt: skip


def _spread(link_ids: list[str], total: int, low: int, high: int) -> dict[str, int]:
    """Item scores from `low` to `high` adding up to `total` (the first items take the most)."""
    left = total - low * len(link_ids)
    scores = {}
    for link_id in link_ids:
        extra = min(left, high - low)
        scores[link_id] = low + extra
        left -= extra
    return scores


def _screen(services: Any, iss: str, person: SmiPerson, born: date, key: str, when: date, total: int) -> None:
    instrument = services.catalogue.get(key)
    if instrument.enters_scores:
        record_demo_screen(services, iss, person.pid, born, key, when, total=total, author=CARE_MANAGER)
        return
    items = [i for i in instrument.form_items if i.kind == "choice" and i.scored]
    low, high = min(a.score for a in items[0].answers), max(a.score for a in items[0].answers)
    if (
        key == "phq9"
    ):  # never a positive item 9 in the demo's SMI histories (the safety flow has its own demo)
        scores = {
            **_spread([i.link_id for i in items if i.link_id != "phq9-9"], total, low, high),
            "phq9-9": 0,
        }
    else:
        scores = _spread([i.link_id for i in items], total, low, high)
    record_demo_screen(services, iss, person.pid, born, key, when, item_scores=scores, author=CARE_MANAGER)


#: The consultant's past reviews of the SMI patients.
REVIEWS = {
    "smi-0001": Review((Recommendation("dose-change", "olanzapine 10 mg: consider switching to aripiprazole "
                                       "(weight gain)"),
                        Recommendation("other", "PCP: repeat lipids and HbA1c")), "BPRS in 8 weeks"),
    "smi-0002": Review((Recommendation("continue", "lithium at the current dose; level in 3 months"),), "ASRM in 4 weeks"),
    "smi-0003": Review((Recommendation("other", "PCP: glucose or HbA1c and lipids"),), "BPRS in 8 weeks"),
}  # fmt: skip


def seed_smi(cohort: Cohort, services: Any, iss: str, *, today: date) -> dict[str, str]:
    """Enrol the SMI patients in `cocm-smi` with their symptom and social histories, contacts and a review; read
    their medical data from the EHR as the worker does; return launcher labels from the computed rows."""
    caseload, registry = services.caseload, services.registry
    patients = {p["id"]: p for p in cohort.of_type("Patient")}
    for n, person in enumerate(PEOPLE):
        patient = patients[person.pid]
        born = date.fromisoformat(patient["birthDate"])
        start = today - timedelta(days=person.enrolled_days_ago)
        enrolment = caseload.enrol(Enrolment(
            id=f"demo-{person.pid}", iss=iss, patient_id=person.pid, patient_name=f"{person.given} {person.family}",
            program="cocm-smi", phase="active-treatment", start=start,
            team={"care-manager": CARE_MANAGER, "psychiatric-consultant": CONSULTANT, "pcp": PCP},
            consent_given=True, consent_date=start, consent_method="verbal", birth_date=born,
            mrn=f"MRN7{person.pid[-4:]}",
        ))  # fmt: skip
        for key, history in person.scores.items():
            for days, total in history:
                _screen(services, iss, person, born, key, today - timedelta(days=days), total)
        key_ = PatientKey(iss, person.pid)
        for days, answers in person.social:
            day = today - timedelta(days=days)
            recorded = datetime.combine(day, time(15, 0), UTC)
            for domain_key, code in answers.items():
                domain = SOCIAL.domain(domain_key)
                answer = domain.answer(code) if domain else None
                if domain is None or answer is None:
                    raise ValueError(f"demo social answer {domain_key}={code} is not in social.json")
                registry.update(validated(social_observation(key_, domain, answer, day, recorded,
                                                             CARE_MANAGER.reference)))  # fmt: skip
        day = start + timedelta(days=5)
        while day <= today - timedelta(days=3):
            caseload.log_contact(enrolment, day, 30 if n % 2 else 25, "in-person" if day.day % 2 else "phone",
                                 "care-manager", CARE_MANAGER, "Symptom check, medication and housing follow-up",
                                 f"contact-demo-{person.pid}-{day}")  # fmt: skip
            day += timedelta(days=14)
        # The consultant has reviewed the patients past their first weeks but Grace (her first review is overdue);
        # Samuel is new this month (issue 28: flags that single patients out).
        if person.pid in REVIEWS:
            # Three weeks ago: since then the mania episode, the labs and the life events bring them back.
            reviewed = datetime.combine(today - timedelta(days=21), time(15, 0), UTC)
            caseload.record_review(enrolment, REVIEWS[person.pid], CONSULTANT, at=reviewed)
    caseload.invalidate()
    # The EHR's medical data reaches the worklist as in production: read with backend services, in batches.
    reg = services.registrations.get(iss)
    if reg is not None and reg.backend is not None:
        read = refresh_medical(backend_client(services, reg), services.ehr_medical, iss, [p.pid for p in PEOPLE],
                               per_search=reg.backend.patients_per_search)  # fmt: skip
        log.info("demo SMI: medical data of %d patients read in %d searches", read.updated, read.searches)
    data = caseload.load(use_cache=False).for_issuer(iss)
    rows = build_rows([e for e in data.enrolments if e.program == "cocm-smi"], data.contacts, data.tasks,
                      data.scores, today, medical=medical_inputs(services.ehr_medical, iss), social=data.social)  # fmt: skip
    labels = {}
    for row in rows:
        words = {"mania": "mania screen positive", "medical": "medical flags", "social": "social flags",
                 "not-improving": "not improving", "new": "new", "first-review-overdue": "first review overdue"}  # fmt: skip
        labels[row.enrolment.patient_id] = " · ".join(
            ["CoCM SMI", *(words[f] for f in row.flags if f in words)][:4]
        )
    log.info("demo SMI: %d patients enrolled", len(rows))
    return labels

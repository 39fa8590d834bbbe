"""Deterministic synthetic cohorts for the sandbox EHR (seeded; no real person, no I/O)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
SURVEY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]
}
VITALS = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
    ]
}
LAB = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]
}

PHQ9_TOTAL, PHQ9_TEEN_TOTAL, PHQ9_ITEM9 = "44261-6", "89204-2", "44260-8"
GAD7_TOTAL, EPDS_TOTAL = "70274-6", "99046-5"

CONDITIONS = {
    "depression": ("F32.1", "Major depressive disorder, single episode, moderate", "370143000"),
    "anxiety": ("F41.1", "Generalized anxiety disorder", "21897009"),
    "bipolar": ("F31.9", "Bipolar disorder, unspecified", "13746004"),
    "schizophrenia": ("F20.9", "Schizophrenia, unspecified", "58214004"),
}

GIVEN_F = ["Ana", "Maya", "Grace", "Lucia", "Aisha", "Mei", "Sofia", "Nora", "Elena", "Priya", "Rosa", "Hana"]
GIVEN_M = [
    "Luis",
    "Omar",
    "James",
    "Kenji",
    "Mateo",
    "David",
    "Samuel",
    "Arjun",
    "Theo",
    "Malik",
    "Ivan",
    "Noah",
]
FAMILY = ["Rivera", "Nguyen", "Okafor", "Smith", "Kowalski", "Haddad", "Tanaka", "Garcia", "Johnson", "Patel",
          "Novak", "Mensah", "Cohen", "Silva", "Larsen", "Ahmed", "Brooks", "Moreau", "Kim", "Adeyemi"]  # fmt: skip

PRACTITIONERS = [
    ("pr-pcp-1", "Dana", "Whitfield", "Primary care physician"),
    ("pr-pcp-2", "Marcus", "Oyelaran", "Primary care physician"),
    ("pr-cm-1", "Teresa", "Lindqvist", "Behavioral health care manager"),
    ("pr-cm-2", "Jamal", "Ortega", "Behavioral health care manager"),
    ("pr-psy-1", "Irene", "Castellanos", "Psychiatric consultant"),
    ("pr-ped-1", "Hugo", "Barros", "Pediatrician"),
    ("pr-hs-1", "Amara", "Diallo", "HealthySteps specialist"),
    ("pr-cm-3", "Rosa", "Delgado", "Behavioral health care manager (serious mental illness)"),
]


@dataclass
class Cohort:
    resources: list[dict[str, Any]] = field(default_factory=list)

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        self.resources.append(resource)
        return resource

    def transaction_bundles(self, size: int = 200) -> Iterator[dict[str, Any]]:
        """PUT (update-as-create) transactions: loading twice changes nothing."""
        for start in range(0, len(self.resources), size):
            yield {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                    for r in self.resources[start : start + size]
                ],
            }

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == resource_type]


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _score_observation(oid: str, patient: str, code: str, display: str, value: int, when: date,
                       focus: str | None = None) -> dict[str, Any]:  # fmt: skip
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [SURVEY],
        "code": {"coding": [_coding(LOINC, code, display)], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when.isoformat(),
        "valueInteger": value,
    }
    if focus:
        observation["focus"] = [{"reference": focus}]
    return observation


def _trajectory(rng: random.Random, kind: str, visits: int, top: int) -> list[int]:
    start = {"improving": rng.randint(14, 21), "not-improving": rng.randint(13, 19),
             "remission": rng.randint(11, 17), "new": rng.randint(10, 20)}[kind]  # fmt: skip
    scores = []
    for visit in range(visits):
        if kind == "improving":
            value = start - visit * rng.uniform(1.5, 3.0)
        elif kind == "remission":
            value = start - visit * rng.uniform(3.0, 4.5)
        elif kind == "not-improving":
            value = start - visit * rng.uniform(-0.5, 0.8)
        else:
            value = start
        scores.append(max(0, min(top, round(value))))
    if kind == "remission":
        scores[-1] = min(scores[-1], 4)
    return scores


BH_GROUP_ID = "bh-registry"


def generate(size: int = 50, seed: int = 7, as_of: date | None = None) -> Cohort:
    """A cohort of `size` patients (50 by default, up to 5,000): adults, teens, children 0–3 with a caregiver,
    and adults with serious mental illness, with screening histories, conditions and practitioners."""
    if not 1 <= size <= 5000:
        raise ValueError("size must be between 1 and 5,000")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    today = as_of or date.today()
    cohort = Cohort()
    for pid, given, family, role in PRACTITIONERS:
        cohort.add({
            "resourceType": "Practitioner", "id": pid, "active": True,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "qualification": [{"code": {"text": role}}],
        })  # fmt: skip

    # 60% adults, 10% teens, 15% children 0–3 with a caregiver, 15% adults with serious mental illness.
    kinds = ["adult", "child", "adult", "smi", "adult", "teen", "adult", "child", "adult", "smi",
             "adult", "adult", "child", "adult", "smi", "adult", "teen", "adult", "adult", "adult"]  # fmt: skip
    item9_done = False
    for index in range(size):
        kind = kinds[index % len(kinds)]
        pid = f"pt-{index + 1:04d}"
        female = rng.random() < 0.55 or kind == "child" and rng.random() < 0.5
        given = rng.choice(GIVEN_F if female else GIVEN_M)
        family = rng.choice(FAMILY)
        age_days = {
            "adult": rng.randint(19 * 365, 80 * 365), "teen": rng.randint(12 * 365, 17 * 365),
            "child": rng.randint(20, 3 * 365), "smi": rng.randint(20 * 365, 65 * 365),
        }[kind]  # fmt: skip
        cohort.add({
            "resourceType": "Patient", "id": pid, "active": True,
            "identifier": [{"type": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")]},
                            "system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN{100000 + index}"}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": "female" if female else "male",
            "birthDate": (today - timedelta(days=age_days)).isoformat(),
            "generalPractitioner": [{"reference": f"Practitioner/{'pr-ped-1' if kind == 'child' else rng.choice(['pr-pcp-1', 'pr-pcp-2'])}"}],
        })  # fmt: skip
        cohort.add({
            "resourceType": "Encounter", "id": f"{pid}-enc", "status": "in-progress",
            "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
            "type": [{"text": "Office visit"}],
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": today.isoformat()},
        })  # fmt: skip
        if kind in ("adult", "teen"):
            _depression_history(cohort, rng, pid, kind, today, with_item9=not item9_done)
            item9_done = True
        elif kind == "child":
            _dyad(cohort, rng, pid, family, today)
        else:
            _smi(cohort, rng, pid, today)
    # The EHR-side registry Group a health system's IT sets up for backend services (Bulk Data `$export`).
    cohort.add({
        "resourceType": "Group", "id": BH_GROUP_ID, "type": "person", "actual": True,
        "name": "Behavioral health registry",
        "member": [{"entity": {"reference": f"Patient/{p['id']}"}} for p in cohort.of_type("Patient")],
    })  # fmt: skip
    return cohort


def _condition(cohort: Cohort, pid: str, key: str, onset: date, active: bool = True) -> None:
    icd, display, snomed = CONDITIONS[key]
    status = "active" if active else "resolved"
    cohort.add({
        "resourceType": "Condition", "id": f"{pid}-cond-{key}",
        "clinicalStatus": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-clinical", status)]},
        "verificationStatus": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed")]},
        "category": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")]}],
        "code": {"coding": [_coding(ICD10, icd, display), _coding(SNOMED, snomed, display)], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset.isoformat(),
    })  # fmt: skip


def _depression_history(cohort: Cohort, rng: random.Random, pid: str, kind: str, today: date, *, with_item9: bool
                        ) -> None:  # fmt: skip
    trajectory = rng.choice(["improving", "not-improving", "remission", "new"])
    visits = 1 if trajectory == "new" else rng.randint(3, 7)
    start = today - timedelta(weeks=2 * visits + rng.randint(0, 6))
    total_code = PHQ9_TEEN_TOTAL if kind == "teen" else PHQ9_TOTAL
    display = "PHQ-9 modified for teens total score" if kind == "teen" else "PHQ-9 total score"
    for visit, score in enumerate(_trajectory(rng, trajectory, visits, 27)):
        when = start + timedelta(weeks=2 * visit)
        cohort.add(_score_observation(f"{pid}-phq9-{visit + 1}", pid, total_code, display, score, when))
    if with_item9:
        cohort.add(_score_observation(f"{pid}-phq9-item9", pid, PHQ9_ITEM9,
                                      "Thoughts that you would be better off dead, or of hurting yourself", 2,
                                      start + timedelta(weeks=2 * (visits - 1))))  # fmt: skip
    if kind == "adult" and rng.random() < 0.6:
        for visit, score in enumerate(_trajectory(rng, trajectory, visits, 21)):
            cohort.add(_score_observation(f"{pid}-gad7-{visit + 1}", pid, GAD7_TOTAL, "GAD-7 total score", score,
                                          start + timedelta(weeks=2 * visit)))  # fmt: skip
        _condition(cohort, pid, "anxiety", start - timedelta(days=30))
    _condition(cohort, pid, "depression", start - timedelta(days=14), active=trajectory != "remission")
    if kind == "adult" and rng.random() < 0.08:
        _condition(cohort, pid, "bipolar", start - timedelta(days=400))


def _dyad(cohort: Cohort, rng: random.Random, child: str, family: str, today: date) -> None:
    caregiver = f"{child}-caregiver"
    cohort.add({
        "resourceType": "RelatedPerson", "id": caregiver, "active": True, "patient": {"reference": f"Patient/{child}"},
        "relationship": [{"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "MTH", "mother")]}],
        "name": [{"use": "official", "family": family, "given": [rng.choice(GIVEN_F)]}],
        "gender": "female",
    })  # fmt: skip
    born = date.fromisoformat(
        str(next(p for p in cohort.of_type("Patient") if p["id"] == child)["birthDate"])
    )
    for visit, months in enumerate(m for m in (1, 2, 4, 6) if born + timedelta(days=30 * m) <= today):
        score = max(0, min(30, rng.randint(3, 16) - visit * rng.randint(0, 3)))
        cohort.add(_score_observation(f"{child}-epds-{visit + 1}", child, EPDS_TOTAL,
                                      "Edinburgh Postnatal Depression Scale total score", score,
                                      born + timedelta(days=30 * months), focus=f"RelatedPerson/{caregiver}"))  # fmt: skip


def _measurement(oid: str, pid: str, when: date, category: dict[str, Any], code: str, display: str,
                 quantity: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {
        "resourceType": "Observation", "id": oid, "status": "final", "category": [category],
        "code": {"coding": [_coding(LOINC, code, display)]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when.isoformat(),
        "valueQuantity": {**quantity, "system": "http://unitsofmeasure.org"},
    }  # fmt: skip


def _smi(cohort: Cohort, rng: random.Random, pid: str, today: date) -> None:
    _condition(
        cohort, pid, rng.choice(["schizophrenia", "bipolar"]), today - timedelta(days=rng.randint(400, 4000))
    )
    for visit in range(rng.randint(2, 4)):
        when = today - timedelta(days=90 * visit + rng.randint(0, 20))
        cohort.add(_measurement(f"{pid}-bmi-{visit + 1}", pid, when, VITALS, "39156-5", "Body mass index (BMI) [Ratio]",
                                {"value": round(rng.uniform(22, 38), 1), "unit": "kg/m2", "code": "kg/m2"}))  # fmt: skip
        cohort.add(_measurement(f"{pid}-a1c-{visit + 1}", pid, when, LAB, "4548-4",
                                "Hemoglobin A1c/Hemoglobin.total in Blood",
                                {"value": round(rng.uniform(5.1, 9.5), 1), "unit": "%", "code": "%"}))  # fmt: skip
        cohort.add({
            "resourceType": "Observation", "id": f"{pid}-bp-{visit + 1}", "status": "final", "category": [VITALS],
            "code": {"coding": [_coding(LOINC, "85354-9", "Blood pressure panel")]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when.isoformat(),
            "component": [
                {"code": {"coding": [_coding(LOINC, "8480-6", "Systolic blood pressure")]},
                 "valueQuantity": {"value": rng.randint(108, 162), "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [_coding(LOINC, "8462-4", "Diastolic blood pressure")]},
                 "valueQuantity": {"value": rng.randint(64, 98), "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            ],
        })  # fmt: skip

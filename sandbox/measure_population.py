"""A synthetic population for the quality measures (seeded, deterministic): patients with visits, diagnoses,
screenings, PHQ-9 histories and follow-ups, shaped so every population of CMS2 and CMS159 is non-trivial
(screened negative, positive with and without follow-up, declined, bipolar; indexed, remitted, responded, relapsed,
lost to follow-up, died, excluded). Written as NDJSON files by type (what a Bulk Data export gives), or loaded into
the sandbox EHR."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
GIVEN = ("Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jon", "Kemal", "Lena", "Mateo",
         "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tess")  # fmt: skip
FAMILY = ("Alvarez", "Brennan", "Chen", "Diallo", "Eriksen", "Fofana", "Gupta", "Horvat", "Ito", "Jansen", "Kowal",
          "Lindqvist", "Moreau", "Nakamura", "Okoro", "Petrov", "Quispe", "Rahman", "Silva", "Tanaka")  # fmt: skip
TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "ServiceRequest",
    "MedicationRequest",
    "Procedure",
)


def _at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), UTC).isoformat()


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


#: The sandbox EHR's local code for a delivery (sandbox/site_valuesets.json puts it in the delivery value set).
DELIVERY_CODE = ("https://sandbox.tandem.health/CodeSystem/local", "DELIVERY")
CLINICS = ("Eastside Family Medicine", "Riverside Health Center", "North Valley Clinic")


#: Every synthetic patient's id starts so (the demo's registry leaves them to the EHR).
POPULATION_PREFIX = "mp-"


def person(n: int, year: int, rng: random.Random) -> list[dict[str, Any]]:
    """One patient's record for measurement year `year`: their own mix of screening and depression care, at their
    clinic."""
    pid = f"{POPULATION_PREFIX}{n:06d}"
    clinic = {"reference": f"Organization/clinic-{n % len(CLINICS)}", "display": CLINICS[n % len(CLINICS)]}
    age = rng.choice((11, 13, 15, 16, 17, 19, 25, 34, 41, 52, 60, 67, 74, 83))
    born = date(year - age, rng.randint(1, 12), rng.randint(1, 28))
    out: list[dict[str, Any]] = []
    deceased = rng.random() < 0.02
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "birthDate": born.isoformat(),
                               "gender": rng.choice(("female", "male")),
                               "name": [{"use": "official", "family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}]}  # fmt: skip
    if deceased:
        patient["deceasedDateTime"] = _at(date(year, rng.randint(1, 12), rng.randint(1, 28)), 12)
    out.append(patient)
    k = 0

    def rid(kind: str) -> str:
        nonlocal k
        k += 1
        return f"{pid}-{kind}{k}"

    # CMS2: a screening visit this year, most screened, some positive with or without follow-up, some declined.
    if rng.random() < 0.85:
        visit_day = date(year, rng.randint(1, 12), rng.randint(1, 28))
        eid = rid("e")
        out.append({"resourceType": "Encounter", "id": eid, "status": "finished", "subject": _ref(pid), "serviceProvider": clinic,
                    "type": [{"coding": [{"system": SCT, "code": rng.choice(("10197000", "185317003"))}]}],
                    "period": {"start": _at(visit_day, 9), "end": _at(visit_day, 9, 20)}})  # fmt: skip
        code = "73831-0" if age < 18 else "73832-8"
        roll = rng.random()
        if roll < 0.08:
            out.append({"resourceType": "Observation", "id": rid("o"), "status": "cancelled", "subject": _ref(pid),
                        "code": {"coding": [{"system": LOINC, "code": code}]}, "issued": _at(visit_day, 9, 10),
                        "extension": [{"url": "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason",
                                       "valueCodeableConcept": {"coding": [{"system": SCT, "code": "720834000"}]}}]})  # fmt: skip
        elif roll < 0.9:
            positive = rng.random() < 0.3
            screened = visit_day - timedelta(days=rng.choice((0, 0, 0, 3, 10, 20)))
            out.append({"resourceType": "Observation", "id": rid("o"), "status": "final", "subject": _ref(pid),
                        "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": _at(screened, 9, 5),
                        "valueCodeableConcept": {"coding": [{"system": SCT, "code": "428181000124104" if positive
                                                             else "428171000124102"}]}})  # fmt: skip
            # The instrument's total beside the finding (what DSF-E-style screening reads).
            out.append(_phq(rid("o"), pid, screened, rng.randint(10, 22) if positive else rng.randint(0, 9),
                            minute=6))  # fmt: skip
            if positive and rng.random() < 0.5:
                follow = visit_day + timedelta(days=rng.choice((3, 10, 20, 45)))
                out.append({"resourceType": "Encounter", "id": rid("e"), "status": "finished", "subject": _ref(pid), "serviceProvider": clinic,
                            "type": [{"coding": [{"system": CPT, "code": rng.choice(("90834", "99492"))}]}],
                            "period": {"start": _at(follow, 14), "end": _at(follow, 14, 45)}})  # fmt: skip
            if positive and rng.random() < 0.7:
                when = visit_day + timedelta(days=rng.choice((0, 1, 2, 2, 5)))
                if rng.random() < 0.5:
                    out.append({"resourceType": "ServiceRequest", "id": rid("s"), "status": "active", "intent": "order",
                                "subject": _ref(pid), "code": {"coding": [{"system": SCT, "code": "183524004"}]},
                                "authoredOn": when.isoformat()})  # fmt: skip
                else:
                    out.append({"resourceType": "MedicationRequest", "id": rid("m"), "status": "active",
                                "intent": "order", "subject": _ref(pid), "authoredOn": when.isoformat(),
                                "medicationCodeableConcept": {"coding": [{"system": RX, "code": "1000048"}]},
                                # CMS2 counts an order whose medicationRequestPeriod() is known (a supply).
                                "dispenseRequest": {"expectedSupplyDuration": {
                                    "value": 30, "unit": "days", "system": "http://unitsofmeasure.org",
                                    "code": "d"}}})  # fmt: skip
    # PDS-E style: a delivery in the window, the EPDS after it (or not), and follow-up on a positive one.
    if patient["gender"] == "female" and 18 <= age <= 42 and rng.random() < 0.25:
        delivered = date(year - 1, 9, 8) + timedelta(days=rng.randint(0, 364))
        out.append({"resourceType": "Procedure", "id": rid("p"), "status": "completed", "subject": _ref(pid),
                    "code": {"coding": [{"system": DELIVERY_CODE[0], "code": DELIVERY_CODE[1]}]},
                    "performedDateTime": _at(delivered, 6)})  # fmt: skip
        if rng.random() < 0.8:
            screened = delivered + timedelta(days=rng.choice((3, 10, 30, 60, 80, 90)))
            positive = rng.random() < 0.2
            out.append(_phq(rid("o"), pid, screened, rng.randint(10, 20) if positive else rng.randint(0, 9),
                            code="99046-5"))  # fmt: skip
            if positive and rng.random() < 0.6:
                follow = screened + timedelta(days=rng.choice((2, 14, 28, 40)))
                out.append({"resourceType": "Encounter", "id": rid("e"), "status": "finished", "subject": _ref(pid),
                            "serviceProvider": clinic, "type": [{"coding": [{"system": CPT, "code": "90834"}]}],
                            "period": {"start": _at(follow, 15), "end": _at(follow, 15, 50)}})  # fmt: skip
    if rng.random() < 0.03:
        out.append({"resourceType": "Condition", "id": rid("c"), "subject": _ref(pid),
                    "code": {"coding": [{"system": ICD, "code": "F31.9"}]},
                    "clinicalStatus": {"coding": [{"code": "active"}]}, "verificationStatus": {"coding": [{"code": "confirmed"}]},
                    "category": [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}],
                    "onsetDateTime": date(year - 3, 5, 1).isoformat()})  # fmt: skip
    # CMS159: depression care in the identification period, with a PHQ-9 history that remits, responds or not.
    if age >= 12 and rng.random() < 0.35:
        visit_day = date(year - 2, 11, 1) + timedelta(days=rng.randint(0, 364))
        out.append({"resourceType": "Condition", "id": rid("c"), "subject": _ref(pid),
                    "code": {"coding": [{"system": ICD, "code": rng.choice(("F32.1", "F32.9", "F33.1", "F34.1"))}]},
                    "clinicalStatus": {"coding": [{"code": "active"}]}, "verificationStatus": {"coding": [{"code": "confirmed"}]},
                    "category": [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}],
                    "onsetDateTime": (visit_day - timedelta(days=rng.randint(10, 400))).isoformat()})  # fmt: skip
        out.append({"resourceType": "Encounter", "id": rid("e"), "status": "finished", "subject": _ref(pid), "serviceProvider": clinic,
                    "type": [{"coding": [{"system": CPT, "code": rng.choice(("99213", "99214", "90834", "99492"))}]}],
                    "period": {"start": _at(visit_day, 10), "end": _at(visit_day, 10, 30)}})  # fmt: skip
        first = rng.randint(8, 24)
        index_day = visit_day - timedelta(days=rng.choice((0, 0, 2, 5, 7, 9)))
        out.append(_phq(rid("o"), pid, index_day, first))
        trajectory = rng.choice(("remit", "respond", "partial", "none", "lost", "relapse"))
        if trajectory != "lost":
            for month in (1, 3, 6, 9, 12, 13):
                day = index_day + timedelta(days=30 * month + rng.randint(-10, 10))
                value = {"remit": max(0, first - 3 * month), "respond": max(5, first // 2 - 1),
                         "partial": max(0, first - 3), "none": first,
                         "relapse": max(0, first - 3 * month) if month < 12 else first}[trajectory]  # fmt: skip
                out.append(_phq(rid("o"), pid, day, min(27, value)))
                if rng.random() < 0.5:  # scored at an office visit (DMS-E-style monitoring reads the visit)
                    out.append({"resourceType": "Encounter", "id": rid("e"), "status": "finished", "subject": _ref(pid), "serviceProvider": clinic,
                                "type": [{"coding": [{"system": CPT, "code": "99214"}]}],
                                "period": {"start": _at(day, 10), "end": _at(day, 10, 25)}})  # fmt: skip
    return out


def _phq(
    oid: str, pid: str, day: date, value: int, minute: int = 15, code: str = "44261-6"
) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": _ref(pid),
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "survey"}]}],
            "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": _at(day, 10, minute),
            "valueInteger": value}  # fmt: skip


def population(size: int, year: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    """The resources of `size` patients, one patient at a time (memory holds one patient)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not security
    for n in range(size):
        yield from person(n, year, rng)


def write_ndjson(folder: Path, size: int, year: int, seed: int = 11) -> dict[str, int]:
    """NDJSON files by resource type, as a Bulk Data export writes them; the count of each."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {t: (folder / f"{t}.ndjson").open("w", encoding="utf-8") for t in TYPES}
    counts = dict.fromkeys(TYPES, 0)
    try:
        for resource in population(size, year, seed):
            kind = resource["resourceType"]
            files[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")
            counts[kind] += 1
    finally:
        for handle in files.values():
            handle.close()
    return counts


def add_to_cohort(cohort: Any, size: int, year: int, seed: int = 11) -> None:
    """The population in the sandbox EHR, its patients members of the Group the backend client exports."""
    from .data import BH_GROUP_ID

    group = next((g for g in cohort.of_type("Group") if g["id"] == BH_GROUP_ID), None)
    for resource in population(size, year, seed):
        cohort.add(resource)
        if group is not None and resource["resourceType"] == "Patient":
            group.setdefault("member", []).append({"entity": {"reference": f"Patient/{resource['id']}"}})


def seed_measures(services: Any, iss: str, folder: Path, year: int) -> None:
    """The demo's measures as IT would run them: export the EHR's Group, run every measure on DuckDB, keep the
    result for the quality page and write the MeasureReports to the registry store."""
    import logging
    from zoneinfo import ZoneInfo

    from fhir_mappings.measures.logic import Period
    from smartapp.measures.service import extract, keep, registry_groups, run, write_reports

    log = logging.getLogger(__name__)
    reg = services.registrations.get(iss)
    report = extract(services, reg, folder, ZoneInfo("UTC"), on_progress=log.debug)
    result = run(folder, Period(year), "duckdb", groups=registry_groups(services, iss),
                 valuesets=services.measure_valuesets)  # fmt: skip
    keep(services, iss, result)
    written = write_reports(services.registry, iss, result) if services.registry is not None else 0
    log.info("demo measures: %s; %d reports and lists written", report.summary(), written)

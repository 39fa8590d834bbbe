"""A tiny FHIR builder for the measure test deck: each helper returns one resource, dated as the case needs."""

from __future__ import annotations

from datetime import date
from typing import Any

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
CAT = "http://terminology.hl7.org/CodeSystem/condition-category"


def patient(pid: str, born: str, deceased: str | bool | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid, "birthDate": born}
    if isinstance(deceased, bool):
        resource["deceasedBoolean"] = deceased
    elif deceased:
        resource["deceasedDateTime"] = deceased
    return resource


def encounter(eid: str, pid: str, start: str, end: str | None = None, code: tuple[str, str] = (CPT, "99213"),
              status: str = "finished") -> dict[str, Any]:  # fmt: skip
    return {"resourceType": "Encounter", "id": eid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "type": [{"coding": [{"system": code[0], "code": code[1]}]}],
            "period": {"start": start, "end": end or start}}  # fmt: skip


def condition(cid: str, pid: str, code: str, onset: str | None, *, system: str = ICD, status: str = "active",
              verification: str = "confirmed", category: str = "problem-list-item") -> dict[str, Any]:  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": system, "code": code}]},
        "clinicalStatus": {"coding": [{"code": status}]}, "verificationStatus": {"coding": [{"code": verification}]},
        "category": [{"coding": [{"system": CAT, "code": category}]}],
    }  # fmt: skip
    if onset:
        resource["onsetDateTime"] = onset
    return resource


def score(oid: str, pid: str, when: str, value: int, code: str = "44261-6", status: str = "final",
          issued: str | None = None) -> dict[str, Any]:  # fmt: skip
    resource = {"resourceType": "Observation", "id": oid, "status": status, "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": when,
                "valueInteger": value}  # fmt: skip
    if issued:
        resource["issued"] = issued
    return resource


def screen(
    oid: str, pid: str, when: str, positive: bool, adult: bool = True, status: str = "final"
) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": LOINC, "code": "73832-8" if adult else "73831-0"}]},
            "effectiveDateTime": when, "issued": when,
            "valueCodeableConcept": {"coding": [{"system": SCT, "code": "428181000124104" if positive
                                                 else "428171000124102"}]}}  # fmt: skip


def declined(oid: str, pid: str, issued: str, adult: bool = True) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "cancelled", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": LOINC, "code": "73832-8" if adult else "73831-0"}]}, "issued": issued,
            "extension": [{"url": "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason",
                           "valueCodeableConcept": {"coding": [{"system": SCT, "code": "720834000"}]}}]}  # fmt: skip


def referral(
    rid: str, pid: str, authored: str, code: str = "183524004", status: str = "active"
) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": f"Patient/{pid}"}, "code": {"coding": [{"system": SCT, "code": code}]},
            "authoredOn": authored}  # fmt: skip


def prescription(
    rid: str,
    pid: str,
    authored: str,
    code: str = "1000048",
    status: str = "active",
    supply_days: int | None = None,
) -> dict[str, Any]:
    resource = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
                "subject": {"reference": f"Patient/{pid}"},
                "medicationCodeableConcept": {"coding": [{"system": RX, "code": code}]}, "authoredOn": authored}  # fmt: skip
    if supply_days is not None:
        resource["dispenseRequest"] = {"expectedSupplyDuration": {"value": supply_days, "unit": "days",
                                                                  "system": "http://unitsofmeasure.org", "code": "d"}}  # fmt: skip
    return resource


def dispense(
    rid: str, pid: str, handed_over: str, code: str = "1000048", status: str = "completed"
) -> dict[str, Any]:
    return {"resourceType": "MedicationDispense", "id": rid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": {"coding": [{"system": RX, "code": code}]}, "whenHandedOver": handed_over}  # fmt: skip


def procedure(rid: str, pid: str, performed: str, code: str = "108313002") -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": rid, "status": "completed", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": SCT, "code": code}]}, "performedDateTime": performed}  # fmt: skip


def day(value: date) -> str:
    return value.isoformat()

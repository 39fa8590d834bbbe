"""The referral loop in the Gravity SDOH pattern (healthysteps.md §5b): a positive screen → a health concern
(Condition, evidence → the screen's Observation) → an optional Goal → a ServiceRequest (the service) → a referral
Task (TaskForReferralManagement: `for` the child, a caregiver (RelatedPerson) or both (a Group of the two),
`focus` the ServiceRequest) → closed when the service was received (a Procedure records it) or declined.

The Task carries what a worklist needs (service, whom, status, dates), so the loop's state is one search. All
functions are pure and total: odd resources map to None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_mappings.common.access import code, field, obj, objs, reference_id, text, version_id
from fhir_mappings.common.dates import parse_date
from fhir_mappings.healthysteps.program import Concern
from fhir_mappings.registry.resources import TANDEM, TASK_SYSTEM, Enrolment, Member

SERVICE_SYSTEM = f"{TANDEM}/CodeSystem/referral-service"
CONCERN_SYSTEM = f"{TANDEM}/CodeSystem/health-concern"
WHOM_SYSTEM = f"{TANDEM}/CodeSystem/referral-for"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
#: US Core's Condition categories (health-concern) and its "sdoh" category, as Gravity uses them.
CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
WHOM = {"child": "The child", "caregiver": "A caregiver", "both": "Child and caregiver"}
#: Gravity's referral Task statuses (TaskStatus without ready and received), as a Specialist reads them.
STATUSES = {
    "requested": "Requested",
    "accepted": "Accepted by the service",
    "in-progress": "In progress",
    "on-hold": "On hold",
    "completed": "Service received",
    "cancelled": "Declined by the family",
    "rejected": "Declined by the service",
    "failed": "Could not be completed",
}
OPEN_STATUSES = ("requested", "accepted", "in-progress", "on-hold")
CLOSING_STATUSES = ("completed", "cancelled", "rejected", "failed")


@dataclass(frozen=True, slots=True)
class Referral:
    id: str  # the referral's own id; the Task is referral-<id>, the ServiceRequest sr-<id>, …
    careplan_id: str
    for_whom: str  # child | caregiver | both
    service: str
    service_title: str
    status: str
    authored: date
    closed: date | None = None
    caregiver: str | None = None  # RelatedPerson/…, when a caregiver is (also) the subject
    concern: str | None = None
    organisation: str | None = None
    note: str | None = None
    outcome_note: str | None = None
    version: str | None = None

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def received(self) -> bool:
        return self.status == "completed"

    def age_days(self, today: date) -> int:
        return max(0, ((self.closed or today) - self.authored).days)

    @property
    def task_id(self) -> str:
        return f"referral-{self.id}"


def _concept(system: str, key: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": key, "display": display}], "text": display}


def referral_resources(referral: Referral, enrolment: Enrolment, *, services: Mapping[str, str],
                       concern: Concern | None, basis: tuple[str, ...], goal: str | None,
                       requester: Member | None, now: datetime) -> list[dict[str, Any]]:  # fmt: skip
    """The Gravity chain for a new referral, as registry resources (all PUT by derived id: replay-safe)."""
    child = enrolment.key.reference(enrolment.patient_name)
    rid = referral.id
    resources: list[dict[str, Any]] = []
    condition_ref: str | None = None
    if concern is not None:
        coding = [{"system": CONCERN_SYSTEM, "code": concern.key, "display": concern.text}]
        if concern.icd10:
            coding.insert(0, {"system": ICD10, "code": concern.icd10, "display": concern.text})
        category = [{"coding": [{"system": CONDITION_CATEGORY, "code": "health-concern"}]}]
        if concern.category == "sdoh":
            category.append({"coding": [{"system": US_CORE_CATEGORY, "code": "sdoh"}]})
        condition = {
            "resourceType": "Condition", "id": f"concern-{rid}",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "category": category, "code": {"coding": coding, "text": concern.text},
            "subject": child, "recordedDate": now.date().isoformat(),
        }  # fmt: skip
        if basis:
            condition["evidence"] = [{"detail": [{"reference": ref} for ref in basis]}]
        resources.append(condition)
        condition_ref = f"Condition/concern-{rid}"
    if goal:
        resource_goal: dict[str, Any] = {"resourceType": "Goal", "id": f"goal-{rid}", "lifecycleStatus": "active",
                                         "description": {"text": goal}, "subject": child}  # fmt: skip
        if referral.caregiver:
            resource_goal["expressedBy"] = {"reference": referral.caregiver}
        if condition_ref:
            resource_goal["addresses"] = [{"reference": condition_ref}]
        resources.append(resource_goal)
    service = _concept(SERVICE_SYSTEM, referral.service, services.get(referral.service, referral.service))
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": f"sr-{rid}", "status": "active", "intent": "order",
        "code": service, "subject": child, "authoredOn": now.isoformat(),
        "basedOn": [{"reference": f"CarePlan/{enrolment.id}"}],
    }  # fmt: skip
    if condition_ref:
        service_request["reasonReference"] = [{"reference": condition_ref}]
    if goal:
        service_request["supportingInfo"] = [{"reference": f"Goal/goal-{rid}"}]
    if requester:
        service_request["requester"] = _member_reference(requester)
    if referral.organisation:
        service_request["performer"] = [{"display": referral.organisation}]
    resources.append(service_request)
    # For the child and a caregiver together the Task is `for` the child, with the caregiver as an input: a Group
    # of the two is not valid R4 (Group.member.entity allows no RelatedPerson; HAPI refuses it, HAPI-0931).
    subject: dict[str, Any] = dict(child)
    if referral.for_whom == "caregiver" and referral.caregiver:
        subject = {"reference": referral.caregiver}
    task: dict[str, Any] = {
        "resourceType": "Task", "id": referral.task_id,
        "identifier": [{"system": f"{TANDEM}/task", "value": referral.task_id}],
        "status": referral.status, "intent": "order",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": "referral", "display": "Referral"}], "text": "Referral"},
        "focus": {"reference": f"ServiceRequest/sr-{rid}", "display": service["text"]},
        "for": subject, "basedOn": [{"reference": f"CarePlan/{enrolment.id}"}],
        "authoredOn": now.isoformat(), "lastModified": now.isoformat(),
        "input": [{"type": {"text": "service"}, "valueCodeableConcept": service},
                  {"type": {"text": "for"}, "valueCodeableConcept": _concept(WHOM_SYSTEM, referral.for_whom,
                                                                             WHOM[referral.for_whom])}],
    }  # fmt: skip
    if referral.caregiver:
        task["input"].append(
            {"type": {"text": "caregiver"}, "valueReference": {"reference": referral.caregiver}}
        )
    if subject != child:
        # The child this family's referral belongs to: the Task names its EHR (and the registry store can resolve
        # every reference in it) even when it is for the caregiver alone.
        task["input"].append({"type": {"text": "child"}, "valueReference": child})
    if concern is not None:
        task["input"].append({"type": {"text": "concern"},
                              "valueCodeableConcept": _concept(CONCERN_SYSTEM, concern.key, concern.text)})  # fmt: skip
    if requester:
        task["requester"] = _member_reference(requester)
    if referral.organisation:
        task["owner"] = {"display": referral.organisation}
    if referral.note:
        task["note"] = [{"text": referral.note}]
    resources.append(task)
    return resources


def _member_reference(member: Member) -> dict[str, Any]:
    return {"reference": member.reference, **({"display": member.display} if member.display else {})}


def closed_referral(task: Mapping[str, Any], service_request: Mapping[str, Any], status: str, note: str | None,
                    closed: datetime, closer: Member | None) -> list[dict[str, Any]]:  # fmt: skip
    """The loop closed: the Task with its closing status and note, the ServiceRequest completed or revoked, and
    for a service received a Procedure that records it (Gravity's "intervention delivered")."""
    if status not in CLOSING_STATUSES:
        raise ValueError(f"a referral closes as one of {', '.join(CLOSING_STATUSES)}")
    done = {k: v for k, v in task.items() if k not in ("meta", "output", "statusReason")}
    done["status"] = status
    done["lastModified"] = closed.isoformat()
    done["executionPeriod"] = {**obj(task.get("executionPeriod")), "end": closed.isoformat()}
    done["statusReason"] = {"text": STATUSES[status]}
    if note:
        done["output"] = [{"type": {"text": "outcome-note"}, "valueString": note}]
    if closer:
        done["output"] = [*objs(done.get("output")),
                          {"type": {"text": "closed-by"}, "valueReference": _member_reference(closer)}]  # fmt: skip
    request = {k: v for k, v in service_request.items() if k != "meta"}
    request["status"] = "completed" if status == "completed" else "revoked"
    written = [done, request]
    if status == "completed":
        procedure: dict[str, Any] = {
            "resourceType": "Procedure", "id": f"delivered-{str(task['id']).removeprefix('referral-')}",
            "status": "completed", "code": request.get("code") or {"text": "Referral service"},
            "subject": request.get("subject"), "basedOn": [{"reference": f"ServiceRequest/{request['id']}"}],
            "performedDateTime": closed.isoformat(),
        }  # fmt: skip
        if request.get("reasonReference"):
            procedure["reasonReference"] = request["reasonReference"]
        if note:
            procedure["note"] = [{"text": note}]
        written.append(procedure)
    return written


def referral_from(resource: Any) -> Referral | None:
    """The referral a Tandem referral Task records; None for anything else."""
    resource = obj(resource)
    task_id = text(resource.get("id"))
    if resource.get("resourceType") != "Task" or task_id is None or not task_id.startswith("referral-"):
        return None
    if code(resource.get("code"), TASK_SYSTEM) != "referral":
        return None
    careplan_id = next(
        (i for i in (reference_id(b, "CarePlan") for b in objs(resource.get("basedOn"))) if i), None
    )
    authored = parse_date(resource.get("authoredOn"))
    inputs = objs(resource.get("input"))

    def coded(name: str, system: str) -> tuple[str | None, str | None]:
        concept = next(
            (obj(i.get("valueCodeableConcept")) for i in inputs if field(i, "type", "text") == name), {}
        )
        return code(concept, system), text(concept.get("text"))

    service, service_title = coded("service", SERVICE_SYSTEM)
    whom, _ = coded("for", WHOM_SYSTEM)
    concern, _ = coded("concern", CONCERN_SYSTEM)
    status = text(resource.get("status")) or "requested"
    if careplan_id is None or authored is None or service is None or status not in STATUSES:
        return None
    caregiver = next((text(field(i, "valueReference", "reference")) for i in inputs
                      if field(i, "type", "text") == "caregiver"), None)  # fmt: skip
    outcome = next((text(o.get("valueString")) for o in objs(resource.get("output"))
                    if field(o, "type", "text") == "outcome-note"), None)  # fmt: skip
    return Referral(
        id=task_id.removeprefix("referral-"), careplan_id=careplan_id,
        for_whom=whom if whom in WHOM else "child", service=service, service_title=service_title or service,
        status=status, authored=authored,
        closed=parse_date(field(resource, "executionPeriod", "end")) if status not in OPEN_STATUSES else None,
        caregiver=caregiver, concern=concern, organisation=text(field(resource, "owner", "display")),
        note=next((t for t in (text(n.get("text")) for n in objs(resource.get("note"))) if t), None),
        outcome_note=outcome, version=version_id(resource),
    )  # fmt: skip

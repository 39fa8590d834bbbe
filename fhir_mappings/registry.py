"""The Collaborative Care registry in FHIR: enrolments as CarePlans, follow-ups, reviews and contacts as Tasks.

- One CarePlan per enrolment: program in `category`, status and phase (a Tandem extension, since CarePlan.status
  has no "relapse prevention"), period, care team (a contained CareTeam: PCP, care manager, psychiatric
  consultant), goals (contained Goals: remission PHQ-9 < 5, response ≥ 50% drop), consent (an extension: given,
  date, method), the flag for psychiatric review, and the EHR patient as `subject` with an identifier whose
  system is the EHR's issuer (patient ids are only unique within one EHR).
- Contacts are completed Tasks `basedOn` the CarePlan: the date in `executionPeriod`, the minutes as an `output`
  Duration, the contact type as an `input`, the role in `performerType`, the note in `note`. Task (done work with
  an owner, a time and a duration) fits a care manager's contact better than Encounter (the EHR's visits) or
  Procedure (no place for minutes), and the registry store accepts it.
- Follow-ups and psychiatric case reviews are Tasks too (requested → completed, with the recommendations as
  output).
All functions are pure and total: odd resources map to None or defaults, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

TANDEM = "https://tandem.health/fhir"
PROGRAM_SYSTEM = f"{TANDEM}/CodeSystem/program"
PHASE_URL = f"{TANDEM}/StructureDefinition/phase"
CONSENT_URL = f"{TANDEM}/StructureDefinition/consent"
REVIEW_FLAG_URL = f"{TANDEM}/StructureDefinition/flagged-for-review"
ENROLMENT_SYSTEM = f"{TANDEM}/enrolment"
TASK_SYSTEM = f"{TANDEM}/CodeSystem/task"
ROLE_SYSTEM = f"{TANDEM}/CodeSystem/care-team-role"
CONTACT_TYPE_SYSTEM = f"{TANDEM}/CodeSystem/contact-type"
UCUM = "http://unitsofmeasure.org"

PROGRAMS = {
    "cocm-depression": "Collaborative Care — depression",
    "cocm-anxiety": "Collaborative Care — anxiety",
}
PHASES = {
    "active-treatment": ("active", "Active treatment"),
    "relapse-prevention": ("active", "Relapse prevention plan"),
    "discharged": ("completed", "Discharged"),
    "withdrawn": ("revoked", "Withdrawn / lost to follow-up"),
}
ROLES = {
    "pcp": "Primary care provider",
    "care-manager": "Behavioral health care manager",
    "psychiatric-consultant": "Psychiatric consultant",
}
CONTACT_TYPES = {
    "in-person": "In person",
    "phone": "Phone",
    "video": "Video",
    "message": "Secure message",
    "group": "Group session",
}
TASK_KINDS = {
    "contact": "Care management contact",
    "follow-up": "Follow-up due",
    "case-review": "Psychiatric case review",
    "safety-follow-up": "Same-day safety follow-up",
}


@dataclass(frozen=True)
class Member:
    reference: str  # Practitioner/123
    display: str | None = None


@dataclass(frozen=True)
class Enrolment:
    id: str
    iss: str
    patient_id: str
    patient_name: str | None
    program: str
    phase: str
    start: date
    end: date | None = None
    team: dict[str, Member] = field(default_factory=dict)  # role → member
    consent_given: bool = False
    consent_date: date | None = None
    consent_method: str | None = None  # verbal | written
    flagged_for_review: bool = False
    version: str | None = None  # meta.versionId, for If-Match

    @property
    def active(self) -> bool:
        return self.phase in ("active-treatment", "relapse-prevention")

    @property
    def patient_reference(self) -> str:
        return f"Patient/{self.patient_id}"

    def member(self, role: str) -> Member | None:
        return self.team.get(role)


@dataclass(frozen=True)
class Contact:
    id: str
    careplan_id: str
    when: date
    minutes: int
    contact_type: str
    role: str
    owner: Member | None
    note: str | None = None


@dataclass(frozen=True)
class WorkTask:
    """A follow-up, case review or safety Task."""

    id: str
    kind: str
    status: str
    patient_id: str | None
    careplan_id: str | None
    due: date | None
    authored: date | None
    completed: date | None = None
    description: str | None = None
    recommendations: str | None = None
    version: str | None = None

    @property
    def open(self) -> bool:
        return self.status not in ("completed", "cancelled", "rejected", "failed", "entered-in-error")


# --- helpers -----------------------------------------------------------------------------------------


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _ext(resource: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    return next(
        (e for e in resource.get("extension") or [] if isinstance(e, Mapping) and e.get("url") == url), None
    )


def _sub(extension: Mapping[str, Any] | None, url: str) -> Mapping[str, Any]:
    if not extension:
        return {}
    return next(
        (e for e in extension.get("extension") or [] if isinstance(e, Mapping) and e.get("url") == url), {}
    )


def _code(concept: Any, system: str) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    return next((str(c.get("code")) for c in concept.get("coding") or []
                 if isinstance(c, Mapping) and c.get("system") == system and c.get("code")), None)  # fmt: skip


def _id_of(reference: Any, resource_type: str) -> str | None:
    if isinstance(reference, Mapping):
        ref = reference.get("reference")
        if isinstance(ref, str) and ref.startswith(f"{resource_type}/"):
            return ref.split("/", 1)[1]
    return None


# --- CarePlan ------------------------------------------------------------------------------------------


def careplan(enrolment: Enrolment) -> dict[str, Any]:
    status, phase_display = PHASES[enrolment.phase]
    participants = [
        {"role": [{"coding": [{"system": ROLE_SYSTEM, "code": role, "display": ROLES[role]}]}],
         "member": {"reference": m.reference, **({"display": m.display} if m.display else {})}}
        for role, m in enrolment.team.items() if role in ROLES
    ]  # fmt: skip
    subject: dict[str, Any] = {
        "reference": enrolment.patient_reference,
        "identifier": {"system": enrolment.iss, "value": enrolment.patient_id},
    }
    if enrolment.patient_name:
        subject["display"] = enrolment.patient_name
    consent: list[dict[str, Any]] = [{"url": "given", "valueBoolean": enrolment.consent_given}]
    if enrolment.consent_date:
        consent.append({"url": "date", "valueDate": enrolment.consent_date.isoformat()})
    if enrolment.consent_method:
        consent.append({"url": "method", "valueCode": enrolment.consent_method})
    period: dict[str, str] = {"start": enrolment.start.isoformat()}
    if enrolment.end:
        period["end"] = enrolment.end.isoformat()
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": enrolment.id,
        "identifier": [{"system": ENROLMENT_SYSTEM, "value": enrolment.id}],
        "extension": [
            {"url": PHASE_URL, "valueCode": enrolment.phase},
            {"url": CONSENT_URL, "extension": consent},
            {"url": REVIEW_FLAG_URL, "valueBoolean": enrolment.flagged_for_review},
        ],
        "status": status,
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {
                        "system": PROGRAM_SYSTEM,
                        "code": enrolment.program,
                        "display": PROGRAMS.get(enrolment.program, enrolment.program),
                    }
                ]
            }
        ],  # fmt: skip
        "title": f"{PROGRAMS.get(enrolment.program, enrolment.program)} ({phase_display})",
        "subject": subject,
        "period": period,
        "contained": [
            {
                "resourceType": "CareTeam",
                "id": "team",
                "status": "active",
                "participant": participants,
                "subject": {"reference": enrolment.patient_reference},
            },
            {
                "resourceType": "Goal",
                "id": "remission",
                "lifecycleStatus": "active",
                "description": {"text": "Remission: PHQ-9 below 5"},
                "subject": {"reference": enrolment.patient_reference},
                "target": [
                    {
                        "measure": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                        "detailQuantity": {"value": 5, "comparator": "<", "system": UCUM, "code": "{score}"},
                    }
                ],
            },
            {
                "resourceType": "Goal",
                "id": "response",
                "lifecycleStatus": "active",
                "description": {"text": "Response: PHQ-9 at least 50% below the baseline"},
                "subject": {"reference": enrolment.patient_reference},
            },
        ],  # fmt: skip
        "careTeam": [{"reference": "#team"}],
        "goal": [{"reference": "#remission"}, {"reference": "#response"}],
    }
    if enrolment.version:
        resource["meta"] = {"versionId": enrolment.version}
    return resource


def enrolment_from(resource: Any) -> Enrolment | None:
    if (
        not isinstance(resource, Mapping)
        or resource.get("resourceType") != "CarePlan"
        or not resource.get("id")
    ):
        return None
    program = next(
        (_code(c, PROGRAM_SYSTEM) for c in resource.get("category") or [] if _code(c, PROGRAM_SYSTEM)), None
    )
    if program is None:
        return None
    subject = resource.get("subject") or {}
    identifier = subject.get("identifier") or {}
    patient_id = identifier.get("value") or _id_of(subject, "Patient")
    start = _date((resource.get("period") or {}).get("start"))
    if not patient_id or start is None:
        return None
    phase_ext = _ext(resource, PHASE_URL)
    phase = str((phase_ext or {}).get("valueCode") or "active-treatment")
    consent = _ext(resource, CONSENT_URL)
    team: dict[str, Member] = {}
    for contained in resource.get("contained") or []:
        if isinstance(contained, Mapping) and contained.get("resourceType") == "CareTeam":
            for participant in contained.get("participant") or []:
                role = next((_code(r, ROLE_SYSTEM) for r in participant.get("role") or [] if _code(r, ROLE_SYSTEM)),
                            None)  # fmt: skip
                member = participant.get("member") or {}
                if role and isinstance(member.get("reference"), str):
                    team[role] = Member(member["reference"], member.get("display"))
    flag = _ext(resource, REVIEW_FLAG_URL)
    return Enrolment(
        id=str(resource["id"]),
        iss=str(identifier.get("system") or ""),
        patient_id=str(patient_id),
        patient_name=subject.get("display"),
        program=program,
        phase=phase if phase in PHASES else "active-treatment",
        start=start,
        end=_date((resource.get("period") or {}).get("end")),
        team=team,
        consent_given=bool(_sub(consent, "given").get("valueBoolean")),
        consent_date=_date(_sub(consent, "date").get("valueDate")),
        consent_method=_sub(consent, "method").get("valueCode"),
        flagged_for_review=bool((flag or {}).get("valueBoolean")),
        version=(resource.get("meta") or {}).get("versionId"),
    )


def with_phase(enrolment: Enrolment, phase: str, today: date) -> Enrolment:
    ends = phase in ("discharged", "withdrawn")
    return replace(enrolment, phase=phase, end=today if ends else None)


# --- Tasks ---------------------------------------------------------------------------------------------


def _task_base(
    task_id: str, kind: str, status: str, enrolment: Enrolment, authored: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "identifier": [{"system": f"{TANDEM}/task", "value": task_id}],
        "status": status,
        "intent": "order",
        "code": {
            "coding": [{"system": TASK_SYSTEM, "code": kind, "display": TASK_KINDS[kind]}],
            "text": TASK_KINDS[kind],
        },  # fmt: skip
        "for": {
            "reference": enrolment.patient_reference,
            "identifier": {"system": enrolment.iss, "value": enrolment.patient_id},
        },  # fmt: skip
        "basedOn": [{"reference": f"CarePlan/{enrolment.id}"}],
        "authoredOn": authored.isoformat(),
    }


def contact_task(contact: Contact, enrolment: Enrolment, recorded: datetime) -> dict[str, Any]:
    task = _task_base(contact.id, "contact", "completed", enrolment, recorded)
    task["executionPeriod"] = {"start": contact.when.isoformat(), "end": contact.when.isoformat()}
    task["performerType"] = [
        {"coding": [{"system": ROLE_SYSTEM, "code": contact.role, "display": ROLES.get(contact.role)}]}
    ]
    task["input"] = [{"type": {"text": "contact-type"}, "valueCodeableConcept": {"coding": [
        {"system": CONTACT_TYPE_SYSTEM, "code": contact.contact_type,
         "display": CONTACT_TYPES.get(contact.contact_type, contact.contact_type)}]}}]  # fmt: skip
    task["output"] = [{"type": {"text": "minutes"},
                       "valueDuration": {"value": contact.minutes, "unit": "min", "system": UCUM, "code": "min"}}]  # fmt: skip
    if contact.owner:
        task["owner"] = {"reference": contact.owner.reference,
                         **({"display": contact.owner.display} if contact.owner.display else {})}  # fmt: skip
    if contact.note:
        task["note"] = [{"text": contact.note}]
    return task


def contact_from(resource: Any) -> Contact | None:
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Task":
        return None
    if _code(resource.get("code"), TASK_SYSTEM) != "contact" or resource.get("status") != "completed":
        return None
    careplan_id = next(
        (_id_of(b, "CarePlan") for b in resource.get("basedOn") or [] if _id_of(b, "CarePlan")), None
    )
    when = _date((resource.get("executionPeriod") or {}).get("start"))
    minutes = next((o.get("valueDuration", {}).get("value") for o in resource.get("output") or []
                    if isinstance(o, Mapping) and isinstance(o.get("valueDuration"), Mapping)), None)  # fmt: skip
    if careplan_id is None or when is None or not isinstance(minutes, int | float):
        return None
    contact_type = next((_code(i.get("valueCodeableConcept"), CONTACT_TYPE_SYSTEM) for i in resource.get("input") or []
                         if isinstance(i, Mapping)), None) or "other"  # fmt: skip
    role = next((_code(p, ROLE_SYSTEM) for p in resource.get("performerType") or [] if _code(p, ROLE_SYSTEM)),
                "care-manager")  # fmt: skip
    owner = resource.get("owner") if isinstance(resource.get("owner"), Mapping) else None
    note = next((n.get("text") for n in resource.get("note") or [] if isinstance(n, Mapping)), None)
    return Contact(
        id=str(resource.get("id")),
        careplan_id=careplan_id,
        when=when,
        minutes=int(minutes),
        contact_type=contact_type,
        role=role or "care-manager",
        owner=Member(owner["reference"], owner.get("display")) if owner and owner.get("reference") else None,
        note=note,
    )


def work_task(kind: str, task_id: str, enrolment: Enrolment, authored: datetime, *, due: date | None = None,
              description: str | None = None, status: str = "requested") -> dict[str, Any]:  # fmt: skip
    task = _task_base(task_id, kind, status, enrolment, authored)
    if due:
        task["restriction"] = {"period": {"end": due.isoformat()}}
    if description:
        task["description"] = description
    if kind == "safety-follow-up":
        task["priority"] = "stat"
    return task


def completed_review(task: Mapping[str, Any], recommendations: str, completed: datetime,
                     reviewer: Member | None) -> dict[str, Any]:  # fmt: skip
    done = dict(task)
    done["status"] = "completed"
    done["lastModified"] = completed.isoformat()
    done["executionPeriod"] = {"end": completed.isoformat()}
    done["output"] = [{"type": {"text": "recommendations"}, "valueString": recommendations}]
    if reviewer:
        done["owner"] = {
            "reference": reviewer.reference,
            **({"display": reviewer.display} if reviewer.display else {}),
        }
    return done


def work_task_from(resource: Any) -> WorkTask | None:
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Task":
        return None
    kind = _code(resource.get("code"), TASK_SYSTEM)
    if kind not in ("follow-up", "case-review", "safety-follow-up"):
        return None
    careplan_id = next(
        (_id_of(b, "CarePlan") for b in resource.get("basedOn") or [] if _id_of(b, "CarePlan")), None
    )
    subject = resource.get("for") or {}
    patient_id = (subject.get("identifier") or {}).get("value") or _id_of(subject, "Patient")
    recommendations = next((o.get("valueString") for o in resource.get("output") or [] if isinstance(o, Mapping)
                            and isinstance(o.get("valueString"), str)), None)  # fmt: skip
    return WorkTask(
        id=str(resource.get("id")),
        kind=kind,
        status=str(resource.get("status") or "requested"),
        patient_id=str(patient_id) if patient_id else None,
        careplan_id=careplan_id,
        due=_date(((resource.get("restriction") or {}).get("period") or {}).get("end")),
        authored=_date(resource.get("authoredOn")),
        completed=_date((resource.get("executionPeriod") or {}).get("end")) if resource.get("status") == "completed"
        else None,
        description=resource.get("description") if isinstance(resource.get("description"), str) else None,
        recommendations=recommendations,
        version=(resource.get("meta") or {}).get("versionId"),
    )  # fmt: skip

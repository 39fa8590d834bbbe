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

from fhir_mappings.common.access import code as _code
from fhir_mappings.common.access import field as _field
from fhir_mappings.common.access import obj, objs, reference_id, text, version_id
from fhir_mappings.common.dates import parse_date, parse_datetime
from fhir_mappings.common.identity import PatientKey, legacy_patient_id, patient_key
from fhir_mappings.common.patient_summary import PATIENT_SUMMARY_URL, PatientLabel, label_from
from fhir_mappings.healthysteps.program import HEALTHYSTEPS_PROGRAM
from fhir_mappings.registry.programs import PROGRAMS
from fhir_mappings.registry.recommendations import Review, review_outputs

TANDEM = "https://tandem.health/fhir"
PROGRAM_SYSTEM = f"{TANDEM}/CodeSystem/program"
PHASE_URL = f"{TANDEM}/StructureDefinition/phase"
CONSENT_URL = f"{TANDEM}/StructureDefinition/consent"
REVIEW_FLAG_URL = f"{TANDEM}/StructureDefinition/flagged-for-review"
ENROLMENT_SYSTEM = f"{TANDEM}/enrolment"
TASK_SYSTEM = f"{TANDEM}/CodeSystem/task"
ROLE_SYSTEM = f"{TANDEM}/CodeSystem/care-team-role"
CONTACT_TYPE_SYSTEM = f"{TANDEM}/CodeSystem/contact-type"
SAFETY_OUTCOME_SYSTEM = f"{TANDEM}/CodeSystem/safety-follow-up-outcome"
#: A step taken on an open safety follow-up (an extension on one of the Task's notes).
SAFETY_STEP_URL = f"{TANDEM}/StructureDefinition/safety-step"
UCUM = "http://unitsofmeasure.org"

#: Program key → title, from the program definitions (data/programs/); an unknown key shows as itself.
PROGRAM_TITLES = {key: program.title for key, program in PROGRAMS.items()} | {
    HEALTHYSTEPS_PROGRAM.key: HEALTHYSTEPS_PROGRAM.title
}
#: Each move of a tiered program (HealthySteps): tier, start, reason, who decided, the screens that prompted it.
TIER_HISTORY_URL = f"{TANDEM}/StructureDefinition/tier-history"
TIER_REASON_SYSTEM = f"{TANDEM}/CodeSystem/tier-reason"
PRESENT_SYSTEM = f"{TANDEM}/CodeSystem/contact-present"
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
    "hs-specialist": "HealthySteps Specialist",
}
CONTACT_TYPES = {
    "in-person": "In person",
    "phone": "Phone",
    "video": "Video",
    "message": "Secure message",
    "group": "Group session",
} | dict(HEALTHYSTEPS_PROGRAM.contact_types)
#: How a same-day safety follow-up was closed: one is required, with a note.
SAFETY_OUTCOMES = {
    "assessed-no-current-risk": "Assessed: no current risk",
    "safety-plan": "Safety plan made",
    "referred": "Referred (crisis team, emergency department or behavioral health)",
    "could-not-reach": "Could not reach the patient",
}
#: The next steps a clinician records on a same-day safety follow-up from the item-9 alert (issue 28), each kept as
#: a note on the safety Task (who, when, what); the follow-up stays open until closed with an outcome.
SAFETY_STEPS = {
    "cssrs-started": "C-SSRS screener started",
    "cssrs-done": "C-SSRS screener result",
    "safety-plan": "Safety plan made",
    "referral": "Referral made",
}
TASK_KINDS = {
    "contact": "Care management contact",
    "follow-up": "Follow-up due",
    "case-review": "Psychiatric case review",
    "safety-follow-up": "Same-day safety follow-up",
    "hs-contact": "HealthySteps Specialist contact",
    "referral": "Referral",
}


UNNAMED = "Unnamed practitioner"


@dataclass(frozen=True, slots=True)
class Member:
    reference: str  # Practitioner/123
    display: str | None = None

    @property
    def name(self) -> str:
        """What a person sees: the name, never the reference (which goes to IT's details only)."""
        return self.display or UNNAMED


@dataclass(frozen=True, slots=True)
class TierMove:
    """One tier of a tiered enrolment: from `start` until the next move (or the enrolment's end)."""

    tier: str
    start: date
    reason: str
    decided_by: Member | None = None
    #: The screens that prompted the move ("Observation/<id>" in the registry).
    basis: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
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
    birth_date: date | None = None
    mrn: str | None = None
    #: A tiered program's moves, oldest first (HealthySteps); empty for Collaborative Care.
    tiers: tuple[TierMove, ...] = ()

    @property
    def collaborative(self) -> bool:
        """A Collaborative Care / BHI enrolment (the care manager's worklist and billing), not a tiered program's."""
        return self.program != HEALTHYSTEPS_PROGRAM.key

    @property
    def tier(self) -> TierMove | None:
        return self.tiers[-1] if self.tiers else None

    @property
    def active(self) -> bool:
        return self.phase in ("active-treatment", "relapse-prevention")

    @property
    def patient_reference(self) -> str:
        return f"Patient/{self.patient_id}"

    @property
    def key(self) -> PatientKey:
        return PatientKey(self.iss, self.patient_id)

    def member(self, role: str) -> Member | None:
        return self.team.get(role)

    def has_member(self, reference: str) -> bool:
        """Whether the practitioner has any role on this enrolment's care team."""
        return any(m.reference == reference for m in self.team.values())

    def age(self, today: date) -> int | None:
        born = self.birth_date
        if born is None or born > today:
            return None
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    careplan_id: str
    when: date
    minutes: int
    contact_type: str
    role: str
    owner: Member | None
    note: str | None = None
    #: Who was present (child | caregiver | both), for a HealthySteps Specialist's contact.
    present: str | None = None


@dataclass(frozen=True, slots=True)
class SafetyStep:
    """A step recorded on a safety follow-up: what (SAFETY_STEPS), the note, when and by whom."""

    id: str
    kind: str
    note: str | None
    at: datetime | None
    by: Member | None

    @property
    def label(self) -> str:
        return SAFETY_STEPS.get(self.kind, "Step recorded")


@dataclass(frozen=True, slots=True)
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
    #: The patient's EHR issuer ("" for a Task written before issuers were recorded).
    iss: str = ""
    #: How a safety follow-up was closed (outcome code and note), and by whom.
    outcome: str | None = None
    outcome_note: str | None = None
    closed_by: str | None = None
    #: A safety follow-up's copy of who the patient is (kept when it was raised: a worklist launch may not read
    #: Patient), who raised it (a clinician, or "the patient, in the patient portal") and the instant it was raised.
    patient: PatientLabel | None = None
    requester: Member | None = None
    authored_at: datetime | None = None
    #: The steps taken on a safety follow-up so far (C-SSRS started, safety plan, referral), oldest first.
    steps: tuple[SafetyStep, ...] = ()

    @property
    def key(self) -> PatientKey | None:
        return PatientKey(self.iss, self.patient_id) if self.iss and self.patient_id else None

    @property
    def open(self) -> bool:
        return self.status not in ("completed", "cancelled", "rejected", "failed", "entered-in-error")


# --- helpers -----------------------------------------------------------------------------------------


def _ext(resource: Any, url: str) -> Mapping[str, Any] | None:
    return next((e for e in objs(obj(resource).get("extension")) if e.get("url") == url), None)


def _sub(extension: Mapping[str, Any] | None, url: str) -> Mapping[str, Any]:
    return next((e for e in objs(obj(extension).get("extension")) if e.get("url") == url), {})


def _careplan_of(resource: Any) -> str | None:
    return next(
        (i for i in (reference_id(b, "CarePlan") for b in objs(obj(resource).get("basedOn"))) if i), None
    )


# --- CarePlan ------------------------------------------------------------------------------------------


def careplan(enrolment: Enrolment) -> dict[str, Any]:
    status, phase_display = PHASES[enrolment.phase]
    if enrolment.tier is not None and enrolment.active:
        phase_display = HEALTHYSTEPS_PROGRAM.tier_title(enrolment.tier.tier)
    participants = [
        {"role": [{"coding": [{"system": ROLE_SYSTEM, "code": role, "display": ROLES[role]}]}],
         "member": {"reference": m.reference, **({"display": m.display} if m.display else {})}}
        for role, m in enrolment.team.items() if role in ROLES
    ]  # fmt: skip
    subject = enrolment.key.reference(enrolment.patient_name)
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
                        "display": PROGRAM_TITLES.get(enrolment.program, enrolment.program),
                    }
                ]
            }
        ],  # fmt: skip
        "title": f"{PROGRAM_TITLES.get(enrolment.program, enrolment.program)} ({phase_display})",
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
        ],  # fmt: skip
        "careTeam": [{"reference": "#team"}],
    }
    if enrolment.program in PROGRAMS:
        resource["contained"] += [
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
        ]
        resource["goal"] = [{"reference": "#remission"}, {"reference": "#response"}]
    resource["extension"] += [_tier_extension(move) for move in enrolment.tiers]
    summary: list[dict[str, Any]] = []
    if enrolment.birth_date:
        summary.append({"url": "birthDate", "valueDate": enrolment.birth_date.isoformat()})
    if enrolment.mrn:
        summary.append({"url": "mrn", "valueString": enrolment.mrn})
    if summary:
        resource["extension"].append({"url": PATIENT_SUMMARY_URL, "extension": summary})
    if enrolment.version:
        resource["meta"] = {"versionId": enrolment.version}
    return resource


def _tier_extension(move: TierMove) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "tier", "valueCode": move.tier},
        {"url": "start", "valueDate": move.start.isoformat()},
        {"url": "reason", "valueCodeableConcept": {"coding": [{"system": TIER_REASON_SYSTEM, "code": move.reason}],
                                                   **({"text": move.note} if move.note else {})}},
    ]  # fmt: skip
    if move.decided_by:
        parts.append({"url": "decidedBy", "valueReference": {"reference": move.decided_by.reference,
                      **({"display": move.decided_by.display} if move.decided_by.display else {})}})  # fmt: skip
    parts += [{"url": "basis", "valueReference": {"reference": ref}} for ref in move.basis]
    return {"url": TIER_HISTORY_URL, "extension": parts}


def _tier_moves(resource: Mapping[str, Any]) -> tuple[TierMove, ...]:
    moves = []
    for extension in objs(resource.get("extension")):
        if extension.get("url") != TIER_HISTORY_URL:
            continue
        tier = text(_sub(extension, "tier").get("valueCode"))
        start = parse_date(_sub(extension, "start").get("valueDate"))
        reason_concept = _sub(extension, "reason").get("valueCodeableConcept")
        if tier is None or start is None:
            continue
        decided = obj(_sub(extension, "decidedBy").get("valueReference"))
        basis = tuple(r for r in (text(_field(e, "valueReference", "reference"))
                                  for e in objs(extension.get("extension")) if e.get("url") == "basis") if r)  # fmt: skip
        moves.append(TierMove(
            tier, start, _code(reason_concept, TIER_REASON_SYSTEM) or "unknown",
            Member(str(decided["reference"]), text(decided.get("display"))) if text(decided.get("reference")) else None,
            basis, text(obj(reason_concept).get("text"))))  # fmt: skip
    return tuple(sorted(moves, key=lambda m: m.start))


def enrolment_from(resource: Any) -> Enrolment | None:
    """The enrolment a CarePlan records; None for anything else. A CarePlan written before issuers were recorded
    has iss "" (it belongs to no EHR until migrated)."""
    if obj(resource).get("resourceType") != "CarePlan" or text(obj(resource).get("id")) is None:
        return None
    program = next((p for p in (_code(c, PROGRAM_SYSTEM) for c in objs(resource.get("category"))) if p), None)
    if program is None:
        return None
    subject = resource.get("subject")
    key = patient_key(subject)
    patient_id = key.patient_id if key else legacy_patient_id(subject)
    start = parse_date(_field(resource, "period", "start"))
    if not patient_id or start is None:
        return None
    phase = text(obj(_ext(resource, PHASE_URL)).get("valueCode")) or "active-treatment"
    consent = _ext(resource, CONSENT_URL)
    team: dict[str, Member] = {}
    for contained in objs(resource.get("contained")):
        if contained.get("resourceType") != "CareTeam":
            continue
        for participant in objs(contained.get("participant")):
            role = next(
                (r for r in (_code(c, ROLE_SYSTEM) for c in objs(participant.get("role"))) if r), None
            )
            member = obj(participant.get("member"))
            if role and text(member.get("reference")):
                team[role] = Member(str(member["reference"]), text(member.get("display")))
    method = text(_sub(consent, "method").get("valueCode"))
    summary = _ext(resource, PATIENT_SUMMARY_URL)
    return Enrolment(
        id=str(resource["id"]),
        iss=key.iss if key else "",
        patient_id=patient_id,
        patient_name=text(obj(subject).get("display")),
        program=program,
        phase=phase if phase in PHASES else "active-treatment",
        start=start,
        end=parse_date(_field(resource, "period", "end")),
        team=team,
        consent_given=_sub(consent, "given").get("valueBoolean") is True,
        consent_date=parse_date(_sub(consent, "date").get("valueDate")),
        consent_method=method if method in ("verbal", "written") else None,
        flagged_for_review=obj(_ext(resource, REVIEW_FLAG_URL)).get("valueBoolean") is True,
        version=version_id(resource),
        birth_date=parse_date(_sub(summary, "birthDate").get("valueDate")),
        mrn=text(_sub(summary, "mrn").get("valueString")),
        tiers=_tier_moves(resource),
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
        "for": enrolment.key.reference(),
        "basedOn": [{"reference": f"CarePlan/{enrolment.id}"}],
        "authoredOn": authored.isoformat(),
    }


def contact_task(
    contact: Contact, enrolment: Enrolment, recorded: datetime, kind: str = "contact"
) -> dict[str, Any]:
    """A contact as a completed Task (`kind` "hs-contact" for a HealthySteps Specialist's, which records who was
    present)."""
    task = _task_base(contact.id, kind, "completed", enrolment, recorded)
    task["executionPeriod"] = {"start": contact.when.isoformat(), "end": contact.when.isoformat()}
    task["performerType"] = [
        {"coding": [{"system": ROLE_SYSTEM, "code": contact.role, "display": ROLES.get(contact.role)}]}
    ]
    task["input"] = [{"type": {"text": "contact-type"}, "valueCodeableConcept": {"coding": [
        {"system": CONTACT_TYPE_SYSTEM, "code": contact.contact_type,
         "display": CONTACT_TYPES.get(contact.contact_type, contact.contact_type)}]}}]  # fmt: skip
    if contact.present:
        task["input"].append({"type": {"text": "present"}, "valueCodeableConcept": {"coding": [
            {"system": PRESENT_SYSTEM, "code": contact.present}]}})  # fmt: skip
    task["output"] = [{"type": {"text": "minutes"},
                       "valueDuration": {"value": contact.minutes, "unit": "min", "system": UCUM, "code": "min"}}]  # fmt: skip
    if contact.owner:
        task["owner"] = {"reference": contact.owner.reference,
                         **({"display": contact.owner.display} if contact.owner.display else {})}  # fmt: skip
    if contact.note:
        task["note"] = [{"text": contact.note}]
    return task


def contact_from(resource: Any, kind: str = "contact") -> Contact | None:
    resource = obj(resource)
    if resource.get("resourceType") != "Task" or text(resource.get("id")) is None:
        return None
    if _code(resource.get("code"), TASK_SYSTEM) != kind or resource.get("status") != "completed":
        return None
    careplan_id = _careplan_of(resource)
    when = parse_date(_field(resource, "executionPeriod", "start"))
    minutes = next((m for m in (_field(o, "valueDuration", "value") for o in objs(resource.get("output")))
                    if isinstance(m, int | float) and not isinstance(m, bool)), None)  # fmt: skip
    if careplan_id is None or when is None or minutes is None:
        return None
    contact_type = next((c for c in (_code(i.get("valueCodeableConcept"), CONTACT_TYPE_SYSTEM)
                                     for i in objs(resource.get("input"))) if c), None) or "other"  # fmt: skip
    role = next((r for r in (_code(p, ROLE_SYSTEM) for p in objs(resource.get("performerType"))) if r), None)
    owner = obj(resource.get("owner"))
    note = next((t for t in (text(n.get("text")) for n in objs(resource.get("note"))) if t), None)
    present = next((c for c in (_code(i.get("valueCodeableConcept"), PRESENT_SYSTEM)
                                for i in objs(resource.get("input"))) if c), None)  # fmt: skip
    return Contact(
        id=str(resource["id"]),
        careplan_id=careplan_id,
        when=when,
        minutes=int(minutes),
        contact_type=contact_type,
        role=role or "care-manager",
        owner=Member(str(owner["reference"]), text(owner.get("display")))
        if text(owner.get("reference"))
        else None,
        note=note,
        present=present,
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


def completed_review(task: Mapping[str, Any], recommendations: str | Review, completed: datetime,
                     reviewer: Member | None) -> dict[str, Any]:  # fmt: skip
    """The review Task closed with the recommendations: a summary text, and structured items when given."""
    done = dict(task)
    done["status"] = "completed"
    done["lastModified"] = completed.isoformat()
    done["executionPeriod"] = {"end": completed.isoformat()}
    review = recommendations if isinstance(recommendations, Review) else Review((), recommendations)
    done["output"] = review_outputs(review)
    if reviewer:
        done["owner"] = {
            "reference": reviewer.reference,
            **({"display": reviewer.display} if reviewer.display else {}),
        }
    return done


def closed_safety_task(task: Mapping[str, Any], outcome: str, note: str, closed: datetime,
                       closer: Member | None) -> dict[str, Any]:  # fmt: skip
    """A safety follow-up Task closed by a person, with the outcome and note kept on the Task."""
    done = {k: v for k, v in task.items() if k != "output"}
    done["status"] = "completed"
    done["lastModified"] = closed.isoformat()
    done["executionPeriod"] = {**obj(task.get("executionPeriod")), "end": closed.isoformat()}
    done["output"] = [
        {"type": {"text": "outcome"}, "valueCodeableConcept": {"coding": [
            {"system": SAFETY_OUTCOME_SYSTEM, "code": outcome, "display": SAFETY_OUTCOMES[outcome]}]}},
        {"type": {"text": "outcome-note"}, "valueString": note},
    ]  # fmt: skip
    if closer:
        done["owner"] = {
            "reference": closer.reference,
            **({"display": closer.display} if closer.display else {}),
        }
    return done


def safety_step_added(task: Mapping[str, Any], step_id: str, kind: str, note: str, when: datetime,
                      by: Member | None) -> dict[str, Any]:  # fmt: skip
    """The safety Task with one more step kept as a note (author, time, text; the step's kind as an extension).
    A step whose id is already on the Task is not added again (a resubmitted form records once)."""
    if kind not in SAFETY_STEPS:
        raise ValueError(f"unknown safety step {kind!r}")
    notes = [dict(n) for n in objs(task.get("note"))]
    if any(n.get("id") == step_id for n in notes):
        return dict(task)
    annotation: dict[str, Any] = {
        "id": step_id,
        "extension": [{"url": SAFETY_STEP_URL, "valueCode": kind}],
        "time": when.isoformat(),
        "text": f"{SAFETY_STEPS[kind]}: {note}" if note else SAFETY_STEPS[kind],
    }
    if by is not None and by.reference:
        annotation["authorReference"] = {
            "reference": by.reference,
            **({"display": by.display} if by.display else {}),
        }
    elif by is not None and by.display:
        annotation["authorString"] = by.display
    return {**task, "note": [*notes, annotation], "lastModified": when.isoformat()}


def safety_steps(resource: Any) -> tuple[SafetyStep, ...]:
    """The steps kept on a safety Task's notes, oldest first (notes without the step extension are not steps)."""
    steps = []
    for note in objs(obj(resource).get("note")):
        kind = next((text(e.get("valueCode")) for e in objs(note.get("extension")) if e.get("url") == SAFETY_STEP_URL),
                    None)  # fmt: skip
        if kind is None:
            continue
        body = text(note.get("text")) or ""
        label = SAFETY_STEPS.get(kind, "")
        detail = (
            body.removeprefix(label).removeprefix(":").strip() if label and body.startswith(label) else body
        )
        author = _member_of(note.get("authorReference")) or (
            Member("", text(note.get("authorString"))) if text(note.get("authorString")) else None
        )
        steps.append(SafetyStep(text(note.get("id")) or "", kind, detail or None, parse_datetime(note.get("time")),
                                author))  # fmt: skip
    return tuple(sorted(steps, key=lambda s: s.at.timestamp() if s.at else 0.0))


def work_task_from(resource: Any) -> WorkTask | None:
    resource = obj(resource)
    if resource.get("resourceType") != "Task" or text(resource.get("id")) is None:
        return None
    kind = _code(resource.get("code"), TASK_SYSTEM)
    if kind not in ("follow-up", "case-review", "safety-follow-up"):
        return None
    subject = resource.get("for")
    key = patient_key(subject)
    patient_id = key.patient_id if key else legacy_patient_id(subject)
    outputs = objs(resource.get("output"))

    def output(name: str) -> str | None:
        return next((text(o.get("valueString")) for o in outputs if _field(o, "type", "text") == name
                     and text(o.get("valueString"))), None)  # fmt: skip

    outcome = next((c for c in (_code(o.get("valueCodeableConcept"), SAFETY_OUTCOME_SYSTEM) for o in outputs) if c),
                   None)  # fmt: skip
    status = text(resource.get("status")) or "requested"
    return WorkTask(
        id=str(resource["id"]),
        kind=kind,
        status=status,
        patient_id=patient_id,
        careplan_id=_careplan_of(resource),
        due=parse_date(_field(resource, "restriction", "period", "end")),
        authored=parse_date(resource.get("authoredOn")),
        completed=parse_date(_field(resource, "executionPeriod", "end")) if status == "completed" else None,
        description=text(resource.get("description")),
        recommendations=output("recommendations"),
        version=version_id(resource),
        iss=key.iss if key else "",
        outcome=outcome,
        outcome_note=output("outcome-note"),
        closed_by=text(_field(resource, "owner", "reference")) if kind == "safety-follow-up" else None,
        patient=label_from(resource, "for") if kind == "safety-follow-up" else None,
        requester=_member_of(resource.get("requester")) if kind == "safety-follow-up" else None,
        authored_at=parse_datetime(resource.get("authoredOn")) if kind == "safety-follow-up" else None,
        steps=safety_steps(resource) if kind == "safety-follow-up" else (),
    )


def _member_of(reference: Any) -> Member | None:
    """A Reference as a Member: a reference, or (someone without one, such as 'the patient') a display alone."""
    ref, display = text(obj(reference).get("reference")), text(obj(reference).get("display"))
    return Member(ref or "", display) if ref or display else None

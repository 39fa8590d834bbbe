"""Same-day safety follow-ups as a person works them: who the patient is, who owns the follow-up, and when it is
overdue. Pure rules over registry data (the caller gives the clock and the deployment's time zone)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, tzinfo

from fhir_mappings.common.dates import age_text
from fhir_mappings.common.patient_summary import PatientLabel
from fhir_mappings.registry.resources import UNNAMED, Enrolment, Member

#: Care-team roles that own a patient's safety follow-up, first found first (the enrolment's care manager; a
#: HealthySteps family's Specialist).
OWNER_ROLES = ("care-manager", "hs-specialist")


def raised_day(raised: datetime | date, zone: tzinfo) -> date:
    """The local calendar day a follow-up was raised on (an instant without a zone is read as UTC)."""
    if isinstance(raised, datetime):
        aware = raised if raised.tzinfo is not None else raised.replace(tzinfo=UTC)
        return aware.astimezone(zone).date()
    return raised


def overdue(raised: datetime | date | None, now: datetime, zone: tzinfo) -> bool:
    """A same-day follow-up is overdue once the local day it was raised on has ended (deployment time zone). One
    whose raising time is unknown is overdue: nothing shows it is still within its day."""
    if raised is None:
        return True
    return raised_day(now, zone) > raised_day(raised, zone)


def owner(enrolments: Iterable[Enrolment], requester: Member | None) -> Member | None:
    """Who owns a safety follow-up, a named person: the care manager of the patient's enrolment (active ones
    first), else the clinician who submitted the screening; None when nobody can be named."""
    ranked = sorted(enrolments, key=lambda e: e.active, reverse=True)
    for enrolment in ranked:
        for role in OWNER_ROLES:
            member = enrolment.member(role)
            if member is not None and member.display:
                return member
    if requester is not None and requester.display and requester.reference.startswith("Practitioner"):
        return requester
    return None


def label_for(enrolments: Iterable[Enrolment], *copies: PatientLabel | None) -> PatientLabel | None:
    """Who the patient is: the registry's copy on an enrolment (the worklist's), else the first copy kept with the
    screening or Task that knows a name, else any that knows something. Never from a FHIR id."""
    for enrolment in sorted(enrolments, key=lambda e: e.active, reverse=True):
        if enrolment.patient_name:
            return PatientLabel(enrolment.patient_name, enrolment.birth_date, enrolment.mrn)
    known = [c for c in copies if c is not None and c.known]
    return next((c for c in known if c.name), known[0] if known else None)


def identity_text(label: PatientLabel | None, today: date) -> str:
    """`DOB 1980-05-02 · 46 y · MRN 100007`, as the worklist tells two patients of one name apart."""
    label = label or PatientLabel()
    parts = [f"DOB {label.birth_date.isoformat()}" if label.birth_date else "DOB not recorded"]
    age = age_text(label.birth_date, today)
    if age is not None:
        parts.append(age)
    parts.append(f"MRN {label.mrn}" if label.mrn else "MRN not recorded")
    return " · ".join(parts)


def owner_name(member: Member | None) -> str | None:
    return member.name if member is not None and member.name != UNNAMED else None

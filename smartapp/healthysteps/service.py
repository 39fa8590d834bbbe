"""HealthySteps in the registry store: enrolments with their tier history, referrals (the Gravity chain),
Specialist contacts, and what the worklist and report read. Reads are a few searches per type joined in memory
(children's screens and caregivers in batches of subjects, never one request per child); writes are PUTs by
derived id, the enrolment's with If-Match (a stale version raises EnrolmentChanged)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from fhir_mappings.common.caregivers import Caregiver, from_registry
from fhir_mappings.common.dates import age_months
from fhir_mappings.common.gestation import GESTATION_CODE, GESTATION_SYSTEM, Gestation, gestation_from
from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.healthysteps.program import HealthySteps
from fhir_mappings.healthysteps.referrals import Referral, closed_referral, referral_from, referral_resources
from fhir_mappings.registry.resources import (
    PROGRAM_SYSTEM,
    TASK_SYSTEM,
    Contact,
    Enrolment,
    Member,
    TierMove,
    WorkTask,
    contact_from,
    contact_task,
    enrolment_from,
    with_phase,
    work_task_from,
)
from fhir_mappings.screening.events import ScreenEvent, events_from_observations, events_from_points, merged
from fhir_mappings.screening.history import ScorePoint
from fhir_mappings.screening.instruments import Catalogue
from launch import errors
from launch.fhir import FHIRClient, etag_for
from smartapp.caseload.service import CaseloadService
from smartapp.outgoing import put_transaction, validated

#: Subjects per batched search (`subject=Patient/a,Patient/b,…`), well inside a URL's length.
SUBJECTS_PER_SEARCH = 40
PAGE_SIZE = "1000"


class HealthyStepsProblem(ValueError):
    """Input a Specialist can correct, with what to change."""


class ReferralChanged(errors.FHIRPreconditionFailed):
    """Someone else changed the referral since the Specialist opened the family's page (its version differs)."""


@dataclass
class HealthyStepsData:
    enrolments: list[Enrolment]
    referrals: list[Referral]
    contacts: list[Contact]
    safety_tasks: list[WorkTask]
    caregivers: dict[PatientKey, list[Caregiver]]
    events: dict[PatientKey, list[ScreenEvent]]
    requests: int
    #: Each child's gestational age at birth as recorded in Tandem (read with the registry's Observations, no
    #: extra request), for the due list's corrected age.
    gestations: dict[PatientKey, Gestation] = field(default_factory=dict)


def _batches(items: list[PatientKey], size: int) -> Iterator[list[PatientKey]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class HealthyStepsService:
    def __init__(self, program: HealthySteps, registry: FHIRClient | None, caseload: CaseloadService,
                 catalogue: Catalogue) -> None:  # fmt: skip
        self.program = program
        self.registry = registry
        self.caseload = caseload
        self.catalogue = catalogue

    def _client(self) -> FHIRClient:
        if self.registry is None:
            raise errors.ConfigurationError("no registry store is configured (TANDEM_REGISTRY_URL)")
        return self.registry

    # --- reading ----------------------------------------------------------------------------------

    def load(self, iss: str, ehr_scores: dict[PatientKey, list[ScorePoint]], *, only: PatientKey | None = None,
             children: list[PatientKey] | None = None) -> HealthyStepsData:  # fmt: skip
        """The program's children of one EHR (or one child, or these children: searches naming them, in batches)
        with everything their rows need."""
        client = self._client()
        before = client.counter.total
        named = [only] if only is not None else children
        plan_query = {"category": f"{PROGRAM_SYSTEM}|{self.program.key}", "_count": PAGE_SIZE}
        codes = ",".join(f"{TASK_SYSTEM}|{kind}" for kind in ("referral", "hs-contact", "safety-follow-up"))
        task_query = {"code": codes, "_count": PAGE_SIZE}
        if named is None:
            plans_found = client.search_all("CarePlan", plan_query, max_pages=10_000)
            tasks = client.search_all("Task", task_query, max_pages=10_000)
        else:
            plans_found, tasks = [], []
            # Referrals and contacts name the enrolment (a referral's Task may be for a caregiver or the family
            # Group); a safety follow-up names the child.
            plan_codes = ",".join(f"{TASK_SYSTEM}|{kind}" for kind in ("referral", "hs-contact"))
            for batch in _batches(sorted(set(named)), SUBJECTS_PER_SEARCH):
                subjects = ",".join(k.relative for k in batch)
                found = client.search_all("CarePlan", {**plan_query, "subject": subjects})
                plans_found += found
                based_on = ",".join(f"CarePlan/{r['id']}" for r in found if isinstance(r.get("id"), str))
                if based_on:
                    tasks += client.search_all(
                        "Task", {"code": plan_codes, "based-on": based_on, "_count": PAGE_SIZE}
                    )
                tasks += client.search_all("Task", {"code": f"{TASK_SYSTEM}|safety-follow-up", "patient": subjects,
                                                    "_count": PAGE_SIZE})  # fmt: skip
        wanted_children = set(named) if named is not None else None
        enrolments = [e for e in (enrolment_from(r) for r in plans_found)
                      if e is not None and e.iss == iss and (wanted_children is None or e.key in wanted_children)]  # fmt: skip
        keys = sorted({e.key for e in enrolments})
        plans = {e.id for e in enrolments}
        referrals = [r for r in (referral_from(t) for t in tasks) if r is not None and r.careplan_id in plans]
        contacts = [c for c in (contact_from(t, kind="hs-contact") for t in tasks)
                    if c is not None and c.careplan_id in plans]  # fmt: skip
        wanted = set(keys)
        safety = [w for w in (work_task_from(t) for t in tasks) if w is not None and w.key in wanted]
        caregivers: dict[PatientKey, list[Caregiver]] = {}
        events: dict[PatientKey, list[ScreenEvent]] = {}
        gestations: dict[PatientKey, Gestation] = {}
        for batch in _batches(keys, SUBJECTS_PER_SEARCH):
            subjects = ",".join(k.relative for k in batch)
            related = client.search_all("RelatedPerson", {"patient": subjects, "_count": PAGE_SIZE})
            for key in batch:
                caregivers[key] = from_registry(related, key)
            observations = client.search_all("Observation", {"subject": subjects, "_count": PAGE_SIZE})
            by_child: dict[PatientKey, list[dict[str, Any]]] = {}
            for observation in observations:
                subject = patient_key(observation.get("subject"))
                if subject is not None and subject in wanted:
                    by_child.setdefault(subject, []).append(observation)
            for key in batch:
                events[key] = merged(events_from_observations(by_child.get(key, []), self.catalogue),
                                     events_from_points(ehr_scores.get(key, []), self.catalogue))  # fmt: skip
                gestation = gestation_from(by_child.get(key, []), ((GESTATION_SYSTEM, GESTATION_CODE),), "Tandem",
                                           key)  # fmt: skip
                if gestation is not None:
                    gestations[key] = gestation
        return HealthyStepsData(enrolments, referrals, contacts, safety, caregivers, events,
                                client.counter.total - before, gestations)  # fmt: skip

    def enrolment(self, careplan_id: str, iss: str) -> Enrolment:
        enrolment = self.caseload.get(careplan_id, iss)
        if enrolment.program != self.program.key:
            raise errors.FHIRNotFound("not a HealthySteps enrolment")
        return enrolment

    # --- writing ----------------------------------------------------------------------------------

    def enrol(self, key: PatientKey, *, name: str | None, birth_date: date | None, mrn: str | None,
              specialist: Member | None, pcp: Member | None, today: date,
              existing: Iterable[Enrolment]) -> Enrolment:  # fmt: skip
        """Enrol a child in Tier 1 (HealthySteps enrols every child 0–3 seen at the practice)."""
        months = age_months(birth_date, today)
        if not self.program.fits_age(months):
            raise HealthyStepsProblem("HealthySteps is for children from birth to 3 years; this patient's age "
                                      "does not fit (or the EHR gives no birth date).")  # fmt: skip
        for e in existing:
            if e.active and e.program == self.program.key:
                raise HealthyStepsProblem(f"Already enrolled in HealthySteps since {e.start.isoformat()}.")
        team = {role: m for role, m in (("hs-specialist", specialist), ("pcp", pcp)) if m is not None}
        enrolment = Enrolment(f"hs-{uuid.uuid4().hex}", key.iss, key.patient_id, name, self.program.key,
                              "active-treatment", today, team=team, consent_given=False, birth_date=birth_date,
                              mrn=mrn, tiers=(TierMove("1", today, "enrolled", specialist),))  # fmt: skip
        return self.caseload.enrol(enrolment)

    def move_tier(self, enrolment: Enrolment, tier: str, reason: str, note: str | None, decided_by: Member | None,
                  basis: tuple[str, ...], today: date) -> Enrolment:  # fmt: skip
        if tier not in self.program.tiers:
            raise HealthyStepsProblem("Choose Tier 1, 2 or 3.")
        if reason not in self.program.reasons or reason == "enrolled":
            raise HealthyStepsProblem("Choose the reason for the move, so the family's history says why.")
        current = enrolment.tier
        if current is not None and current.tier == tier:
            raise HealthyStepsProblem(f"The family is already in {self.program.tier_title(tier)}.")
        move = TierMove(tier, today, reason, decided_by, basis, (note or "").strip() or None)
        return self.caseload.save(replace(enrolment, tiers=(*enrolment.tiers, move)))

    def exit(self, enrolment: Enrolment, reason: str, today: date) -> Enrolment:
        phase = {"aged-out": "discharged", "transferred": "discharged", "lost": "withdrawn"}.get(reason)
        if phase is None:
            raise HealthyStepsProblem("Choose why the family leaves HealthySteps.")
        return self.caseload.save(with_phase(enrolment, phase, today))

    def log_contact(self, enrolment: Enrolment, *, when: date, minutes: int, contact_type: str, present: str,
                    owner: Member | None, note: str | None, today: date) -> Contact:  # fmt: skip
        if contact_type not in self.program.contact_types:
            raise HealthyStepsProblem("Choose the kind of contact.")
        if present not in self.program.present:
            raise HealthyStepsProblem("Say who was present: the child, the caregiver(s), or both.")
        if not 1 <= minutes <= 480:
            raise HealthyStepsProblem("Minutes must be between 1 and 480.")
        if when > today or (today - when).days > 365:
            raise HealthyStepsProblem(
                "The contact's date must be within the last year and not in the future."
            )
        contact = Contact(f"hs-contact-{uuid.uuid4().hex}", enrolment.id, when, minutes, contact_type,
                          "hs-specialist", owner, (note or "").strip() or None, present)  # fmt: skip
        self._client().update(
            validated(contact_task(contact, enrolment, datetime.now(UTC), kind="hs-contact"))
        )
        self.caseload.invalidate()
        return contact

    def refer(self, enrolment: Enrolment, *, service: str, for_whom: str, caregiver: Caregiver | None,
              concern: str | None, goal: str | None, organisation: str | None, note: str | None,
              basis: tuple[str, ...], requester: Member | None) -> Referral:  # fmt: skip
        if service not in self.program.services:
            raise HealthyStepsProblem("Choose the service the family is referred to.")
        if for_whom not in ("child", "caregiver", "both"):
            raise HealthyStepsProblem("Say whom the referral is for: the child, a caregiver, or both.")
        if for_whom != "child" and caregiver is None:
            raise HealthyStepsProblem(
                "Choose the caregiver the referral is for (record them first if needed)."
            )
        if concern and concern not in self.program.concerns:
            raise HealthyStepsProblem("Choose a health concern from the list, or none.")
        now = datetime.now(UTC)
        referral = Referral(secrets.token_hex(12), enrolment.id, for_whom, service, self.program.services[service],
                            "requested", now.date(), caregiver=caregiver.reference if caregiver else None,
                            concern=concern or None, organisation=(organisation or "").strip() or None,
                            note=(note or "").strip() or None)  # fmt: skip
        resources = referral_resources(
            referral, enrolment, services=self.program.services,
            concern=self.program.concerns.get(concern or ""), basis=basis, goal=(goal or "").strip() or None,
            requester=requester, now=now,
        )  # fmt: skip
        self._client().transaction(put_transaction(resources))
        self.caseload.invalidate()
        return referral

    def update_referral(self, enrolment: Enrolment, referral_id: str, status: str, note: str | None,
                        closer: Member | None, *, version: str) -> Referral:  # fmt: skip
        """Change a referral's status from the version of its Task the user saw (a stale one: ReferralChanged)."""
        client = self._client()
        if not referral_id.isalnum():
            raise errors.FHIRNotFound("no such referral")
        task = client.read("Task", f"referral-{referral_id}")
        referral = referral_from(task)
        if referral is None or referral.careplan_id != enrolment.id:
            raise errors.FHIRNotFound("no such referral")
        if referral.version != version:
            raise ReferralChanged("someone else changed this referral since it was opened", http_status=412)
        if not referral.open:
            raise HealthyStepsProblem("This referral is already closed.")
        now = datetime.now(UTC)
        if status in ("accepted", "in-progress", "on-hold"):
            updated = {k: v for k, v in task.items() if k != "meta"}
            updated["status"], updated["lastModified"] = status, now.isoformat()
            if note:
                updated["note"] = [*(task.get("note") or []), {"text": note.strip()}]
            try:
                client.update(validated(updated), if_match=etag_for(task))
            except errors.FHIRPreconditionFailed:
                raise ReferralChanged(
                    "someone else changed this referral since it was opened", http_status=412
                ) from None
        elif status in ("completed", "cancelled", "rejected", "failed"):
            request = client.read("ServiceRequest", f"sr-{referral_id}")
            client.transaction(put_transaction(closed_referral(task, request, status, (note or "").strip() or None,
                                                            now, closer)))  # fmt: skip
        else:
            raise HealthyStepsProblem("Choose the referral's new status.")
        self.caseload.invalidate()
        return referral_from(client.read("Task", f"referral-{referral_id}")) or referral

"""The registry store as the care manager's system of record: enrolments, contacts, follow-ups, reviews.

Reads for the worklist are a few per-type searches joined in memory (requests grow with N / page size, never
one query per patient), cached in the key-value store and invalidated by every write Tandem makes. Updates use
If-Match; a stale version raises EnrolmentChanged, which says what changed.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from fhir_mappings.common.identity import PatientKey, legacy_patient_id, patient_key
from fhir_mappings.common.validation import r4_errors
from fhir_mappings.registry.resources import (
    SAFETY_OUTCOMES,
    Contact,
    Enrolment,
    Member,
    WorkTask,
    careplan,
    closed_safety_task,
    completed_review,
    contact_from,
    contact_task,
    enrolment_from,
    work_task,
    work_task_from,
)
from fhir_mappings.screening.history import SCORE_CODE_PARAM, ScorePoint, score_points
from launch import errors
from launch.fhir import FHIRClient, etag_for
from launch.store import KeyValueStore

log = logging.getLogger(__name__)

PAGE_SIZE = 200
CACHE_TTL = 300
#: Bumped whenever the cached form changes, so a deploy never reads an older release's entries.
CACHE_SCHEMA = 2


#: Registry resource types that name a patient, and the field that does.
MIGRATED_FIELDS = (
    ("CarePlan", "subject"),
    ("Task", "for"),
    ("Observation", "subject"),
    ("QuestionnaireResponse", "subject"),
)


class EnrolmentChanged(errors.FHIRPreconditionFailed):
    """Someone else saved this enrolment since it was opened; `changes` says what differs."""

    def __init__(self, message: str, current: Enrolment, changes: list[str]) -> None:
        super().__init__(message, http_status=412)
        self.current = current
        self.changes = changes


@dataclass
class CaseloadData:
    enrolments: list[Enrolment]
    contacts: list[Contact]
    tasks: list[WorkTask]
    scores: dict[PatientKey, list[ScorePoint]]
    requests: int  # how many FHIR requests loading it cost (0 when it came from the cache)
    #: Resources written before issuers were recorded: shown to nobody until `tandem registry migrate-issuer`.
    unassigned: int = 0

    def for_issuer(self, iss: str) -> CaseloadData:
        """Only this EHR's patients: what every page of a launch from `iss` may show."""
        enrolments = [e for e in self.enrolments if e.iss == iss]
        plans = {e.id for e in enrolments}
        return CaseloadData(
            enrolments=enrolments,
            contacts=[c for c in self.contacts if c.careplan_id in plans],
            tasks=[t for t in self.tasks if t.iss == iss],
            scores={k: v for k, v in self.scores.items() if k.iss == iss},
            requests=self.requests,
            unassigned=self.unassigned,
        )

    def enrolments_of(self, key: PatientKey) -> list[Enrolment]:
        """One patient's enrolments, the active and latest first."""
        return sorted((e for e in self.enrolments if e.key == key),
                      key=lambda e: (e.active, e.start), reverse=True)  # fmt: skip

    def for_patient(self, key: PatientKey) -> CaseloadData:
        mine = self.for_issuer(key.iss)
        enrolments = [e for e in mine.enrolments if e.patient_id == key.patient_id]
        plans = {e.id for e in enrolments}
        return CaseloadData(
            enrolments=enrolments,
            contacts=[c for c in mine.contacts if c.careplan_id in plans],
            tasks=[t for t in mine.tasks if t.patient_id == key.patient_id],
            scores={k: v for k, v in mine.scores.items() if k == key},
            requests=self.requests,
            unassigned=self.unassigned,
        )


def _validated(resource: dict[str, Any]) -> dict[str, Any]:
    problems = r4_errors(resource)
    if problems:
        raise errors.MalformedResource(f"{resource['resourceType']} failed R4 validation: {problems[0]}")
    return resource


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _member(data: dict[str, Any] | None) -> Member | None:
    return Member(data["reference"], data.get("display")) if data else None


def _to_cache(data: CaseloadData) -> dict[str, Any]:
    return {
        "enrolments": [{**asdict(e), "start": _iso(e.start), "end": _iso(e.end), "consent_date": _iso(e.consent_date)}
                       for e in data.enrolments],
        "contacts": [{**asdict(c), "when": _iso(c.when)} for c in data.contacts],
        "tasks": [{**asdict(t), "due": _iso(t.due), "authored": _iso(t.authored), "completed": _iso(t.completed)}
                  for t in data.tasks],
        "scores": [[key.iss, key.patient_id, [[p.instrument, p.when.isoformat(), p.score, p.code, p.submission]
                                               for p in points]] for key, points in data.scores.items()],
        "unassigned": data.unassigned,
    }  # fmt: skip


def _from_cache(payload: dict[str, Any]) -> CaseloadData:
    enrolments = [
        Enrolment(**{**e, "start": _day(e["start"]), "end": _day(e["end"]), "consent_date": _day(e["consent_date"]),
                     "team": {role: Member(**m) for role, m in e["team"].items()}})
        for e in payload["enrolments"]
    ]  # fmt: skip
    contacts = [
        Contact(**{**c, "when": _day(c["when"]), "owner": _member(c["owner"])}) for c in payload["contacts"]
    ]
    tasks = [WorkTask(**{**t, "due": _day(t["due"]), "authored": _day(t["authored"]), "completed": _day(t["completed"])})
             for t in payload["tasks"]]  # fmt: skip
    scores = {PatientKey(iss, pid): [ScorePoint(i, datetime.fromisoformat(w), s, "Tandem", c, sub)
                                     for i, w, s, c, sub in points] for iss, pid, points in payload["scores"]}  # fmt: skip
    return CaseloadData(
        enrolments, contacts, tasks, scores, requests=0, unassigned=int(payload.get("unassigned", 0))
    )


def describe_changes(mine: Enrolment, theirs: Enrolment) -> list[str]:
    changes = []
    if mine.phase != theirs.phase:
        changes.append(f"status is now {theirs.phase.replace('-', ' ')} (you were changing it to "
                       f"{mine.phase.replace('-', ' ')})")  # fmt: skip
    if mine.flagged_for_review != theirs.flagged_for_review:
        changes.append("flagged for review" if theirs.flagged_for_review else "no longer flagged for review")
    for role in ("pcp", "care-manager", "psychiatric-consultant"):
        if mine.member(role) != theirs.member(role):
            member = theirs.member(role)
            changes.append(
                f"{role.replace('-', ' ')} is now {(member.display or member.reference) if member else 'none'}"
            )
    if mine.program != theirs.program:
        changes.append(f"program is now {theirs.program}")
    return changes or ["saved by someone else (no visible field changed)"]


def invalidate_registry_cache(store: KeyValueStore) -> None:
    """Every write to the registry store makes the cached worklist data stale."""
    store.set("registry:generation", secrets.token_hex(8))


class CaseloadService:
    def __init__(self, store: KeyValueStore, registry: FHIRClient | None, *, clock: Any = time.time) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock

    def _client(self) -> FHIRClient:
        if self.registry is None:
            raise errors.ConfigurationError("no registry store is configured (TANDEM_REGISTRY_URL)")
        return self.registry

    # --- cache ------------------------------------------------------------------------------------

    def _generation(self) -> str:
        generation = self.store.get("registry:generation")
        if generation is None:
            generation = secrets.token_hex(8)
            self.store.set("registry:generation", generation)
        return generation

    def invalidate(self) -> None:
        invalidate_registry_cache(self.store)

    def load(self, *, use_cache: bool = True) -> CaseloadData:
        """The registry's enrolments, contacts, tasks and scores: from the cache (a compact domain form, no FHIR
        parsing) or from three paged per-type searches."""
        key = f"registry:data:v{CACHE_SCHEMA}:{self._generation()}"
        if use_cache:
            cached = self.store.get(key)
            if cached is not None:
                try:
                    return _from_cache(json.loads(cached))
                except (ValueError, TypeError, KeyError):  # written by another release: reload, never a 500
                    log.warning("ignored a registry cache entry of another shape")
        client = self._client()
        before = client.counter.total
        raw = {
            "careplans": client.search_all("CarePlan", {"_count": str(PAGE_SIZE)}, max_pages=1000),
            "tasks": client.search_all("Task", {"_count": str(PAGE_SIZE)}, max_pages=1000),
            "observations": client.search_all(
                "Observation", {"code": SCORE_CODE_PARAM, "_count": str(PAGE_SIZE)}, max_pages=1000
            ),  # fmt: skip
        }
        data = self._parse(raw, requests=client.counter.total - before)
        self.store.set(key, json.dumps(_to_cache(data)), CACHE_TTL)
        return data

    @staticmethod
    def _parse(raw: dict[str, list[dict[str, Any]]], *, requests: int) -> CaseloadData:
        enrolments = [e for e in (enrolment_from(r) for r in raw["careplans"]) if e]
        contacts = [c for c in (contact_from(r) for r in raw["tasks"]) if c]
        tasks = [t for t in (work_task_from(r) for r in raw["tasks"]) if t]
        by_patient: dict[PatientKey, list[dict[str, Any]]] = {}
        unassigned = sum(1 for e in enrolments if not e.iss) + sum(1 for t in tasks if not t.iss)
        for observation in raw["observations"]:
            key = patient_key(observation.get("subject")) if isinstance(observation, dict) else None
            if key is not None:
                by_patient.setdefault(key, []).append(observation)
            elif isinstance(observation, dict) and legacy_patient_id(observation.get("subject")):
                unassigned += 1
        scores = {key: score_points(observations, "Tandem") for key, observations in by_patient.items()}
        if len(raw["careplans"]) > len(enrolments):
            log.warning(
                "skipped %d registry CarePlans of an unexpected shape",
                len(raw["careplans"]) - len(enrolments),
            )
        if unassigned:
            log.warning(
                "%d registry resources name no EHR issuer: run `tandem registry migrate-issuer`", unassigned
            )
        return CaseloadData(enrolments, contacts, tasks, scores, requests, unassigned)

    # --- enrolments -------------------------------------------------------------------------------

    def enrolments_for(self, iss: str, patient_id: str) -> list[Enrolment]:
        return self.load().enrolments_of(PatientKey(iss, patient_id))

    def get(self, careplan_id: str, iss: str) -> Enrolment:
        """The enrolment, only if it belongs to a patient of `iss` (another EHR's record is not found)."""
        resource = self._client().read("CarePlan", careplan_id)
        enrolment = enrolment_from(resource)
        if enrolment is None or enrolment.iss != iss:
            raise errors.FHIRNotFound("no such enrolment")
        return enrolment

    def enrol(self, enrolment: Enrolment) -> Enrolment:
        for existing in self.enrolments_for(enrolment.iss, enrolment.patient_id):
            if existing.active and existing.program == enrolment.program:
                raise errors.FHIRConflict(
                    f"the patient is already enrolled in {existing.program} (since {existing.start})"
                )
        written = self._client().update(_validated(careplan(replace(enrolment, version=None))))
        self.invalidate()
        return enrolment_from(written) or enrolment

    def save(self, enrolment: Enrolment) -> Enrolment:
        """Update with If-Match on the version the user saw; a stale one raises EnrolmentChanged."""
        resource = _validated(careplan(enrolment))
        try:
            written = self._client().update(resource, if_match=etag_for(resource))
        except errors.FHIRPreconditionFailed:
            current = self.get(enrolment.id, enrolment.iss)
            self.invalidate()
            raise EnrolmentChanged("someone else changed this enrolment", current,
                                   describe_changes(enrolment, current)) from None  # fmt: skip
        self.invalidate()
        return enrolment_from(written) or enrolment

    # --- tasks ------------------------------------------------------------------------------------

    def log_contact(self, enrolment: Enrolment, when: date, minutes: int, contact_type: str, role: str,
                    owner: Member | None, note: str | None, contact_id: str | None = None) -> Contact:  # fmt: skip
        contact = Contact(contact_id or f"contact-{uuid.uuid4().hex}", enrolment.id, when, minutes, contact_type, role,
                          owner, note)  # fmt: skip
        self._client().update(_validated(contact_task(contact, enrolment, datetime.now(UTC))))
        self.invalidate()
        return contact

    def add_task(self, kind: str, enrolment: Enrolment, *, due: date | None = None, description: str | None = None
                 ) -> str:  # fmt: skip
        task_id = f"{kind}-{uuid.uuid4().hex}"
        self._client().update(_validated(work_task(kind, task_id, enrolment, datetime.now(UTC), due=due,
                                                   description=description)))  # fmt: skip
        self.invalidate()
        return task_id

    def request_review(self, enrolment: Enrolment, reason: str) -> Enrolment:
        updated = self.save(replace(enrolment, flagged_for_review=True))
        self.add_task("case-review", updated, description=reason)
        return updated

    def record_review(self, enrolment: Enrolment, recommendations: str, reviewer: Member | None) -> Enrolment:
        """Close every open review Task of the enrolment with the recommendations (or record one), unflag it."""
        client = self._client()
        now = datetime.now(UTC)
        open_reviews = [t for t in self.load(use_cache=False).tasks
                        if t.careplan_id == enrolment.id and t.kind == "case-review" and t.open]  # fmt: skip
        if not open_reviews:
            task_id = self.add_task("case-review", enrolment, description="Weekly caseload review")
            open_reviews = [
                WorkTask(task_id, "case-review", "requested", enrolment.patient_id, enrolment.id, None, None)
            ]
        for task in open_reviews:
            current = client.read("Task", task.id)
            client.update(
                _validated(completed_review(current, recommendations, now, reviewer)),
                if_match=etag_for(current),
            )
        updated = (
            self.save(replace(enrolment, flagged_for_review=False))
            if enrolment.flagged_for_review
            else enrolment
        )
        self.invalidate()
        return updated

    def _task(self, task_id: str, iss: str, *, kind: str, careplan_id: str | None = None,
              patient_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The Task, only if it is of the expected kind and belongs to the enrolment / patient of `iss`."""
        current = self._client().read("Task", task_id)
        task = work_task_from(current)
        if (
            task is None
            or task.kind != kind
            or task.iss != iss
            or (careplan_id is not None and task.careplan_id != careplan_id)
            or (patient_id is not None and task.patient_id != patient_id)
        ):
            raise errors.FHIRNotFound("no such task")
        return current

    def complete_task(self, task_id: str, enrolment: Enrolment) -> None:
        """Mark a follow-up of this enrolment done (safety follow-ups close with an outcome instead)."""
        client = self._client()
        current = self._task(task_id, enrolment.iss, kind="follow-up", careplan_id=enrolment.id)
        if current.get("status") == "completed":
            return
        client.update({**current, "status": "completed", "lastModified": datetime.now(UTC).isoformat(),
                       "executionPeriod": {"end": datetime.now(UTC).isoformat()}},
                      if_match=etag_for(current))  # fmt: skip
        self.invalidate()

    def close_safety_task(self, task_id: str, key: PatientKey | None, iss: str, outcome: str, note: str,
                          closer: Member | None) -> None:  # fmt: skip
        """Close a same-day safety follow-up with its outcome; `key` limits it to one patient (patient launches)."""
        if outcome not in SAFETY_OUTCOMES or not note.strip():
            raise errors.FHIRBadRequest("closing a safety follow-up needs an outcome and a note")
        current = self._task(
            task_id, iss, kind="safety-follow-up", patient_id=key.patient_id if key else None
        )
        if current.get("status") == "completed":
            return
        self._client().update(_validated(closed_safety_task(current, outcome, note.strip(), datetime.now(UTC),
                                                            closer)), if_match=etag_for(current))  # fmt: skip
        self.invalidate()

    # --- migration --------------------------------------------------------------------------------

    def migrate_issuer(self, iss: str, *, dry_run: bool = False) -> dict[str, int]:
        """Assign every registry resource written without an EHR issuer to `iss` (the only EHR a deployment had
        before issuers were recorded). Updates with If-Match; returns counts by resource type."""
        client = self._client()
        counts: dict[str, int] = {}
        for resource_type, field_name in MIGRATED_FIELDS:
            for resource in client.search_all(resource_type, {"_count": str(PAGE_SIZE)}, max_pages=1000):
                patient_id = legacy_patient_id(resource.get(field_name))
                if patient_id is None:
                    continue
                counts[resource_type] = counts.get(resource_type, 0) + 1
                if dry_run:
                    continue
                migrated = {**resource, field_name: {**resource[field_name],
                                                     **PatientKey(iss, patient_id).reference()}}  # fmt: skip
                client.update(_validated(migrated), if_match=etag_for(resource))
        if not dry_run:
            self.invalidate()
        return counts

"""The registry store as the care manager's system of record: enrolments, contacts, follow-ups, reviews.

Reads for the worklist are a few per-type searches joined in memory (requests grow with N / page size, never
one query per patient), kept as a snapshot by id in the key-value store and patched with what changed since (a
write marks it behind; it is never thrown away for one change). A chart reads one patient by patient searches. Updates use
If-Match; a stale version raises EnrolmentChanged, which says what changed.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir_mappings.common.dates import parse_datetime
from fhir_mappings.common.identity import PatientKey, legacy_patient_id, patient_key
from fhir_mappings.registry.recommendations import Review
from fhir_mappings.registry.resources import (
    SAFETY_OUTCOMES,
    SAFETY_STEPS,
    TASK_SYSTEM,
    Contact,
    Enrolment,
    Member,
    WorkTask,
    careplan,
    closed_safety_task,
    completed_review,
    contact_task,
    enrolment_from,
    safety_step_added,
    work_task,
    work_task_from,
)
from fhir_mappings.screening.history import REGISTRY_SCORE_CODE_PARAM
from fhir_mappings.smi.social import SOCIAL
from launch import errors
from launch.fhir import FHIRClient, etag_for
from launch.store import KeyValueStore
from smartapp.caseload.snapshot import SNAPSHOT_SCHEMA, CaseloadData, Snapshot, snapshot_from_json
from smartapp.outgoing import validated

log = logging.getLogger(__name__)

#: Asked of the registry per page (servers cap it: sekmet-fhir and HAPI at 1,000).
PAGE_SIZE = 1000
#: Without a write, a snapshot synced less than this long ago is used as it is.
FRESH_SECONDS = 15
#: A full reload this often drops resources deleted outside Tandem (Tandem itself never deletes).
FULL_RELOAD_SECONDS = 900
#: An incremental search starts this long before the server time of the last one (writes in flight).
SYNC_OVERLAP_SECONDS = 5
#: When the server gives no time, Tandem's clock is used with this much more overlap (clock skew).
LOCAL_CLOCK_OVERLAP_SECONDS = 300
SNAPSHOT_TTL = 24 * 3600
GENERATION_KEY = "registry:generation"
#: Changed by a write that did not say which patients it touched (the ready rows then search the registry).
UNHINTED_KEY = "registry:generation-unhinted"
#: The patients writes said they touched since the ready rows last read them ("issuer\npatient id").
WRITTEN_KEY = "registry:written"
SNAPSHOT_KEY = f"registry:snapshot:v{SNAPSHOT_SCHEMA}"
SNAPSHOT_META_KEY = f"registry:snapshot-meta:v{SNAPSHOT_SCHEMA}"
#: The caseload's searches: one per resource type.
CASELOAD_SEARCHES: tuple[tuple[str, dict[str, str]], ...] = (
    ("CarePlan", {}),
    ("Task", {}),
    # Score results and the SMI program's social-status answers: one search.
    ("Observation", {"code": f"{REGISTRY_SCORE_CODE_PARAM},{SOCIAL.search_codes}"}),
)


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


def invalidate_registry_cache(store: KeyValueStore, keys: Iterable[PatientKey] | None = None) -> None:
    """Every write to the registry store marks the snapshot as behind (the next load patches it). A write that says
    which patients it touched (`keys`: every one of them) lets the worklist's ready rows read those patients only;
    any other write makes them search what changed in the whole registry."""
    token = secrets.token_hex(8)
    named = list(keys) if keys is not None else []
    if not named:  # whose it is not said: the ready rows search the registry for changes
        store.set(UNHINTED_KEY, token)
    for key in named:
        store.add_to_set(WRITTEN_KEY, f"{key.iss}\n{key.patient_id}")
    store.set(GENERATION_KEY, token)


def _json_or_none(raw: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _bundle_time(page: Mapping[str, Any]) -> str | None:
    meta = page.get("meta")
    value = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else None


def _page_resources(page: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in page.get("entry") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("resource"), dict):
            if (entry.get("search") or {}).get("mode", "match") == "match":
                yield entry["resource"]


class CaseloadService:
    def __init__(self, store: KeyValueStore, registry: FHIRClient | None, *, clock: Any = time.time) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        #: This process's copy of the latest snapshot (by stamp) and the data built from it.
        self._memo: tuple[str, Snapshot, CaseloadData] | None = None
        #: One sync at a time per process: threads share the memo's snapshot, which a sync patches in place.
        self._sync_lock = threading.Lock()

    def _client(self) -> FHIRClient:
        if self.registry is None:
            raise errors.ConfigurationError("no registry store is configured (TANDEM_REGISTRY_URL)")
        return self.registry

    # --- reading ----------------------------------------------------------------------------------

    def _generation(self) -> str:
        generation = self.store.get(GENERATION_KEY)
        if generation is None:
            generation = secrets.token_hex(8)
            self.store.set(GENERATION_KEY, generation)
        return generation

    def invalidate(self, *keys: PatientKey) -> None:
        """After a write: the next load brings the snapshot up to date (an incremental search, not a reload).
        `keys`: the patients the write touched, when it knows them all."""
        invalidate_registry_cache(self.store, keys or None)

    def load(self, *, use_cache: bool = True) -> CaseloadData:
        """The registry's enrolments, contacts, tasks and scores.

        Served from the snapshot while it is fresh and nothing was written; otherwise the snapshot is patched with
        what changed since its server time (one search per type); a full reload (paged per-type searches sorted by
        id, parsed page by page) happens the first time, after FULL_RELOAD_SECONDS (which also drops resources
        deleted outside Tandem), or with use_cache=False."""
        with self._sync_lock:
            return self._load(use_cache)

    def _load(self, use_cache: bool) -> CaseloadData:
        generation = self._generation()
        meta = _json_or_none(self.store.get(SNAPSHOT_META_KEY)) if use_cache else None
        snapshot: Snapshot | None = None
        if meta is not None:
            fresh = meta.get("generation") == generation and self.clock() - meta["synced_at"] < FRESH_SECONDS
            if self._memo is None or self._memo[0] != meta.get("stamp"):
                stored = self._stored_snapshot(meta)  # synced by another process
                self._memo = (meta["stamp"], stored, stored.data(0)) if stored is not None else None
            if self._memo is not None:
                snapshot = self._memo[1]
                if fresh:
                    return self._memo[2]
        now = self.clock()
        client = self._client()
        before = client.counter.total
        full = snapshot is None or meta is None or now - meta.get("full_at", 0) > FULL_RELOAD_SECONDS
        if full or snapshot is None or meta is None:
            snapshot = Snapshot()
        elif isinstance(meta.get("since"), str):
            snapshot.since = meta["since"]  # a sync that changed nothing kept it in the meta only
        snapshot.changed = 0
        snapshot.since = self._fill(client, snapshot, since=snapshot.since)  # None: a full load
        # Freshness and the full-reload period count from the END of the sync: a load longer than FRESH_SECONDS
        # is not stale the moment it is written.
        ended = self.clock()
        full_at = ended if full or meta is None else meta["full_at"]
        if full or meta is None or snapshot.changed or self._memo is None:
            stamp = secrets.token_hex(8)
            self.store.set(
                SNAPSHOT_KEY, f'{{"stamp":{json.dumps(stamp)},{snapshot.dumps()[1:]}', SNAPSHOT_TTL
            )
        else:
            # Nothing changed: the stored snapshot (and every process's copy of it) stays as it is; only the
            # time it is current to moves on.
            stamp = meta["stamp"]
        self.store.set(SNAPSHOT_META_KEY, json.dumps({"stamp": stamp, "generation": generation, "synced_at": ended,
                                                      "full_at": full_at, "since": snapshot.since}),
                       SNAPSHOT_TTL)  # fmt: skip
        data = snapshot.data(client.counter.total - before)
        if data.unassigned:
            log.warning(
                "%d registry resources name no EHR issuer: run `tandem registry migrate-issuer`",
                data.unassigned,
            )
        self._memo = (stamp, snapshot, replace(data, requests=0))
        return data

    def _stored_snapshot(self, meta: dict[str, Any]) -> Snapshot | None:
        payload = _json_or_none(self.store.get(SNAPSHOT_KEY))
        if payload is None or payload.get("stamp") != meta.get("stamp"):
            return None
        snapshot = snapshot_from_json(payload)
        if snapshot is None:  # written by another release, or damaged: reload, never a 500
            log.warning("ignored a registry snapshot of another shape")
        return snapshot

    def _fill(self, client: FHIRClient, snapshot: Snapshot, *, since: str | None) -> str | None:
        """Read every caseload resource (or those changed since `since`) into `snapshot`, page by page; returns
        the server time the snapshot is now current to, less an overlap for writes in flight."""
        server_time: str | None = None
        for resource_type, params in CASELOAD_SEARCHES:
            query = {**params, "_sort": "_id", "_count": str(PAGE_SIZE)}
            if since:
                query["_lastUpdated"] = f"ge{since}"
            for page in client.iter_pages(resource_type, query, max_pages=10_000):
                server_time = server_time or _bundle_time(page)
                snapshot.apply(resource_type, _page_resources(page))
        stamp = parse_datetime(server_time) if server_time else None
        if stamp is None:  # the server did not say its time: overlap generously with ours
            stamp = datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=LOCAL_CLOCK_OVERLAP_SECONDS)
        return (stamp - timedelta(seconds=SYNC_OVERLAP_SECONDS)).isoformat(timespec="milliseconds")

    def load_patient(self, key: PatientKey) -> CaseloadData:
        """One patient's enrolments, tasks and scores by three patient searches, whatever the caseload's size
        (the chart's registry part never reads the whole registry)."""
        client = self._client()
        before = client.counter.total
        snapshot = Snapshot()
        for resource_type, _ in CASELOAD_SEARCHES:
            # The patient's reference only: the caseload's code filter does not ride along (a store matches it
            # across the whole registry before the patient; its results are few, and the snapshot keeps only
            # scores and social answers anyway).
            patient_param = "patient" if resource_type == "Task" else "subject"
            query = {patient_param: key.relative, "_count": str(PAGE_SIZE)}
            for page in client.iter_pages(resource_type, query, max_pages=100):
                snapshot.apply(resource_type, _page_resources(page))
        return snapshot.data(client.counter.total - before).for_patient(key)

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
        written = self._client().update(validated(careplan(replace(enrolment, version=None))))
        self.invalidate(enrolment.key)
        return enrolment_from(written) or enrolment

    def save(self, enrolment: Enrolment) -> Enrolment:
        """Update with If-Match on the version the user saw; a stale one raises EnrolmentChanged."""
        resource = validated(careplan(enrolment))
        try:
            written = self._client().update(resource, if_match=etag_for(resource))
        except errors.FHIRPreconditionFailed:
            current = self.get(enrolment.id, enrolment.iss)
            self.invalidate(enrolment.key)
            raise EnrolmentChanged("someone else changed this enrolment", current,
                                   describe_changes(enrolment, current)) from None  # fmt: skip
        self.invalidate(enrolment.key)
        return enrolment_from(written) or enrolment

    # --- tasks ------------------------------------------------------------------------------------

    def log_contact(self, enrolment: Enrolment, when: date, minutes: int, contact_type: str, role: str,
                    owner: Member | None, note: str | None, contact_id: str | None = None) -> Contact:  # fmt: skip
        contact = Contact(contact_id or f"contact-{uuid.uuid4().hex}", enrolment.id, when, minutes, contact_type, role,
                          owner, note)  # fmt: skip
        self._client().update(validated(contact_task(contact, enrolment, datetime.now(UTC))))
        self.invalidate(enrolment.key)
        return contact

    def add_task(self, kind: str, enrolment: Enrolment, *, due: date | None = None, description: str | None = None
                 ) -> str:  # fmt: skip
        task_id = f"{kind}-{uuid.uuid4().hex}"
        self._client().update(validated(work_task(kind, task_id, enrolment, datetime.now(UTC), due=due,
                                                   description=description)))  # fmt: skip
        self.invalidate(enrolment.key)
        return task_id

    def request_review(self, enrolment: Enrolment, reason: str) -> Enrolment:
        updated = self.save(replace(enrolment, flagged_for_review=True))
        self.add_task("case-review", updated, description=reason)
        return updated

    def case_review_tasks(self, key: PatientKey) -> list[dict[str, Any]]:
        """The patient's case-review Tasks in the registry (open and done), for their recommendations' statuses."""
        return self._client().search_all(
            "Task", {"patient": key.relative, "code": f"{TASK_SYSTEM}|case-review", "_count": "100"}
        )

    def record_review(self, enrolment: Enrolment, recommendations: str | Review, reviewer: Member | None,
                      *, at: datetime | None = None) -> tuple[Enrolment, str]:  # fmt: skip
        """Close every open review Task of the enrolment with the recommendations (or record one), unflag it.
        Returns the enrolment and the id of the review Task closed first (the consult note's key). `at`: when the
        review took place, for a review recorded afterwards (the demo's past reviews); default now."""
        client = self._client()
        now = at or datetime.now(UTC)
        open_reviews = [t for t in self.load_patient(enrolment.key).tasks
                        if t.careplan_id == enrolment.id and t.kind == "case-review" and t.open]  # fmt: skip
        if not open_reviews:
            task_id = self.add_task("case-review", enrolment, description="Weekly caseload review")
            open_reviews = [
                WorkTask(task_id, "case-review", "requested", enrolment.patient_id, enrolment.id, None, None)
            ]
        for task in open_reviews:
            current = client.read("Task", task.id)
            client.update(
                validated(completed_review(current, recommendations, now, reviewer)),
                if_match=etag_for(current),
            )
        updated = (
            self.save(replace(enrolment, flagged_for_review=False))
            if enrolment.flagged_for_review
            else enrolment
        )
        self.invalidate(enrolment.key)
        return updated, open_reviews[0].id

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
        self.invalidate(enrolment.key)

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
        self._client().update(validated(closed_safety_task(current, outcome, note.strip(), datetime.now(UTC),
                                                            closer)), if_match=etag_for(current))  # fmt: skip
        self.invalidate(*(k for k in [patient_key(current.get("for"))] if k is not None))

    def safety_task(self, task_id: str, iss: str, key: PatientKey) -> WorkTask | None:
        """A patient's safety follow-up as it is now (one read by id), None when it is not in the registry."""
        try:
            return work_task_from(
                self._task(task_id, iss, kind="safety-follow-up", patient_id=key.patient_id)
            )
        except errors.FHIRNotFound:
            return None

    def record_safety_step(self, task_id: str, key: PatientKey | None, iss: str, step_id: str, kind: str,
                           note: str, by: Member | None) -> None:  # fmt: skip
        """Keep a step taken on a safety follow-up (C-SSRS started, safety plan, referral) on its Task, with who
        and when; `key` limits it to one patient. The step's id (one per form) is kept with it: a resubmitted form
        records once. A write that lost a race with another change (412) is made again on the new version."""
        if kind not in SAFETY_STEPS:
            raise errors.FHIRBadRequest("a safety step must be one Tandem knows")
        for attempt in range(3):
            current = self._task(
                task_id, iss, kind="safety-follow-up", patient_id=key.patient_id if key else None
            )
            updated = safety_step_added(current, step_id, kind, note.strip(), datetime.now(UTC), by)
            if updated == current:
                return
            try:
                self._client().update(validated(updated), if_match=etag_for(current))
                break
            except errors.FHIRPreconditionFailed:
                if attempt == 2:
                    raise
        self.invalidate(*(k for k in [patient_key(current.get("for"))] if k is not None))

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
                client.update(validated(migrated), if_match=etag_for(resource))
        if not dry_run:
            self.invalidate()
        return counts

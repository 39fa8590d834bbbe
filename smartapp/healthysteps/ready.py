"""The HealthySteps worklist's ready rows: what its filters, counts and order need, kept per child; a page's rows
built from searches naming its children only.

Kept per EHR in the key-value store: one entry per enrolled child (name, tier, Specialist, flags, priority) and a
meta (the registry time synced to, the day, a version). A view reads the entries (this process's copy while the
version is unchanged) and builds the rows of the page it shows (searches in batches of the page's children). A
sync searches what changed since the last one (`_lastUpdated`: the program's CarePlans and Tasks, RelatedPersons,
Observations), and rebuilds only the children it names, plus those whose EHR scores were written (a mark the EHR
score copy sets). The rows depend on the day (due and overdue screens, age): the first view of a day rebuilds
them all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir_mappings.common.access import reference_id
from fhir_mappings.common.dates import parse_datetime
from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.healthysteps.worklist import FLAGS, Row, build_rows
from fhir_mappings.registry.resources import PROGRAM_SYSTEM, TASK_SYSTEM
from launch.store import KeyValueStore
from smartapp.caseload.ehr_scores import EhrScores
from smartapp.caseload.ready_marks import HS_DIRTY_KEY, READY_SCHEMA
from smartapp.caseload.service import (
    FRESH_SECONDS,
    LOCAL_CLOCK_OVERLAP_SECONDS,
    PAGE_SIZE,
    SYNC_OVERLAP_SECONDS,
    CaseloadService,
    _bundle_time,
    _json_or_none,
    _page_resources,
)
from smartapp.healthysteps.service import HealthyStepsService

log = logging.getLogger(__name__)

HS_TTL = 3 * 24 * 3600
LOCK_SECONDS = 300
#: Built rows a process keeps (a few pages of every Specialist's views).
BUILT_ROWS_KEPT = 2000
_SENTINEL = ""
_ORDER = list(FLAGS)


def _keys(iss: str) -> tuple[str, str, str]:
    digest = hashlib.sha256(iss.encode()).hexdigest()[:24]
    prefix = f"hs-ready:v{READY_SCHEMA}:{digest}"
    return f"{prefix}:entries", f"{prefix}:meta", f"{prefix}:lock"


@dataclass(frozen=True)
class HsEntry:
    """One HealthySteps worklist row as its filters, counts and order need it."""

    id: str
    iss: str
    patient_id: str
    name: str
    tier: str | None
    specialist: str | None
    flags: tuple[str, ...]
    #: The version the row was built at: a process keeps built rows by (id, stamp) until the row is rebuilt.
    stamp: int = 0

    @property
    def key(self) -> PatientKey:
        return PatientKey(self.iss, self.patient_id)

    @property
    def priority(self) -> int:
        """As `Row.priority`: the rank of the most urgent flag."""
        return min((_ORDER.index(f) for f in self.flags), default=len(_ORDER))

    def with_safety(self) -> HsEntry:
        return self if "safety" in self.flags else replace(self, flags=("safety", *self.flags))

    def to_json(self) -> str:
        return json.dumps([self.id, self.iss, self.patient_id, self.name, self.tier, self.specialist, self.flags,
                           self.stamp], separators=(",", ":"))  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | None) -> HsEntry | None:
        try:
            eid, iss, pid, name, tier, specialist, flags, stamp = json.loads(raw or "")
            entry = cls(eid, iss, pid, name, tier, specialist, tuple(flags), int(stamp))
        except (ValueError, TypeError):
            return None
        texts = (entry.id, entry.iss, entry.patient_id, entry.name)
        if not all(isinstance(t, str) for t in texts) or any(f not in FLAGS for f in entry.flags):
            return None
        if not all(v is None or isinstance(v, str) for v in (entry.tier, entry.specialist)):
            return None
        return entry


def entry_of(row: Row, stamp: int) -> HsEntry:
    e = row.enrolment
    specialist = e.member("hs-specialist")
    return HsEntry(e.id, e.iss, e.patient_id, e.patient_name or "", row.tier,
                   specialist.reference if specialist else None, row.flags, stamp)  # fmt: skip


def filter_entries(entries: Iterable[HsEntry], *, flag: str | None = None, tier: str | None = None,
                   specialist: str | None = None) -> list[HsEntry]:  # fmt: skip
    """As `filter_rows`, in the worklist's order (most urgent first, then name)."""
    chosen = [e for e in entries if not (flag and flag not in e.flags) and not (tier and e.tier != tier)
              and not (specialist and e.specialist != specialist)]  # fmt: skip
    return sorted(chosen, key=lambda e: (e.priority, e.name, e.id))


#: What a sync searches for changes: the program's CarePlans and Tasks, caregivers, screens and gestations.
def _searches(program: str) -> tuple[tuple[str, dict[str, str]], ...]:
    codes = ",".join(f"{TASK_SYSTEM}|{kind}" for kind in ("referral", "hs-contact", "safety-follow-up"))
    return (("CarePlan", {"category": f"{PROGRAM_SYSTEM}|{program}"}), ("Task", {"code": codes}),
            ("RelatedPerson", {}), ("Observation", {}))  # fmt: skip


class HealthyStepsReady:
    """The HealthySteps worklist's ready rows (see the module doc). One per process; threads share it."""

    def __init__(self, store: KeyValueStore, service: HealthyStepsService, caseload: CaseloadService,
                 ehr_scores: EhrScores, schedule: Any, *, clock: Any = time.time) -> None:  # fmt: skip
        self.store = store
        self.service = service
        self.caseload = caseload
        self.ehr_scores = ehr_scores
        self.schedule = schedule
        self.clock = clock
        self._memo: dict[str, tuple[int, list[HsEntry]]] = {}
        self._lock = threading.Lock()
        #: Rows built by this process, by (enrolment id, stamp, day): a warm page reads nothing.
        self._built: OrderedDict[tuple[str, int, str], Row] = OrderedDict()
        #: Registry requests of the last view's sync and rows (the page's footnote).
        self.last_requests = 0
        #: Entries this process decoded from the store, in all (tests count them).
        self.decoded = 0

    def entries(self, iss: str, today: date) -> list[HsEntry]:
        with self._lock:
            self.last_requests = 0
            meta = self._sync(iss, today)
            version = int(meta.get("version", 0)) if meta else 0
            memo = self._memo.get(iss)
            if memo is None or memo[0] != version:
                entries_key, _, _ = _keys(iss)
                everything = self.store.hash_all(entries_key)
                self.decoded += len(everything)
                if _SENTINEL not in everything:  # lost (evicted, expired): built again whole
                    log.warning("the HealthySteps worklist's kept rows were missing: rebuilding them")
                    self._full(iss, today, self.caseload._generation())
                    everything = self.store.hash_all(entries_key)
                    meta = _json_or_none(self.store.get(_keys(iss)[1])) or {}
                    version = int(meta.get("version", 0))
                memo = (
                    version,
                    [e for raw in everything.values() if (e := HsEntry.from_json(raw)) is not None],
                )
                self._memo[iss] = memo
            return list(memo[1])

    def rows(self, iss: str, chosen: list[HsEntry], today: date) -> list[Row]:
        """The full rows of these entries only (a page's), in their order: searches naming their children."""
        day = today.isoformat()
        with self._lock:
            kept = {e.id: row for e in chosen if (row := self._built.get((e.id, e.stamp, day))) is not None}
        missing = [e for e in chosen if e.id not in kept]
        if missing:
            keys = list(dict.fromkeys(e.key for e in missing))
            stamps = {e.id: e.stamp for e in missing}
            for row in self._build(iss, today, keys):
                if row.enrolment.id in stamps:
                    kept[row.enrolment.id] = row
            with self._lock:
                for eid, stamp in stamps.items():
                    if eid in kept:
                        self._built[(eid, stamp, day)] = kept[eid]
                while len(self._built) > BUILT_ROWS_KEPT:
                    self._built.popitem(last=False)
        return [kept[e.id] for e in chosen if e.id in kept]

    def _build(self, iss: str, today: date, children: list[PatientKey] | None) -> list[Row]:
        svc = self.service
        registry = svc._client()
        before = registry.counter.total
        scores = (
            self.ehr_scores.for_issuer(iss) if children is None else self.ehr_scores.for_patients(children)
        )
        data = svc.load(iss, scores, children=children)
        self.last_requests += registry.counter.total - before
        return build_rows(svc.program, self.schedule, data.enrolments, caregivers=data.caregivers,
                          events=data.events, referrals=data.referrals, contacts=data.contacts,
                          safety_tasks=data.safety_tasks, today=today, catalogue=svc.catalogue,
                          gestations=data.gestations)  # fmt: skip

    # --- syncing ------------------------------------------------------------------------------------

    def _fresh(self, meta: dict[str, Any] | None, generation: str, today: date) -> bool:
        return (
            meta is not None
            and meta.get("generation") == generation
            and meta.get("day") == today.isoformat()
            and isinstance(meta.get("synced_at"), int | float)
            and self.clock() - meta["synced_at"] < FRESH_SECONDS
        )

    def _sync(self, iss: str, today: date) -> dict[str, Any] | None:
        _, meta_key, lock_key = _keys(iss)
        generation = self.caseload._generation()
        meta = _json_or_none(self.store.get(meta_key))
        if not self.store.set_members(HS_DIRTY_KEY) and self._fresh(meta, generation, today):
            return meta
        token = secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_SECONDS
        while not self.store.set(lock_key, token, LOCK_SECONDS, only_if_absent=True):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            meta = _json_or_none(self.store.get(meta_key))
            if not self.store.set_members(HS_DIRTY_KEY) and self._fresh(meta, generation, today):
                return meta
        try:
            meta = _json_or_none(self.store.get(meta_key))
            generation = self.caseload._generation()
            if meta is None or meta.get("day") != today.isoformat():
                self._full(iss, today, generation)
            else:
                self._patch(iss, meta, today, generation)
            return _json_or_none(self.store.get(meta_key))
        finally:
            if self.store.get(lock_key) == token:
                self.store.delete(lock_key)

    def _write_meta(self, iss: str, generation: str, since: str, today: date, version: int) -> None:
        self.store.set(_keys(iss)[1], json.dumps({"generation": generation, "synced_at": self.clock(),
                                                  "since": since, "day": today.isoformat(), "version": version}),
                       HS_TTL)  # fmt: skip

    def _server_since(self, server_time: str | None) -> str:
        stamp = parse_datetime(server_time) if server_time else None
        if stamp is None:
            stamp = datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=LOCAL_CLOCK_OVERLAP_SECONDS)
        return (stamp - timedelta(seconds=SYNC_OVERLAP_SECONDS)).isoformat(timespec="milliseconds")

    def _full(self, iss: str, today: date, generation: str) -> None:
        entries_key, meta_key, _ = _keys(iss)
        old = _json_or_none(self.store.get(meta_key)) or {}
        for member in self.store.set_members(HS_DIRTY_KEY):
            self.store.remove_from_set(HS_DIRTY_KEY, member)
        # The registry's time before the reads: whatever changes during them is read again by the next sync.
        registry = self.service._client()
        server_time = _bundle_time(registry.search("CarePlan", {"_count": "1"}))
        rows = self._build(iss, today, None)
        self.store.delete(entries_key)
        # Unique across lost metas too (a process's kept rows are keyed by it): the clock's milliseconds at least.
        version = max(int(old.get("version", 0)) + 1, int(self.clock() * 1000))
        values = {
            _SENTINEL: str(READY_SCHEMA),
            **{r.enrolment.id: entry_of(r, version).to_json() for r in rows},
        }
        items = list(values.items())
        for start in range(0, len(items), 2000):
            self.store.hash_set_many(entries_key, dict(items[start : start + 2000]), HS_TTL)
        self._write_meta(iss, generation, self._server_since(server_time), today, version)

    def _patch(self, iss: str, meta: dict[str, Any], today: date, generation: str) -> None:
        entries_key, _, _ = _keys(iss)
        registry = self.service._client()
        before = registry.counter.total
        since = meta.get("since") if isinstance(meta.get("since"), str) else None
        known = {e.id: e.key for e in (self._memo.get(iss) or (0, []))[1]}
        touched: set[PatientKey] = set()
        server_time: str | None = None
        for resource_type, params in _searches(self.service.program.key):
            query = {**params, "_count": str(PAGE_SIZE)}
            if since:
                query["_lastUpdated"] = f"ge{since}"
            for page in registry.iter_pages(resource_type, query, max_pages=10_000):
                server_time = server_time or _bundle_time(page)
                for resource in _page_resources(page):
                    touched.update(_children(resource, known))
        self.last_requests += registry.counter.total - before
        dirty = self.store.set_members(HS_DIRTY_KEY)
        for member in dirty:
            self.store.remove_from_set(HS_DIRTY_KEY, member)
            iss_of, _, pid = member.partition("\n")
            if iss_of and pid:
                touched.add(PatientKey(iss_of, pid))
        mine = sorted(k for k in touched if k.iss == iss)
        version = int(meta.get("version", 0))
        if mine:
            rows = self._build(iss, today, mine)
            version += 1
            fresh = {r.enrolment.id: entry_of(r, version).to_json() for r in rows}
            wanted = set(mine)
            stored = self.store.hash_all(entries_key) if not known else {}
            earlier = {eid for eid, key in known.items() if key in wanted} | {
                eid
                for eid, raw in stored.items()
                if (e := HsEntry.from_json(raw)) is not None and e.key in wanted
            }
            self.store.hash_set_many(entries_key, fresh, HS_TTL)
            self.store.hash_delete(entries_key, sorted(earlier - set(fresh)))
        self._write_meta(iss, generation, self._server_since(server_time), today, version)


def _children(resource: dict[str, Any], known: dict[str, PatientKey]) -> Iterable[PatientKey]:
    """The children a changed resource concerns: its patient, or the enrolment it is based on."""
    for element in ("subject", "for", "patient"):
        key = patient_key(resource.get(element))
        if key is not None:
            yield key
    for based in resource.get("basedOn") or []:
        plan = reference_id(based, "CarePlan")
        if plan is not None and plan in known:
            yield known[plan]

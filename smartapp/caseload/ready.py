"""The worklist's ready rows: kept per patient, patched per patient, read per page.

A view of the worklist must not cost the caseload's size: it reads the index entries of the rows it chooses from
(an in-process copy, patched with the entries changed since, so a warm view decodes none), and builds only the
rows the page shows from those patients' kept data. What is kept in the key-value store:

- `patients`: one field per patient (issuer and EHR id): that patient's registry resources as domain objects (the
  caseload snapshot's form, one patient per field). A write through Tandem names the patients it touched: those
  are read back by patient searches (three each, whatever the registry's size). Any other write, and every
  FRESH_SECONDS, an incremental search (`_lastUpdated`) reads what changed since the last one: only the patients
  it names are rebuilt and written back (a resource read again unchanged changes nothing);
- `safety` (the open same-day safety follow-ups, for every page's header and the safety list) and `enrolments`
  (whose each enrolment is);
- `entries`: one field per worklist row (an active enrolment): what filtering and sorting need, precomputed (the
  sort value of every column, the flags, the care team, the name, the statistics' parts, the whole-person text);
- `version` and `changes`: a counter bumped by every patch and the enrolment ids each version changed, so another
  process brings its copy up to date by reading those entries only.

The rows depend on the day (weeks in treatment, overdue, no contact): the first view of a day rebuilds them all
(and re-reads the registry whole, which also drops what was deleted outside Tandem). The EHR's copies (scores,
SMI medical data) mark their patient dirty when written; safety alerts not yet in the registry are laid over the
rows of a view (few). One sync at a time across processes (a lock in the store).
"""

from __future__ import annotations

import gc
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fhir_mappings.common.dates import parse_datetime
from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.registry.programs import COLUMNS, program_or_default
from fhir_mappings.registry.resources import WorkTask
from fhir_mappings.registry.worklist import (
    FLAG_LABELS,
    FLAG_PRIORITY,
    REVIEW_GROUPS,
    WHOLE_PERSON_TEXT,
    CaseloadStats,
    MedicalInputs,
    Row,
    _matches,
    build_rows,
)
from fhir_mappings.screening.history import ScorePoint
from launch.fhir import FHIRClient
from launch.store import KeyValueStore
from smartapp.caseload.ehr_scores import EhrScores
from smartapp.caseload.ready_marks import DIRTY_KEY, READY_PREFIX, READY_SCHEMA, mark_dirty, patient_field
from smartapp.caseload.service import (
    CASELOAD_SEARCHES,
    FRESH_SECONDS,
    LOCAL_CLOCK_OVERLAP_SECONDS,
    PAGE_SIZE,
    SYNC_OVERLAP_SECONDS,
    UNHINTED_KEY,
    WRITTEN_KEY,
    CaseloadService,
    _bundle_time,
    _json_or_none,
    _page_resources,
)
from smartapp.caseload.snapshot import CaseloadData, Snapshot, _task_from_json, _task_json

__all__ = ["DIRTY_KEY", "Entry", "ReadyRows", "mark_dirty", "patient_field"]

log = logging.getLogger(__name__)

PATIENTS_KEY = f"{READY_PREFIX}:patients"
ENTRIES_KEY = f"{READY_PREFIX}:entries"
VERSION_KEY = f"{READY_PREFIX}:version"
CHANGES_KEY = f"{READY_PREFIX}:changes"
META_KEY = f"{READY_PREFIX}:meta"
#: Open same-day safety follow-ups (few): Task id → the Task, for every page's header and the safety list.
SAFETY_KEY = f"{READY_PREFIX}:safety"
#: Enrolment (CarePlan) id → the patient's field, for what names an enrolment only.
ENROLMENTS_KEY = f"{READY_PREFIX}:enrolments"
LOCK_KEY = f"{READY_PREFIX}:lock"
READY_TTL = 3 * 24 * 3600
#: A sync holds the lock at most this long (a process that died holding it blocks nobody longer).
LOCK_SECONDS = 300
#: A process this many versions behind (or more) reads every entry again instead of the changes.
MAX_CHANGES_READ = 200
#: Fields written per store call on a full build.
_CHUNK = 2000
_FULL = "*"
#: A field a full build writes into the kept hashes: without it, they were lost (evicted, expired) and are rebuilt
#: whole (never patched from nothing).
_SENTINEL = ""
_NO_DAY = ("0001-01-01", "9999-12-31")  # date.min and date.max: shown as nothing
_I = {name: i for i, name in enumerate(COLUMNS)}


def _field_key(value: str) -> PatientKey | None:
    iss, _, patient_id = value.partition("\n")
    return PatientKey(iss, patient_id) if iss and patient_id else None


def _plain(value: Any) -> Any:
    """A sort value as JSON keeps it (and compares it the same way): days as ISO text, tuples as lists."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Entry:
    """One worklist row as filtering, sorting and the statistics need it (no FHIR, no objects)."""

    id: str
    iss: str
    patient_id: str
    program: str
    #: The patient's name, lower case (the text filter and the tie-break).
    name: str
    members: tuple[str, ...]
    flags: tuple[str, ...]
    #: Each column's sort value, in `COLUMNS` order.
    sort: tuple[Any, ...]
    #: The date of birth's sort value (the second tie-break).
    dob: str
    #: Contacted in 30 days, has a PHQ-9 baseline, improving, in remission.
    stats: tuple[bool, bool, bool, bool]
    #: The whole-person columns' text (programs with `whole_person` only).
    whole: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> PatientKey:
        return PatientKey(self.iss, self.patient_id)

    def shown(self, column: str) -> str:
        """What the column shows (as `Row.display_value`), from the kept values."""
        if column == "flags":
            return " ".join(FLAG_LABELS[f] for f in self.flags)
        value = self.sort[_I[column]]
        if column == "status":
            return str(value).replace("-", " ")
        if column in WHOLE_PERSON_TEXT:
            return self.whole.get(column, "")
        if value in _NO_DAY or (isinstance(value, int | float) and value in (-1, 999.0)):
            return ""
        return str(value)

    def to_json(self) -> str:
        return json.dumps([self.id, self.iss, self.patient_id, self.program, self.name, self.members, self.flags,
                           self.sort, self.dob, self.stats, self.whole], separators=(",", ":"))  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | None) -> Entry | None:
        """The entry, or None when it is not one this release wrote (the caller rebuilds)."""
        try:
            eid, iss, pid, program, name, members, flags, sort, dob, stats, whole = json.loads(raw or "")
            entry = cls(eid, iss, pid, program, name, tuple(members), tuple(flags), tuple(sort), dob,
                        (bool(stats[0]), bool(stats[1]), bool(stats[2]), bool(stats[3])), dict(whole))  # fmt: skip
        except (ValueError, TypeError, IndexError):
            return None
        strings = (entry.id, entry.iss, entry.patient_id, entry.program, entry.name, entry.dob)
        if not all(isinstance(s, str) for s in (*strings, *entry.members, *entry.flags)) or len(
            entry.sort
        ) != len(COLUMNS):
            return None
        if any(f not in FLAG_LABELS for f in entry.flags):
            return None
        return entry

    def with_safety(self) -> Entry:
        """The entry with the safety flag (a safety alert not yet in the registry): first, never hidden."""
        if "safety" in self.flags:
            return self
        flags = ("safety", *self.flags)
        sort = list(self.sort)
        sort[_I["flags"]] = [FLAG_PRIORITY.index("safety"), -len(flags)]
        return replace(self, flags=flags, sort=tuple(sort))


def entry_of(row: Row, today: date) -> Entry:
    """The row's entry, in the form it has after the store (one form whether fresh or read back)."""
    e = row.enrolment
    baseline = row.phq9.first is not None and row.phq9.latest is not None
    entry = Entry(
        id=e.id, iss=e.iss, patient_id=e.patient_id, program=e.program, name=row.patient.lower(),
        members=tuple(m.reference for m in e.team.values()), flags=row.flags,
        sort=tuple(_plain(row.sort_value(c)) for c in COLUMNS), dob=_plain(row.sort_value("dob")),
        stats=(row.last_contact is not None and (today - row.last_contact).days <= 30, baseline,
               baseline and row.phq9.change_pct is not None and row.phq9.change_pct <= -50,
               baseline and row.remission),
        whole={c: text(row.whole) for c, text in WHOLE_PERSON_TEXT.items()} if row.whole is not None else {},
    )  # fmt: skip
    return entry  # already in the form it has after the store (`_plain`): the tests compare the two


def filter_entries(entries: Iterable[Entry], *, flag: str | None = None, member: str | None = None,
                   program: str | None = None, text: str | None = None, column: str | None = None,
                   value: str | None = None) -> list[Entry]:  # fmt: skip
    """As `filter_rows`, over the kept entries."""
    wanted = value.strip() if value else None
    lowered = text.lower() if text else None
    return [
        e
        for e in entries
        if not (column in _I and wanted and not _matches(e.shown(column), wanted))
        and not (flag and flag not in e.flags)
        and not (member and member not in e.members)
        and not (program and e.program != program)
        and not (lowered and lowered not in e.name)
    ]


def sort_entries(entries: Iterable[Entry], column: str, descending: bool = False) -> list[Entry]:
    """As `sort_rows`: by a column, ties by name then date of birth then enrolment (a stable order)."""
    index = _I.get(column, _I["flags"])
    ordered = sorted(entries, key=lambda e: (e.name, e.dob, e.id))
    return sorted(ordered, key=lambda e: e.sort[index], reverse=descending)


def review_group_of(entry: Entry) -> str | None:
    """As `review_group`: the case review group of an entry (its most urgent), or None."""
    return next((key for key, _ in REVIEW_GROUPS if key in entry.flags), None)


def review_entries(entries: Iterable[Entry]) -> list[Entry]:
    """As `review_priority`: the programs with case review, in review order (group, longest in treatment, name,
    date of birth)."""
    order = [key for key, _ in REVIEW_GROUPS]
    weeks = _I["weeks"]
    ranked = [(order.index(group), e) for e in entries
              if program_or_default(e.program).case_review and (group := review_group_of(e)) is not None]  # fmt: skip
    ranked.sort(key=lambda pair: (pair[0], -pair[1].sort[weeks], pair[1].name, pair[1].dob))
    return [e for _, e in ranked]


def entry_stats(entries: list[Entry]) -> CaseloadStats:
    """As `caseload_stats`, from the kept parts."""
    return CaseloadStats(
        size=len(entries),
        contacted_30d=sum(1 for e in entries if e.stats[0]),
        improving=sum(1 for e in entries if e.stats[2]),
        remission=sum(1 for e in entries if e.stats[3]),
        with_baseline=sum(1 for e in entries if e.stats[1]),
    )


def _resource_patient(resource_type: str, resource: Mapping[str, Any]) -> PatientKey | None:
    return patient_key(resource.get("for" if resource_type == "Task" else "subject"))


def _patient_snapshot(raw: str | None) -> Snapshot | None:
    """A patient's kept data, or None when it is not of this release's shape (the caller rebuilds it). Only this
    module writes these fields, under a key naming both schemas: the shape is checked, not every field's type
    (`snapshot_from_json`'s deep check costs more than the rest of a page's view)."""
    payload = _json_or_none(raw) if raw else None
    if payload is None:
        return None
    try:
        return Snapshot.from_json(payload)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        log.warning("ignored a kept patient's registry data of another shape")
        return None


@dataclass
class _Memo:
    version: int
    entries: dict[str, Entry]
    by_issuer: dict[str, list[Entry]] = field(default_factory=dict)
    #: The kept hash had the full build's mark (False: it was lost and is rebuilt).
    complete: bool = True


class ReadyRows:
    """The worklist's ready rows (see the module doc). One per process; threads share it."""

    def __init__(self, store: KeyValueStore, caseload: CaseloadService, ehr_scores: EhrScores, ehr_medical: Any,
                 *, no_contact_weeks: int = 4, clock: Any = time.time) -> None:  # fmt: skip
        self.store = store
        self.caseload = caseload
        self.ehr_scores = ehr_scores
        self.ehr_medical = ehr_medical
        self.no_contact_weeks = no_contact_weeks
        self.clock = clock
        self._memo: _Memo | None = None
        self._lock = threading.Lock()
        #: Registry requests the last sync of this process sent (for the page's footnote and the benchmark).
        self.last_requests = 0
        #: Entries this process decoded from the store, in all (tests count them: a warm view decodes none).
        self.decoded = 0
        self._server_time: str | None = None

    # --- reading ------------------------------------------------------------------------------------

    def entries(self, iss: str, today: date) -> list[Entry]:
        """Every worklist entry of this EHR, current (synced when a write or FRESH_SECONDS says so)."""
        with self._lock:
            self.last_requests = 0
            self._sync(today)
            memo = self._current()
            if not memo.complete:  # the kept entries were lost: built again from the registry
                log.warning("the worklist's kept rows were missing: rebuilding them")
                self.store.delete(META_KEY)
                self._sync(today)
                memo = self._current()
            if iss not in memo.by_issuer:
                memo.by_issuer[iss] = [e for e in memo.entries.values() if e.iss == iss]
            return list(memo.by_issuer[iss])

    def rows(self, chosen: list[Entry], today: date, safety_pending: Iterable[PatientKey] = (),
             scores: dict[PatientKey, list[ScorePoint]] | None = None) -> list[Row]:  # fmt: skip
        """The full rows of these entries only (the page's), in their order, from their patients' kept data;
        `scores`, when given, receives each patient's scores (registry and EHR) as the rows used them."""
        keys = list(dict.fromkeys(e.key for e in chosen))
        built: dict[str, Row] = {}
        for row in self._build(self._snapshots(keys), today, safety_pending, scores):
            built[row.enrolment.id] = row
        return [built[e.id] for e in chosen if e.id in built]

    def _snapshots(self, keys: list[PatientKey]) -> dict[PatientKey, Snapshot]:
        raws = self.store.hash_get_many(PATIENTS_KEY, [patient_field(k) for k in keys])
        return {k: s for k, raw in zip(keys, raws, strict=True) if (s := _patient_snapshot(raw)) is not None}

    def patients(self, keys: Iterable[PatientKey], today: date) -> dict[PatientKey, CaseloadData]:
        """These patients' registry data as kept (synced first), without the EHR's copies."""
        with self._lock:
            self._sync(today)
        return {k: s.data(0).for_patient(k) for k, s in self._snapshots(list(dict.fromkeys(keys))).items()}

    def enrolment_patient(self, careplan_id: str) -> PatientKey | None:
        """Whose enrolment this is, as last synced (None: not known)."""
        raw = self.store.hash_get(ENROLMENTS_KEY, careplan_id)
        return _field_key(raw) if raw else None

    def open_safety_tasks(self, iss: str, today: date) -> list[WorkTask]:
        """The EHR's open same-day safety follow-ups (synced first): a read of those few, never the caseload."""
        with self._lock:
            self._sync(today)
        tasks = []
        for raw in self.store.hash_all(SAFETY_KEY).values():
            try:
                task = _task_from_json(json.loads(raw))
            except (ValueError, TypeError, KeyError, IndexError):
                continue  # written by another release: the next full build rewrites it
            if task.iss == iss and task.open and task.kind == "safety-follow-up":
                tasks.append(task)
        return tasks

    def _current(self) -> _Memo:
        """This process's entries brought to the stored version (the changes only, when it can)."""
        version = int(self.store.get(VERSION_KEY) or 0)
        memo = self._memo
        if memo is not None and memo.version == version:
            return memo
        if memo is not None and 0 < version - memo.version <= MAX_CHANGES_READ:
            logs = self.store.hash_get_many(
                CHANGES_KEY, [str(v) for v in range(memo.version + 1, version + 1)]
            )
            changed: set[str] = set()
            for raw in logs:
                ids = json.loads(raw) if raw else None
                if not isinstance(ids, list) or _FULL in ids:
                    changed = {_FULL}
                    break
                changed.update(str(i) for i in ids)
            if _FULL not in changed:
                ids = sorted(changed)
                entries = dict(memo.entries)
                for eid, raw in zip(ids, self.store.hash_get_many(ENTRIES_KEY, ids), strict=True):
                    entry = Entry.from_json(raw) if raw else None
                    self.decoded += raw is not None
                    if entry is None:
                        entries.pop(eid, None)
                    else:
                        entries[eid] = entry
                self._memo = _Memo(version, entries)
                return self._memo
        everything = self.store.hash_all(ENTRIES_KEY)
        self.decoded += len(everything)
        entries = {eid: e for eid, raw in everything.items() if (e := Entry.from_json(raw)) is not None}
        self._memo = _Memo(version, entries, complete=_SENTINEL in everything)
        return self._memo

    # --- syncing ------------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any] | None:
        return _json_or_none(self.store.get(META_KEY))

    def _recent(self, meta: dict[str, Any] | None, unhinted: str, today: date) -> bool:
        """Searched the registry for changes less than FRESH_SECONDS ago, and every write since named its patients
        (those are read by patient searches)."""
        return (
            meta is not None
            and meta.get("unhinted") == unhinted
            and meta.get("day") == today.isoformat()
            and meta.get("weeks") == self.no_contact_weeks
            and isinstance(meta.get("synced_at"), int | float)
            and self.clock() - meta["synced_at"] < FRESH_SECONDS
        )

    def _current_state(self, today: date) -> tuple[bool, str]:
        """Whether nothing is to be done, and the unhinted-writes token it was decided with."""
        unhinted = self.store.get(UNHINTED_KEY) or ""
        idle = (
            not self.store.set_members(DIRTY_KEY)
            and not self.store.set_members(WRITTEN_KEY)
            and self._recent(self._meta(), unhinted, today)
        )
        return idle, unhinted

    def _sync(self, today: date) -> None:
        idle, _ = self._current_state(today)
        if idle:
            return
        token = secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_SECONDS
        while not self.store.set(LOCK_KEY, token, LOCK_SECONDS, only_if_absent=True):
            if time.monotonic() > deadline:
                break  # a holder that died: go on (the lock expires on its own)
            time.sleep(0.05)
            if self._current_state(today)[0]:
                return  # another process synced meanwhile
        try:
            meta = self._meta()
            unhinted = self.store.get(UNHINTED_KEY) or ""  # a write after this is synced next time
            if (
                meta is None
                or meta.get("day") != today.isoformat()
                or meta.get("weeks") != self.no_contact_weeks
            ):
                self._full(today, unhinted)
            elif self._recent(meta, unhinted, today):
                self._patch_written(today, unhinted)
            else:
                self._patch(meta, today, unhinted)
        finally:
            if self.store.get(LOCK_KEY) == token:
                self.store.delete(LOCK_KEY)

    def _search(self, since: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every caseload resource (or those changed since `since`), with its type; sets `_server_time`."""
        registry: FHIRClient = self.caseload._client()
        before = registry.counter.total
        self._server_time = None
        for resource_type, params in CASELOAD_SEARCHES:
            query = {**params, "_sort": "_id", "_count": str(PAGE_SIZE)}
            if since:
                query["_lastUpdated"] = f"ge{since}"
            for page in registry.iter_pages(resource_type, query, max_pages=10_000):
                self._server_time = self._server_time or _bundle_time(page)
                for resource in _page_resources(page):
                    yield resource_type, resource
        self.last_requests += registry.counter.total - before

    def _since(self) -> str:
        stamp = parse_datetime(self._server_time) if self._server_time else None
        if stamp is None:
            stamp = datetime.fromtimestamp(self.clock(), UTC) - timedelta(seconds=LOCAL_CLOCK_OVERLAP_SECONDS)
        return (stamp - timedelta(seconds=SYNC_OVERLAP_SECONDS)).isoformat(timespec="milliseconds")

    def _write_meta(self, unhinted: str, since: str, today: date) -> None:
        self.store.set(META_KEY, json.dumps({"unhinted": unhinted, "synced_at": self.clock(), "since": since,
                                             "day": today.isoformat(), "weeks": self.no_contact_weeks}),
                       READY_TTL)  # fmt: skip

    def _full(self, today: date, unhinted: str) -> None:
        """Read the whole registry, keep every patient's data and build every row (the first view of a day).
        The cyclic garbage collector waits meanwhile: the build makes objects that all live on, and collecting
        while they pile up costs a pass over all of them each time (a build's time grew faster than N)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._full_build(today, unhinted)
        finally:
            if collecting:
                gc.enable()

    def _full_build(self, today: date, unhinted: str) -> None:
        self.store.delete(DIRTY_KEY)
        self.store.delete(WRITTEN_KEY)
        snapshots: dict[PatientKey, Snapshot] = {}
        for resource_type, resource in self._search(None):
            key = _resource_patient(resource_type, resource)
            if key is not None:
                snapshots.setdefault(key, Snapshot()).apply(resource_type, [resource])
        since = self._since()
        entries = {row.enrolment.id: entry_of(row, today).to_json() for row in self._build(snapshots, today)}
        for name in (PATIENTS_KEY, ENTRIES_KEY, SAFETY_KEY, ENROLMENTS_KEY):
            self.store.delete(name)
        self._write_chunks(PATIENTS_KEY, {_SENTINEL: str(READY_SCHEMA), **{patient_field(k): s.dumps()
                                                                           for k, s in snapshots.items()}})  # fmt: skip
        self._write_chunks(ENTRIES_KEY, {_SENTINEL: str(READY_SCHEMA), **entries})
        self._write_chunks(SAFETY_KEY, _safety_fields(snapshots.values()))
        self._write_chunks(ENROLMENTS_KEY, _enrolment_fields(snapshots))
        version = self.store.increment(VERSION_KEY, READY_TTL)
        self.store.hash_set(CHANGES_KEY, str(version), json.dumps([_FULL]), READY_TTL)
        self._write_meta(unhinted, since, today)

    def _write_chunks(self, key: str, values: dict[str, str]) -> None:
        items = list(values.items())
        for start in range(0, len(items), _CHUNK):
            self.store.hash_set_many(key, dict(items[start : start + _CHUNK]), READY_TTL)

    def _drain(self, key: str) -> set[PatientKey]:
        members = self.store.set_members(key)
        for member in members:
            self.store.remove_from_set(key, member)
        return {k for m in members if (k := _field_key(m)) is not None}

    def _patch(self, meta: dict[str, Any], today: date, unhinted: str) -> None:
        """Read what changed since the last search; rebuild only the patients it names (and the dirty ones)."""
        self._drain(WRITTEN_KEY)  # what those writes changed is in this search
        since = meta.get("since") if isinstance(meta.get("since"), str) else None
        changed: dict[PatientKey, list[tuple[str, dict[str, Any]]]] = {}
        for resource_type, resource in self._search(since):
            key = _resource_patient(resource_type, resource)
            if key is not None:
                changed.setdefault(key, []).append((resource_type, resource))
        new_since = self._since()
        if self._rebuild(today, unhinted, changed=changed, replaced={}, dirty=self._drain(DIRTY_KEY)):
            self._write_meta(unhinted, new_since, today)

    def _patch_written(self, today: date, unhinted: str) -> None:
        """Writes that named their patients: those patients' data read again by patient searches (three each),
        whatever the registry's size; the last search's time and `since` stay (it runs again in FRESH_SECONDS)."""
        written = self._drain(WRITTEN_KEY)
        registry: FHIRClient = self.caseload._client()
        before = registry.counter.total
        replaced: dict[PatientKey, Snapshot] = {}
        for key in sorted(written):
            snapshot = Snapshot()
            for resource_type, _ in CASELOAD_SEARCHES:
                patient_param = "patient" if resource_type == "Task" else "subject"
                query = {patient_param: key.relative, "_count": str(PAGE_SIZE)}
                for page in registry.iter_pages(resource_type, query, max_pages=100):
                    snapshot.apply(resource_type, (r for r in _page_resources(page)
                                                   if _resource_patient(resource_type, r) == key))  # fmt: skip
            replaced[key] = snapshot
        self.last_requests += registry.counter.total - before
        self._rebuild(today, unhinted, changed={}, replaced=replaced, dirty=self._drain(DIRTY_KEY))

    def _rebuild(self, today: date, unhinted: str, *, changed: Mapping[PatientKey, list[tuple[str, dict[str, Any]]]],
                 replaced: Mapping[PatientKey, Snapshot], dirty: set[PatientKey]) -> bool:  # fmt: skip
        """Patch the patients named: resources `changed` applied to their kept data, or their data `replaced`
        whole; `dirty` ones rebuilt from what is kept. Only patients whose data changed (or dirty) are rebuilt
        and written. False when the kept data were lost (then rebuilt whole)."""
        touched = list(dict.fromkeys([*changed, *replaced, *dirty]))
        mark, *raws = self.store.hash_get_many(
            PATIENTS_KEY, [_SENTINEL, *(patient_field(k) for k in touched)]
        )
        if mark is None:  # the kept data were lost: never patched from nothing
            log.warning("the worklist's kept registry data were missing: rebuilding them")
            self._full(today, unhinted)
            return False
        snapshots: dict[PatientKey, Snapshot] = {}
        written: dict[str, str] = {}
        earlier: set[str] = set()
        held_safety: set[str] = set()
        for key, raw in zip(touched, raws, strict=True):
            kept = _patient_snapshot(raw)
            snapshot = kept or Snapshot()
            held = set(snapshot.enrolments)
            safe = {t.id for t in snapshot.tasks.values() if t.kind == "safety-follow-up"}
            if key in replaced:
                fresh = replaced[key]
                differs = kept is None or fresh.dumps() != snapshot.dumps()
                snapshot = fresh
            else:
                snapshot.changed = 0
                for resource_type, resource in changed.get(key, []):
                    snapshot.apply(resource_type, [resource])
                differs = bool(snapshot.changed)
            if differs or key in dirty:  # read again unchanged (the overlap): nothing to do
                earlier |= held
                held_safety |= safe
                snapshots[key] = snapshot
                if differs:
                    written[patient_field(key)] = snapshot.dumps()
        if snapshots:
            entries = {
                row.enrolment.id: entry_of(row, today).to_json() for row in self._build(snapshots, today)
            }
            ids = set(entries) | {eid for s in snapshots.values() for eid in s.enrolments} | earlier
            gone = sorted(i for i in ids if i not in entries)
            self.store.hash_set_many(PATIENTS_KEY, written, READY_TTL)
            self.store.hash_set_many(ENTRIES_KEY, entries, READY_TTL)
            self.store.hash_delete(ENTRIES_KEY, gone)
            self.store.hash_delete(SAFETY_KEY, sorted(held_safety))
            self.store.hash_set_many(SAFETY_KEY, _safety_fields(snapshots.values()), READY_TTL)
            self.store.hash_set_many(ENROLMENTS_KEY, _enrolment_fields(snapshots), READY_TTL)
            version = self.store.increment(VERSION_KEY, READY_TTL)
            self.store.hash_set(CHANGES_KEY, str(version), json.dumps(sorted(ids)), READY_TTL)
        return True

    def _build(self, snapshots: Mapping[PatientKey, Snapshot], today: date, safety_pending: Iterable[PatientKey] = (),
               scores: dict[PatientKey, list[ScorePoint]] | None = None) -> list[Row]:  # fmt: skip
        """The rows of these patients, from their registry data and the EHR's copies (read for them only, or once
        per issuer when there are many)."""
        pending = set(safety_pending)
        many = len(snapshots) > 200
        page_scores = {} if many else self.ehr_scores.for_patients(list(snapshots))
        scores_of: dict[str, dict[PatientKey, Any]] = {}
        medical_of: dict[str, dict[PatientKey, Any]] = {}
        rows: list[Row] = []
        for key, snapshot in snapshots.items():
            data = snapshot.data(0).for_patient(key)
            if not any(e.active and e.collaborative for e in data.enrolments):
                continue
            if many:
                if key.iss not in scores_of:
                    scores_of[key.iss] = self.ehr_scores.for_issuer(key.iss)
                ehr = scores_of[key.iss].get(key, [])
            else:
                ehr = page_scores.get(key, [])
            data = data.with_ehr_scores({key: ehr})
            if scores is not None:
                scores[key] = data.scores.get(key, [])
            medical: dict[PatientKey, MedicalInputs] = {}
            if any(program_or_default(e.program).tracks_medical for e in data.enrolments if e.active):
                if many:
                    if key.iss not in medical_of:
                        medical_of[key.iss] = self.ehr_medical.for_issuer(key.iss)
                    record = medical_of[key.iss].get(key)
                else:
                    record = self.ehr_medical.for_patient(key)
                if record is not None:
                    medical[key] = (record.observations, record.requests, record.read_at)
            rows += build_rows(data.enrolments, data.contacts, data.tasks, data.scores, today,
                               no_contact_weeks=self.no_contact_weeks, safety_pending=pending & {key},
                               medical=medical, social=data.social)  # fmt: skip
        return rows


def _safety_fields(snapshots: Iterable[Snapshot]) -> dict[str, str]:
    """The open safety follow-ups of these patients, as SAFETY_KEY keeps them."""
    return {t.id: json.dumps(_task_json(t), separators=(",", ":")) for s in snapshots for t in s.tasks.values()
            if t.kind == "safety-follow-up" and t.open}  # fmt: skip


def _enrolment_fields(snapshots: Mapping[PatientKey, Snapshot]) -> dict[str, str]:
    return {eid: patient_field(k) for k, s in snapshots.items() for eid in s.enrolments}

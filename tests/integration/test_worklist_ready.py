"""The worklist's ready rows against a real FHIR server (sekmet-fhir): a view's cost is the rows it shows, a write
patches only its patient's rows, another process catches up by reading the changed entries only, and the kept
entries filter and sort exactly as the built rows do (issue 27 §2)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.programs import COLUMNS
from fhir_mappings.registry.resources import Contact, Enrolment, Member, careplan, contact_task, work_task
from fhir_mappings.registry.worklist import (
    FLAG_PRIORITY,
    build_rows,
    caseload_stats,
    filter_rows,
    review_group,
    review_priority,
    sort_rows,
)
from fhir_mappings.screening.history import ScorePoint
from launch.fhir import FHIRClient
from launch.store import EmbeddedStore
from launch.transport import HttpTransport
from sandbox.processes import FhirServer
from smartapp.caseload import ready as ready_module
from smartapp.caseload.ehr_scores import EhrScores
from smartapp.caseload.ready import (
    Entry,
    ReadyRows,
    entry_of,
    entry_stats,
    filter_entries,
    review_entries,
    review_group_of,
    sort_entries,
)
from smartapp.caseload.service import CaseloadService
from smartapp.smi.medical import EhrMedical

from .registry_servers import put_resources, seeded_registry

pytestmark = pytest.mark.integration

ISS = "https://ehr.example.org/fhir"
TEAM = (Member("Practitioner/cm-1", "Teresa Lindqvist"), Member("Practitioner/cm-2", "Ana Ruiz"))
PROGRAMS = ("cocm-depression", "cocm-anxiety", "cocm-smi")
TODAY = date.today()
NOW = datetime.now(UTC)
PAGE = 10


_put = put_resources


def _patients(first: int, last: int) -> list[dict[str, Any]]:
    """Varied patients: programs, care managers, names out of id order, contacts, follow-ups (some overdue),
    PHQ-9 and GAD-7 scores, a review asked for."""
    now = NOW
    resources: list[dict[str, Any]] = []
    for n in range(first, last):
        start = TODAY - timedelta(weeks=1 + n % 17)
        e = Enrolment(f"cp-{n:03d}", ISS, f"p{n:03d}", f"{'ZYXWVUTSRQ'[n % 10]}atient {n * 7 % 13}",
                      PROGRAMS[n % 3], "active-treatment" if n % 4 else "relapse-prevention", start,
                      team={"care-manager": TEAM[n % 2]}, consent_given=True, flagged_for_review=n % 5 == 0,
                      birth_date=date(1960 + n % 30, 1 + n % 12, 1) if n % 6 else None)  # fmt: skip
        resources.append(careplan(e))
        for k in range(n % 3):
            when = TODAY - timedelta(days=9 * k + n % 40)
            contact = Contact(f"c-{n}-{k}", e.id, when, 10 + 5 * k, "phone", "care-manager", TEAM[n % 2])
            resources.append(contact_task(contact, e, now))
        if n % 2:
            resources.append(work_task("follow-up", f"f-{n}", e, now, due=TODAY + timedelta(days=n % 9 - 4)))
        for k in range(n % 4):
            code = "44261-6" if k % 2 == 0 else "70274-6"  # PHQ-9, GAD-7 totals
            resources.append({"resourceType": "Observation", "id": f"o-{n}-{k}", "status": "final",
                              "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                              "subject": e.key.reference(), "valueInteger": max(0, 20 - 4 * k - n % 5),
                              "effectiveDateTime": (start + timedelta(weeks=2 * k)).isoformat()})  # fmt: skip
    return resources


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with seeded_registry(
        "sekmet", Path(tmp_path_factory.mktemp("worklist-ready")), _patients(0, 60)
    ) as started:
        yield started


class _CountingStore(EmbeddedStore):
    """The embedded store, counting the hash fields read and written per key."""

    def __init__(self) -> None:
        super().__init__()
        self.read: dict[str, int] = {}
        self.written: dict[str, int] = {}

    def _count(self, table: dict[str, int], key: str, n: int) -> None:
        table[key] = table.get(key, 0) + n

    def hash_all(self, key: str) -> dict[str, str]:
        found = super().hash_all(key)
        self._count(self.read, key, len(found))
        return found

    def hash_get_many(self, key: str, fields: list[str]) -> list[str | None]:
        self._count(self.read, key, len(fields))
        return super().hash_get_many(key, fields)

    def hash_set_many(self, key: str, values: dict[str, str], ttl_seconds: int | None = None) -> None:
        self._count(self.written, key, len(values))
        super().hash_set_many(key, values, ttl_seconds)


def _ready(server: FhirServer, store: EmbeddedStore) -> ReadyRows:
    client = FHIRClient(server.base_url, HttpTransport(timeout=30), name="registry")
    return ReadyRows(store, CaseloadService(store, client), EhrScores(store), EhrMedical(store))


def _page(ready: ReadyRows) -> list[str]:
    entries = sort_entries(ready.entries(ISS, TODAY), "flags")
    return [r.enrolment.id for r in ready.rows(entries[:PAGE], TODAY)]


def test_a_warm_view_decodes_no_entry_and_builds_only_the_rows_it_shows(server: FhirServer) -> None:
    store = _CountingStore()
    ready = _ready(server, store)
    for size, added in ((60, []), (90, _patients(60, 90))):  # the same view at two caseload sizes
        if added:
            _put(server.base_url, added)
            ready.caseload.invalidate()
        assert (
            len(_page(ready)) == PAGE
        )  # the cold view (or the one after a write) brings the rows up to date
        assert len(ready.entries(ISS, TODAY)) == size  # every enrolment is active
        decoded, read = ready.decoded, dict(store.read)
        shown = _page(ready)  # warm
        assert ready.last_requests == 0 and ready.decoded == decoded  # no registry request, no entry decoded
        assert store.read.get(ready_module.PATIENTS_KEY, 0) - read.get(ready_module.PATIENTS_KEY, 0) == PAGE
        assert store.read.get(ready_module.ENTRIES_KEY, 0) == read.get(ready_module.ENTRIES_KEY, 0)
        assert len(shown) == PAGE


def test_a_write_patches_only_its_patients_rows_and_other_processes_read_only_those(
    server: FhirServer,
) -> None:
    store = _CountingStore()
    ready = _ready(server, store)
    other = _ready(server, store)  # another web process: the same store, its own copy
    _page(ready)
    before = {e.id: e for e in other.entries(ISS, TODAY)}
    assert "overdue" not in before["cp-010"].flags
    written = dict(store.written)

    # A follow-up for patient 10, already overdue, written by someone (through Tandem: it marks the caseload behind).
    enrolment = Enrolment("cp-010", ISS, "p010", "Patient 10", PROGRAMS[1], "active-treatment",
                          TODAY - timedelta(weeks=3), team={"care-manager": TEAM[0]})  # fmt: skip
    _put(server.base_url, [work_task("follow-up", "f-new-10", enrolment, datetime.now(UTC),
                                     due=TODAY - timedelta(days=2))])  # fmt: skip
    ready.caseload.invalidate()
    assert "overdue" in {e.id: e for e in ready.entries(ISS, TODAY)}["cp-010"].flags
    entries_written = store.written[ready_module.ENTRIES_KEY] - written[ready_module.ENTRIES_KEY]
    patients_written = store.written[ready_module.PATIENTS_KEY] - written[ready_module.PATIENTS_KEY]
    assert (entries_written, patients_written) == (1, 1)  # patient 10's row only

    # The next sync reads the new Task again (searches overlap for writes in flight): it changes nothing, so
    # nothing is written and the row stays.
    ready.caseload.invalidate()
    written = dict(store.written)
    assert "cp-010" in {e.id for e in ready.entries(ISS, TODAY)} and ready.last_requests == 3
    assert store.written == written

    decoded = other.decoded
    after = {e.id: e for e in other.entries(ISS, TODAY)}
    assert other.decoded - decoded == 1  # the other process read the one changed entry, not the caseload
    assert after["cp-010"] == {e.id: e for e in ready.entries(ISS, TODAY)}["cp-010"]
    assert {k: v for k, v in after.items() if k != "cp-010"} == {
        k: v for k, v in before.items() if k != "cp-010"
    }


def test_the_ehr_copy_of_a_patients_scores_rebuilds_that_patients_row(server: FhirServer) -> None:
    store = _CountingStore()
    ready = _ready(server, store)
    index = COLUMNS.index("phq9_latest")
    first = {e.id: e for e in ready.entries(ISS, TODAY)}
    key = PatientKey(ISS, "p004")  # no registry score
    assert first["cp-004"].sort[index] == -1
    written = store.written.get(ready_module.ENTRIES_KEY, 0)
    EhrScores(store).remember(key, [ScorePoint("PHQ-9", datetime.now(UTC), 17, "EHR", "44261-6")])
    assert {e.id: e for e in ready.entries(ISS, TODAY)}["cp-004"].sort[index] == 17
    assert store.written[ready_module.ENTRIES_KEY] - written == 1


def _rows_and_entries(server: FhirServer) -> tuple[list[Any], list[Any]]:
    store = EmbeddedStore()
    ready = _ready(server, store)
    data = CaseloadService(store, ready.caseload.registry).load()
    rows = build_rows(data.enrolments, data.contacts, data.tasks, data.scores, TODAY, social=data.social)
    return rows, ready.entries(ISS, TODAY)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("column", [*COLUMNS, "not-a-column"])
def test_kept_entries_sort_as_the_built_rows_do(server: FhirServer, column: str, descending: bool) -> None:
    # fhir_mappings.registry.worklist.sort_rows: by the column, ties by name, date of birth, enrolment.
    rows, entries = _rows_and_entries(server)
    assert [e.id for e in sort_entries(entries, column, descending)] == [
        r.enrolment.id for r in sort_rows(rows, column, descending)
    ]


@pytest.mark.parametrize(
    "filters",
    [
        # fhir_mappings.registry.worklist.filter_rows: each filter alone, and together.
        *({"flag": flag} for flag in FLAG_PRIORITY),
        *({"program": program} for program in PROGRAMS),
        {"member": "Practitioner/cm-2"},
        {"text": "ATIENT 1"},
        {"column": "phq9_latest", "value": ">=12"},
        {"column": "last_contact", "value": str(TODAY.year)},
        {"column": "flags", "value": "overdue"},
        {"column": "status", "value": "relapse prevention"},
        {"column": "measure_due", "value": "<5"},
        {"column": "weeks", "value": "=3"},
        {"flag": "new", "program": "cocm-smi", "member": "Practitioner/cm-1"},
    ],
)
def test_kept_entries_filter_and_count_as_the_built_rows_do(
    server: FhirServer, filters: dict[str, str]
) -> None:
    rows, entries = _rows_and_entries(server)
    chosen = filter_rows(rows, **filters)
    kept = filter_entries(entries, **filters)
    assert sorted(e.id for e in kept) == sorted(r.enrolment.id for r in chosen)
    assert entry_stats(kept) == caseload_stats(chosen, TODAY)


def test_kept_entries_come_to_case_review_in_the_rows_order(server: FhirServer) -> None:
    # fhir_mappings.registry.worklist.review_priority: group, longest in treatment, name, date of birth; only
    # programs with case review.
    rows, entries = _rows_and_entries(server)
    expected = [r.enrolment.id for r in review_priority(rows)]
    assert expected and [e.id for e in review_entries(entries)] == expected
    assert [review_group_of(e) for e in review_entries(entries)] == [
        review_group(r) for r in review_priority(rows)
    ]


def test_open_safety_follow_ups_are_kept_apart_and_patched(server: FhirServer) -> None:
    store = _CountingStore()
    ready = _ready(server, store)
    assert ready.open_safety_tasks(ISS, TODAY) == []
    enrolment = Enrolment("cp-031", ISS, "p031", "Patient 31", PROGRAMS[1], "active-treatment",
                          TODAY - timedelta(weeks=3), team={"care-manager": TEAM[1]})  # fmt: skip
    task = work_task("safety-follow-up", "s-31", enrolment, datetime.now(UTC), description="PHQ-9 item 9")
    _put(server.base_url, [task])
    ready.caseload.invalidate()
    assert [t.id for t in ready.open_safety_tasks(ISS, TODAY)] == ["s-31"]
    assert ready.open_safety_tasks("https://other-ehr.example/fhir", TODAY) == []
    assert "safety" in {e.id: e for e in ready.entries(ISS, TODAY)}["cp-031"].flags
    assert ready.enrolment_patient("cp-031") == PatientKey(ISS, "p031")
    kept = ready.patients([PatientKey(ISS, "p031")], TODAY)[PatientKey(ISS, "p031")]
    assert "s-31" in {t.id for t in kept.tasks}

    _put(server.base_url, [{**task, "status": "completed"}])
    ready.caseload.invalidate()
    assert ready.open_safety_tasks(ISS, TODAY) == []
    assert "safety" not in {e.id: e for e in ready.entries(ISS, TODAY)}["cp-031"].flags


def test_every_column_of_a_kept_entry_shows_what_the_row_shows(server: FhirServer) -> None:
    # fhir_mappings.registry.worklist.Row.display_value: what a column filter matches.
    rows, entries = _rows_and_entries(server)
    kept = {e.id: e for e in entries}
    assert len(kept) == len(rows)
    for row in rows:
        entry = kept[row.enrolment.id]
        assert [entry.shown(c) for c in COLUMNS] == [row.display_value(c) for c in COLUMNS], row.enrolment.id
        built = entry_of(row, TODAY)
        assert Entry.from_json(built.to_json()) == built == entry  # one form, fresh or read back


def test_a_new_day_rebuilds_every_row(server: FhirServer) -> None:
    # Weeks in treatment, overdue follow-ups and "no recent contact" depend on the day: kept rows are of one day.
    ready = _ready(server, EmbeddedStore())
    weeks = COLUMNS.index("weeks")
    today = {e.id: e.sort[weeks] for e in ready.entries(ISS, TODAY)}
    assert ready.entries(ISS, TODAY) and ready.last_requests == 0
    next_week = {e.id: e.sort[weeks] for e in ready.entries(ISS, TODAY + timedelta(days=7))}
    assert ready.last_requests >= 3  # read again whole (which also drops what was deleted outside Tandem)
    assert next_week == {eid: w + 1 for eid, w in today.items()}


@pytest.mark.parametrize("lost", [ready_module.PATIENTS_KEY, ready_module.ENTRIES_KEY])
def test_kept_rows_that_were_lost_are_rebuilt_whole_never_patched_from_nothing(
    server: FhirServer, lost: str
) -> None:
    # Redis may evict a hash (maxmemory) while the meta survives: a patch from nothing would show a few rows.
    store = EmbeddedStore()
    ready = _ready(server, store)
    count = len(ready.entries(ISS, TODAY))
    store.delete(lost)
    enrolment = Enrolment("cp-012", ISS, "p012", "Patient 12", PROGRAMS[0], "active-treatment",
                          TODAY - timedelta(weeks=3), team={"care-manager": TEAM[0]})  # fmt: skip
    _put(
        server.base_url,
        [work_task("follow-up", f"f-lost-{len(lost)}", enrolment, datetime.now(UTC), due=TODAY)],
    )
    ready.caseload.invalidate()
    assert len(ready.entries(ISS, TODAY)) == count
    other = _ready(server, store)  # a process reading the entries whole
    assert len(other.entries(ISS, TODAY)) == count
    assert len(ready.rows(sort_entries(other.entries(ISS, TODAY), "patient"), TODAY)) == count


def test_a_write_that_names_its_patient_is_read_back_by_that_patients_searches_only(
    server: FhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 27 §2 "a write patches only the rows it touches": Tandem's own writes say whose they are, so the next
    # view reads that patient (three patient searches) instead of searching the whole registry for changes.
    store = _CountingStore()
    ready = _ready(server, store)
    before = {e.id: e for e in ready.entries(ISS, TODAY)}
    client = ready.caseload.registry
    assert client is not None
    pages_of = client.iter_pages
    sent: list[dict[str, str]] = []

    def recording(resource_type: str, params: Any = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        sent.append(dict(params or {}))
        return pages_of(resource_type, params, **kwargs)

    monkeypatch.setattr(client, "iter_pages", recording)
    enrolment = ready.caseload.get("cp-022", ISS)  # patient 22 has no follow-up
    ready.caseload.add_task(
        "follow-up", enrolment, due=TODAY - timedelta(days=3)
    )  # through Tandem: it names p022
    after = {e.id: e for e in ready.entries(ISS, TODAY)}
    assert "overdue" in after["cp-022"].flags and "overdue" not in before["cp-022"].flags
    assert len(sent) == 3 and all(enrolment.key.relative in p.values() for p in sent)  # that patient only
    assert not any("_lastUpdated" in p for p in sent)
    assert {k: v for k, v in after.items() if k != "cp-022"} == {
        k: v for k, v in before.items() if k != "cp-022"
    }

    sent.clear()
    ready.caseload.invalidate()  # a write that does not say whose it is: the registry is searched for changes
    ready.entries(ISS, TODAY)
    assert len(sent) == 3 and all("_lastUpdated" in p for p in sent)

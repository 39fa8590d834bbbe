"""The caseload snapshot against a real FHIR server (sekmet-fhir): stable paging while records change, the
incremental refresh after a write, and the chart's one-patient read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.resources import Contact, Enrolment, Member, careplan, contact_task, work_task
from launch.store import EmbeddedStore
from smartapp.caseload import service as caseload_service
from smartapp.caseload.service import CaseloadService

from .registry_servers import REGISTRY_SERVERS, registry_client, seeded_registry

pytestmark = pytest.mark.integration

ISS = "https://ehr.example.org/fhir"
CM = Member("Practitioner/cm-1", "Teresa Lindqvist")
PATIENTS = 30


_registry = registry_client


def _edit_follow_up(base: str, n: int, text: str) -> None:
    task = requests.get(f"{base}/Task/f-{n}", timeout=10).json()
    task["description"] = text
    requests.put(f"{base}/Task/f-{n}", json=task, timeout=10,
                 headers={"Content-Type": "application/fhir+json"}).raise_for_status()  # fmt: skip


@pytest.fixture(scope="module", params=REGISTRY_SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh registry store of each kind (worklist cold, warm and incremental on sekmet and on HAPI)."""
    now, today = datetime.now(UTC), date.today()
    resources: list[dict[str, Any]] = []
    for n in range(PATIENTS):
        e = Enrolment(f"cp-{n:02d}", ISS, f"p{n:02d}", f"Patient {n}", "cocm-depression", "active-treatment",
                      today - timedelta(weeks=3), team={"care-manager": CM}, consent_given=True)  # fmt: skip
        resources += [careplan(e), work_task("follow-up", f"f-{n}", e, now, due=today, description="Call back"),
                      contact_task(Contact(f"c-{n}", e.id, today, 20, "phone", "care-manager", CM), e, now)]  # fmt: skip
    workdir = Path(tmp_path_factory.mktemp(f"caseload-sync-{request.param}"))
    with seeded_registry(request.param, workdir, resources) as started:
        yield started


def _service(server: Any) -> CaseloadService:
    return CaseloadService(EmbeddedStore(), _registry(server.base_url))


def test_records_changed_during_a_paged_load_are_neither_missed_nor_read_twice(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caseload_service, "PAGE_SIZE", 7)  # 60 Tasks in 9 pages
    service = _service(server)
    client = service.registry
    assert client is not None
    pages_of = client.iter_pages
    seen: list[str] = []

    def pages_with_edits(resource_type: str, params: Any = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for number, page in enumerate(pages_of(resource_type, params, **kwargs)):
            if resource_type == "Task":
                seen.extend(e["resource"]["id"] for e in page.get("entry", []))
            yield page
            if resource_type == "Task" and number == 1:
                for n in (0, 3, 17, 25, 29):  # some already read, some not yet
                    _edit_follow_up(server.base_url, n, "Edited during the load")

    monkeypatch.setattr(client, "iter_pages", pages_with_edits)
    data = service.load(use_cache=False)
    assert len(seen) == len(set(seen)) == 2 * PATIENTS  # every Task read once: none missed, none twice
    assert len(data.tasks) == PATIENTS and len(data.contacts) == PATIENTS and len(data.enrolments) == PATIENTS

    monkeypatch.setattr(client, "iter_pages", pages_of)
    service.invalidate()
    refreshed = service.load()
    edited = {t.id for t in refreshed.tasks if t.description == "Edited during the load"}
    assert edited == {"f-0", "f-3", "f-17", "f-25", "f-29"}  # the next refresh has every edit


def test_a_write_is_patched_in_by_an_incremental_search_not_a_reload(server: Any) -> None:
    service = _service(server)
    client = service.registry
    assert client is not None
    first = service.load()
    assert first.requests == 3 and len(first.enrolments) == PATIENTS
    assert service.load().requests == 0  # fresh and nothing written: no request at all

    _edit_follow_up(server.base_url, 7, "Phoned, no answer")
    service.invalidate()  # what every write through Tandem does
    before = client.counter.total
    patched = service.load()
    assert client.counter.total - before == 3  # one search per type, each one page
    assert next(t for t in patched.tasks if t.id == "f-7").description == "Phoned, no answer"
    assert len(patched.tasks) == PATIENTS  # replaced by id, not added

    other_process = _service(server)  # another web process shares the store, not the memo
    other_process.store = service.store
    assert other_process.load().requests == 0 and len(other_process.load().tasks) == PATIENTS


def test_the_chart_reads_one_patient_with_three_searches(server: Any) -> None:
    service = _service(server)
    key = PatientKey(ISS, "p12")
    data = service.load_patient(key)
    assert data.requests == 3
    assert [e.id for e in data.enrolments] == ["cp-12"] and {t.id for t in data.tasks} == {"f-12"}
    assert [c.id for c in data.contacts] == ["c-12"]
    assert service.load_patient(PatientKey("https://other-ehr.example/fhir", "p12")).enrolments == []


def test_the_chart_searches_name_only_its_patient(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 27 §2: the chart's registry part reads only its patient; the caseload's code filter (registry score
    # codes and social-status codes) made the store match across the whole registry before the patient.
    service = _service(server)
    client = service.registry
    assert client is not None
    pages_of = client.iter_pages
    sent: list[tuple[str, dict[str, str]]] = []

    def recording(resource_type: str, params: Any = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        sent.append((resource_type, dict(params or {})))
        return pages_of(resource_type, params, **kwargs)

    monkeypatch.setattr(client, "iter_pages", recording)
    key = PatientKey(ISS, "p12")
    data = service.load_patient(key)
    assert data.requests == 3 and [e.id for e in data.enrolments] == ["cp-12"]
    assert sorted(t for t, _ in sent) == ["CarePlan", "Observation", "Task"]
    for resource_type, params in sent:
        patient_param = "patient" if resource_type == "Task" else "subject"
        assert params == {patient_param: key.relative, "_count": params["_count"]}, resource_type


class _CountingStore(EmbeddedStore):
    """The embedded store, counting writes per key (what a sync rewrites)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: dict[str, int] = {}

    def set(
        self, key: str, value: str, ttl_seconds: int | None = None, *, only_if_absent: bool = False
    ) -> bool:
        self.writes[key] = self.writes.get(key, 0) + 1
        return super().set(key, value, ttl_seconds, only_if_absent=only_if_absent)


def test_a_sync_that_finds_nothing_changed_does_not_rewrite_the_snapshot(server: Any) -> None:
    # Issue 27 §2: "every sync rewrites the whole snapshot even when nothing changed".
    store = _CountingStore()
    service = CaseloadService(store, _registry(server.base_url))
    first = service.load()
    assert store.writes[caseload_service.SNAPSHOT_KEY] == 1
    service.invalidate()  # a write elsewhere (a form kept, another record) that touched no caseload resource
    again = service.load()
    assert again.requests == 3  # it did search
    assert store.writes[caseload_service.SNAPSHOT_KEY] == 1  # and left the stored snapshot alone
    assert {t.id for t in again.tasks} == {t.id for t in first.tasks}

    other_process = CaseloadService(store, service.registry)  # shares the store, not the memo
    assert other_process.load().requests == 0  # the unchanged snapshot is still the current one

    _edit_follow_up(server.base_url, 9, "Left a voicemail")
    service.invalidate()
    assert next(t for t in service.load().tasks if t.id == "f-9").description == "Left a voicemail"
    assert store.writes[caseload_service.SNAPSHOT_KEY] == 2  # a change is written
    service.invalidate()  # the next search overlaps the last (writes in flight): f-9 is read again, unchanged
    assert service.load().requests == 3
    assert store.writes[caseload_service.SNAPSHOT_KEY] == 2
    assert next(t for t in other_process.load().tasks if t.id == "f-9").description == "Left a voicemail"


def test_the_freshness_window_counts_from_the_end_of_a_sync(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 27 §2: counted from the start, a load longer than FRESH_SECONDS was stale when written (re-synced
    # on every view).
    now = [1_000_000.0]
    service = CaseloadService(EmbeddedStore(), _registry(server.base_url), clock=lambda: now[0])  # fmt: skip
    client = service.registry
    assert client is not None
    pages_of = client.iter_pages

    def slow_pages(resource_type: str, params: Any = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        now[0] += caseload_service.FRESH_SECONDS  # each search takes as long as the whole window
        return pages_of(resource_type, params, **kwargs)

    monkeypatch.setattr(client, "iter_pages", slow_pages)
    assert service.load().requests == 3  # three searches: 3 × FRESH_SECONDS
    now[0] += caseload_service.FRESH_SECONDS - 1
    assert service.load().requests == 0  # still fresh: within the window after the sync ended
    now[0] += 2
    assert service.load().requests == 3  # past it: synced again

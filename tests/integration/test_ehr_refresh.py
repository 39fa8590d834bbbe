"""The worker's EHR score refresh against the real sandbox EHR (sekmet-fhir behind the sandbox's SMART server):
backend services tokens, a Bulk Data export of the EHR's Group (full, then `_since`, resumed after a restart),
per-patient reads from the Epic-like EHR, the RQ job on redis-server, and what the worklist then shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import redis
import requests

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.resources import Enrolment
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.screening.history import SCORE_CODE_PARAM, score_points
from launch import errors
from launch.bulk import BulkExport
from sandbox.world import SandboxWorld
from smartapp.caseload.ehr_refresh import ScoreRefresh, backend_client, last_refresh
from smartapp.caseload.refresh_jobs import schedule_refreshes
from smartapp.worker import work_burst

from .conftest import Browser, launch_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def refresh_world(redis_url: str) -> Iterator[SandboxWorld]:
    url = (
        redis_url.rsplit("/", 1)[0] + "/4"
    )  # a database of its own: its job queues see only this world's jobs
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    with SandboxWorld(size=30, seed=5, redis_url=url) as started:
        yield started


def _services(world: SandboxWorld) -> Any:
    return world.tandem_app.extensions["tandem"]


def _ehr_points(world: SandboxWorld, patient_id: str) -> set[tuple[str, Any, int]]:
    mine = [
        o for o in world.cohort.of_type("Observation") if o["subject"]["reference"] == f"Patient/{patient_id}"
    ]
    return {(p.instrument, p.when, p.score) for p in score_points(mine, "EHR")}


def _with_phq9(world: SandboxWorld) -> list[str]:
    return [p["id"] for p in world.cohort.of_type("Patient")
            if any(i == "PHQ-9" for i, _, _ in _ehr_points(world, p["id"]))]  # fmt: skip


def _enrol(world: SandboxWorld, mode: str, patient_ids: list[str]) -> None:
    services = _services(world)
    for patient_id in patient_ids:
        first = min(w for i, w, _ in _ehr_points(world, patient_id) if i == "PHQ-9").date()
        services.caseload.enrol(Enrolment(f"rf-{mode}-{patient_id}", world.iss(mode), patient_id, f"Patient {patient_id}",
                                          "cocm-depression", "active-treatment", first, consent_given=True))  # fmt: skip


def _put(world: SandboxWorld, resource: dict[str, Any]) -> None:
    requests.put(f"{world.ehr.base_url}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=10,
                 headers={"Content-Type": "application/fhir+json"}).raise_for_status()  # fmt: skip


def test_a_bulk_export_fills_enrolled_patients_scores_then_since_patches_them(
    refresh_world: SandboxWorld,
) -> None:
    world, services = refresh_world, _services(refresh_world)
    iss = world.iss("generic")
    reg = services.registrations.get(iss)
    chosen = _with_phq9(world)[:4]
    _enrol(world, "generic", chosen)

    report = ScoreRefresh(services, reg).run()
    assert report is not None and (report.method, report.full) == ("bulk export", True)
    assert (report.enrolled, report.patients_updated, report.not_in_group, report.failed) == (4, 4, 0, 0)
    cached = services.ehr_scores.for_issuer(iss)
    assert {k.patient_id for k in cached} == set(chosen)  # other patients' exported scores are not kept
    for patient_id in chosen:
        got = {(p.instrument, p.when, p.score) for p in cached[PatientKey(iss, patient_id)]}
        assert got == _ehr_points(world, patient_id)
    assert report.scores == sum(len(_ehr_points(world, p)) for p in chosen)

    # The worklist: scores from the EHR, the baseline at enrolment, without reading the EHR per patient.
    data = services.caseload.load().for_issuer(iss).with_ehr_scores(cached)
    rows = build_rows(data.enrolments, data.contacts, data.tasks, data.scores, date.today())
    assert len(rows) == 4
    for row in rows:
        assert row.phq9.first is not None and row.phq9.latest is not None
        assert row.phq9.first_point is not None and row.phq9.first_point.day == row.enrolment.start
        assert row.phq9.first_point.source == "EHR"

    # What changed in the EHR since: a new PHQ-9 for one patient, another's earlier one entered in error.
    a, b = chosen[0], chosen[1]
    _put(world, {"resourceType": "Observation", "id": f"{a}-phq9-new", "status": "final",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                 "subject": {"reference": f"Patient/{a}"}, "effectiveDateTime": f"{date.today()}T09:00:00Z",
                 "valueInteger": 4})  # fmt: skip
    gone = next(p for p in cached[PatientKey(iss, b)] if p.instrument == "PHQ-9")
    observation = requests.get(f"{world.ehr.base_url}/Observation/{gone.resource_id}", timeout=10).json()
    _put(world, {**observation, "status": "entered-in-error"})

    again = ScoreRefresh(services, reg).run()
    assert again is not None and not again.full and again.patients_updated == 2
    after = services.ehr_scores.for_issuer(iss)
    assert f"{a}-phq9-new" in {p.resource_id for p in after[PatientKey(iss, a)]}
    assert gone.resource_id not in {p.resource_id for p in after[PatientKey(iss, b)]}
    untouched = chosen[2]
    assert after[PatientKey(iss, untouched)] == cached[PatientKey(iss, untouched)]

    # A patient enrolled since then has older scores `_since` would not bring: the next export is a full one.
    newcomer = _with_phq9(world)[4]
    _enrol(world, "generic", [newcomer])
    third = ScoreRefresh(services, reg).run()
    assert third is not None and third.full and third.patients_updated == 5
    assert {(p.instrument, p.when, p.score) for p in services.ehr_scores.for_patient(PatientKey(iss, newcomer))} \
        == _ehr_points(world, newcomer)  # fmt: skip


def test_an_export_started_before_a_restart_is_picked_up_not_started_again(
    refresh_world: SandboxWorld,
) -> None:
    world, services = refresh_world, _services(refresh_world)
    reg = services.registrations.get(world.iss("generic"))
    refresh = ScoreRefresh(services, reg)
    # The worker kicked an export off and stopped before reading it (the state keeps the status URL).
    bulk = BulkExport(backend_client(services, reg))
    status_url = bulk.kick_off_group("bh-registry", types=["Observation"])
    state = refresh.state()
    refresh._save({**state, "status_url": status_url, "status_full": True})
    manifest = bulk.wait(status_url)
    report = refresh.run()
    assert report is not None and report.full
    after = refresh.state()
    assert after["since"] == manifest.transaction_time  # that export's, not a new one's
    assert "status_url" not in after
    with pytest.raises(errors.FHIRNotFound):
        bulk.status(status_url)  # read, then released with DELETE


def test_the_epic_like_ehr_is_read_per_patient(refresh_world: SandboxWorld) -> None:
    world, services = refresh_world, _services(refresh_world)
    iss = world.iss("epic")
    reg = services.registrations.get(iss)
    chosen = _with_phq9(world)[5:8]
    _enrol(world, "epic", chosen)
    report = ScoreRefresh(services, reg).run()
    assert report is not None and report.method == "per patient"
    assert (report.enrolled, report.patients_updated, report.failed, report.requests) == (3, 3, 0, 3)
    for patient_id in chosen:
        got = {
            (p.instrument, p.when, p.score)
            for p in services.ehr_scores.for_patient(PatientKey(iss, patient_id))
        }
        assert got == _ehr_points(world, patient_id)
    with pytest.raises(errors.FHIRBadRequest):  # why: this EHR answers Observation searches only per patient
        backend_client(services, reg).search("Observation", {"code": SCORE_CODE_PARAM})


def test_the_worker_queues_one_refresh_per_period_and_the_worklist_says_when(
    refresh_world: SandboxWorld,
) -> None:
    world, services = refresh_world, _services(refresh_world)
    assert schedule_refreshes(services) == 3  # every sandbox EHR has a backend registration
    assert schedule_refreshes(services) == 0  # already queued this period (any number of workers)
    assert work_burst(services) >= 3  # (how long it takes is for benchmarks/ehr_refresh.py, never a test)
    for mode in ("generic", "epic", "oracle"):
        last = last_refresh(services, world.iss(mode))
        assert last is not None and last["failed"] == 0
    browser = Browser()
    page = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    assert page.status_code == 200
    assert "last read" in page.text and "EHR score refresh (backend services): bulk export" in page.text

"""Write-backs drain by themselves in a real `tandem worker` process (RQ on the suite's redis-server), and
`tandem registry migrate-issuer` assigns resources written before issuers were recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.screening.instruments import INSTRUMENTS
from fhir_mappings.screening.resources import Submission
from fhir_mappings.screening.scoring import parse_answers, score
from fhir_mappings.screening.writeback import WritebackPlan
from sandbox.world import SandboxWorld
from smartapp.cli import main

pytestmark = pytest.mark.integration
PHQ9 = INSTRUMENTS["phq9"]

ANSWERS = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}


def _recorded(tandem: Any, world: SandboxWorld, patient: str) -> Any:
    answers, _ = parse_answers(PHQ9, ANSWERS)
    submission = Submission(uuid.uuid4().hex, PHQ9, answers, score(PHQ9, answers), patient,
                            datetime.now(UTC).replace(microsecond=0), iss=world.iss("generic"))  # fmt: skip
    return tandem.screenings.record(submission, iss=world.iss("generic"), vendor="generic", sex=None,
                                    plan=WritebackPlan((), "registry only"))  # fmt: skip


def _in_registry(tandem: Any, record_id: str) -> list[dict[str, Any]]:
    return [r for r in tandem.registry.search_all("Task", {"_count": "200"})
            if r.get("id") == f"tandem-{record_id}-safety"]  # fmt: skip


def test_a_worker_process_drains_write_backs_with_no_page_open(world: SandboxWorld, tandem: Any,
                                                              tmp_path: Any) -> None:  # fmt: skip
    queued = _recorded(tandem, world, "pt-0014")
    tandem.writebacks.schedule([queued])  # what a page does
    unqueued = _recorded(tandem, world, "pt-0015")  # e.g. saved while the queue could not be reached
    assert not _in_registry(tandem, queued.id) and not _in_registry(tandem, unqueued.id)
    env = {**os.environ, **world.environ, "TANDEM_LOG_LEVEL": "WARNING"}
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = subprocess.Popen([sys.executable, "-m", "smartapp.cli", "worker"], env=env,  # noqa: S603
                                  stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            records = [tandem.screenings.load(r.id) for r in (queued, unqueued)]
            if all(r.registry.status == "saved" for r in records):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the worker did not drain: " + log.read_text()[-2000:])
    finally:
        worker.terminate()
        if worker.wait(timeout=20) is None:
            worker.kill()
    for record in (queued, unqueued):
        assert len(_in_registry(tandem, record.id)) == 1  # exactly once, and the safety Task exists
        assert not tandem.screenings.load(record.id).registry.detail


def test_migrate_issuer_assigns_legacy_resources(world: SandboxWorld, tandem: Any) -> None:
    legacy = {
        "resourceType": "CarePlan", "id": "legacy-" + uuid.uuid4().hex[:12], "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/pt-legacy-1"}, "period": {"start": "2026-09-01"},
        "category": [{"coding": [{"system": "https://tandem.health/fhir/CodeSystem/program",
                                  "code": "cocm-depression"}]}],
    }  # fmt: skip
    tandem.registry.update(legacy)
    tandem.caseload.invalidate()
    iss = world.iss("generic")
    # Before: shown to nobody (a bare id could be any EHR's patient), and counted.
    assert tandem.caseload.enrolments_for(iss, "pt-legacy-1") == []
    assert tandem.caseload.load().unassigned >= 1
    env = {**world.environ}
    runner = CliRunner()
    dry = runner.invoke(main, ["registry", "migrate-issuer", "--iss", iss, "--dry-run"], env=env)
    assert dry.exit_code == 0 and "would assign" in dry.output and "CarePlan" in dry.output, dry.output
    assert tandem.caseload.enrolments_for(iss, "pt-legacy-1") == []
    done = runner.invoke(main, ["registry", "migrate-issuer", "--iss", iss], env=env)
    assert done.exit_code == 0 and "assigned" in done.output, done.output
    stored = tandem.registry.read("CarePlan", legacy["id"])
    assert patient_key(stored["subject"]) == PatientKey(iss, "pt-legacy-1")
    assert [e.id for e in tandem.caseload.enrolments_for(iss, "pt-legacy-1")] == [legacy["id"]]
    again = runner.invoke(main, ["registry", "migrate-issuer", "--iss", iss], env=env)
    assert "nothing to migrate" in again.output
    unknown = runner.invoke(
        main, ["registry", "migrate-issuer", "--iss", "https://other.example.org/fhir"], env=env
    )
    assert unknown.exit_code == 2

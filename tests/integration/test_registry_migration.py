"""`tandem registry migrate-patients` against real stores: registry data written before registry Patients (the
patient as `Patient/<EHR id>`, practitioners as literal references) is counted by a dry run that writes nothing,
rewritten by `--apply`, read by Tandem as before, and a second run finds nothing to do.

Source: issue 27 §1 ("Migrate existing data with a `tandem registry` command (dry run first; idempotent)").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from fhir_mappings.common.identity import PatientKey, patient_key, registry_patient_key
from fhir_mappings.registry.resources import Contact, Enrolment, Member, careplan, contact_task
from launch.store import EmbeddedStore
from launch.transport import HttpTransport
from smartapp.caseload.service import CaseloadService
from smartapp.cli import main
from smartapp.registry_store import RegistryClient, migrate_references

from .registry_servers import REGISTRY_SERVERS, start_registry

pytestmark = pytest.mark.integration

ISS = "https://ehr.migration.example/fhir"
CM = Member("Practitioner/cm-7", "Teresa Lindqvist")
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _old_form(resource: Any, pid: str) -> Any:
    """What releases before registry Patients wrote: `Patient/<EHR id>` beside the identifier."""
    if isinstance(resource, dict):
        if str(resource.get("reference", "")).startswith("Patient/tp-"):
            return {**resource, "reference": f"Patient/{pid}"}
        return {k: _old_form(v, pid) for k, v in resource.items()}
    if isinstance(resource, list):
        return [_old_form(v, pid) for v in resource]
    return resource


@pytest.fixture(scope="module", params=REGISTRY_SERVERS)
def old_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_registry(request.param, Path(tmp_path_factory.mktemp(f"migration-{request.param}")))
    base = server.base_url
    today, now = date.today(), datetime.now(UTC)
    # A store that enforces referential integrity held such data only beside copies of what it names.
    entries: list[dict[str, Any]] = [{"resourceType": "Practitioner", "id": "cm-7"}]
    for n in range(3):
        pid = f"m{n}-{uuid.uuid4().hex[:6]}"
        entries.append({"resourceType": "Patient", "id": pid})
        e = Enrolment(f"mig-cp-{pid}", ISS, pid, f"Patient {n}", "cocm-depression", "active-treatment",
                      today - timedelta(weeks=3), team={"care-manager": CM}, consent_given=True)  # fmt: skip
        contact = contact_task(Contact(f"mig-c-{pid}", e.id, today, 20, "phone", "care-manager", CM), e, now)
        entries += [_old_form(careplan(e), pid), _old_form(contact, pid)]
    # A resource written before issuers were recorded: migrate-issuer's, not this command's.
    entries.append({"resourceType": "Patient", "id": "mig-legacy"})
    entries.append({"resourceType": "Observation", "id": "mig-legacy-o", "status": "final",
                    "code": {"text": "PHQ-9"}, "subject": {"reference": "Patient/mig-legacy"}})  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in entries]}  # fmt: skip
    requests.post(base, json=bundle, headers=HEADERS, timeout=120).raise_for_status()
    try:
        yield server
    finally:
        server.stop()


def _client(server: Any) -> RegistryClient:
    return RegistryClient(server.base_url, HttpTransport(timeout=60), name="registry")


def _versions(base: str, resource_type: str) -> dict[str, str]:
    found = requests.get(
        f"{base}/{resource_type}", params={"_count": "200"}, headers=HEADERS, timeout=30
    ).json()
    return {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in found.get("entry") or []}


def test_a_dry_run_counts_apply_rewrites_and_a_second_run_finds_nothing(old_store: Any) -> None:
    client, base = _client(old_store), old_store.base_url
    before = _versions(base, "CarePlan") | _versions(base, "Task")

    dry = migrate_references(client, apply=False)
    assert dry.changed == {"CarePlan": 3, "Task": 3} and dry.patients == 3
    assert dry.without_issuer == {"Observation": 1}
    assert _versions(base, "CarePlan") | _versions(base, "Task") == before  # a dry run writes nothing

    done = migrate_references(client, apply=True)
    assert done.changed == dry.changed and done.conflicts == 0
    again = migrate_references(client, apply=True)
    assert again.changed == {} and again.patients == 0  # idempotent

    # The stored form: the registry Patient (which exists), the care manager as a logical reference.
    for resource in requests.get(f"{base}/CarePlan", params={"_count": "200"}, headers=HEADERS,
                                 timeout=30).json()["entry"]:  # fmt: skip
        plan = resource["resource"]
        key = patient_key(plan["subject"])
        assert key is not None and key.iss == ISS
        assert plan["subject"]["reference"] == key.relative
        patient = requests.get(f"{base}/{key.relative}", headers=HEADERS, timeout=30)
        assert patient.status_code == 200 and registry_patient_key(patient.json()) == key
        member = plan["contained"][0]["participant"][0]["member"]
        assert "reference" not in member and member["identifier"] == {"system": ISS, "value": "cm-7"}

    # Tandem reads it as before: each enrolment with its patient, care manager and contact.
    caseload = CaseloadService(EmbeddedStore(), client).load(use_cache=False)
    ours = [e for e in caseload.enrolments if e.iss == ISS]
    assert len(ours) == 3 and all(e.team["care-manager"] == CM for e in ours)
    assert {c.careplan_id for c in caseload.contacts} >= {e.id for e in ours}
    one = ours[0]
    assert [e.id for e in CaseloadService(EmbeddedStore(), client).load_patient(one.key).enrolments] == [
        one.id
    ]


def test_the_command_dry_runs_unless_told_to_apply(old_store: Any) -> None:
    env = {"TANDEM_REGISTRY_URL": old_store.base_url, "TANDEM_REGISTRY_AUTH": "none"}
    # Whatever the first test left, a fresh patient in the old form is found by a dry run and left alone.
    pid = f"cli-{uuid.uuid4().hex[:6]}"
    e = Enrolment(f"mig-cp-{pid}", ISS, pid, "Patient CLI", "cocm-depression", "active-treatment", date.today(),
                  team={"care-manager": CM}, consent_given=True)  # fmt: skip
    requests.put(f"{old_store.base_url}/Patient/{pid}", json={"resourceType": "Patient", "id": pid},
                 headers=HEADERS, timeout=30).raise_for_status()  # fmt: skip
    requests.put(f"{old_store.base_url}/CarePlan/{e.id}", json=_old_form(careplan(e), pid), headers=HEADERS,
                 timeout=30).raise_for_status()  # fmt: skip
    runner = CliRunner()
    dry = runner.invoke(main, ["registry", "migrate-patients"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would rewrite 1 resource(s) for 1 patient(s): 1 CarePlan" in dry.output
    assert "dry run: nothing was written" in dry.output and "migrate-issuer" in dry.output
    done = runner.invoke(main, ["registry", "migrate-patients", "--apply"], env=env)
    assert done.exit_code == 0 and "rewrote 1 resource(s)" in done.output, done.output
    again = runner.invoke(main, ["registry", "migrate-patients", "--apply"], env=env)
    assert "nothing to migrate" in again.output
    stored = requests.get(f"{old_store.base_url}/CarePlan/{e.id}", headers=HEADERS, timeout=30).json()
    assert stored["subject"]["reference"] == PatientKey(ISS, pid).relative


def test_a_migration_over_many_pages_misses_nothing(old_store: Any) -> None:
    # A store that pages by offset in the order of last change (sekmet) moves each rewritten resource to the end:
    # rewriting while paging would skip some (found by review; 10 resources in pages of 3 took three runs).
    pids = [f"pg-{uuid.uuid4().hex[:6]}" for _ in range(10)]
    for pid in pids:
        e = Enrolment(f"mig-cp-{pid}", ISS, pid, "Paged", "cocm-depression", "active-treatment", date.today(),
                      team={"care-manager": CM}, consent_given=True)  # fmt: skip
        requests.put(f"{old_store.base_url}/Patient/{pid}", json={"resourceType": "Patient", "id": pid},
                     headers=HEADERS, timeout=30).raise_for_status()  # fmt: skip
        requests.put(f"{old_store.base_url}/CarePlan/{e.id}", json=_old_form(careplan(e), pid), headers=HEADERS,
                     timeout=30).raise_for_status()  # fmt: skip
    done = migrate_references(_client(old_store), apply=True, page_size=3)
    assert done.changed.get("CarePlan") == 10 and done.conflicts == 0
    assert migrate_references(_client(old_store), apply=False, page_size=3).changed == {}

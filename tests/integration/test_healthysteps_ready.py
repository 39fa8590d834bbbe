"""The HealthySteps worklist's ready rows against a real FHIR server (sekmet-fhir): a warm view reads nothing from
the registry, a page's rows come from searches naming its children, a write rebuilds only its child's entry, and
the kept entries filter, count and order exactly as the rows built from the whole program do (issue 27 §2)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.healthysteps.program import HEALTHYSTEPS_PROGRAM
from fhir_mappings.healthysteps.referrals import Referral, referral_resources
from fhir_mappings.healthysteps.worklist import FLAGS, build_rows, filter_rows
from fhir_mappings.registry.resources import Enrolment, Member, TierMove, careplan, work_task
from fhir_mappings.screening.instruments import CATALOGUE
from fhir_mappings.screening.schedule import HEALTHYSTEPS
from launch.fhir import FHIRClient
from launch.store import EmbeddedStore
from launch.transport import HttpTransport
from sandbox.processes import FhirServer
from smartapp.caseload.ehr_scores import EhrScores
from smartapp.caseload.service import CaseloadService
from smartapp.healthysteps.ready import HealthyStepsReady, filter_entries
from smartapp.healthysteps.service import HealthyStepsService

from .registry_servers import put_resources, seeded_registry

pytestmark = pytest.mark.integration

ISS = "https://ehr.example.org/fhir"
SPECIALISTS = (Member("Practitioner/hs-1", "Maya Chen"), Member("Practitioner/hs-2", "Omar Haddad"))
TODAY = date.today()
NOW = datetime.now(UTC)
SERVICE = next(iter(HEALTHYSTEPS_PROGRAM.services))


_put = put_resources


def _child(n: int) -> Enrolment:
    born = TODAY - timedelta(days=20 + n * 53 % 1150)  # some turn 3 (exit due)
    start = born + timedelta(days=10)
    return Enrolment(f"hs-{n:03d}", ISS, f"c{n:03d}", f"{'QWERTYUIOP'[n % 10]}hild {n}", "healthysteps",
                     "active-treatment", start, team={"hs-specialist": SPECIALISTS[n % 2]}, consent_given=False,
                     birth_date=born, tiers=(TierMove(str(1 + n % 3), start, "enrolled", None),))  # fmt: skip


def _children(first: int, last: int) -> list[dict[str, Any]]:
    """Varied children: ages (due and overdue screens, some turning 3), tiers, Specialists, an old open referral,
    a safety follow-up."""
    resources: list[dict[str, Any]] = []
    for n in range(first, last):
        e = _child(n)
        resources.append(careplan(e))
        if n % 7 == 0:
            referral = Referral(f"r{n:03d}", e.id, "child", SERVICE, HEALTHYSTEPS_PROGRAM.services[SERVICE], "requested",
                                TODAY - timedelta(days=60))  # fmt: skip
            resources += referral_resources(referral, e, services=HEALTHYSTEPS_PROGRAM.services, concern=None,
                                             basis=(), goal=None, requester=None,
                                             now=NOW - timedelta(days=60))  # fmt: skip
        if n % 11 == 0:
            resources.append(work_task("safety-follow-up", f"s-{n}", e, NOW, description="EPDS item 10"))
    return resources


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with seeded_registry("sekmet", Path(tmp_path_factory.mktemp("hs-ready")), _children(0, 45)) as started:
        yield started


def _ready(server: FhirServer, store: EmbeddedStore) -> HealthyStepsReady:
    client = FHIRClient(server.base_url, HttpTransport(timeout=30), name="registry")
    caseload = CaseloadService(store, client)
    service = HealthyStepsService(HEALTHYSTEPS_PROGRAM, client, caseload, CATALOGUE)
    return HealthyStepsReady(store, service, caseload, EhrScores(store), HEALTHYSTEPS)


def _whole(ready: HealthyStepsReady) -> list[Any]:
    """The rows as the worklist built them before: the whole program read and built."""
    svc = ready.service
    data = svc.load(ISS, {})
    return build_rows(svc.program, HEALTHYSTEPS, data.enrolments, caregivers=data.caregivers, events=data.events,
                      referrals=data.referrals, contacts=data.contacts, safety_tasks=data.safety_tasks, today=TODAY,
                      catalogue=CATALOGUE, gestations=data.gestations)  # fmt: skip


@pytest.mark.parametrize(
    "filters",
    [
        # fhir_mappings.healthysteps.worklist.filter_rows (and build_rows's order: most urgent, then name).
        {},
        *({"flag": flag} for flag in FLAGS),
        *({"tier": tier} for tier in ("1", "2", "3")),
        {"specialist": "Practitioner/hs-2"},
        {"flag": "due", "tier": "2", "specialist": "Practitioner/hs-1"},
    ],
)
def test_kept_entries_filter_and_order_as_the_whole_program_built(
    server: FhirServer, filters: dict[str, str]
) -> None:
    ready = _ready(server, EmbeddedStore())
    rows = _whole(ready)
    entries = ready.entries(ISS, TODAY)
    assert [e.id for e in filter_entries(entries, **filters)] == [
        r.enrolment.id for r in filter_rows(rows, **filters)
    ]
    assert {flag: sum(flag in e.flags for e in entries) for flag in FLAGS} == {
        flag: sum(flag in r.flags for r in rows) for flag in FLAGS
    }
    page = filter_entries(entries, **filters)[:10]
    assert ready.rows(ISS, page, TODAY) == [r for r in filter_rows(rows, **filters)][:10]


def test_a_warm_view_reads_nothing_and_a_write_rebuilds_only_its_child(server: FhirServer) -> None:
    store = EmbeddedStore()
    ready = _ready(server, store)
    client = ready.service._client()
    page = filter_entries(ready.entries(ISS, TODAY))[:10]
    sent = client.counter.total
    assert len(ready.rows(ISS, page, TODAY)) == 10
    assert (
        client.counter.total - sent <= 5
    )  # the page's children: one batch of searches, whatever the program's size
    sent, decoded = client.counter.total, ready.decoded
    again = ready.rows(ISS, filter_entries(ready.entries(ISS, TODAY))[:10], TODAY)
    assert [r.enrolment.id for r in again] == [e.id for e in page]
    assert (client.counter.total, ready.decoded) == (sent, decoded)  # warm: no request, no entry decoded

    before = {e.id: e for e in ready.entries(ISS, TODAY)}
    decoded = ready.decoded
    e = _child(4)
    _put(
        server.base_url,
        [work_task("safety-follow-up", "s-new-4", e, datetime.now(UTC), description="EPDS 10")],
    )
    ready.caseload.invalidate()
    after = {x.id: x for x in ready.entries(ISS, TODAY)}
    assert "safety" in after["hs-004"].flags and "safety" not in before["hs-004"].flags
    assert {k: v for k, v in after.items() if k != "hs-004"} == {
        k: v for k, v in before.items() if k != "hs-004"
    }
    assert after["hs-004"].stamp != before["hs-004"].stamp  # its built row is built again, the others kept
    assert ready.decoded - decoded == len(after) + 1  # the version moved: this process read the entries again

    other = _ready(server, store)  # another process: the same entries
    assert {x.id: x for x in other.entries(ISS, TODAY)} == after

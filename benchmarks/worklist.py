"""Benchmark: the care manager's worklist for 100, 1,000 and 5,000 enrolled patients on a local FHIR server.

    python3 benchmarks/worklist.py [--sizes 100,1000,5000] [--delay-ms 50]

For each size it seeds a sekmet-fhir registry store (a CarePlan, 3 contacts, a follow-up and 4 PHQ-9 scores per
patient), then prints, on loopback and again with an injected delay per request (a hosted FHIR store's round
trip): requests, cold and warm time, and peak memory for
  per-type  — a few per-type searches joined in memory (what Tandem uses);
  revinclude — CarePlan with _revinclude of its Tasks, plus the Observations per type;
  naive     — the CarePlans, then one Task search and one Observation search per patient;
and the ratios against per-type. Warm = the cached worklist (Redis-style store), as a second page view sees it.
For per-type it also prints the incremental refresh after 10 Tasks changed (what follows any write) and the
chart's registry part (one patient's data by patient searches).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from delayed_session import DelayedSession  # benchmarks/, beside this script

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.resources import Contact, Enrolment, Member, careplan, contact_task, work_task
from fhir_mappings.registry.worklist import build_rows
from launch.fhir import FHIRClient
from launch.store import EmbeddedStore
from launch.transport import HttpTransport
from sandbox.processes import FhirServer
from smartapp.caseload.service import SYNC_OVERLAP_SECONDS, CaseloadService

ISS = "https://ehr.example.org/fhir"
CM = Member("Practitioner/cm-1", "Teresa Lindqvist")
TODAY = date.today()


def seed(base: str, size: int) -> None:
    resources: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for n in range(size):
        start = TODAY - timedelta(weeks=2 + n % 20)
        e = Enrolment(f"cp-{n}", ISS, f"p{n}", f"Patient {n}", "cocm-depression", "active-treatment", start,
                      team={"care-manager": CM}, consent_given=True, consent_date=start, consent_method="verbal")  # fmt: skip
        resources.append(careplan(e))
        for k in range(3):
            when = TODAY - timedelta(days=7 * k + n % 5)
            resources.append(contact_task(Contact(f"c-{n}-{k}", e.id, when, 15 + k * 5, "phone", "care-manager", CM),
                                          e, now))  # fmt: skip
        resources.append(work_task("follow-up", f"f-{n}", e, now, due=TODAY + timedelta(days=n % 9 - 4)))
        for k in range(4):
            resources.append({
                "resourceType": "Observation", "id": f"o-{n}-{k}", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
                "subject": e.key.reference(),  # (issuer, id), as Tandem writes it
                "effectiveDateTime": (start + timedelta(weeks=2 * k)).isoformat(), "valueInteger": max(0, 18 - 3 * k),
            })  # fmt: skip
    http = requests.Session()
    for i in range(0, len(resources), 500):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources[i : i + 500]]}  # fmt: skip
        answer = http.post(base, json=bundle, timeout=300, headers={"Content-Type": "application/fhir+json"})
        answer.raise_for_status()


def change(base: str, count: int) -> None:
    """Update `count` contact Tasks on the server (as another care manager's writes would)."""
    http = requests.Session()
    for n in range(count):
        task = http.get(f"{base}/Task/c-{n}-0", timeout=30).json()
        task["description"] = f"{task.get('description') or ''} (edited)"
        http.put(f"{base}/Task/c-{n}-0", json=task, timeout=30,
                 headers={"Content-Type": "application/fhir+json"}).raise_for_status()  # fmt: skip


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def peak_mb(run: Callable[[], Any]) -> float:
    """Peak traced memory of a run (tracemalloc slows Python down, so times come from untraced runs)."""
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def revinclude(client: FHIRClient) -> Any:
    pages = list(
        client.iter_pages("CarePlan", {"_revinclude": "Task:based-on", "_count": "200"}, max_pages=10_000)
    )
    observations = client.search_all("Observation", {"code": "http://loinc.org|44261-6", "_count": "200"},
                                      max_pages=10_000)  # fmt: skip
    return pages, observations


def naive(client: FHIRClient) -> Any:
    plans = client.search_all("CarePlan", {"_count": "200"}, max_pages=10_000)
    for plan in plans:
        client.search_all("Task", {"based-on": f"CarePlan/{plan['id']}"})
        client.search_all(
            "Observation", {"subject": plan["subject"]["reference"], "code": "http://loinc.org|44261-6"}
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="skip a run estimated to take longer"
    )
    args = parser.parse_args()
    logging.basicConfig(level="ERROR")
    out = sys.stdout.write
    out(f"{'N':>6} {'delay':>6} {'strategy':<11}{'requests':>9}{'cold s':>9}{'warm s':>9}{'peak MB':>9}"
        f"{'× requests':>11}{'× cold':>8}\n")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as workdir:
            server = FhirServer(Path(workdir)).start()
            try:
                seed(server.base_url, size)
                # Past the incremental search's overlap: the refresh below reads only what changed after the load.
                time.sleep(SYNC_OVERLAP_SECONDS + 1)
                for delay in (0.0, args.delay_ms / 1000):

                    def client(base: str = server.base_url, delay: float = delay) -> FHIRClient:
                        transport = HttpTransport(timeout=120, session=DelayedSession(delay))
                        return FHIRClient(base, transport, name="registry")

                    service = CaseloadService(EmbeddedStore(), client())

                    def per_type(service: CaseloadService = service, cached: bool = True) -> None:
                        data = service.load(use_cache=cached)
                        build_rows(data.enrolments, data.contacts, data.tasks, data.scores, TODAY)

                    cold = timed(lambda: per_type(cached=False))
                    requests_made = service.registry.counter.total  # type: ignore[union-attr]
                    peak = peak_mb(lambda: per_type(cached=False))
                    per_type(cached=False)  # fills the cache
                    warm = timed(per_type)
                    out(f"{size:>6} {delay * 1000:>4.0f}ms {'per-type':<11}{requests_made:>9}{cold:>9.2f}{warm:>9.3f}"
                        f"{peak:>9.1f}{1:>10.1f}×{1:>7.1f}×\n")  # fmt: skip
                    # A care manager logs 10 contacts: the next load patches the snapshot instead of reloading.
                    change(server.base_url, 10)
                    service.invalidate()
                    registry = service.registry
                    assert registry is not None  # noqa: S101
                    before = registry.counter.total
                    incremental = timed(per_type)
                    out(f"{size:>6} {delay * 1000:>4.0f}ms {'incremental':<11}{registry.counter.total - before:>9}"
                        f"{incremental:>9.2f}   (after 10 changed Tasks)\n")  # fmt: skip
                    before = registry.counter.total
                    key = PatientKey(ISS, f"p{size // 2}")
                    chart = timed(lambda key=key, service=service: service.load_patient(key))
                    out(f"{size:>6} {delay * 1000:>4.0f}ms {'chart part':<11}{registry.counter.total - before:>9}"
                        f"{chart:>9.3f}   (one patient's enrolments, tasks and scores)\n")  # fmt: skip
                    for name, strategy, estimate in (
                        # sekmet-fhir's _revinclude slows down with the number of Tasks (10 s at 1,000 here).
                        ("revinclude", revinclude, 10 * (size / 1000) ** 2 * 2),
                        ("naive", naive, (2 * size + size / 200) * (delay + 0.004) * 2),
                    ):
                        if estimate > args.max_seconds:
                            out(f"{size:>6} {delay * 1000:>4.0f}ms {name:<11} skipped: about {estimate:.0f} s "
                                f"({'2N+1' if name == 'naive' else 'N/200 + obs'} requests)\n")  # fmt: skip
                            continue
                        first = client()
                        elapsed = timed(lambda c=first, strategy=strategy: strategy(c))
                        peak = peak_mb(lambda strategy=strategy: strategy(client()))
                        out(f"{size:>6} {delay * 1000:>4.0f}ms {name:<11}{first.counter.total:>9}{elapsed:>9.2f}"
                            f"{'—':>9}{peak:>9.1f}{first.counter.total / requests_made:>10.1f}×"
                            f"{elapsed / cold:>7.1f}×\n")  # fmt: skip
            finally:
                server.stop()


if __name__ == "__main__":
    main()

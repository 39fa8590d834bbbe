"""Benchmark: the care manager's worklist for 100, 1,000 and 5,000 enrolled patients on a local FHIR server.

    python3 benchmarks/worklist.py [--sizes 100,1000,5000] [--smi-sizes 100,1000] [--delay-ms 50]

For each size it seeds a sekmet-fhir registry store (a CarePlan, 3 contacts, a follow-up and 4 PHQ-9 scores per
patient), then prints, on loopback and again with an injected delay per request (a hosted FHIR store's round
trip): requests, cold and warm time, and peak memory for
  per-type  — a few per-type searches joined in memory (what Tandem uses);
  revinclude — CarePlan with _revinclude of its Tasks, plus the Observations per type;
  naive     — the CarePlans, then one Task search and one Observation search per patient;
and the ratios against per-type. Warm = the cached worklist (Redis-style store), as a second page view sees it.
For per-type it also prints the incremental refresh after 10 Tasks changed (what follows any write) and the
chart's registry part (one patient's data by patient searches).

Then the SMI program (`--smi-sizes`): an EHR server with each patient's vitals, labs, smoking status and an
antipsychotic order, and a registry with the SMI enrolments, contacts, symptom scores and social answers. It
prints the worker's medical read (searches naming 50 patients each, against one search per type per patient)
and the whole-person worklist (registry requests, cold and warm time, peak memory).
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
from fhir_mappings.smi.social import SOCIAL, social_observation
from launch.fhir import FHIRClient
from launch.store import EmbeddedStore
from launch.transport import HttpTransport
from sandbox.processes import FhirServer
from smartapp.caseload.service import SYNC_OVERLAP_SECONDS, CaseloadService
from smartapp.smi.medical import EhrMedical, read_patient, refresh_medical
from smartapp.smi.page import medical_inputs

ISS = "https://ehr.example.org/fhir"
INSTRUMENT = "https://tandem.health/fhir/CodeSystem/instrument"
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
    post_all(base, resources)


def post_all(base: str, resources: list[dict[str, Any]]) -> None:
    """PUT every resource in transactions of 500 (update-as-create)."""
    http = requests.Session()
    for i in range(0, len(resources), 500):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources[i : i + 500]]}  # fmt: skip
        answer = http.post(base, json=bundle, timeout=300, headers={"Content-Type": "application/fhir+json"})
        answer.raise_for_status()


def _quantity(code: str, pid: str, day: date, value: float, unit: str, oid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "effectiveDateTime": day.isoformat(),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}  # fmt: skip


def seed_smi(ehr_base: str, registry_base: str, size: int) -> None:
    """Per patient, in the EHR: 5 weights, 3 BP panels, 2 HbA1c, 2 LDL, a smoking status and an antipsychotic order;
    in the registry: the enrolment, 3 contacts, 9 symptom scores (PHQ-9, WHO-5, ASRM) and 8 social answers."""
    ehr: list[dict[str, Any]] = []
    registry: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    codes = {
        "PHQ-9": ("http://loinc.org", "44261-6"),
        "WHO-5": (INSTRUMENT, "who5"),
        "ASRM": (INSTRUMENT, "asrm"),
    }
    housing, connection = SOCIAL.domain("housing"), SOCIAL.domain("connection")
    assert housing is not None and connection is not None  # noqa: S101
    for n in range(size):
        pid, start = f"s{n}", TODAY - timedelta(weeks=4 + n % 40)
        ehr.append({"resourceType": "Patient", "id": pid})
        for k in range(5):
            day = start + timedelta(weeks=4 * k)
            ehr.append(_quantity("29463-7", pid, day, 80 + k + n % 7, "kg", f"{pid}-w{k}"))
        for k in range(3):
            ehr.append({"resourceType": "Observation", "id": f"{pid}-bp{k}", "status": "final",
                        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": (start + timedelta(weeks=6 * k)).isoformat(),
                        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                                       "valueQuantity": {"value": 120 + (n + k) % 40}},
                                      {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                                       "valueQuantity": {"value": 75 + (n + k) % 25}}]})  # fmt: skip
        for k in range(2):
            ehr.append(
                _quantity(
                    "4548-4", pid, start + timedelta(weeks=12 * k), 5.5 + (n % 40) / 10, "%", f"{pid}-a{k}"
                )
            )
            ehr.append(
                _quantity(
                    "13457-7", pid, start + timedelta(weeks=12 * k), 90 + n % 80, "mg/dL", f"{pid}-l{k}"
                )
            )
        ehr.append({"resourceType": "Observation", "id": f"{pid}-smoke", "status": "final",
                    "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": start.isoformat(),
                    "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
                    "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                         "code": "449868002" if n % 3 else "266919005"}]}})  # fmt: skip
        ehr.append({"resourceType": "MedicationRequest", "id": f"{pid}-med", "status": "active", "intent": "order",
                    "subject": {"reference": f"Patient/{pid}"}, "authoredOn": start.isoformat(),
                    "medicationCodeableConcept": {"text": "olanzapine 10 MG Oral Tablet"}})  # fmt: skip
        e = Enrolment(f"cp-{pid}", ISS, pid, f"Patient {n}", "cocm-smi", "active-treatment", start,
                      team={"care-manager": CM}, consent_given=True, consent_date=start, consent_method="verbal")  # fmt: skip
        registry.append(careplan(e))
        for k in range(3):
            when = TODAY - timedelta(days=7 * k + n % 5)
            registry.append(
                contact_task(Contact(f"c-{pid}-{k}", e.id, when, 20, "phone", "care-manager", CM), e, now)
            )
        for series, (system, code) in codes.items():
            for k in range(3):
                registry.append({"resourceType": "Observation", "id": f"o-{pid}-{code}-{k}", "status": "final",
                                 "code": {"coding": [{"system": system, "code": code}]}, "subject": e.key.reference(),
                                 "effectiveDateTime": (start + timedelta(weeks=2 * k)).isoformat(),
                                 "valueInteger": max(0, 14 - 3 * k) if series != "WHO-5" else 40 + 8 * k})  # fmt: skip
        for k in range(4):
            day = start + timedelta(weeks=3 * k)
            for domain, code in ((housing, "housed" if (n + k) % 5 else "unhoused"), (connection, "3-5")):
                answer = domain.answer(code)
                assert answer is not None  # noqa: S101
                registry.append(social_observation(e.key, domain, answer, day, now, None))
    post_all(ehr_base, ehr)
    post_all(registry_base, registry)


def smi_main(sizes: list[int], delay_ms: float) -> None:
    out = sys.stdout.write
    out(f"\nSMI program (whole-person worklist)\n{'N':>6} {'delay':>6} {'what':<26}{'requests':>9}{'cold s':>9}"
        f"{'warm s':>9}{'peak MB':>9}\n")  # fmt: skip
    for size in sizes:
        with tempfile.TemporaryDirectory() as workdir:
            ehr_server = FhirServer(Path(workdir) / "ehr").start()
            registry_server = FhirServer(Path(workdir) / "registry").start()
            try:
                seed_smi(ehr_server.base_url, registry_server.base_url, size)
                ids = [f"s{n}" for n in range(size)]
                for delay in (0.0, delay_ms / 1000):

                    def client(base: str, delay: float = delay) -> FHIRClient:
                        return FHIRClient(
                            base, HttpTransport(timeout=120, session=DelayedSession(delay)), name="fhir"
                        )

                    store = EmbeddedStore()
                    copy = EhrMedical(store)
                    ehr = client(ehr_server.base_url)
                    base = ehr_server.base_url
                    elapsed = timed(lambda e=ehr, c=copy, i=ids: refresh_medical(e, c, ISS, i, per_search=50))
                    peak = peak_mb(lambda b=base, i=ids: refresh_medical(client(b), EhrMedical(EmbeddedStore()), ISS, i,
                                                                         per_search=50))  # fmt: skip
                    searches = ehr.counter.total
                    out(f"{size:>6} {delay * 1000:>4.0f}ms {'medical read, 50 per search':<26}{searches:>9}{elapsed:>9.2f}"
                        f"{'—':>9}{peak:>9.1f}\n")  # fmt: skip
                    sample = ids[: min(size, 100)]
                    one_by_one = client(ehr_server.base_url)
                    sample_s = timed(lambda c=one_by_one, s=sample: [read_patient(c, p) for p in s])
                    estimate = sample_s * size / len(sample)
                    out(f"{size:>6} {delay * 1000:>4.0f}ms {'medical read, per patient':<26}{2 * size:>9}{estimate:>9.2f}"
                        f"{'—':>9}{'—':>9}   ({'measured' if len(sample) == size else f'from {len(sample)} measured'})\n")  # fmt: skip
                    service = CaseloadService(store, client(registry_server.base_url))

                    def rows(
                        service: CaseloadService = service, copy: EhrMedical = copy, cached: bool = True
                    ) -> int:
                        data = service.load(use_cache=cached)
                        built = build_rows(data.enrolments, data.contacts, data.tasks, data.scores, TODAY,
                                           medical=medical_inputs(copy, ISS), social=data.social)  # fmt: skip
                        assert all(r.whole is not None and r.whole.medical is not None for r in built)  # noqa: S101
                        return len(built)

                    cold = timed(lambda: rows(cached=False))
                    registry = service.registry
                    assert registry is not None  # noqa: S101
                    made = registry.counter.total
                    peak = peak_mb(lambda: rows(cached=False))
                    rows(cached=False)
                    warm = timed(rows)
                    out(f"{size:>6} {delay * 1000:>4.0f}ms {'worklist rows':<26}{made:>9}{cold:>9.2f}{warm:>9.3f}"
                        f"{peak:>9.1f}\n")  # fmt: skip
            finally:
                registry_server.stop()
                ehr_server.stop()


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
    parser.add_argument("--smi-sizes", default="100,1000")
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="skip a run estimated to take longer"
    )
    args = parser.parse_args()
    logging.basicConfig(level="ERROR")
    out = sys.stdout.write
    out(f"{'N':>6} {'delay':>6} {'strategy':<11}{'requests':>9}{'cold s':>9}{'warm s':>9}{'peak MB':>9}"
        f"{'× requests':>11}{'× cold':>8}\n")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",") if s):
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
    smi_main([int(s) for s in args.smi_sizes.split(",") if s], args.delay_ms)


if __name__ == "__main__":
    main()

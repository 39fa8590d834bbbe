"""Benchmark: the worker's refresh of enrolled patients' EHR scores, and the worklist load that follows it.

    python3 benchmarks/ehr_refresh.py [--enrolled 1000] [--delay-ms 0] [--concurrency 1,4,8]

Starts the sandbox (sekmet-fhir EHR behind the sandbox's SMART server, a registry store, Tandem), enrols
`--enrolled` patients who have PHQ-9s in the EHR, and prints for each way of reading the EHR:
  bulk, full     — a Bulk Data export of the EHR's Group (backend services token, kick-off, polling, NDJSON);
  bulk, _since   — the next export after 10 new scores in the EHR;
  per patient    — one Observation search per enrolled patient (the Epic-like EHR) at each concurrency;
then the worklist load with the cached scores: registry requests, EHR requests (none), time. With --delay-ms every
EHR request waits that long first (a hosted EHR's round trip); the sandbox's export itself waits ~1 s before it
says "complete", as real servers take time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime
from typing import Any

import requests
from delayed_session import DelayedSession  # benchmarks/, beside this script

from fhir_mappings.registry.resources import Enrolment
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.screening.history import score_points
from launch.fhir import FHIRClient
from launch.transport import HttpTransport
from sandbox.world import SandboxWorld
from smartapp.caseload.ehr_refresh import ScoreRefresh, backend_client


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def client_for(services: Any, reg: Any, delay: float) -> FHIRClient:
    """The refresh's own backend services client, over a transport that waits `delay` before each request."""
    return backend_client(services, reg, HttpTransport(session=DelayedSession(delay)) if delay else None)


def enrol(world: SandboxWorld, services: Any, mode: str, count: int) -> int:
    by_patient: dict[str, list[Any]] = {}
    for observation in world.cohort.of_type("Observation"):
        by_patient.setdefault(observation["subject"]["reference"].split("/")[-1], []).append(observation)
    enrolled = 0
    for patient_id, observations in sorted(by_patient.items()):
        phq = sorted(p.when for p in score_points(observations, "EHR") if p.instrument == "PHQ-9")
        if not phq:
            continue
        services.caseload.enrol(Enrolment(f"bm-{mode}-{patient_id}", world.iss(mode), patient_id, None,
                                          "cocm-depression", "active-treatment", phq[0].date(), consent_given=True))  # fmt: skip
        enrolled += 1
        if enrolled == count:
            break
    return enrolled


def run(label: str, refresh: ScoreRefresh, **kwargs: Any) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    report = refresh.run(**kwargs)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if report is None:
        raise SystemExit("another refresh was running")
    waited = f" (export built in {report.export_seconds:.1f} s)" if report.method == "bulk export" else ""
    out(f"  {label:<24} {report.requests:>6} EHR requests {seconds:>7.2f} s{waited}  peak {peak / 1e6:6.1f} MB  "
        f"{report.patients_updated} patients, {report.scores} scores")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrolled", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = min(5000, int(args.enrolled / 0.65) + 20)  # about 65 % of the cohort has a PHQ-9 history
    delay = args.delay_ms / 1000
    out(f"cohort {size} patients; starting the sandbox …")
    with SandboxWorld(size=size, seed=3, quiet=True) as world:
        services = world.tandem_app.extensions["tandem"]
        started = time.perf_counter()
        generic = enrol(world, services, "generic", args.enrolled)
        epic = enrol(world, services, "epic", args.enrolled)
        out(f"enrolled {generic} (bulk EHR) and {epic} (Epic-like EHR) in {time.perf_counter() - started:.0f} s;"
              f" EHR delay {args.delay_ms:.0f} ms per request")  # fmt: skip
        reg = services.registrations.get(world.iss("generic"))
        out("Bulk Data export of the EHR's Group:")
        run("bulk, full", ScoreRefresh(services, reg, client=client_for(services, reg, delay)), full=True)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for n, observation in enumerate(o for o in world.cohort.of_type("Observation")
                                        if o["id"].endswith("-phq9-1")):  # fmt: skip
            if n == 10:
                break
            requests.put(f"{world.ehr.base_url}/Observation/{observation['id']}-bm", timeout=10,
                         json={**observation, "id": f"{observation['id']}-bm", "effectiveDateTime": now},
                         headers={"Content-Type": "application/fhir+json"}).raise_for_status()  # fmt: skip
        run("bulk, _since (10 new)", ScoreRefresh(services, reg, client=client_for(services, reg, delay)))
        epic_reg = services.registrations.get(world.iss("epic"))
        out("Per patient (the Epic-like EHR requires a patient parameter):")
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            reg_c = epic_reg.model_copy(
                update={"backend": epic_reg.backend.model_copy(update={"concurrency": concurrency})}
            )
            run(
                f"per patient, {concurrency} at once",
                ScoreRefresh(services, reg_c, client=client_for(services, reg_c, delay)),
            )
        out("The worklist load after a refresh (registry store on loopback):")
        for label, use_cache in (("cold", False), ("warm", True)):
            started = time.perf_counter()
            data = services.caseload.load(use_cache=use_cache).for_issuer(reg.iss)
            data = data.with_ehr_scores(services.ehr_scores.for_issuer(reg.iss))
            rows = build_rows(data.enrolments, data.contacts, data.tasks, data.scores, date.today())
            seconds = time.perf_counter() - started
            with_scores = sum(1 for r in rows if r.phq9.latest is not None)
            out(f"  {label:<24} {data.requests:>6} registry requests, 0 EHR requests {seconds:>7.2f} s  "
                  f"{len(rows)} rows, {with_scores} with PHQ-9 scores")  # fmt: skip


if __name__ == "__main__":
    main()

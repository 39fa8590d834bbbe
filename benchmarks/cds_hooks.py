"""Benchmark: Tandem's CDS Hooks `patient-view` under 50 concurrent chart opens (target: p95 within 500 ms).

    python3 benchmarks/cds_hooks.py [--concurrency 50] [--calls 1000] [--size 200]

Starts the sandbox world on loopback with the demo's seeded registry (two sekmet-fhir servers, the sandbox EHR,
Tandem on its threaded server, and a redis-server when one is installed, as in production), then posts
`patient-view` calls with a fresh signed JWT each, as the EHR does when charts open: first with the prefetch the
EHR filled (the generic sandbox EHR), then without prefetch (Tandem reads the EHR with the call's token, as with
Oracle Health). Every call also reads the registry (backend services) and Redis (alerts, jti). Prints the
latency distribution and throughput of each.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from sandbox.oauth import LaunchContext
from sandbox.processes import free_port, wait_until_up
from sandbox.world import SandboxWorld


def start_redis() -> tuple[str | None, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",  # noqa: S603
                                tempfile.mkdtemp()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", process


def out(line: str) -> None:
    sys.stdout.write(line + "\n")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def run(world: SandboxWorld, bodies: list[dict[str, Any]], calls: int, concurrency: int, mode: str) -> None:
    cds = world.sandbox_app.extensions["sandbox"]["cds"]
    url = f"{world.tandem_url}/cds-services/tandem-patient-view"
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency)
    session.mount("http://", adapter)

    def one(index: int) -> tuple[float, int, int]:
        body = {**bodies[index % len(bodies)], "hookInstance": str(uuid.uuid4())}
        headers = {"Authorization": f"Bearer {cds.sign(mode, url)}"}
        started = time.perf_counter()
        response = session.post(url, json=body, headers=headers, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, response.status_code, len(response.json().get("cards", [])) if response.ok else 0

    for warm in range(min(20, len(bodies))):
        one(warm)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(calls)))
    wall = time.perf_counter() - started
    latencies = [r[0] for r in results]
    failures = sum(1 for r in results if r[1] != 200)
    cards = sum(r[2] for r in results)
    out(f"  {calls} calls, {concurrency} concurrent: p50 {percentile(latencies, 0.5):.0f} ms, "
          f"p95 {percentile(latencies, 0.95):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms, "
          f"max {max(latencies):.0f} ms, mean {statistics.mean(latencies):.0f} ms; {calls / wall:.0f} calls/s; "
          f"{failures} not 200; {cards / calls:.1f} cards per call")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    redis_url, redis_process = start_redis()
    try:
        with SandboxWorld(
            size=args.size, seed=5, seed_caseload=True, quiet=True, redis_url=redis_url
        ) as world:
            wait_until_up(f"{world.tandem_url}/healthz")
            cds = world.sandbox_app.extensions["sandbox"]["cds"]
            service = cds.services("generic")[0]
            patients = sorted({p["id"] for p in world.cohort.of_type("Patient")})[:200]
            out(f"Tandem CDS Hooks patient-view, {len(patients)} patients' charts, the demo's registry "
                  f"({'redis-server' if redis_url else 'embedded store: redis-server not installed'})")  # fmt: skip
            with_prefetch, without = [], []
            for pid in patients:
                context = {"userId": "Practitioner/pr-pcp-1", "patientId": pid}
                base = {"hook": "patient-view", "fhirServer": world.iss("generic"), "context": context}
                with_prefetch.append({**base, "prefetch": cds.prefetch(service, context, "generic")})
            for pid in patients:
                context = {"userId": "Practitioner/pr-pcp-1", "patientId": pid}
                token = world.sandbox_app.extensions["sandbox"]["store"].mint(
                    "tandem-cds", "user/Patient.rs user/Observation.rs user/Condition.rs",
                    LaunchContext(mode="generic", practitioner="pr-pcp-1", patient=pid), 3600)  # fmt: skip
                without.append({"hook": "patient-view", "fhirServer": world.iss("generic"), "context": context,
                                "fhirAuthorization": {"access_token": token, "token_type": "Bearer",
                                                      "expires_in": 3600, "scope": "user/Patient.rs", "subject": "x"}})  # fmt: skip
            out("With the EHR's prefetch:")
            run(world, with_prefetch, args.calls, args.concurrency, "generic")
            out("Without prefetch (Tandem reads the EHR with the call's token: 3 FHIR requests per call):")
            run(world, without, args.calls, args.concurrency, "generic")
    finally:
        if redis_process is not None:
            redis_process.terminate()


if __name__ == "__main__":
    main()

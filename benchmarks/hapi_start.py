"""Benchmark: how fast Tandem's HAPI FHIR registry server (hapi/) starts for the test tier (target: under 40 s on
2 cores), and how much memory it holds.

    python3 benchmarks/hapi_start.py [--runs 3] [--restart]

Each run starts `sandbox.processes.HapiServer` on loopback with a new H2 database (with --restart, the second
start of each run reopens the first one's database), waits until /fhir/metadata answers, then writes and searches
100 Observations once. Prints the seconds to the first answer, the write and search times and the server's
resident memory. The jar comes from `scripts/hapi.sh path` (built once) or TANDEM_HAPI_JAR.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from sandbox.processes import HapiServer, hapi_jar


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _exercise(server: HapiServer) -> tuple[float, float]:
    patient = {"resourceType": "Patient", "id": "bench-patient"}
    requests.put(f"{server.base_url}/Patient/bench-patient", json=patient, headers=HEADERS, timeout=60)
    entries = [
        {
            "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "bench"},
                         "subject": {"reference": "Patient/bench-patient"}},
            "request": {"method": "POST", "url": "Observation"},
        }
        for _ in range(100)
    ]  # fmt: skip
    started = time.perf_counter()
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    requests.post(server.base_url, json=bundle, headers=HEADERS, timeout=120).raise_for_status()
    written = time.perf_counter() - started
    started = time.perf_counter()
    params = {"subject": "Patient/bench-patient", "_count": "200"}
    requests.get(
        f"{server.base_url}/Observation", params=params, headers=HEADERS, timeout=60
    ).raise_for_status()
    return written, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--restart", action="store_true", help="also time a start on an existing database")
    args = parser.parse_args()
    jar = hapi_jar()
    starts: list[float] = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="hapi-bench-") as workdir:
            server = HapiServer(Path(workdir), jar=jar)
            for attempt in ("new database", "reopened database")[: 2 if args.restart else 1]:
                started = time.perf_counter()
                server.start()
                up = time.perf_counter() - started
                starts.append(up)
                try:
                    written, searched = _exercise(server)
                    pid = server.process.pid if server.process else 0
                    _say(f"run {run} ({attempt}): up in {up:.1f} s; 100 Observations in one transaction "
                          f"{written:.2f} s, one search {searched:.2f} s; RSS {_rss_mib(pid):.0f} MiB")  # fmt: skip
                finally:
                    server.stop()
    _say(
        f"start: median {statistics.median(starts):.1f} s, max {max(starts):.1f} s over {len(starts)} starts"
    )


if __name__ == "__main__":
    main()

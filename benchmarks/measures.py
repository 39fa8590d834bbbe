"""Benchmark: the quality measures for 10,000 and 100,000 synthetic patients on this machine.

    python3 benchmarks/measures.py [--sizes 10000,100000] [--engines duckdb,spark] [--export-sizes 10000]

For each size it writes the synthetic population as NDJSON files (what a Bulk Data export delivers), then prints:
the time to flatten the NDJSON into Parquet (streamed: one batch per table in memory), the time of each measure on
each engine, the floor (DuckDB scanning every column of every Parquet file once) and each measure's ratio to it
(target: DuckDB within 5× of the floor), and the process's peak resident memory after each step. For the
`--export-sizes` it also loads the population into a local FHIR server (sekmet-fhir) and runs a real Bulk Data
export of its Group: the time the server takes to build it, and to download and flatten it.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis

from fhir_mappings.measures.flatten import SCHEMAS
from fhir_mappings.measures.logic import Period
from fhir_mappings.measures.valuesets import load_valuesets
from sandbox import SITE_VALUESETS
from sandbox.measure_population import TYPES, write_ndjson
from smartapp.measures.columnar import ParquetTables
from smartapp.measures.engines import connect, tables, to_arrow
from smartapp.measures.service import SOURCES, run

YEAR = 2026


def peak_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ndjson(folder: Path) -> Iterator[dict[str, Any]]:
    for kind in TYPES:
        with (folder / f"{kind}.ndjson").open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)


def scan_floor(folder: Path) -> float:
    """DuckDB reading every column of every table once (the least any measure must do)."""
    con = ibis.duckdb.connect()
    data = tables(con, folder)
    started = time.perf_counter()
    for name, table in data.items():
        to_arrow(table.aggregate(**{f"m_{c}": table[c].max() for c in SCHEMAS[name]}, n=table.count()))
    return time.perf_counter() - started


def real_export(size: int, workdir: Path) -> str:
    """Load the population into sekmet-fhir, export its Group with Bulk Data, download and flatten it."""
    from launch.bulk import BulkExport
    from launch.fhir import FHIRClient
    from launch.transport import HttpTransport
    from sandbox.data import Cohort
    from sandbox.measure_population import add_to_cohort
    from sandbox.processes import FhirServer, load_cohort

    server = FhirServer(workdir / "ehr").start()
    try:
        cohort = Cohort()
        cohort.add(
            {"resourceType": "Group", "id": "bh-registry", "type": "person", "actual": True, "member": []}
        )
        add_to_cohort(cohort, size, YEAR)
        started = time.perf_counter()
        loaded = load_cohort(server.base_url, cohort.transaction_bundles(500))
        load_s = time.perf_counter() - started
        del cohort
        bulk = BulkExport(FHIRClient(server.base_url, HttpTransport(timeout=600), name="EHR"))
        started = time.perf_counter()
        manifest = bulk.wait(bulk.kick_off_group("bh-registry", types=list(TYPES)), timeout=3600)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        with ParquetTables(workdir / "exported", ZoneInfo("UTC")) as writer:
            for kind in TYPES:
                writer.add(bulk.resources(manifest, kind))
        return (f"  real Bulk Data export (sekmet-fhir, {loaded:,} resources loaded in {load_s:.0f} s): the server "
                f"built it in {build_s:.1f} s; download + flatten {time.perf_counter() - started:.1f} s; peak RSS "
                f"{peak_mb():.0f} MB\n")  # fmt: skip
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument(
        "--export-sizes", default="10000", help="sizes also run through a real Bulk Data export"
    )
    args = parser.parse_args()
    logging.basicConfig(level="ERROR")
    out = sys.stdout.write
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as workdir:
            root = Path(workdir)
            started = time.perf_counter()
            counts = write_ndjson(root / "ndjson", size, YEAR)
            megabytes = sum(f.stat().st_size for f in (root / "ndjson").iterdir()) / 1e6
            out(f"\n{size:,} patients: {sum(counts.values()):,} resources, {megabytes:.0f} MB of NDJSON "
                f"(written in {time.perf_counter() - started:.1f} s)\n")  # fmt: skip
            started = time.perf_counter()
            with ParquetTables(root / "parquet", ZoneInfo("UTC")) as writer:
                writer.add(ndjson(root / "ndjson"))
            flatten = time.perf_counter() - started
            parquet_mb = sum(f.stat().st_size for f in (root / "parquet").iterdir()) / 1e6
            out(f"  flatten NDJSON → Parquet: {flatten:.1f} s ({parquet_mb:.0f} MB of Parquet); peak RSS "
                f"{peak_mb():.0f} MB\n")  # fmt: skip
            if str(size) in args.export_sizes.split(","):
                out(real_export(size, root))
            floor = min(scan_floor(root / "parquet") for _ in range(3))
            out(f"  scan floor (DuckDB, every column once): {floor:.3f} s\n")
            for engine in args.engines.split(","):
                connect(engine)  # a Spark session starts once, outside the timings
                run(root / "parquet", Period(YEAR), engine, ["cms2"])  # warm-up
                # With the sandbox EHR's delivery code, as a site would load its own (none ships).
                result = run(root / "parquet", Period(YEAR), engine, valuesets=load_valuesets(SITE_VALUESETS))
                timed_sources: set[str] = set()
                for key, seconds in result.seconds.items():
                    if SOURCES[key] in timed_sources:
                        continue  # a rate of an expression already run (CMS159's response, DSF-E's follow-up…)
                    timed_sources.add(SOURCES[key])
                    total = result.summaries[key].total
                    out(f"  {engine:<6} {key:<14} {seconds:>7.2f} s  {seconds / floor:>6.1f}× the floor  "
                        f"(denominator {total.denominator:,}, numerator {total.numerator:,}, rate "
                        f"{total.rate if total.rate is not None else '—'})\n")  # fmt: skip
                out(f"  {engine:<6} peak RSS so far {peak_mb():.0f} MB\n")


if __name__ == "__main__":
    main()

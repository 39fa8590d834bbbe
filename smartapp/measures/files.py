"""The auditor's path: plain FHIR files instead of a Bulk Data export. A folder (searched recursively) of NDJSON
files (one resource per line, as a Bulk export writes them; `.ndjson` or `.ndjson.gz`) and JSON files (a Bundle of
any type, or one resource) is flattened into the same Parquet tables as an export; the MeasureReports a run makes
can be written as JSON files. A line or a file that is not FHIR JSON is skipped and counted, never fatal."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from smartapp.measures.columnar import ParquetTables

SUFFIXES = (".ndjson", ".ndjson.gz", ".json", ".json.gz")


@dataclass
class FilesReport:
    folder: str
    files: int = 0
    resources: int = 0
    #: Files or NDJSON lines that were not FHIR JSON (name and line number; no content, which may hold PHI).
    skipped: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        skipped = (
            f"; {len(self.skipped)} skipped (not FHIR JSON): {', '.join(self.skipped[:5])}"
            if self.skipped
            else ""
        )
        return f"{self.files} files, {self.resources} resources: {counts}{skipped}"


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def unbundled(resource: Any) -> Iterator[Any]:
    """A resource, or each resource of a Bundle (Bundles within Bundles too)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
        for entry in resource.get("entry") or []:
            if isinstance(entry, dict):
                yield from unbundled(entry.get("resource"))
    elif isinstance(resource, dict):
        yield resource


def fhir_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES))


def read_resources(folder: Path, report: FilesReport) -> Iterator[Any]:
    """Every resource in the folder's NDJSON and JSON files, in file order."""
    for path in fhir_files(folder):
        report.files += 1
        name = str(path.relative_to(folder))
        try:
            with _open(path) as stream:
                if ".ndjson" in path.name.lower():
                    for number, line in enumerate(stream, 1):
                        if not line.strip():
                            continue
                        try:
                            parsed = json.loads(line)
                        except ValueError:
                            report.skipped.append(f"{name} line {number}")
                            continue
                        for resource in unbundled(parsed):
                            report.resources += 1
                            yield resource
                else:
                    for resource in unbundled(json.load(stream)):
                        report.resources += 1
                        yield resource
        except (OSError, ValueError, EOFError):
            report.skipped.append(name)


def extract_files(source: Path, out: Path, zone: ZoneInfo) -> FilesReport:
    """Flatten the FHIR files under `source` into the Parquet tables in `out` (as `tandem measures extract`)."""
    report = FilesReport(str(source))
    with ParquetTables(out, zone) as writer:
        writer.add(read_resources(source, report))
    report.rows = dict(writer.counts)
    return report


def write_resources(folder: Path, resources: Iterable[dict[str, Any]]) -> int:
    """Each resource as `<folder>/<type>-<id>.json` (running again replaces them: the ids are stable)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for resource in resources:
        path = folder / f"{resource['resourceType']}-{resource['id']}.json"
        path.write_text(json.dumps(resource, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written += 1
    return written

"""`tandem measures valuesets load`: FHIR ValueSets with expansions (a Bundle, a folder of ValueSet JSON files, or
NDJSON, as VSAC and the eCQI Resource Center publish them) into the site's value-set folder
(TANDEM_VALUESETS_DIR), where the measures read them.

Every set is kept by OID and version (`DIR/<OID>/<version>.json`, with the day it was loaded): the newest version
is the one the measures use, the older ones stay so a past rate can be reproduced. The whole input is checked
before anything is written, and each file is written to a temporary name and renamed, so nothing is half-written.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from fhir_mappings.measures.valuesets import (
    ExpandedValueSet,
    ValueSetError,
    ValueSetLibrary,
    compact,
    named_oids,
    parse_resources,
    site_library,
)
from smartapp.config import DEFAULT_VALUESETS_DIR

READABLE = (".json", ".ndjson")


def valuesets_dir(setting: str | None) -> Path:
    """TANDEM_VALUESETS_DIR, or by default a `valuesets` folder in the directory Tandem runs from."""
    return Path(setting or DEFAULT_VALUESETS_DIR)


@dataclass
class LoadReport:
    folder: Path
    #: (set, what happened): "new", "newer version (supersedes …)", "older version (kept; … stays current)", …
    loaded: list[tuple[ExpandedValueSet, str]] = field(default_factory=list)
    #: Sentences about sets no measure reads (loaded all the same).
    warnings: list[str] = field(default_factory=list)


def _json_lines(path: Path) -> tuple[list[ExpandedValueSet], list[str]]:
    found: list[ExpandedValueSet] = []
    problems: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            resource = json.loads(line)
        except ValueError:
            problems.append(f"{path.name} line {n}: not JSON")
            continue
        if not isinstance(resource, dict) or resource.get("resourceType") != "ValueSet":
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            problems.append(
                f"{path.name} line {n}: a {kind or 'JSON value without resourceType'}, not a ValueSet"
            )
            continue
        sets, bad = parse_resources(resource, f"{path.name} line {n}")
        found += sets
        problems += bad
    return found, problems


def _one_file(path: Path) -> tuple[list[ExpandedValueSet], list[str]]:
    if path.suffix == ".ndjson":
        return _json_lines(path)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        # NDJSON saved as .json: one resource per line.
        if path.read_text(encoding="utf-8").lstrip().startswith("{") and "\n{" in path.read_text(
            encoding="utf-8"
        ):
            return _json_lines(path)
        return [], [f"{path.name}: not JSON ({exc.args[0] if exc.args else exc})"]
    return parse_resources(data, path.name)


def read_input(source: Path) -> list[ExpandedValueSet]:
    """Every ValueSet in a file or folder; any problem refuses the whole input (ValueSetError with every reason)."""
    if not source.exists():
        raise ValueSetError(f"{source}: no such file or folder")
    files = (
        sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in READABLE)
        if source.is_dir()
        else [source]
    )
    if not files:
        raise ValueSetError(f"{source}: no .json or .ndjson files in this folder")
    found: list[ExpandedValueSet] = []
    problems: list[str] = []
    for path in files:
        try:
            sets, bad = _one_file(path)
        except (OSError, UnicodeDecodeError) as exc:
            sets, bad = [], [f"{path.name}: cannot be read ({exc})"]
        found += sets
        problems += bad
    if problems:
        raise ValueSetError("nothing was loaded:\n  " + "\n  ".join(problems))
    if not found:
        raise ValueSetError(f"{source}: no ValueSet found")
    return found


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".loading-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _file_name(text: str) -> str:
    """A set's OID or version as a safe file name (an OID is digits and dots; a URL or version may not be)."""
    return "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in text).strip(".") or "_"


def load(source: Path, folder: Path, today: date | None = None) -> LoadReport:
    """Check `source` completely, then store each set's version in `folder`."""
    sets = read_input(source)
    loaded_on = (today or date.today()).isoformat()
    before = site_library(folder)
    known = before.known() | named_oids()
    report = LoadReport(folder)
    for vs in sets:
        if vs.oid not in known:
            report.warnings.append(
                f"{vs.title or vs.url} ({vs.oid}): no measure reads this set; loaded all the same"
            )
    staged = ValueSetLibrary()
    for vs in sets:
        staged.add(replace(vs, loaded=loaded_on))
    for oid, versions in staged.sets.items():
        for vs in versions:
            _write_atomic(folder / _file_name(oid) / f"{_file_name(vs.version)}.json",
                          json.dumps(compact(vs), separators=(",", ":")) + "\n")  # fmt: skip
            report.loaded.append((vs, _what(before, vs)))
    return report


def _what(before: ValueSetLibrary, vs: ExpandedValueSet) -> str:
    current = before.current(vs.oid)
    if current is None:
        return "new"
    if current.version == vs.version:
        before_copy = f"loaded {current.loaded}" if current.loaded else "shipped with Tandem"
        return f"version {vs.version} loaded again (the same version was {before_copy}; this copy is used)"
    after = ValueSetLibrary({vs.oid: before.versions(vs.oid)})
    after.add(vs)
    if after.current(vs.oid) is vs:
        return f"newer version: supersedes {current.version} (kept, so past rates can be reproduced)"
    return f"older version: kept; {current.version} stays current"

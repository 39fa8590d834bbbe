"""The differential test's two sides (issue 29): the official eCQM engine (fqm-execution 1.8.6 with the official
CMS2 and CMS159 measure bundles) and Tandem's measures (DuckDB or Spark over the flattened NDJSON), each giving
per patient, per measure, the five proportion populations, compared exactly.

Where things are:
- the measure bundles: `TANDEM_ECQM_DIR`, else `../shared/reference/ecqm/` beside the repository (as the
  reference documents are found; for a git worktree, beside its main checkout too), else the gzipped copies in
  `tests/fixtures/ecqm/` (unpacked once into the cache beside the engine);
- fqm-execution: `TANDEM_FQM_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/tandem/fqm/` where scripts/test.sh installs
  it with npm (never into the repository);
- the runner: `fqm_runner.js` beside this file (all measures in one Node process, the same options as the
  reference folder's run_fqm.js).

Conventions made equal on both sides (../shared/reference/ecqm/README.md):
- fqm-execution reports proportion semantics: outside the denominator every population is false, an excluded
  patient has numerator and exception false, a patient in the numerator has exception false. Tandem's rows are
  read through the same rule (`proportion`), so a difference is a difference in the logic, not in the reporting.
- The measurement period is 2026-01-01..2026-12-31 at UTC offset 0 (fqm-execution builds it so); Tandem flattens
  with the evaluation zone UTC to match, and Node runs with TZ=UTC.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess  # noqa: S404 - runs node on our own runner script with fixed arguments
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
FQM_VERSION = "1.8.6"
RUNNER = Path(__file__).resolve().parent / "fqm_runner.js"
#: fqm-execution's measurement period is at offset 0: Tandem evaluates in UTC to compare the same days.
ZONE = ZoneInfo("UTC")
BUNDLES = {"cms2": "CMS2-measure-bundle.json", "cms159": "CMS159-measure-bundle.json"}
#: The proportion populations, in the measure's order, with the short names printed in reports.
POPULATIONS = {"initial-population": "IPP", "denominator": "DENOM", "denominator-exclusion": "DENEX",
               "numerator": "NUMER", "denominator-exception": "DENEXCEP"}  # fmt: skip


class Unavailable(RuntimeError):
    """The engine, Node or the measure bundles are not installed: the reason and how to get them."""


def _checkouts() -> list[Path]:
    """This checkout, and the main checkout when this one is a git worktree (its `.git` file names it)."""
    found = [ROOT]
    marker = ROOT / ".git"
    if marker.is_file():
        line = marker.read_text(encoding="utf-8").strip()
        if line.startswith("gitdir:"):  # <main>/.git/worktrees/<name>
            found.append(Path(line.split(":", 1)[1].strip()).parents[2])
    return found


def ecqm_dir() -> Path:
    candidates = [Path(p) for p in [os.environ.get("TANDEM_ECQM_DIR", "")] if p]
    candidates += [root.parent / "shared" / "reference" / "ecqm" for root in _checkouts()]
    for folder in candidates:
        if all((folder / name).is_file() for name in BUNDLES.values()):
            return folder
    # The copies in the repository (CC0, gzipped: tests/fixtures/ecqm/README.md), unpacked once into the cache.
    packed = ROOT / "tests" / "fixtures" / "ecqm"
    if all((packed / f"{name}.gz").is_file() for name in BUNDLES.values()):
        unpacked = engine_dir().parent / "ecqm"
        unpacked.mkdir(parents=True, exist_ok=True)
        for name in BUNDLES.values():
            target = unpacked / name
            data = gzip.decompress((packed / f"{name}.gz").read_bytes())
            if not target.is_file() or target.read_bytes() != data:
                partial = target.with_suffix(".partial")
                partial.write_bytes(data)
                partial.replace(target)
        return unpacked
    candidates.append(packed)
    raise Unavailable(
        "the CMS2 and CMS159 measure bundles are in none of: " + ", ".join(map(str, candidates))
    )


def engine_dir() -> Path:
    if os.environ.get("TANDEM_FQM_DIR"):
        return Path(os.environ["TANDEM_FQM_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tandem" / "fqm"


def node_modules() -> Path:
    """fqm-execution's node_modules folder, checked to be version FQM_VERSION."""
    if shutil.which("node") is None:
        raise Unavailable("node is not installed (scripts/test.sh installs nodejs and npm with apt)")
    modules = engine_dir() / "node_modules"
    manifest = modules / "fqm-execution" / "package.json"
    if not manifest.is_file():
        raise Unavailable(f"fqm-execution is not installed in {engine_dir()} (scripts/test.sh installs it)")
    version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if version != FQM_VERSION:
        raise Unavailable(f"fqm-execution {version} in {engine_dir()}, the comparison needs {FQM_VERSION}")
    return modules


def valueset_codes(folder: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """Every ValueSet's expansion in the measure bundles, by OID: [(system, code)] in the expansion's order."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name in BUNDLES.values():
        bundle = json.loads(((folder or ecqm_dir()) / name).read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") != "ValueSet":
                continue
            oid = resource["url"].rsplit("/", 1)[-1]
            found[oid] = [(c["system"], c["code"]) for c in resource.get("expansion", {}).get("contains", [])]
    return found


Results = dict[str, dict[str, dict[str, bool]]]  # measure -> patient -> population -> result


@dataclass
class Timing:
    patients: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.patients / self.seconds if self.seconds else float("inf")


def run_fqm(
    bundles: Path, measures: Iterable[str] = BUNDLES, year: int = 2026
) -> tuple[Results, dict[str, Timing]]:
    """fqm-execution over a file of patient Bundles (one a line), every measure in one Node process."""
    modules = node_modules()
    folder = ecqm_dir()
    keys = list(measures)
    by_file = {BUNDLES[k]: k for k in keys}
    env = {**os.environ, "NODE_PATH": str(modules), "TZ": "UTC"}
    node = shutil.which("node") or "node"
    done = subprocess.run(  # noqa: S603 - fixed arguments, our own runner
        [node, str(RUNNER), str(bundles), f"{year}-01-01", f"{year}-12-31", *(str(folder / BUNDLES[k]) for k in keys)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"fqm-execution failed ({done.returncode}):\n{done.stderr[-4000:]}")
    results: Results = {k: {} for k in keys}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        results[by_file[row["measure"]]][row["patient"]] = {
            k: bool(row["populations"].get(k)) for k in POPULATIONS
        }
    timings = {}
    for line in done.stderr.splitlines():
        if line.startswith('{"summary"'):
            summary = json.loads(line)["summary"]
            timings[by_file[summary["measure"]]] = Timing(summary["patients"], summary["seconds"])
    return results, timings


def proportion(raw: Mapping[str, bool]) -> dict[str, bool]:
    """fqm-execution's proportion-measure reporting (DetailedResultsBuilder.handleStandardPopulationValues):
    outside the denominator nothing counts; an exclusion clears the numerator and the exception; the numerator
    clears the exception."""
    out = {k: bool(raw.get(k)) for k in POPULATIONS}
    if not (out["initial-population"] and out["denominator"]):
        return dict.fromkeys(POPULATIONS, False) | {"initial-population": out["initial-population"]}
    if out["denominator-exclusion"]:
        out["numerator"] = out["denominator-exception"] = False
    elif out["numerator"]:
        out["denominator-exception"] = False
    return out


def _ndjson(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.ndjson")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)


def flatten(ndjson: Path, out: Path) -> Path:
    """Tandem's extractor (fhir_mappings.measures.flatten through ParquetTables) over the NDJSON files."""
    from smartapp.measures.columnar import ParquetTables

    with ParquetTables(out, ZONE) as tables:
        tables.add(_ndjson(ndjson))
    return out


#: Tandem's value-set keys (fhir_mappings/data/measures/valuesets.json) and the measure bundles' ValueSets (by
#: OID, as the CQL names them) that cover them: a diagnostic for the benchmark (`--official-valuesets`) that tells
#: gaps in the shipped sets from gaps in the logic, until the official expansions are Tandem's default. Note the
#: official Major Depression OID is 2.16.840.113883.3.67.1.101.3.2444 (sic: no ".1." after 840, as the CQL has it).
SHIPPED_TO_OFFICIAL = {
    "phq9_total": ("2.16.840.1.113883.3.67.1.101.1.263",),
    "medical_reason": ("2.16.840.1.113883.3.526.3.1007",),
    "cms2_encounter": ("2.16.840.1.113883.3.600.1916", "2.16.840.1.113883.3.526.3.1022",
                       "2.16.840.1.113883.3.464.1003.101.12.1080"),
    "cms2_referral": ("2.16.840.1.113883.3.526.3.1570", "2.16.840.1.113883.3.526.3.1571"),
    "cms2_medication": ("2.16.840.1.113883.3.526.3.1567", "2.16.840.1.113883.3.526.3.1566"),
    "cms2_followup_procedure": ("2.16.840.1.113883.3.526.3.1569", "2.16.840.1.113883.3.526.3.1568"),
    "bipolar": ("2.16.840.1.113883.3.67.1.101.1.128",),
    "office_visit": ("2.16.840.1.113762.1.4.1080.5",),
    "major_depression": ("2.16.840.113883.3.67.1.101.3.2444",),
    "dysthymia": ("2.16.840.1.113883.3.67.1.101.1.254",),
    "personality_labile": ("2.16.840.1.113883.3.67.1.101.1.246",),
    "psychosis": ("2.16.840.1.113883.3.464.1003.105.12.1104",),
    "pdd": ("2.16.840.1.113883.3.464.1003.105.12.1152",),
    "palliative_diagnosis": ("2.16.840.1.113883.3.464.1003.1167",),
    "hospice_diagnosis": ("2.16.840.1.113883.3.464.1003.1165",),
}  # fmt: skip


def official_valuesets(shipped: Mapping[str, Any]) -> dict[str, Any]:
    """Tandem's value sets with the measure bundles' expansions in place of the shipped codes (where
    SHIPPED_TO_OFFICIAL maps them; the others, single codes the CQL declares, unchanged)."""
    from dataclasses import replace

    codes = valueset_codes()
    found = dict(shipped)
    for key, oids in SHIPPED_TO_OFFICIAL.items():
        if key in found:
            expansion = tuple(dict.fromkeys(c for oid in oids for c in codes[oid]))
            found[key] = replace(found[key], codes=expansion, prefixes=(), status="complete")
    return found


def run_tandem(tables_dir: Path, measures: Iterable[str] = BUNDLES, engine: str = "duckdb", year: int = 2026,
               patients: Iterable[str] | None = None, valuesets: Mapping[str, Any] | None = None
               ) -> tuple[Results, dict[str, float]]:  # fmt: skip
    """Tandem's measures over flattened tables: per patient of each initial population, the five populations
    (every other patient is in none). `patients` limits the run to some patients (the Spark sample); `valuesets`
    replaces the measures' default value sets (`official_valuesets`)."""
    import time

    from fhir_mappings.measures import logic
    from smartapp.measures.engines import connect, tables, to_arrow

    con = connect(engine)
    data = tables(con, tables_dir)
    if patients is not None:
        keep = sorted(set(patients))
        data = {name: t.filter(t.patient_id.isin(keep)) for name, t in data.items()}
    results: Results = {}
    seconds: dict[str, float] = {}
    for key in measures:
        started = time.perf_counter()
        measure = getattr(logic, key)
        expr = (
            measure(data, logic.Period(year))
            if valuesets is None
            else measure(data, logic.Period(year), valuesets)
        )
        rows = to_arrow(expr).to_pylist()
        seconds[key] = time.perf_counter() - started
        results[key] = {
            row["patient_id"]: proportion({
                "initial-population": bool(row.get("initial_population")),
                "denominator": bool(row.get("denominator")),
                "denominator-exclusion": bool(row.get("excluded")),
                "numerator": bool(row.get("numerator")),
                "denominator-exception": bool(row.get("exception")),
            })
            for row in rows
        }  # fmt: skip
    return results, seconds


NONE = dict.fromkeys(POPULATIONS, False)


@dataclass
class Disagreement:
    measure: str
    patient: str
    path: str
    official: dict[str, bool]
    tandem: dict[str, bool]

    @property
    def kind(self) -> str:
        """Which populations differ, and which way: e.g. `cms2 NUMER official=true tandem=false`."""
        diff = [f"{POPULATIONS[k]} official={str(self.official[k]).lower()} tandem={str(self.tandem[k]).lower()}"
                for k in POPULATIONS if self.official[k] != self.tandem[k]]  # fmt: skip
        return f"{self.measure} " + ", ".join(diff)

    def __str__(self) -> str:
        def flags(r: Mapping[str, bool]) -> str:
            return " ".join(f"{POPULATIONS[k]}={'Y' if r[k] else '-'}" for k in POPULATIONS)

        return (f"{self.measure} patient {self.patient} (built for {self.path}):\n"
                f"    fqm-execution: {flags(self.official)}\n    Tandem:        {flags(self.tandem)}")  # fmt: skip


def compare(official: Results, tandem: Results, paths: Mapping[str, str],
            patients: Iterable[str] | None = None) -> tuple[dict[str, dict[str, tuple[int, int]]], list[Disagreement]]:  # fmt: skip
    """Per measure and population (agreeing patients, patients compared), and every disagreement. Every patient
    of `paths` (or `patients`) is compared on every measure: a patient absent from a side's rows is in none of
    its populations."""
    agreement: dict[str, dict[str, tuple[int, int]]] = {}
    disagreements = []
    pids = sorted(patients if patients is not None else paths)
    for measure in official:
        counts = Counter[str]()
        for pid in pids:
            theirs = official[measure].get(pid, NONE)
            ours = tandem.get(measure, {}).get(pid, NONE)
            for k in POPULATIONS:
                counts[k] += theirs[k] == ours[k]
            if theirs != ours:
                disagreements.append(
                    Disagreement(measure, pid, paths.get(pid, "?"), dict(theirs), dict(ours))
                )
        agreement[measure] = {k: (counts[k], len(pids)) for k in POPULATIONS}
    return agreement, disagreements


def missing_from_official(official: Results, paths: Mapping[str, str]) -> list[str]:
    """Patients fqm-execution gave no result for (a malformed Bundle): the comparison would be meaningless."""
    return sorted(pid for measure in official for pid in paths if pid not in official[measure])


def scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="tandem-fqm-")

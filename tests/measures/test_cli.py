"""`tandem measures run` on an extraction folder: every measure's populations, rate and time, and the value sets
that are not complete; a folder that is not an extraction is refused with the reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from launch.errors import ConfigurationError
from smartapp.cli import main
from smartapp.config import Settings
from smartapp.measures.columnar import ParquetTables

from .test_deck import CMS2_CASES, CMS159_CASES


def test_measures_run_prints_each_measure(tmp_path: Path) -> None:
    with ParquetTables(tmp_path, ZoneInfo("America/Chicago")) as writer:
        for resources, _ in (*CMS159_CASES.values(), *CMS2_CASES.values()):
            writer.add(resources)
    result = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    cms2 = next(line for line in lines if line.startswith("cms2:"))
    assert "initial population 20, denominator 20, exclusions 1, exceptions 1, numerator 8: 44.4%" in cms2
    assert any(line.startswith("cms159:") for line in lines) and any(
        line.startswith("cms159-response:") for line in lines
    )
    # Each rate names the value-set versions it used (the shipped official expansions: CMS2's encounter set).
    assert "2.16.840.1.113883.3.600.1916|20210220" in lines[lines.index(cms2) + 1]
    # No delivery codes are shipped (NCQA's set is licensed): PDS is not computed, and the CLI says what to load.
    assert not any(line.startswith("pds-screening:") for line in result.stdout.splitlines())
    assert "pds-screening: not computed, value sets missing or empty: Deliveries" in result.output


def test_a_folder_that_is_not_an_extraction_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "no extraction here" in result.output


def test_a_sites_value_sets_are_used_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ParquetTables(data, ZoneInfo("America/Chicago")) as writer:
        for resources, _ in CMS2_CASES.values():
            writer.add(resources)
    site = tmp_path / "vsac.json"
    site.write_text(json.dumps({"valuesets": {"cms2_encounter": {
        "oid": "2.16.840.1.113883.3.600.1916", "title": "Encounter to Screen for Depression", "status": "complete",
        "codes": [["http://snomed.info/sct", "185317003"]]}}}))  # fmt: skip
    result = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(data)],
                                env={"TANDEM_MEASURE_VALUESETS": str(site)})  # fmt: skip
    assert result.exit_code == 0, result.output
    # The site's set no longer holds the deck's visit code (10197000): nobody is in CMS2 now, and it is complete.
    assert "cms2: initial population 0," in result.output and "Encounter to Screen" not in result.output
    site.write_text("{not json")
    with pytest.raises(ConfigurationError, match="TANDEM_MEASURE_VALUESETS: "):
        Settings.from_env({"TANDEM_MEASURE_VALUESETS": str(site)})  # fails fast at start-up
    refused = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(data)],
                                 env={"TANDEM_MEASURE_VALUESETS": str(site)})  # fmt: skip
    assert refused.exit_code == 2 and "TANDEM_MEASURE_VALUESETS" in refused.output


def test_the_auditors_path_reads_fhir_files_and_writes_measure_reports(tmp_path: Path) -> None:
    """`tandem measures extract --from` reads NDJSON (as a Bulk export writes it, gzipped or not) and Bundles (of
    any type, nested too) with the same flattening as an export; `tandem measures run --out` writes the
    MeasureReports and subject Lists as files. The deck gives the same populations as when flattened directly."""
    source = tmp_path / "fhir"
    (source / "ndjson").mkdir(parents=True)
    resources = [r for resources, _ in (*CMS159_CASES.values(), *CMS2_CASES.values()) for r in resources]
    by_type: dict[str, list[str]] = {}
    for resource in resources[::2]:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for kind, lines in by_type.items():
        text = "\n".join(lines) + "\n"
        if kind == "Observation":
            with gzip.open(source / "ndjson" / f"{kind}.ndjson.gz", "wt", encoding="utf-8") as stream:
                stream.write(text + "{not json\n")
        else:
            (source / "ndjson" / f"{kind}.ndjson").write_text(text)
    rest = resources[1::2]
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in rest[:10]]}
    (source / "patients.json").write_text(json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": inner}, *({"resource": r} for r in rest[10:])]}))  # fmt: skip
    (source / "notes.json").write_text("[not fhir")
    data = tmp_path / "data"
    extracted = CliRunner().invoke(main, ["measures", "extract", "--from", str(source), "--out", str(data),
                                          "--time-zone", "America/Chicago"])  # fmt: skip
    assert extracted.exit_code == 0, extracted.output
    assert f"{len(resources)} resources" in extracted.output
    assert "2 skipped (not FHIR JSON)" in extracted.output and "line " in extracted.output
    reports = tmp_path / "reports"
    result = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(data), "--iss",
                                       "https://ehr.example.org/fhir", "--out", str(reports)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "cms2: initial population 20, denominator 20, exclusions 1, exceptions 1, numerator 8: 44.4%"
        in result.output
    )
    written = {json.loads(p.read_text())["resourceType"] for p in reports.glob("*.json")}
    assert written == {"MeasureReport", "List"}
    summary = [json.loads(p.read_text()) for p in reports.glob("MeasureReport-*.json")]
    cms2 = [r for r in summary if "CMS2" in r["measure"] or "cms2" in r["measure"].lower()]
    assert cms2 and all(r["reporter"]["identifier"]["value"] == "https://ehr.example.org/fhir" for r in cms2)


def test_run_out_needs_the_ehr(tmp_path: Path) -> None:
    with ParquetTables(tmp_path, ZoneInfo("America/Chicago")):
        pass
    result = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(tmp_path),
                                       "--out", str(tmp_path / "reports")])  # fmt: skip
    assert result.exit_code == 2 and "--out needs --iss" in result.output

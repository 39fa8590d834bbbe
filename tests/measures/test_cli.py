"""`tandem measures run` on an extraction folder: every measure's populations, rate and time, and the value sets
that are not complete; a folder that is not an extraction is refused with the reason."""

from __future__ import annotations

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
    assert "initial population 20, denominator 20, exclusions 2, exceptions 1, numerator 8: 47.1%" in cms2
    assert any(line.startswith("cms159:") for line in lines) and any(
        line.startswith("cms159-response:") for line in lines
    )
    assert "value sets not complete: Encounter to Screen for Depression" in result.output


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

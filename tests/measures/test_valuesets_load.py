"""Value sets by OID: `tandem measures valuesets load` reads FHIR ValueSets with expansions (a Bundle, a folder of
ValueSet JSON files, NDJSON), refuses bad input whole (nothing half-written), keeps every version (the newest is
used, an older one stays so a past rate can be reproduced), and a rate whose value sets are missing is refused.

Sources: the eCQI content (CC0) of CMS2 0.4.001 and CMS159 0.3.000 in /work/shared/reference/ecqm/ (its README):
the ValueSets' OIDs, versions and expansions as shipped in fhir_mappings/data/measures/ecqm_valuesets.json; FHIR R4
ValueSet (`expansion.contains`, `identifier` urn:oid) and Bundle; Bulk Data NDJSON (one resource per line)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_mappings.measures.logic import Period
from fhir_mappings.measures.report import MEASURES, VALUESET_VERSION, measure_report
from fhir_mappings.measures.valuesets import (
    SHIPPED,
    ValueSetError,
    ValueSetLibrary,
    codes,
    load_valuesets,
    shipped_library,
    site_library,
)
from launch.errors import ConfigurationError
from smartapp.cli import main
from smartapp.config import Settings
from smartapp.measures.columnar import ParquetTables
from smartapp.measures.service import READS, run
from smartapp.measures.valueset_load import load, read_input

from .test_deck import CMS2_CASES

VSAC = "http://cts.nlm.nih.gov/fhir/ValueSet/"
SCT = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
ENCOUNTER = "2.16.840.1.113883.3.600.1916"  # CMS2 "Encounter to Screen for Depression" (eCQI content)
UNKNOWN = "2.16.840.1.113883.3.9999.1"  # no measure reads it


def value_set(oid: str, version: str, pairs: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    """A ValueSet shaped as VSAC's FHIR API returns it (identifier urn:oid, canonical url, expansion)."""
    return {"resourceType": "ValueSet", "id": oid, "url": VSAC + oid, "version": version, "name": "Set",
            "title": f"Set {oid}", "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{oid}"}],
            "status": "active", "text": {"status": "generated", "div": "<div>narrative</div>"},
            "expansion": {"timestamp": "2026-05-01T00:00:00Z", "contains": [
                {"system": s, "version": "2025", "code": c, "display": c} for s, c in pairs]}, **extra}  # fmt: skip


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


A = value_set(ENCOUNTER, "20260501", [(SCT, "185317003"), (CPT, "99213")])
B = value_set("2.16.840.1.113883.3.526.3.1007", "20260501", [(SCT, "183932001")])
MEASURE = {"resourceType": "Measure", "url": "https://madie.cms.gov/Measure/X", "status": "active"}


def _write(folder: Path, layout: str) -> Path:
    """The same two sets in each way VSAC and the eCQI Resource Center publish them."""
    if layout == "bundle":  # a measure bundle: its Measure and Libraries are passed over
        (folder / "bundle.json").write_text(json.dumps(bundle(MEASURE, A, B)))
        return folder / "bundle.json"
    if layout == "folder":
        (folder / "in").mkdir()
        (folder / "in" / "a.json").write_text(json.dumps(A))
        (folder / "in" / "nested").mkdir()
        (folder / "in" / "nested" / "b.json").write_text(json.dumps(B))
        (folder / "in" / "README.txt").write_text("not read")
        return folder / "in"
    if layout == "ndjson":
        (folder / "sets.ndjson").write_text(json.dumps(A) + "\n\n" + json.dumps(B) + "\n")
        return folder / "sets.ndjson"
    if layout == "ndjson-as-json":
        (folder / "sets.json").write_text(json.dumps(A) + "\n" + json.dumps(B) + "\n")
        return folder / "sets.json"
    if layout == "list":
        (folder / "sets.json").write_text(json.dumps([A, B]))
        return folder / "sets.json"
    raise AssertionError(layout)


@pytest.mark.parametrize("layout", ["bundle", "folder", "ndjson", "ndjson-as-json", "list"])
def test_each_published_shape_loads_by_oid_and_version(tmp_path: Path, layout: str) -> None:
    store = tmp_path / "store"
    report = load(_write(tmp_path, layout), store, today=date(2026, 6, 1))
    assert sorted((vs.oid, vs.version) for vs, _ in report.loaded) == [
        ("2.16.840.1.113883.3.526.3.1007", "20260501"), (ENCOUNTER, "20260501")]  # fmt: skip
    assert all(
        "newer version: supersedes" in what for _, what in report.loaded
    )  # newer than the shipped ones
    assert report.warnings == []
    stored = json.loads((store / ENCOUNTER / "20260501.json").read_text())
    # Compact: codes, systems and versions, the load date; no narrative.
    assert stored["loaded"] == "2026-06-01" and "text" not in stored and "narrative" not in json.dumps(stored)
    assert stored["codes"] == [[SCT, "2025", ["185317003"]], [CPT, "2025", ["99213"]]]  # sorted by system
    library = site_library(store)
    assert library.codes(ENCOUNTER) == {(SCT, "185317003"), (CPT, "99213")}
    assert library.current(ENCOUNTER).version == "20260501"  # type: ignore[union-attr]
    assert library.at(ENCOUNTER, "20210220") is not None  # the shipped version stays, for past rates
    assert not list(store.rglob(".loading-*"))  # no temporary file left


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (json.dumps({"resourceType": "Patient", "id": "p"}), "a Patient, not a ValueSet"),
        (json.dumps({**A, "expansion": None}), "has no expansion"),
        (json.dumps({**A, "expansion": {"timestamp": "2026-05-01", "contains": []}}), "has no expansion"),
        (json.dumps({**A, "expansion": {"contains": [{"system": SCT, "abstract": True, "code": "x"}]}}),
         "has an empty expansion"),
        (json.dumps({**A, "version": None}), "has no version"),
        # A paged expansion (VSAC pages long sets; FHIR R4 ValueSet.expansion.total/offset): a partial list.
        (json.dumps({**A, "expansion": {**A["expansion"], "total": 1000, "offset": 0}}), "holds only 2 of its 1000 codes"),
        (json.dumps({**A, "url": None}), "has no canonical url"),
        ("{not json", "not JSON"),
        ("[1, 2]", "item 1: a JSON object without resourceType, not a ValueSet"),
        ('"text"', "not a FHIR resource"),
        (json.dumps(bundle(MEASURE)), "a Bundle without any ValueSet"),
        # One bad set among good ones: the whole input is refused.
        (json.dumps(bundle(A, {**B, "expansion": {}})), "entry 2: Set 2.16.840.1.113883.3.526.3.1007 has no expansion"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_whole_and_nothing_is_written(tmp_path: Path, content: str, reason: str) -> None:
    source = tmp_path / "in.json"
    source.write_text(content)
    with pytest.raises(ValueSetError) as caught:
        load(source, tmp_path / "store")
    assert reason in str(caught.value)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([A, {"resourceType": "Observation"}], "sets.ndjson line 2: a Observation, not a ValueSet"),
        (
            [A, {**B, "expansion": {}}],
            "sets.ndjson line 2: Set 2.16.840.1.113883.3.526.3.1007 has no expansion",
        ),
    ],
)
def test_bad_ndjson_lines_are_named(tmp_path: Path, lines: list[dict[str, Any]], reason: str) -> None:
    source = tmp_path / "sets.ndjson"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with pytest.raises(ValueSetError) as caught:
        load(source, tmp_path / "store")
    assert reason in str(caught.value) and not (tmp_path / "store").exists()


def test_an_empty_folder_or_a_missing_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueSetError, match="no .json or .ndjson files"):
        read_input(tmp_path / "empty")
    with pytest.raises(ValueSetError, match="no such file or folder"):
        read_input(tmp_path / "nowhere")


def test_an_unknown_oid_is_loaded_with_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(bundle(value_set(UNKNOWN, "1", [(SCT, "1")]))))
    report = load(source, tmp_path / "store")
    assert [what for _, what in report.loaded] == ["new"]
    assert report.warnings == [f"Set {UNKNOWN} ({UNKNOWN}): no measure reads this set; loaded all the same"]
    # The HEDIS-style measures' own sets are known by OID too (no warning).
    source.write_text(
        json.dumps(value_set("2.16.840.1.113883.3.464.1004.1384", "2019", [("http://loinc.org", "1")]))
    )
    assert load(source, tmp_path / "store").warnings == []


# (versions loaded in this order, the version then current, what the last load said) — FHIR ValueSet.version as VSAC
# publishes it (a date, YYYYMMDD); the shipped CMS2 encounter set is 20210220 (eCQI content).
@pytest.mark.parametrize(
    ("order", "current", "said"),
    [
        (["20250101"], "20250101", "newer version: supersedes 20210220"),
        (["20250101", "20260101"], "20260101", "newer version: supersedes 20250101"),
        (["20260101", "20250101"], "20260101", "older version: kept; 20260101 stays current"),
        (["20200101"], "20210220", "older version: kept; 20210220 stays current"),
        (["20250101", "20250101"], "20250101", "version 20250101 loaded again"),
    ],
)
def test_a_newer_version_supersedes_and_the_older_is_kept(
    tmp_path: Path, order: list[str], current: str, said: str
) -> None:
    store = tmp_path / "store"
    what = ""
    for n, version in enumerate(order):
        source = tmp_path / f"v{n}.json"
        source.write_text(json.dumps(value_set(ENCOUNTER, version, [(CPT, f"9{version[-4:]}")])))
        ((_, what),) = load(source, store, today=date(2026, 1, 1 + n)).loaded
    assert said in what
    library = site_library(store)
    assert library.current(ENCOUNTER).version == current  # type: ignore[union-attr]
    kept = {v.version for v in library.versions(ENCOUNTER)}
    assert kept == {"20210220", *order}  # every version stays: a past rate can be reproduced
    for version in order:  # each version's own codes, by version
        assert library.codes(ENCOUNTER, version) == {(CPT, f"9{version[-4:]}")}
    named = load_valuesets(library=library)
    assert named["cms2_encounter_screen"].versions == (f"{VSAC}{ENCOUNTER}|{current}",)


# Codes of the official expansions (eCQI content, CMS2 0.4.001 and CMS159 0.3.000).
@pytest.mark.parametrize(
    ("oid", "pair", "inside"),
    [
        (ENCOUNTER, (SCT, "10197000"), True),
        (
            ENCOUNTER,
            (CPT, "99213"),
            True,
        ),  # an ordinary CPT office visit (missing from the old hand-made list)
        (ENCOUNTER, (CPT, "99999"), False),
        ("2.16.840.1.113762.1.4.1080.5", (CPT, "99213"), True),
        (
            "2.16.840.113883.3.67.1.101.3.2444",
            ("http://hl7.org/fhir/sid/icd-10-cm", "F32.0"),
            True,
        ),  # OID as published
        ("2.16.840.113883.3.67.1.101.3.2444", (SCT, "14183003"), True),  # depression coded in SNOMED CT
        ("2.16.840.1.113883.3.67.1.101.1.128", ("http://hl7.org/fhir/sid/icd-10-cm", "F31.0"), True),
        ("2.16.840.1.113883.3.526.3.1566", ("http://www.nlm.nih.gov/research/umls/rxnorm", "1000048"), True),
        ("2.16.840.1.113883.3.526.3.1567", ("http://www.nlm.nih.gov/research/umls/rxnorm", "1000048"), False),
        (UNKNOWN, (SCT, "1"), False),
    ],
)
def test_codes_by_oid(oid: str, pair: tuple[str, str], inside: bool) -> None:
    assert (pair in codes(oid)) is inside


def test_the_shipped_sets_are_every_set_the_measures_declare() -> None:
    # The main Libraries' relatedArtifact: 11 value sets for CMS2, 15 for CMS159 (eCQI content).
    assert {k: len(v) for k, v in SHIPPED.required.items()} == {"cms2": 11, "cms159": 15}
    assert all(SHIPPED.codes(oid) for oids in SHIPPED.required.values() for oid in oids)
    # Every declared set is read by its measure under some name (the adolescent and adult sets apart).
    named = load_valuesets()
    for measure, oids in SHIPPED.required.items():
        read = {oid for key in READS[measure] for oid in named[key].oids}
        assert read == set(oids), measure
    assert named["cms2_medication_adolescent"].codes != named["cms2_medication_adult"].codes


def _without(*oids: str) -> ValueSetLibrary:
    library = shipped_library()
    for oid in oids:
        del library.sets[oid]
    return library


@pytest.mark.parametrize(
    ("missing", "refused", "named"),
    [
        ([ENCOUNTER], {"cms2"}, "Encounter to Screen for Depression"),
        (["2.16.840.1.113883.3.526.3.1566"], {"cms2", "dsf-screening", "dsf-follow-up", "pds-screening",
                                              "pds-follow-up"}, "Adult Depression Medications"),
        (["2.16.840.1.113883.3.464.1003.1003"], {"cms159", "cms159-response"}, "Hospice Encounter"),
        ([], set(), ""),
    ],
)  # fmt: skip
def test_a_rate_whose_value_sets_are_missing_is_refused(
    tmp_path: Path, missing: list[str], refused: set[str], named: str
) -> None:
    with ParquetTables(tmp_path, ZoneInfo("America/Chicago")) as writer:
        for resources, _ in CMS2_CASES.values():
            writer.add(resources)
    valuesets = load_valuesets(library=_without(*missing))
    keys = ["cms2", "cms159", "cms159-response", "dsf-screening", "dsf-follow-up", "drr-remission"]
    result = run(tmp_path, Period(2026), keys=keys, valuesets=valuesets)
    assert set(result.refused) == refused & set(keys)
    assert set(result.summaries) == set(keys) - refused  # the others are computed
    for key in refused & set(keys):
        assert any(named in s and missing[0] in s for s in result.refused[key])
    assert result.to_json()["refused"] == result.refused


def test_the_measure_report_names_the_value_set_versions_it_used(tmp_path: Path) -> None:
    with ParquetTables(tmp_path, ZoneInfo("America/Chicago")) as writer:
        for resources, _ in CMS2_CASES.values():
            writer.add(resources)
    summary = run(tmp_path, Period(2026), keys=["cms2"]).summaries["cms2"]
    assert f"{VSAC}{ENCOUNTER}|20210220" in summary.valueset_versions
    assert f"{VSAC}2.16.840.1.113883.3.526.3.1567|20210220" in summary.valueset_versions
    report = measure_report(summary, "https://ehr.example.org/fhir", summary_time())
    MeasureReport.model_validate(report)  # R4B: a versioned canonical
    used = [e["valueCanonical"] for e in report["extension"] if e["url"] == VALUESET_VERSION]
    assert used == list(summary.valueset_versions) and len(used) == 11  # CMS2 reads all 11 of its sets
    assert MEASURES["cms2"].key == "cms2"


def summary_time() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 12, 1, tzinfo=UTC)


def test_the_cli_loads_lists_and_runs_with_the_loaded_version(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ParquetTables(data, ZoneInfo("America/Chicago")) as writer:
        for resources, _ in CMS2_CASES.values():
            writer.add(resources)
    store = tmp_path / "store"
    env = {"TANDEM_VALUESETS_DIR": str(store)}
    before = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(data)], env=env)
    # The deck's CMS2 visits are found with the shipped set (how many is the deck's business: tests/measures/deck.py).
    counted = re.search(r"cms2: initial population (\d+),", before.output)
    assert before.exit_code == 0 and counted and int(counted.group(1)) > 0, before.output
    # A newer version of the encounter set without the deck's visit code (SNOMED 10197000).
    source = tmp_path / "vsac.json"
    source.write_text(json.dumps(bundle(value_set(ENCOUNTER, "20260501", [(CPT, "99999")]))))
    loaded = CliRunner().invoke(main, ["measures", "valuesets", "load", str(source)], env=env)
    assert loaded.exit_code == 0, loaded.output
    assert (
        f"Set {ENCOUNTER} ({ENCOUNTER}) version 20260501, 1 codes: newer version: supersedes 20210220"
        in loaded.output
    )
    assert f"1 value set(s) loaded into {store}" in loaded.output
    listed = CliRunner().invoke(main, ["measures", "valuesets", "list"], env=env)
    assert listed.exit_code == 0
    assert (
        f"({ENCOUNTER}) version 20260501, 1 codes, loaded " in listed.output
        and "older kept: 20210220" in listed.output
    )
    after = CliRunner().invoke(main, ["measures", "run", "--period", "2026", "--data", str(data)], env=env)
    assert after.exit_code == 0 and "cms2: initial population 0," in after.output
    assert f"{ENCOUNTER}|20260501" in after.output
    # Bad input: exit status 2, the reason, nothing written.
    source.write_text(json.dumps({"resourceType": "Patient"}))
    bad = CliRunner().invoke(
        main, ["measures", "valuesets", "load", str(source), "--dir", str(tmp_path / "other")]
    )
    assert (
        bad.exit_code == 2 and "a Patient, not a ValueSet" in bad.output and not (tmp_path / "other").exists()
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "TANDEM_VALUESETS_DIR: "),
        (json.dumps({"oid": ENCOUNTER}), "malformed stored value set"),
    ],
)
def test_a_damaged_value_set_folder_fails_fast_at_start_up(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / ENCOUNTER).mkdir()
    (tmp_path / ENCOUNTER / "20260501.json").write_text(content)
    with pytest.raises(ConfigurationError, match=problem):
        Settings.from_env({"TANDEM_VALUESETS_DIR": str(tmp_path)})
    result = CliRunner().invoke(main, ["measures", "valuesets", "list", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "20260501.json" in result.output

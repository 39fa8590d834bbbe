"""Measures end to end against the real servers: the synthetic population loaded into the sandbox EHR and listed
in its Group, a Bulk Data export with backend services (kick-off, polling, NDJSON) streamed into Parquet, the
measures on DuckDB, the result kept for the quality page, and MeasureReports written to the registry store."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.common.validation import r4_errors
from fhir_mappings.measures.logic import Period
from fhir_mappings.measures.report import MEASURES, report_id
from launch import errors
from launch.bulk import BulkExport
from sandbox.data import BH_GROUP_ID, Cohort
from sandbox.measure_population import population
from sandbox.processes import load_cohort
from sandbox.world import SandboxWorld
from smartapp.caseload.ehr_refresh import backend_client
from smartapp.measures.service import export_key, extract, keep, kept, registry_groups, run, write_reports

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration

YEAR = 2026


@pytest.fixture(scope="module")
def measure_world(world: SandboxWorld) -> SandboxWorld:
    """120 synthetic patients in the EHR, added to the Group the backend client exports."""
    cohort = Cohort()
    for resource in population(120, YEAR, seed=3):
        cohort.add(resource)
    group = next(g for g in world.cohort.of_type("Group") if g["id"] == BH_GROUP_ID)
    members = group["member"] + [
        {"entity": {"reference": f"Patient/{p['id']}"}} for p in cohort.of_type("Patient")
    ]
    cohort.add({**group, "member": members})
    load_cohort(world.ehr.base_url, cohort.transaction_bundles())
    world.measure_cohort = cohort  # type: ignore[attr-defined]
    return world


def test_export_flatten_run_and_report(measure_world: SandboxWorld, tandem: Any, tmp_path: Path) -> None:
    iss = measure_world.iss("generic")
    reg = tandem.registrations.get(iss)
    progress: list[str] = []
    report = extract(tandem, reg, tmp_path / "extract", ZoneInfo("UTC"), on_progress=progress.append,
                     sleep=lambda _s: None)  # fmt: skip
    print(f"measures extract: {report.summary()}")  # noqa: T201
    cohort = measure_world.measure_cohort  # type: ignore[attr-defined]
    assert report.rows["patient"] >= len(cohort.of_type("Patient"))  # the Group's other members come too
    assert report.rows["service_request"] == len(cohort.of_type("ServiceRequest"))
    assert "export started" in progress and any(p.startswith("reading") for p in progress)
    assert tandem.store.get(export_key(reg.iss)) is None  # the export was read to the end: nothing to resume

    # The site's value sets (the sandbox EHR's own delivery code, as a site loads its licensed sets).
    result = run(tmp_path / "extract", Period(YEAR), "duckdb", valuesets=tandem.measure_valuesets)
    assert result.refused == {}
    cms2, cms159 = result.summaries["cms2"].total, result.summaries["cms159"].total
    assert cms2.denominator > 50 and 0 < cms2.numerator < cms2.denominator and cms2.exceptions > 0
    assert cms159.denominator > 10 and 0 < cms159.numerator < cms159.denominator
    assert result.summaries["cms159-response"].total.numerator >= cms159.numerator - cms159.exclusions
    # Only the synthetic population enters CMS2 (the cohort's visits are today's, not finished screening visits).
    assert all(p.startswith("mp-") for p in result.summaries["cms2"].subjects["initial-population"])

    keep(tandem, iss, result)
    assert kept(tandem, iss, YEAR)["measures"]["cms2"]["total"]["numerator"] == cms2.numerator
    written = write_reports(tandem.registry, iss, result)
    assert written == len(MEASURES) * (5 + 2)  # five population Lists and two reports per measure
    stored = tandem.registry.read("MeasureReport", report_id("cms2", Period(YEAR), "summary", iss))
    assert not r4_errors(stored) and stored["group"][0]["population"][3]["count"] == cms2.exceptions
    listed = tandem.registry.read("MeasureReport", report_id("cms2", Period(YEAR), "subject-list", iss))
    numerator_list = listed["group"][0]["population"][-1]["subjectResults"]["reference"]
    members = tandem.registry.read("List", numerator_list.split("/")[1])
    assert len(members["entry"]) == cms2.numerator
    assert members["entry"][0]["item"]["identifier"]["system"] == iss  # patients by (issuer, id)


def test_the_quality_page_and_its_patient_lists(
    measure_world: SandboxWorld, tandem: Any, tmp_path: Path
) -> None:
    iss = measure_world.iss("generic")
    folder = Path(_extraction(measure_world, tandem, tmp_path))
    result = run(folder, Period(YEAR), "duckdb", groups=registry_groups(tandem, iss),
                 valuesets=tandem.measure_valuesets)  # fmt: skip
    keep(tandem, iss, result)
    staff = Browser()
    launched = staff.follow(launch_url(measure_world, "generic", patient=None, target="worklist",
                                       practitioner="pr-cm-1"))  # fmt: skip
    base = f"{measure_world.tandem_url}/app/{launch_id_of(launched)}"
    page = staff.get(f"{base}/measures", params={"year": str(YEAR)})
    assert page.status_code == 200
    cms2 = result.summaries["cms2"]
    text = page.text
    assert "CMS2: Screening for Depression and Follow-Up Plan" in text
    # NCQA's licence: vendor-computed rates are never called HEDIS rates.
    styled = sum(1 for m in MEASURES.values() if m.kind == "HEDIS-style (not certified)")
    # Each rate carries it where it is shown: the summary table and the measure's own section (issue 28).
    assert (
        styled == 8 and text.count("HEDIS-style (not certified)") == 2 * styled and "HEDIS rate" not in text
    )
    rate = cms2.total.numerator / cms2.total.performance_denominator
    assert f"{rate * 100:.1f}%" in text and "Program outcomes from the registry" in text
    assert "Value sets not complete in this deployment" in text  # the HEDIS-style sets are hand-made, partial
    # Under "Details for IT": the value-set versions each rate used (the shipped official expansions).
    assert "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113883.3.600.1916|20210220" in text
    assert "Not computed" not in text
    # The trend by month and the registry's strata (the synthetic population is not enrolled).
    assert f'<th scope="row">{YEAR}-03</th>' in text and "By program" in text and "not enrolled" in text
    months = result.summaries["cms2"].by_month
    assert sum(c.denominator for c in months.values()) == result.summaries["cms2"].total.denominator
    gaps = staff.get(f"{base}/measures/cms2.csv", params={"year": str(YEAR), "population": "gap"})
    assert gaps.status_code == 200 and len(gaps.text.strip().splitlines()) == len(cms2.subjects["gap"]) + 1
    # Care gaps are worked by name: each listed patient's name from the EHR's Patient.
    # No EHR ids in a spreadsheet a person opens (issue 28): the rows follow the run's subject list.
    assert gaps.text.splitlines()[0] == "Name,MRN"
    first_gap = gaps.text.strip().splitlines()[1].split(",")
    gap_id = cms2.subjects["gap"][0]
    expected = next(p for p in measure_world.measure_cohort.of_type("Patient") if p["id"] == gap_id)  # type: ignore[attr-defined]
    assert first_gap[0] == f"{expected['name'][0]['given'][0]} {expected['name'][0]['family']}"
    assert gap_id not in gaps.text
    assert (
        staff.get(f"{base}/measures/cms2.csv", params={"year": str(YEAR), "population": "x"}).status_code
        == 404
    )
    assert staff.get(f"{base}/measures", params={"year": "1066"}).status_code == 400
    empty = staff.get(f"{base}/measures", params={"year": "2031"})
    assert empty.status_code == 200 and "No run for 2031 yet" in empty.text
    # Without the site's delivery codes, PDS is refused: the page says so, and IT is told which set and how to load.
    shipped_only = run(folder, Period(YEAR - 1), "duckdb")
    keep(tandem, iss, shipped_only)
    refused = staff.get(f"{base}/measures", params={"year": str(YEAR - 1)}).text
    assert "2 measures not computed" in refused and "Not ready to report" in refused
    assert "pds-screening: value sets missing or empty: Deliveries (PDS-E style) (NCQA, licensed)" in refused
    assert "tandem measures valuesets load FILE_OR_FOLDER" in refused


def _extraction(world: SandboxWorld, tandem: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "page-extract"
    extract(
        tandem, tandem.registrations.get(world.iss("generic")), folder, ZoneInfo("UTC"), sleep=lambda _s: None
    )
    return folder


def test_an_interrupted_export_is_resumed_and_a_forgotten_one_started_again(
    measure_world: SandboxWorld, tandem: Any, tmp_path: Path
) -> None:
    reg = tandem.registrations.get(measure_world.iss("generic"))
    client = backend_client(tandem, reg)
    bulk = BulkExport(client, sleep=lambda _s: None)
    # A worker kicked an export off and stopped before reading it: the next run picks it up.
    started = bulk.kick_off_group(BH_GROUP_ID, types=["Patient"])
    tandem.store.set(export_key(reg.iss), started, 3600)
    progress: list[str] = []
    report = extract(tandem, reg, tmp_path / "resumed", ZoneInfo("UTC"), on_progress=progress.append,
                     sleep=lambda _s: None)  # fmt: skip
    assert progress[0] == "resuming the export this deployment started" and "export started" not in progress
    assert report.rows["patient"] > 0 and report.rows["encounter"] == 0  # what that export asked for
    assert tandem.store.get(export_key(reg.iss)) is None
    # The server has forgotten an export (it was completed and deleted): the error says so, and the next run
    # starts a new one.
    tandem.store.set(export_key(reg.iss), started, 3600)
    with pytest.raises(errors.FHIRNotFound):
        extract(tandem, reg, tmp_path / "forgotten", ZoneInfo("UTC"), sleep=lambda _s: None)
    assert tandem.store.get(export_key(reg.iss)) is None
    again = extract(tandem, reg, tmp_path / "again", ZoneInfo("UTC"), sleep=lambda _s: None)
    assert again.rows["encounter"] > 0

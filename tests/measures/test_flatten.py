"""Flattening FHIR resources into the measure tables: a row per coding, times in UTC and as the day in the
evaluation time zone, date-only values, totality on malformed input; and the value sets as data (a site's
expansions replace the shipped ones; an unknown name or status is refused)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.measures.flatten import SCHEMAS, moment, rows
from fhir_mappings.measures.valuesets import ValueSetError, load_valuesets

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("value", "utc", "day"),
    [
        ("2026-06-21T23:30:00-05:00", datetime(2026, 6, 22, 4, 30, tzinfo=UTC), date(2026, 6, 21)),
        ("2026-06-22T04:30:00Z", datetime(2026, 6, 22, 4, 30, tzinfo=UTC), date(2026, 6, 21)),
        (
            "2026-06-21",
            datetime(2026, 6, 21, 5, 0, tzinfo=UTC),
            date(2026, 6, 21),
        ),  # midnight in Chicago (CDT)
        ("2026-01-15", datetime(2026, 1, 15, 6, 0, tzinfo=UTC), date(2026, 1, 15)),  # CST in winter
        ("21/06/2026", None, None),
        (None, None, None),
        (42, None, None),
    ],
)
def test_times_and_days_in_the_evaluation_zone(value: Any, utc: datetime | None, day: date | None) -> None:
    found = moment(value, CHICAGO)
    assert (found[0] if found else None, found[1] if found else None) == (utc, day)


def test_a_row_per_coding_and_only_known_columns() -> None:
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.9"},
                                     {"system": "http://snomed.info/sct", "code": "35489007"}]},
                 "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2025-01-02"}  # fmt: skip
    found = list(rows(condition, CHICAGO))
    assert [r["code"] for _, r in found] == ["F32.9", "35489007"]
    for table, row in found:
        assert set(row) <= set(SCHEMAS[table])


@pytest.mark.parametrize(
    "resource",
    [None, "text", {"resourceType": "Observation"}, {"resourceType": "Observation", "id": "o"},
     {"resourceType": "Observation", "id": "o", "subject": {"reference": "Group/g"}},
     {"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p"}, "code": "x",
      "valueQuantity": {"value": True}},
     {"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"}, "type": [{"coding": [{}]}]},
     {"resourceType": "Basic", "id": "b"}],
)  # fmt: skip
def test_malformed_resources_give_no_row_and_no_exception(resource: Any) -> None:
    assert list(rows(resource, CHICAGO)) == []


def test_a_sites_expansions_replace_the_shipped_sets(tmp_path: Path) -> None:
    site = tmp_path / "vsac.json"
    site.write_text(json.dumps({"valuesets": {"cms2_encounter": {
        "oid": "2.16.840.1.113883.3.600.1916", "title": "Encounter to Screen for Depression", "status": "complete",
        "codes": [["http://www.ama-assn.org/go/cpt", "99213"]]}}}))  # fmt: skip
    loaded = load_valuesets(site)
    assert loaded["cms2_encounter"].status == "complete"
    assert loaded["cms2_encounter"].contains("http://www.ama-assn.org/go/cpt", "99213")
    assert loaded["bipolar"].contains("http://hl7.org/fhir/sid/icd-10-cm", "F31.81")  # a prefix
    site.write_text(json.dumps({"valuesets": {"invented": {"oid": "1", "title": "x", "status": "complete"}}}))
    with pytest.raises(ValueSetError, match="unknown value set"):
        load_valuesets(site)
    site.write_text(json.dumps({"valuesets": {"bipolar": {"oid": "1", "title": "x", "status": "guessed"}}}))
    with pytest.raises(ValueSetError, match="status must be one of"):
        load_valuesets(site)

"""Flattening FHIR resources into the measure tables: a row per coding, times in UTC and as the day in their own
offset, date-only values, totality on malformed input; and the value sets as data (a site's
expansions replace the shipped ones; an unknown name or status is refused)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.measures.flatten import SCHEMAS, moment, request_period, rows
from fhir_mappings.measures.valuesets import ValueSetError, load_valuesets

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("value", "utc", "day"),
    [
        # The day is the time's own calendar day, in its own offset, whatever the evaluation zone: CQL compares
        # day precision without normalising offsets (cql-execution DateTime.sameAs/sameOrBefore/sameOrAfter skip
        # convertToTimezoneOffset at day precision; differenceBetween in days keeps local time), so fqm-execution
        # puts the first on 21 June and the second (the same instant) on 22 June.
        ("2026-06-21T23:30:00-05:00", datetime(2026, 6, 22, 4, 30, tzinfo=UTC), date(2026, 6, 21)),
        ("2026-06-22T04:30:00Z", datetime(2026, 6, 22, 4, 30, tzinfo=UTC), date(2026, 6, 22)),
        ("2025-12-31T23:30:00-05:00", datetime(2026, 1, 1, 4, 30, tzinfo=UTC), date(2025, 12, 31)),
        ("2027-01-01T00:30:00+09:00", datetime(2026, 12, 31, 15, 30, tzinfo=UTC), date(2027, 1, 1)),
        # No offset (FHIR requires one with a time): read in the evaluation zone, as the engine reads it in the
        # offset of the evaluation request.
        ("2026-06-21T23:30:00", datetime(2026, 6, 22, 4, 30, tzinfo=UTC), date(2026, 6, 21)),
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
def test_utc_instants_and_days_in_own_offset(value: Any, utc: datetime | None, day: date | None) -> None:
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


SCT = "http://snomed.info/sct"
SUBJECT = {"reference": "Patient/p"}


@pytest.mark.parametrize(
    ("resource", "table", "expected"),
    [
        # CMS159 "Has Hospice Services": Encounter.hospitalization.dischargeDisposition (the SNOMED CT coding).
        ({"resourceType": "Encounter", "id": "e", "subject": SUBJECT, "status": "finished",
          "type": [{"coding": [{"system": SCT, "code": "183452005"}]}], "period": {"start": "2026-01-01"},
          "hospitalization": {"dischargeDisposition": {"coding": [{"system": "urn:local", "code": "H"},
                                                                  {"system": SCT, "code": "428361000124107"}]}}},
         "encounter", {"discharge_system": SCT, "discharge_code": "428361000124107"}),
        # QICoreCommon prevalenceInterval(): onset[x] as a Period starts at its start; abatement ends it.
        ({"resourceType": "Condition", "id": "c", "subject": SUBJECT, "code": {"coding": [{"system": SCT,
          "code": "370143000"}]}, "onsetPeriod": {"start": "2025-01-02"}, "abatementPeriod": {"start": "2025-03-01",
          "end": "2025-04-01"}},
         "condition", {"onset_day": date(2025, 1, 2), "abatement_day": date(2025, 4, 1), "abated": True}),
        ({"resourceType": "Condition", "id": "c", "subject": SUBJECT, "code": {"coding": [{"system": SCT,
          "code": "370143000"}]}, "onsetDateTime": "2025-01-02"},
         "condition", {"onset_day": date(2025, 1, 2), "abatement_day": None, "abated": False}),
        # CMS2 "value is not null": any value[x]; CMS159 reads only an integer.
        ({"resourceType": "Observation", "id": "o", "subject": SUBJECT, "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "73832-8"}]}, "valueString": "declined"},
         "observation", {"value_kind": "String", "value_code": None}),
        ({"resourceType": "Observation", "id": "o", "subject": SUBJECT, "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]}, "valueQuantity": {"value": 7}},
         "observation", {"value_kind": "Quantity", "value_int": 7}),
        ({"resourceType": "Observation", "id": "o", "subject": SUBJECT, "status": "cancelled",
          "code": {"coding": [{"system": "http://loinc.org", "code": "73832-8"}]},
          "extension": [{"url": "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason",
                         "valueCodeableConcept": {"coding": [{"system": SCT, "code": "183932001"}]}}]},
         "observation", {"value_kind": None, "reason_system": SCT, "reason_code": "183932001"}),
        # CMS159 hospice and palliative procedures overlap the window: the performed period's end is kept.
        ({"resourceType": "Procedure", "id": "p", "subject": SUBJECT, "status": "completed",
          "code": {"coding": [{"system": SCT, "code": "385763009"}]},
          "performedPeriod": {"start": "2025-01-02", "end": "2025-02-03"}},
         "procedure", {"performed_day": date(2025, 1, 2), "performed_end_day": date(2025, 2, 3)}),
        # MedicationDispense is read where the EHR has it.
        ({"resourceType": "MedicationDispense", "id": "d", "subject": SUBJECT, "status": "completed",
          "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                    "code": "1000048"}]}, "whenHandedOver": "2026-03-06"},
         "medication_dispense", {"dispense_id": "d", "code": "1000048", "handed_over_day": date(2026, 3, 6)}),
    ],
)  # fmt: skip
def test_the_fields_the_cql_reads_are_kept(
    resource: dict[str, Any], table: str, expected: dict[str, Any]
) -> None:
    found = list(rows(resource, CHICAGO))
    assert found and found[0][0] == table
    assert {key: found[0][1][key] for key in expected} == expected
    assert set(found[0][1]) <= set(SCHEMAS[table])


def _request(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "authoredOn": "2026-03-01", **fields}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # CumulativeMedicationDuration 6.0.000 medicationRequestPeriod(): days supplied × (1 + refills), from the
        # bounds start, else authoredOn.
        (_request(dispenseRequest={"expectedSupplyDuration": {"value": 30, "code": "d"}}),
         (date(2026, 3, 1), date(2026, 3, 30))),
        (_request(dispenseRequest={"expectedSupplyDuration": {"value": 30, "code": "d"}, "numberOfRepeatsAllowed": 1}),
         (date(2026, 3, 1), date(2026, 4, 29))),
        (_request(dispenseRequest={"expectedSupplyDuration": {"value": 2, "code": "wk"}}),
         (date(2026, 3, 1), date(2026, 3, 14))),
        # quantity ÷ (dose × doses a day): 60 tablets, one twice a day = 30 days.
        (_request(dispenseRequest={"quantity": {"value": 60}}, dosageInstruction=[{
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 1}}]}]), (date(2026, 3, 1), date(2026, 3, 30))),
        # No supply: to the bounds end; without one the period is null.
        (_request(dosageInstruction=[{"timing": {"repeat": {"boundsPeriod": {"start": "2026-03-02",
                                                                             "end": "2026-04-01"}}}}]),
         (date(2026, 3, 2), date(2026, 4, 1))),
        (_request(), (None, None)),
        (_request(authoredOn=None), (None, None)),
        (_request(dispenseRequest={"expectedSupplyDuration": {"value": 1e300, "code": "d"}}), (None, None)),
    ],
)  # fmt: skip
def test_medication_request_period(
    request_: dict[str, Any], expected: tuple[date | None, date | None]
) -> None:
    assert request_period(request_, CHICAGO) == expected

"""Gestational age at birth and prematurity correction (SWYC: under 24 months, born ≥ 3 weeks early)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from fhir_mappings.common.gestation import (
    GESTATION_CODE,
    GESTATION_SYSTEM,
    Gestation,
    corrected_age_months,
    gestation_from,
    gestation_observation,
    observation_id,
    parse_codes,
)
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.instruments import INSTRUMENTS

TODAY = date(2026, 11, 24)
CHILD = PatientKey("https://ehr.example.org/fhir", "pt-1")
OURS = [(GESTATION_SYSTEM, GESTATION_CODE)]
SITE = [("https://ehr.example.org/codes", "GA-BIRTH")]


@pytest.mark.parametrize(
    ("born", "days", "expected"),
    [
        (date(2026, 5, 24), None, 6),  # gestational age unknown: chronological
        (date(2026, 5, 24), 280, 6),  # term
        (date(2026, 5, 24), 38 * 7, 6),  # 2 weeks early: no correction
        (date(2026, 5, 24), 37 * 7 + 1, 6),  # 2 weeks 6 days early: no correction
        (date(2026, 5, 24), 37 * 7, 5),  # exactly 3 weeks early: corrected
        (date(2026, 5, 24), 30 * 7, 3),  # 10 weeks early
        (date(2026, 5, 24), 24 * 7, 2),  # 16 weeks early
        (date(2026, 11, 1), 26 * 7, 0),  # corrected age before term-equivalent: 0, never negative
        (date(2024, 11, 25), 30 * 7, 21),  # 23 months: still corrected
        (date(2024, 10, 24), 30 * 7, 25),  # 25 months: over 24, no correction
        (date(2024, 11, 24), 30 * 7, 24),  # exactly 24 months: no correction
        (None, 30 * 7, None),  # no birth date: no age
    ],
)
def test_swyc_age_is_corrected_for_prematurity_under_24_months(
    born: date | None, days: int | None, expected: int | None
) -> None:
    rule = INSTRUMENTS["swyc-milestones"].corrects_for_prematurity
    assert rule == (24, 3)
    gestation = Gestation(days, "EHR") if days is not None else None
    assert corrected_age_months(born, TODAY, gestation, rule) == expected
    # An instrument without the rule reads the chronological age.
    assert corrected_age_months(born, TODAY, gestation, None) == corrected_age_months(born, TODAY, None, rule)


@pytest.mark.parametrize(
    ("quantity", "days"),
    [
        ({"value": 32, "unit": "wk", "system": "http://unitsofmeasure.org", "code": "wk"}, 224),
        ({"value": 32.5, "unit": "weeks"}, 228),
        ({"value": 228, "system": "http://unitsofmeasure.org", "code": "d"}, 228),
        ({"value": 230, "unit": "days"}, 230),
        ({"value": 12, "unit": "wk"}, None),  # implausible: a typing slip
        ({"value": 50, "unit": "wk"}, None),
        ({"value": 32, "unit": "mo"}, None),  # not a gestational unit
        ({"value": "32", "unit": "wk"}, None),
        ({"value": True, "unit": "wk"}, None),
        ({"unit": "wk"}, None),
    ],
)
def test_values_are_read_in_weeks_or_days(quantity: dict[str, Any], days: int | None) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"coding": [
        {"system": SITE[0][0], "code": SITE[0][1]}]}, "valueQuantity": quantity}  # fmt: skip
    found = gestation_from([observation], SITE, "EHR")
    assert (found.days if found else None) == days


def test_the_latest_final_observation_with_a_wanted_code_counts() -> None:
    def obs(days: int, issued: str, status: str = "final", code: str = "GA-BIRTH") -> dict[str, Any]:
        return {"resourceType": "Observation", "status": status, "issued": issued,
                "code": {"coding": [{"system": SITE[0][0], "code": code}]},
                "valueQuantity": {"value": days, "unit": "d"}}  # fmt: skip

    found = gestation_from([obs(220, "2026-05-02T00:00:00Z"), obs(230, "2026-06-01T00:00:00Z"),
                            obs(240, "2026-07-01T00:00:00Z", status="entered-in-error"),
                            obs(250, "2026-08-01T00:00:00Z", code="OTHER")], SITE, "EHR")  # fmt: skip
    assert found is not None and found.days == 230 and found.source == "EHR"
    assert gestation_from([obs(220, "2026-05-02T00:00:00Z")], OURS, "Tandem") is None


def test_a_recorded_gestation_round_trips_through_the_r4b_model_and_is_the_childs_only() -> None:
    resource = gestation_observation(CHILD, 32, 4, date(2026, 5, 1), datetime(2026, 11, 24, 9, tzinfo=UTC),
                                     "Practitioner/pr-1", SITE)  # fmt: skip
    parsed = Observation.model_validate(resource)
    again = parsed.model_dump(mode="json", exclude_none=True)
    assert Observation.model_validate(again).model_dump(mode="json", exclude_none=True) == again
    assert (
        resource["id"]
        == observation_id(CHILD)
        != observation_id(PatientKey("https://other.example/fhir", "pt-1"))
    )
    found = gestation_from([again], OURS, "Tandem", CHILD)
    assert found is not None and found.text == "32+4 weeks" and found.weeks_early == 7
    # The site's own code is carried too, so the EHR's readers find it if the record is ever shared.
    assert gestation_from([again], SITE, "Tandem", CHILD) == found
    # Another EHR's patient with the same id is not this child.
    assert gestation_from([again], OURS, "Tandem", PatientKey("https://other.example/fhir", "pt-1")) is None


@pytest.mark.parametrize(
    ("setting", "parsed"),
    [
        (None, ()),
        ("", ()),
        ("https://ehr.example.org/codes|GA-BIRTH", (("https://ehr.example.org/codes", "GA-BIRTH"),)),
        ("a|1, b|2", (("a", "1"), ("b", "2"))),
        ("GA-BIRTH", None),
        ("a|", None),
        ("|1", None),
        ("a|1 2", None),
    ],
)
def test_the_site_codes_setting(setting: str | None, parsed: tuple[tuple[str, str], ...] | None) -> None:
    assert parse_codes(setting) == parsed


def test_weeks_early_counts_completed_weeks_before_term() -> None:
    assert Gestation(36 * 7 + 6, "EHR").weeks_early == 3 and Gestation(41 * 7, "EHR").weeks_early == 0

"""Patient display values: total functions over FHIR JSON."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappings.common.patient import age_in_years, birth_date_text, display_name, identifier_value


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        ({"name": [{"use": "official", "family": "Rivera", "given": ["Ana", "Sofia"]}]}, "Ana Sofia Rivera"),
        (
            {"name": [{"use": "usual", "text": "Camila Lopez"}, {"use": "official", "family": "Lopez"}]},
            "Lopez",
        ),
        ({"name": [{"use": "old", "family": "Smith"}, {"family": "Jones", "given": ["Kim"]}]}, "Kim Jones"),
        (
            {
                "name": [
                    {"use": "official", "family": "Old", "period": {"end": "2001"}},
                    {"use": "usual", "family": "New"},
                ]
            },
            "New",
        ),
        ({"name": []}, None),
        ({"name": [{}]}, None),
        ({}, None),
        (None, None),
        ({"name": "not a list"}, None),
    ],
)
def test_display_name(resource: dict | None, name: str | None) -> None:
    assert display_name(resource) == name


def test_birth_date_and_age() -> None:
    patient = {"birthDate": "1987-09-12"}
    assert birth_date_text(patient) == "1987-09-12"
    assert age_in_years(patient, date(2026, 9, 11)) == 38
    assert age_in_years(patient, date(2026, 9, 12)) == 39
    assert age_in_years({"birthDate": "1987"}, date(2026, 1, 1)) is None
    assert birth_date_text({"birthDate": "1987"}) == "1987"
    assert age_in_years({"birthDate": "not-a-date"}, date(2026, 1, 1)) is None
    assert birth_date_text({}) is None


def test_mrn() -> None:
    patient = {"identifier": [{"type": {"text": "EPIC"}, "value": "E1"},
                              {"type": {"coding": [{"code": "MR"}]}, "value": "203713"}]}  # fmt: skip
    assert identifier_value(patient) == "203713"
    assert identifier_value({"identifier": [{"type": {"coding": [{"code": "MR"}]}}]}) is None


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"qualification": [{"code": {"text": "Psychiatric consultant"}}]}, "Psychiatric consultant"),
        ({"qualification": [{"code": {"coding": [{"display": "Psychiatrist"}]}}]}, "Psychiatrist"),
        ({"qualification": [{"code": {"text": "  "}}, {"code": {"text": "LCSW"}}]}, "LCSW"),
        ({"qualification": "odd"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_a_practitioners_role_for_the_pickers(resource: Any, expected: str | None) -> None:
    from fhir_mappings.common.patient import qualification_text

    assert qualification_text(resource) == expected

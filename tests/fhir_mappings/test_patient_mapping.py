"""Patient display values: total functions over FHIR JSON."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_mappings.common.dates import age_months, age_range_text, age_text
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


@pytest.mark.parametrize(
    ("born", "today", "months", "text"),
    [(date(2026, 11, 24), date(2026, 11, 24), 0, "0 days"),
     (date(2026, 11, 23), date(2026, 11, 24), 0, "1 day"),
     (date(2026, 10, 31), date(2026, 11, 24), 0, "24 days"),
     (date(2026, 10, 24), date(2026, 11, 24), 1, "1 mo"),
     (date(2026, 2, 25), date(2026, 11, 24), 8, "8 mo"),  # a 9-month-old only from the 25th: not "0 y"
     (date(2026, 2, 24), date(2026, 11, 24), 9, "9 mo"),
     (date(2024, 11, 25), date(2026, 11, 24), 23, "23 mo"),
     (date(2024, 11, 24), date(2026, 11, 24), 24, "2 y"),
     (date(2024, 7, 10), date(2026, 11, 24), 28, "2 y 4 mo"),
     (date(2023, 11, 24), date(2026, 11, 24), 36, "3 y"),
     (date(1980, 5, 2), date(2026, 11, 24), 558, "46 y"),
     (date(2024, 2, 29), date(2025, 2, 28), 11, "11 mo"),  # leap-day birthday
     (date(2026, 12, 1), date(2026, 11, 24), None, None),  # born after today
     (None, date(2026, 11, 24), None, None)],
)  # fmt: skip
def test_age_in_months_and_as_clinicians_write_it(born: date | None, today: date, months: int | None,
                                                  text: str | None) -> None:  # fmt: skip
    assert age_months(born, today) == months
    assert age_text(born, today) == text


@pytest.mark.parametrize(
    ("bounds", "text"),
    [((216, None), "18 years and older"), ((144, 215), "12 to 17 years"), ((1, 66), "1 to 66 months"),
     ((0, 12), "0 to 12 months"), ((0, 35), "0 to 2 years"), ((6, None), "6 months and older"), (None, "any age")],
)  # fmt: skip
def test_age_ranges_read_as_words(bounds: tuple[int, int | None] | None, text: str) -> None:
    assert age_range_text(bounds) == text

"""Scopes in the v1 and v2 spellings, and the launch context parser (SMART 2.0 and 2.1 shapes)."""

from __future__ import annotations

import pytest

from launch.context import FhirContextItem, parse_banner, parse_fhir_context, parse_launch_context
from launch.scopes import LaunchMode, allows, launch_scopes, spell_scopes, to_v1


@pytest.mark.parametrize(
    ("scope", "v1"),
    [
        ("patient/Observation.rs", ["patient/Observation.read"]),
        ("patient/Observation.r", ["patient/Observation.read"]),
        ("patient/Observation.c", ["patient/Observation.write"]),
        ("patient/Observation.cruds", ["patient/Observation.read", "patient/Observation.write"]),
        ("user/Patient.read", ["user/Patient.read"]),
        ("system/*.cruds", ["system/*.read", "system/*.write"]),
        ("patient/Observation.rs?category=survey", ["patient/Observation.read"]),
        ("openid", ["openid"]),
        ("launch/patient", ["launch/patient"]),
    ],
)
def test_v1_spelling(scope: str, v1: list[str]) -> None:
    assert to_v1(scope) == v1


def test_spelling_follows_the_servers_capabilities() -> None:
    scopes = ["openid", "patient/Patient.r", "patient/Observation.rs", "patient/Observation.c"]
    assert spell_scopes(scopes, ["permission-v2", "permission-v1"]) == scopes
    assert spell_scopes(scopes, ["permission-v1"]) == [
        "openid", "patient/Patient.read", "patient/Observation.read", "patient/Observation.write",
    ]  # fmt: skip
    assert spell_scopes(scopes, []) == spell_scopes(scopes, ["permission-v1"])


def test_launch_scope_per_mode() -> None:
    assert launch_scopes(["openid", "launch"], LaunchMode.EHR) == ["launch", "openid"]
    assert launch_scopes(["openid", "launch"], LaunchMode.STANDALONE) == ["launch/patient", "openid"]


@pytest.mark.parametrize(
    ("granted", "interaction", "allowed"),
    [
        ({"patient/Observation.rs"}, "r", True),
        ({"patient/Observation.rs"}, "c", False),
        ({"patient/Observation.read"}, "s", True),
        ({"patient/Observation.write"}, "c", True),
        ({"patient/*.read"}, "r", True),
        ({"user/Observation.cruds"}, "c", False),  # other context
        ({"Patient.read Patient.search"}, "r", False),  # Epic's display form is not a SMART scope
    ],
)
def test_allows(granted: set[str], interaction: str, allowed: bool) -> None:
    assert allows(granted, "patient", "Observation", interaction) is allowed


def test_fhir_context_both_forms() -> None:
    items = parse_fhir_context(
        [
            "Encounter/1",
            {"reference": "Appointment/2", "role": "https://example.org/role/a"},
            {"canonical": "http://example.org/Questionnaire/phq9|1.0", "type": "Questionnaire"},
            {"identifier": {"system": "urn:x", "value": "9"}, "type": "ServiceRequest"},
            {"role": "no-target"},
            17,
            "",
        ]
    )
    assert items == (
        FhirContextItem(reference="Encounter/1"),
        FhirContextItem(reference="Appointment/2", role="https://example.org/role/a"),
        FhirContextItem(canonical="http://example.org/Questionnaire/phq9|1.0", type="Questionnaire"),
        FhirContextItem(identifier={"system": "urn:x", "value": "9"}, type="ServiceRequest"),
    )
    assert [item.resource_type for item in items] == [
        "Encounter",
        "Appointment",
        "Questionnaire",
        "ServiceRequest",
    ]
    assert parse_fhir_context("Encounter/1") == ()


@pytest.mark.parametrize(
    ("value", "shown"), [(True, True), (False, False), ("false", False), ("true", True), (None, True)]
)
def test_banner_only_hidden_by_an_explicit_false(value: object, shown: bool) -> None:
    assert parse_banner(value) is shown


def test_context_is_total_on_odd_input() -> None:
    context = parse_launch_context({"access_token": "t", "patient": 5, "fhirContext": "x", "intent": ""})
    assert context.patient is None and context.fhir_context == () and context.intent is None
    assert context.need_patient_banner is True and context.extras == {}

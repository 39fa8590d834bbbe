"""Every reader is total over any JSON (property-based; `python3 scripts/fuzz_readers.py` runs a large budget)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from ..fuzz_readers import READERS, mutated


@pytest.mark.parametrize("kind", sorted(READERS))
def test_readers_never_raise(kind: str) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(kind))
    def check(resource: Any) -> None:
        for reader in READERS[kind]:
            reader(resource)

    check()


def test_the_odd_resources_seen_in_the_field_are_skipped() -> None:
    from fhir_mappings.common.conditions import behavioral_conditions
    from fhir_mappings.common.patient import display_name, identifier_value
    from fhir_mappings.registry.resources import enrolment_from, work_task_from
    from launch.context import parse_launch_context

    assert behavioral_conditions([{"resourceType": "Condition", "code": {"coding": True}}]) == []
    assert display_name({"resourceType": "Patient", "name": 42}) is None
    assert identifier_value({"resourceType": "Patient", "identifier": "MRN-1"}) is None
    assert parse_launch_context({"access_token": "a", "fhirContext": [{"role": "x"}, 7]}).fhir_context == ()
    # The schema-invalid Task a registry store accepted: it names no patient, and breaks nothing.
    task = work_task_from({"resourceType": "Task", "id": "t", "status": "requested", "for": "Patient/pt-0009",
                           "code": {"coding": [{"system": "https://tandem.health/fhir/CodeSystem/task",
                                                "code": "safety-follow-up"}]}})  # fmt: skip
    assert task is not None and task.patient_id is None and task.key is None
    assert enrolment_from({"resourceType": "CarePlan", "id": "c", "category": "cocm", "subject": []}) is None


# Found by the fuzzing of the readers added in issue 26 §4: an unhashable resourceType crashed the measures'
# flattening of EHR resources (TypeError: unhashable type: 'list'). Source: FHIR R4 Resource.resourceType is a string.
@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": [], "id": "x"},
        {"resourceType": {"a": 1}, "id": "x"},
        {"resourceType": "Patient", "id": []},
    ],
)
def test_the_measures_flattening_skips_resources_of_no_known_type(resource: dict[str, Any]) -> None:
    from zoneinfo import ZoneInfo

    from fhir_mappings.measures.flatten import rows

    assert list(rows(resource, ZoneInfo("UTC"))) == []

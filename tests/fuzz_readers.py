"""Property-based fuzzing of every FHIR reader: wrong-typed JSON anywhere must give None / skip the element,
never an exception. Shared by the suite (a modest budget) and scripts/fuzz_readers.py (a large one)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

from hypothesis import strategies as st

from fhir_mappings.common import capability, conditions, gestation, identity, patient
from fhir_mappings.registry import resources as registry
from fhir_mappings.registry.resources import Enrolment, Member, careplan, contact_task, work_task
from fhir_mappings.screening import history
from fhir_mappings.smi import medical
from launch.context import parse_launch_context

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12), st.just(""), st.just("Patient/pt-1"), st.just("2026-11-24"))  # fmt: skip
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=12)  # fmt: skip

_ENROLMENT = Enrolment("cp-1", "https://ehr.example.org/fhir", "pt-1", "Ana", "cocm-depression", "active-treatment",
                       date(2026, 9, 1), team={"care-manager": Member("Practitioner/cm-1", "Cy")},
                       consent_given=True, consent_date=date(2026, 9, 1), consent_method="verbal")  # fmt: skip
SEEDS: dict[str, dict[str, Any]] = {
    "CarePlan": careplan(_ENROLMENT),
    "Task": work_task("safety-follow-up", "t-1", _ENROLMENT, __import__("datetime").datetime(2026, 11, 1)),
    "Contact": contact_task(
        registry.Contact(
            "c-1", "cp-1", date(2026, 11, 2), 20, "phone", "care-manager", Member("Practitioner/cm-1")
        ),
        _ENROLMENT,
        __import__("datetime").datetime(2026, 11, 2),
    ),  # fmt: skip
    "Observation": {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
        "effectiveDateTime": "2026-11-01T10:00:00Z",
        "valueInteger": 12,
        "subject": {"reference": "Patient/pt-1", "identifier": {"system": "https://e", "value": "pt-1"}},
        "identifier": [{"system": "https://tandem.health/fhir/submission", "value": "abc#total"}],
    },  # fmt: skip
    "Gestation": gestation.gestation_observation(
        identity.PatientKey("https://e", "pt-1"),
        32,
        4,
        date(2026, 5, 1),
        __import__("datetime").datetime(2026, 11, 1),
        "Practitioner/1",
        [("https://site", "ga")],
    ),
    "Condition": {
        "resourceType": "Condition",
        "code": {
            "coding": [
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1", "display": "Depression"}
            ]
        },
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "onsetDateTime": "2025-01-01",
    },  # fmt: skip
    "Patient": {
        "resourceType": "Patient",
        "id": "pt-1",
        "name": [{"use": "official", "given": ["Ana"], "family": "Rivera"}],
        "birthDate": "1980-04-02",
        "gender": "female",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "123"}],
        "generalPractitioner": [{"reference": "Practitioner/1"}],
    },  # fmt: skip
    "CapabilityStatement": {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "software": {"name": "x"},
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}],
                "resource": [
                    {"type": "Observation", "interaction": [{"code": "create"}], "conditionalCreate": True}
                ],
            }
        ],
    },  # fmt: skip
    "TokenResponse": {
        "access_token": "a",
        "patient": "pt-1",
        "encounter": "e",
        "fhirContext": ["Encounter/e", {"reference": "DiagnosticReport/1", "role": "r"}],
        "need_patient_banner": False,
    },  # fmt: skip
}

READERS: dict[str, list[Callable[[Any], Any]]] = {
    "CarePlan": [registry.enrolment_from],
    "Task": [
        registry.work_task_from,
        registry.contact_from,
        lambda r: identity.patient_key(r.get("for") if isinstance(r, dict) else None),
    ],  # fmt: skip
    "Contact": [registry.contact_from, registry.work_task_from],
    "Observation": [
        lambda r: history.score_points([r], "EHR"),
        lambda r: medical.summarise([r], [r], date(2026, 11, 24)),
        lambda r: identity.patient_key(r.get("subject") if isinstance(r, dict) else None),
    ],  # fmt: skip
    "Gestation": [
        lambda r: gestation.gestation_from(
            [r], [(gestation.GESTATION_SYSTEM, gestation.GESTATION_CODE)], "EHR"
        ),
        lambda r: gestation.gestation_from(
            [r], [("https://site", "ga")], "Tandem", identity.PatientKey("https://e", "pt-1")
        ),
    ],
    "Condition": [lambda r: conditions.behavioral_conditions([r])],
    "Patient": [
        patient.display_name,
        patient.birth_date,
        patient.birth_date_text,
        patient.administrative_gender,
        patient.identifier_value,
        lambda r: patient.age_in_years(r, date(2026, 11, 24)),
    ],  # fmt: skip
    "CapabilityStatement": [
        lambda r: capability.interactions(r, "Observation"),
        lambda r: capability.accepts_create(r, "Observation"),
        lambda r: capability.supports_conditional_create(r, "Observation"),
        capability.system_interactions,
        capability.software_name,
        capability.fhir_version,
    ],
    "TokenResponse": [lambda r: parse_launch_context(r if isinstance(r, dict) else {})],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> Any:
    """The seed resource with some of its elements (at any depth) replaced by JSON of another shape."""
    resource = copy.deepcopy(SEEDS[kind])
    paths = _paths(resource)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        target: Any = resource
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    return draw(st.one_of(st.just(resource), JSON)) if draw(st.integers(0, 9)) == 0 else resource

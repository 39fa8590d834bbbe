"""Property-based fuzzing of every reader of outside data (the EHR's and the registry's FHIR resources, SMART and
OpenID discovery, token endpoint answers, Bulk Data manifests, CDS Hooks prefetch, the stored caseload snapshot,
the registration file): wrong-typed JSON anywhere must give None / skip the element, or a typed error of the one
hierarchy (launch/errors.py) where the reader's contract is to refuse — never TypeError, AttributeError, KeyError.
Shared by the suite (a modest budget) and scripts/fuzz_readers.py (a large one)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from fhir_mappings.cds.prefetch import read_prefetch
from fhir_mappings.common import (
    access,
    capability,
    caregivers,
    conditions,
    dates,
    gestation,
    identity,
    patient,
)
from fhir_mappings.healthysteps.referrals import referral_from
from fhir_mappings.measures.flatten import rows as flat_rows
from fhir_mappings.registry import resources as registry
from fhir_mappings.registry.recommendations import review_from_outputs
from fhir_mappings.registry.resources import Enrolment, Member, careplan, contact_task, work_task
from fhir_mappings.screening import events, history
from fhir_mappings.smi import medical, social
from launch.bulk import parse_manifest
from launch.context import parse_launch_context
from launch.discovery import parse_capability_oauth_uris, parse_smart_configuration
from launch.errors import TandemError
from launch.oauth import parse_token_response
from launch.registrations import parse_registrations
from launch.transport import oauth_error_fields, outcome_issues
from smartapp.caseload.snapshot import snapshot_from_json

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


# --- the other readers of outside data --------------------------------------------------------------------------

_KEY = identity.PatientKey("https://e", "pt-1")
_TODAY = date(2026, 11, 24)
_ZONE = ZoneInfo("America/Chicago")


def typed(reader: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A reader whose contract is to refuse odd input with a typed error of the one hierarchy (a token endpoint
    answer without an access_token, a manifest without transactionTime): that error is an answer, anything
    else (TypeError, AttributeError, KeyError, …) is a failure."""

    def run(value: Any) -> Any:
        try:
            return reader(value)
        except TandemError:
            return None

    return run


def _snapshot_seed() -> dict[str, Any]:
    from smartapp.caseload.snapshot import Snapshot

    snapshot = Snapshot(since="2026-11-01T00:00:00+00:00")
    snapshot.enrolments["cp-1"] = _ENROLMENT
    contact = registry.Contact(
        "c-1", "cp-1", date(2026, 11, 2), 20, "phone", "care-manager", Member("Practitioner/cm-1")
    )
    snapshot.contacts["c-1"] = contact
    snapshot.tasks["t-1"] = registry.WorkTask("t-1", "safety-follow-up", "requested", "pt-1", "cp-1",
                                              date(2026, 11, 3), date(2026, 11, 1), iss="https://e")  # fmt: skip
    point = history.ScorePoint("PHQ-9", __import__("datetime").datetime(2026, 11, 1, 10), 12, "Tandem", "44261-6",
                               "s-1", "o-1")  # fmt: skip
    snapshot.scores["o-1"] = (_KEY, point)
    domain = social.SOCIAL.domains[0]
    snapshot.social["so-1"] = (_KEY, social.Answered(domain.key, domain.answers[0], date(2026, 11, 1)))
    snapshot.legacy_scores = {"o-0"}
    return snapshot.to_json()


SEEDS.update({
    "SmartConfiguration": {
        "issuer": "https://ehr.example.org/oauth2", "jwks_uri": "https://ehr.example.org/jwks",
        "authorization_endpoint": "https://ehr.example.org/authorize", "token_endpoint": "https://ehr.example.org/token",
        "capabilities": ["launch-ehr", "permission-v2"], "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid"], "grant_types_supported": ["authorization_code"], "vendor_extra": {"a": 1},
    },
    "OAuthCapability": {
        "resourceType": "CapabilityStatement",
        "rest": [{"mode": "server", "security": {"extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [{"url": "authorize", "valueUri": "https://ehr.example.org/authorize"},
                          {"url": "token", "valueUri": "https://ehr.example.org/token"}]}]}}],
    },
    "BulkManifest": {
        "transactionTime": "2026-11-24T10:00:00Z", "request": "https://e/Group/g/$export", "requiresAccessToken": True,
        "output": [{"type": "Observation", "url": "https://e/files/1.ndjson", "count": 3}],
        "error": [{"type": "OperationOutcome", "url": "https://e/files/err.ndjson"}],
    },
    "TokenEndpoint": {
        "access_token": "a", "token_type": "Bearer", "expires_in": 3600, "scope": "openid patient/*.rs",
        "refresh_token": "r", "id_token": "x.y.z", "patient": "pt-1", "need_patient_banner": True,
        "error": "invalid_grant", "error_description": "expired",
    },
    "OperationOutcome": {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": "d", "details": {"text": "t"}}],
    },
    "RelatedPerson": {
        "resourceType": "RelatedPerson", "id": "rp-1", "active": True,
        "patient": {"reference": "Patient/pt-1", "identifier": {"system": "https://e", "value": "pt-1"}},
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
        "name": [{"given": ["Rosa"], "family": "Rivera"}],
    },
    "CaregiverRecord": {"id": "cg-1", "name": "Rosa", "relationship": "MTH", "ehr_reference": "RelatedPerson/1",
                        "patient_id": None},
    "MedicationRequest": {
        "resourceType": "MedicationRequest", "status": "active", "authoredOn": "2026-10-01",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "115698", "display": "aripiprazole"}], "text": "Abilify"},
        "subject": {"reference": "Patient/pt-1"},
    },
    "ReferralTask": {
        "resourceType": "Task", "id": "referral-r1", "status": "requested", "authoredOn": "2026-11-01",
        "code": {"coding": [{"system": registry.TASK_SYSTEM, "code": "referral"}]},
        "basedOn": [{"reference": "CarePlan/cp-1"}],
        "input": [{"type": {"text": "service"}, "valueCodeableConcept": {
            "coding": [{"system": "https://tandem.health/fhir/CodeSystem/referral-service", "code": "wic"}]}},
            {"type": {"text": "caregiver"}, "valueReference": {"reference": "RelatedPerson/rp-1"}}],
        "output": [{"type": {"text": "outcome-note"}, "valueString": "seen"}],
        "executionPeriod": {"end": "2026-11-20"}, "owner": {"display": "WIC"}, "note": [{"text": "n"}],
    },
    "ReviewOutputs": {"output": [
        {"type": {"text": "recommendations"}, "valueString": "Start a medication"},
        {"type": {"coding": [{"system": "https://tandem.health/fhir/CodeSystem/review-recommendation",
                              "code": "medication-start"}], "text": "recommendation"}, "valueString": "sertraline"},
        {"type": {"text": "recommendation-note"}, "valueString": "note"}]},
    "Prefetch": {
        "patient": {"resourceType": "Patient", "id": "pt-1"},
        "scores": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Observation"}}],
                   "link": [{"relation": "next", "url": "https://e/Observation?page=2"}]},
        "conditions": None,
    },
    "Snapshot": _snapshot_seed(),
    "Registrations": {"issuer": [
        {"iss": "https://ehr.example.org/fhir", "client_id": "c", "vendor": "epic",
         "id_token_issuers": ["https://ehr.example.org/oauth2"], "frame_ancestors": ["https://ehr.example.org"],
         "cds": {"jwks_urls": ["https://ehr.example.org/jwks"], "tenant": "t"},
         "backend": {"client_id": "b", "key_id": "k", "group_id": "g-1"}},
        {"iss": "https://other.example.org/fhir", "client_id": "d", "auth": "private_key_jwt", "key_id": "k"},
    ]},
})  # fmt: skip


def _flat(resource: Any) -> list[Any]:
    return list(flat_rows(resource, _ZONE))


def _prefetch(value: Any) -> None:
    for key, kind in (("patient", "Patient"), ("scores", None), ("conditions", None), ("missing", None)):
        read_prefetch(value, key, resource_type=kind)


def _access(value: Any) -> None:
    access.objs(value), access.field(value, "code", "coding"), access.text_at(value, "id")
    (
        access.codes(value),
        access.code(value, "http://loinc.org"),
        access.reference_id(value, "Patient"),
        access.version_id(value),
    )


READERS["Observation"] += [
    lambda r: history.focus_of(access.obj(r)),
    lambda r: history.is_patient_reported(access.obj(r)),
    lambda r: events.events_from_observations([r]),
    _flat,
    lambda r: medical.readings([r]),
    lambda r: medical.smoking_status([r]),
    lambda r: social.answers_from([r], _KEY),
    lambda r: dates.parse_datetime(access.obj(r).get("effectiveDateTime")),
    _access,
]
READERS["Patient"] += [
    lambda r: patient.age_in_months(access.obj(r), _TODAY),
    patient.qualification_text,
    _flat,
]
READERS["Condition"] += [_flat]
READERS["CarePlan"] += [_flat, lambda r: identity.legacy_patient_id(access.obj(r).get("subject"))]
READERS["Task"] += [_flat, referral_from, lambda r: review_from_outputs(access.obj(r).get("output"))]
READERS["CapabilityStatement"] += [parse_capability_oauth_uris]
READERS.update({
    "SmartConfiguration": [parse_smart_configuration],
    "OAuthCapability": [parse_capability_oauth_uris, capability.software_name, capability.system_interactions],
    "BulkManifest": [typed(parse_manifest)],
    "TokenEndpoint": [typed(parse_token_response), lambda r: parse_launch_context(r if isinstance(r, dict) else {}),
                      oauth_error_fields],
    "OperationOutcome": [outcome_issues],
    "RelatedPerson": [lambda r: caregivers.from_ehr([r], _KEY), lambda r: caregivers.from_registry([r], _KEY), _flat],
    "CaregiverRecord": [lambda r: caregivers.caregiver_from_record(r, _KEY)],
    "MedicationRequest": [lambda r: medical.antipsychotics([r]), lambda r: medical.summarise([], [r], _TODAY), _flat],
    "ReferralTask": [referral_from, _flat],
    "ReviewOutputs": [lambda r: review_from_outputs(access.obj(r).get("output")), review_from_outputs],
    "Prefetch": [_prefetch],
    "Snapshot": [snapshot_from_json],
    "Registrations": [typed(lambda r: parse_registrations(r if isinstance(r, dict) else {}))],
})  # fmt: skip


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

"""The synthetic cohort generator and the sandbox's EHR rules (pure functions)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest
from fhir.resources.R4B import get_fhir_model_class

from sandbox.data import EPDS_TOTAL, GAD7_TOTAL, PHQ9_ITEM9, PHQ9_TEEN_TOTAL, PHQ9_TOTAL, generate
from sandbox.rules import interaction_for, scope_refusal, vendor_capability, vendor_refusal

AS_OF = date(2026, 11, 1)


def test_same_seed_same_cohort_other_seed_other_cohort() -> None:
    first = json.dumps(generate(50, seed=3, as_of=AS_OF).resources)
    assert first == json.dumps(generate(50, seed=3, as_of=AS_OF).resources)
    assert first != json.dumps(generate(50, seed=4, as_of=AS_OF).resources)


def test_cohort_has_every_group_the_registry_needs() -> None:
    cohort = generate(50, as_of=AS_OF)
    patients = cohort.of_type("Patient")
    assert len(patients) == 50
    codes = Counter(o["code"]["coding"][0]["code"] for o in cohort.of_type("Observation"))
    assert codes[PHQ9_TOTAL] and codes[GAD7_TOTAL] and codes[PHQ9_TEEN_TOTAL] and codes[EPDS_TOTAL]
    assert codes[PHQ9_ITEM9] == 1
    item9 = next(o for o in cohort.of_type("Observation") if o["code"]["coding"][0]["code"] == PHQ9_ITEM9)
    assert item9["valueInteger"] > 0
    assert {"39156-5", "4548-4", "85354-9"} <= set(codes)
    ages = [(AS_OF - date.fromisoformat(p["birthDate"])).days / 365.25 for p in patients]
    assert any(a < 3 for a in ages) and any(12 <= a < 18 for a in ages) and any(a >= 18 for a in ages)
    caregivers = cohort.of_type("RelatedPerson")
    assert caregivers
    epds = [o for o in cohort.of_type("Observation") if o["code"]["coding"][0]["code"] == EPDS_TOTAL]
    assert all(o["focus"][0]["reference"].startswith("RelatedPerson/") for o in epds)
    conditions = {c["code"]["coding"][0]["code"] for c in cohort.of_type("Condition")}
    assert {"F32.1", "F41.1", "F20.9"} <= conditions or {"F32.1", "F41.1", "F31.9"} <= conditions
    roles = {p["qualification"][0]["code"]["text"] for p in cohort.of_type("Practitioner")}
    assert {"Primary care physician", "Behavioral health care manager", "Psychiatric consultant"} <= roles


def test_trajectories_include_improving_not_improving_and_remission() -> None:
    cohort = generate(200, as_of=AS_OF)
    by_patient: dict[str, list[tuple[str, int]]] = {}
    for o in cohort.of_type("Observation"):
        if o["code"]["coding"][0]["code"] == PHQ9_TOTAL:
            by_patient.setdefault(o["subject"]["reference"], []).append(
                (o["effectiveDateTime"], o["valueInteger"])
            )
    changes = []
    for series in by_patient.values():
        series.sort()
        if len(series) >= 3 and series[0][1] > 9:
            changes.append((series[-1][1] - series[0][1]) / series[0][1])
    assert any(c <= -0.5 for c in changes) and any(c > -0.25 for c in changes)
    assert any(series[-1][1] < 5 for series in by_patient.values() if len(series) >= 3)


def test_every_resource_is_valid_r4() -> None:
    for resource in generate(40, as_of=AS_OF).resources:
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert json.loads(model.model_dump_json(exclude_none=True))["id"] == resource["id"]


def test_size_limits() -> None:
    assert len(generate(1, as_of=AS_OF).of_type("Patient")) == 1
    with pytest.raises(ValueError):
        generate(5001)


def test_bundles_are_idempotent_puts() -> None:
    bundles = list(generate(30, as_of=AS_OF).transaction_bundles(size=50))
    entries = [e for b in bundles for e in b["entry"]]
    assert all(e["request"]["method"] == "PUT" for e in entries)
    assert all(
        e["request"]["url"] == f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries
    )


@pytest.mark.parametrize(
    ("method", "parts", "expected"),
    [("GET", ["Patient", "1"], ("Patient", "r")), ("GET", ["Observation"], ("Observation", "s")),
     ("POST", ["Observation"], ("Observation", "c")), ("POST", ["Observation", "_search"], ("Observation", "s")),
     ("PUT", ["Task", "1"], ("Task", "u")), ("DELETE", ["Task", "1"], ("Task", "d")), ("POST", [], (None, "c"))],
)  # fmt: skip
def test_interactions(method: str, parts: list[str], expected: tuple[str | None, str]) -> None:
    assert interaction_for(method, parts) == expected


SURVEY = {"resourceType": "Observation", "category": [{"coding": [{"code": "survey"}]}]}
VITALS = {"resourceType": "Observation", "category": [{"coding": [{"code": "vital-signs"}]}]}


@pytest.mark.parametrize(
    ("mode", "path", "body", "status"),
    [("epic", ["Task"], {}, 405), ("oracle", ["CarePlan"], {}, 405), ("generic", ["Task"], {}, None),
     ("epic", ["Observation"], SURVEY, 422), ("epic", ["Observation"], VITALS, None),
     ("oracle", ["Observation"], SURVEY, 422), ("generic", ["Observation"], SURVEY, None),
     ("epic", [], {"resourceType": "Bundle"}, 405), ("epic", ["DocumentReference"], {}, None)],
)  # fmt: skip
def test_vendor_refusals(mode: str, path: list[str], body: dict, status: int | None) -> None:
    refusal = vendor_refusal(mode, "POST", path, body)
    assert (refusal.status if refusal else None) == status


def test_scope_and_compartment_rules() -> None:
    scopes = {"patient/Patient.r", "patient/Observation.rs"}
    assert scope_refusal(scopes, "p1", "GET", ["Patient", "p1"], {}) is None
    assert scope_refusal(scopes, "p1", "GET", ["Patient", "p2"], {}) is not None
    assert scope_refusal(scopes, "p1", "GET", ["Observation"], {"patient": ["p1"]}) is None
    assert scope_refusal(scopes, "p1", "GET", ["Observation"], {"patient": ["p2"]}) is not None
    assert scope_refusal(scopes, "p1", "GET", ["Observation"], {}) is not None
    refused = scope_refusal(scopes, "p1", "GET", ["Condition"], {"patient": ["p1"]})
    assert refused is not None and refused.challenge == 'Bearer error="insufficient_scope"'
    assert scope_refusal({"user/Observation.rs"}, None, "GET", ["Observation"], {}) is None


def test_vendor_capability_drops_refused_creates() -> None:
    capability = {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "interaction": [{"code": "transaction"}],
                  "resource": [{"type": "Task", "interaction": [{"code": "create"}, {"code": "read"}]}]}]}  # fmt: skip
    edited = vendor_capability(capability, "epic", "http://x/epic/fhir")
    assert edited["rest"][0]["resource"][0]["interaction"] == [{"code": "read"}]
    assert edited["rest"][0]["interaction"] == []
    assert (
        vendor_capability(capability, "generic", "u")["rest"][0]["resource"][0]["interaction"][0]["code"]
        == "create"
    )

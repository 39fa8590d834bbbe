"""Registry references that hold in a store with referential integrity (HAPI FHIR JPA's default, Google Cloud).

Source: issue 27 §1 ("a minimal registry Patient per (issuer, patient id), id derived from both, holding only the
EHR identity"); FHIR R4 Reference (§2.3.0.3 logical references: `identifier` without `reference`); FHIR R4 id
datatype (`[A-Za-z0-9\\-\\.]{1,64}`); HAPI refuses client-assigned ids made only of digits (ClientIdStrategy
ALPHANUMERIC).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.task import Task

from fhir_mappings.common.identity import (
    PatientKey,
    is_registry_patient_reference,
    patient_key,
    registry_patient,
    registry_patient_id,
    registry_patient_key,
)
from fhir_mappings.common.registry_refs import (
    bundle_patients,
    from_registry,
    resource_issuer,
    resource_patients,
    to_registry,
)
from fhir_mappings.registry.resources import (
    Contact,
    Enrolment,
    Member,
    careplan,
    contact_from,
    contact_task,
    enrolment_from,
)

EPIC = "https://epic.example.org/fhir"
ORACLE = "https://oracle.example.org/fhir"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@pytest.mark.parametrize(("iss", "pid"), [
    (EPIC, "pt-0001"),
    (EPIC, "12345"),  # an all-digit EHR id still gives a registry id HAPI accepts
    (ORACLE, "12345"),
    (EPIC, "e" * 64),  # the longest FHIR id
    (EPIC, "a.b-c"),
])  # fmt: skip
def test_a_registry_patient_id_is_a_valid_fhir_id_that_hapi_accepts(iss: str, pid: str) -> None:
    rid = registry_patient_id(iss, pid)
    assert FHIR_ID.match(rid)
    assert not rid.isdigit()
    assert rid == registry_patient_id(iss, pid)  # stable


@pytest.mark.parametrize(("a", "b"), [
    ((EPIC, "12345"), (ORACLE, "12345")),  # the same id in two EHRs: two patients
    ((EPIC, "1"), (EPIC, "2")),
    ((EPIC + "/", "x"), (EPIC, "/x")),  # the separator cannot be forged by moving a slash
])  # fmt: skip
def test_registry_patient_ids_differ_per_issuer_and_patient(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert registry_patient_id(*a) != registry_patient_id(*b)


def test_the_registry_patient_holds_only_the_ehr_identity_and_is_valid_r4b() -> None:
    key = PatientKey(EPIC, "pt-0001")
    patient = registry_patient(key)
    assert set(patient) == {"resourceType", "id", "meta", "identifier"}  # no name, birth date or MRN
    assert patient["identifier"] == [{"system": EPIC, "value": "pt-0001"}]
    Patient.model_validate(patient)
    assert registry_patient_key(patient) == key
    # A Patient whose id does not derive from its identifier is not one of Tandem's.
    assert registry_patient_key({**patient, "id": "someone-else"}) is None


@pytest.mark.parametrize(("reference", "expected"), [
    # The new form: the registry Patient plus the identifier.
    (PatientKey(EPIC, "p1").reference(), PatientKey(EPIC, "p1")),
    # The form written before registry Patients (read until `tandem registry migrate-patients` runs).
    ({"reference": "Patient/p1", "identifier": {"system": EPIC, "value": "p1"}}, PatientKey(EPIC, "p1")),
    # A registry reference of another (issuer, id) than the identifier names nobody.
    ({"reference": f"Patient/{registry_patient_id(ORACLE, 'p1')}", "identifier": {"system": EPIC, "value": "p1"}},
     None),
    ({"reference": "Patient/p2", "identifier": {"system": EPIC, "value": "p1"}}, None),
    ({"reference": "Patient/p1"}, None),  # no issuer: `migrate-issuer` first
    (None, None),
])  # fmt: skip
def test_patient_key_reads_both_forms_and_refuses_disagreement(
    reference: Any, expected: PatientKey | None
) -> None:
    assert patient_key(reference) == expected


def test_relative_is_the_registry_reference_and_ehr_relative_the_ehrs() -> None:
    key = PatientKey(EPIC, "p1")
    assert key.relative == f"Patient/{registry_patient_id(EPIC, 'p1')}"
    assert key.ehr_relative == "Patient/p1"
    assert is_registry_patient_reference(key.reference())
    assert not is_registry_patient_reference({"reference": "Patient/p1"})


def _enrolment() -> Enrolment:
    team = {
        "care-manager": Member("Practitioner/cm-1", "Teresa Lindqvist"),
        "pcp": Member("Practitioner/pcp-1"),
    }
    return Enrolment("cp-1", EPIC, "p1", "Ann Lee", "cocm-depression", "active-treatment", date(2026, 11, 2),
                     team=team, consent_given=True)  # fmt: skip


def _references(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if "reference" in value or ("identifier" in value and "type" in value):
            found.append(value)
        for item in value.values():
            found += _references(item)
    elif isinstance(value, list):
        for item in value:
            found += _references(item)
    return found


def test_a_careplan_references_only_what_the_registry_holds_and_reads_back_the_same() -> None:
    written = careplan(_enrolment())
    stored = to_registry(written)
    CarePlan.model_validate(stored)
    for reference in _references(stored):
        literal = reference.get("reference")
        if literal is None:  # logical: an EHR practitioner, named by the issuer-scoped identifier
            assert reference["type"] == "Practitioner"
            assert reference["identifier"]["system"] == EPIC
        else:
            assert literal.startswith(("#", "Patient/tp-")), literal
    # The contained CareTeam's and Goals' bare `Patient/p1` became the registry Patient too.
    assert all(r.get("reference") != "Patient/p1" for r in _references(stored))
    assert resource_patients(stored) == [PatientKey(EPIC, "p1")]
    read = enrolment_from(from_registry(stored))
    assert read is not None
    assert read.team == _enrolment().team and read.key == PatientKey(EPIC, "p1")
    assert to_registry(stored) == stored  # idempotent: migrating twice changes nothing


def test_a_contact_task_keeps_its_owner_and_careplan_link() -> None:
    enrolment = _enrolment()
    contact = Contact(
        "c-1", "cp-1", date(2026, 12, 1), 20, "phone", "care-manager", enrolment.team["care-manager"]
    )
    stored = to_registry(contact_task(contact, enrolment, datetime(2026, 12, 1, 15, tzinfo=UTC)))
    Task.model_validate(stored)
    assert stored["basedOn"] == [{"reference": "CarePlan/cp-1"}]  # registry-local: kept
    assert stored["owner"]["type"] == "Practitioner" and "reference" not in stored["owner"]
    assert contact_from(from_registry(stored)) == contact_from(
        contact_task(contact, enrolment, datetime(2026, 12, 1, 15, tzinfo=UTC))
    )


@pytest.mark.parametrize(("reference", "kept"), [
    ({"reference": "#team"}, True),
    ({"reference": "urn:uuid:6f1c3c1e-1d4b-4d7e-9a57-1b1c7f0e2f10"}, True),
    ({"reference": "CarePlan/cp-1"}, True),
    ({"reference": "QuestionnaireResponse/qr-1"}, True),
    ({"reference": "RelatedPerson/rp-1"}, True),  # the registry holds its own copy of a caregiver
    ({"reference": "https://other.example/fhir/Practitioner/1"}, True),  # absolute: never rewritten
    ({"reference": "Practitioner/pr-1"}, False),
    ({"reference": "Encounter/e-1"}, False),
    ({"reference": "PractitionerRole/r-1"}, False),
])  # fmt: skip
def test_which_references_are_rewritten(reference: dict[str, Any], kept: bool) -> None:
    resource = {"resourceType": "Task", "for": PatientKey(EPIC, "p1").reference(), "focus": reference}
    stored = to_registry(resource)
    assert (stored["focus"] == reference) is kept
    assert from_registry(stored)["focus"] == reference  # and every one reads back as it was written


def test_without_an_issuer_nothing_is_rewritten() -> None:
    resource = {
        "resourceType": "Task",
        "for": {"reference": "Patient/p1"},
        "owner": {"reference": "Practitioner/x"},
    }
    assert resource_issuer(resource) is None
    assert to_registry(resource) == resource


def test_a_transaction_names_each_patient_once() -> None:
    a, b = PatientKey(EPIC, "p1"), PatientKey(ORACLE, "p1")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "subject": a.reference()}},
        {"resource": {"resourceType": "Observation", "subject": b.reference()}},
        {"resource": {"resourceType": "Task", "for": a.reference()}},
    ]}  # fmt: skip
    assert bundle_patients(bundle) == [a, b]


def test_a_registry_caregivers_link_to_the_ehrs_original_is_logical_and_reads_back() -> None:
    # The registry's RelatedPerson copy may have its own id; its link names the EHR's RelatedPerson, which the
    # registry store does not hold (fhir_mappings/common/caregivers.py EHR_COPY_URL).
    from fhir_mappings.common.caregivers import EHR_COPY_URL

    resource = {"resourceType": "RelatedPerson", "id": "rp-copy", "patient": PatientKey(EPIC, "c1").reference(),
                "extension": [{"url": EHR_COPY_URL, "valueReference": {"reference": "RelatedPerson/rp-ehr"}}]}  # fmt: skip
    stored = to_registry(resource)
    assert stored["extension"][0]["valueReference"] == {
        "type": "RelatedPerson", "identifier": {"system": EPIC, "value": "rp-ehr"}}  # fmt: skip
    assert from_registry(stored)["extension"] == resource["extension"]


@pytest.mark.parametrize(("reference", "expected"), [
    # A SMART fhirUser is often absolute: on the issuer's own server it becomes the logical reference (HAPI
    # refuses every absolute reference, HAPI-0507).
    ({"reference": f"{EPIC}/Practitioner/pr-1"}, {"type": "Practitioner", "identifier": {"system": EPIC, "value": "pr-1"}}),
    ({"reference": f"{EPIC}/Patient/p1"}, PatientKey(EPIC, "p1").reference()),
    # On another server: kept as it is (Tandem never writes one; the store decides).
    ({"reference": f"{ORACLE}/Practitioner/pr-1"}, {"reference": f"{ORACLE}/Practitioner/pr-1"}),
    # An EHR patient whose id merely starts like a registry Patient's is still the EHR's.
    ({"reference": "Patient/tp-123"}, PatientKey(EPIC, "tp-123").reference()),
])  # fmt: skip
def test_absolute_and_lookalike_references(reference: dict[str, Any], expected: dict[str, Any]) -> None:
    resource = {
        "resourceType": "Observation",
        "subject": PatientKey(EPIC, "p1").reference(),
        "performer": [reference],
    }
    assert to_registry(resource)["performer"] == [expected]


def test_only_tandems_own_logical_references_are_restored() -> None:
    # An identifier-only reference of another system (an NPI) is not one Tandem wrote: it stays as it is.
    npi = {
        "type": "Organization",
        "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
    }
    resource = {"resourceType": "Task", "for": PatientKey(EPIC, "p1").reference(), "owner": npi,
                "requester": {"type": "Practitioner", "identifier": {"system": EPIC, "value": "pr-1"}}}  # fmt: skip
    read = from_registry(resource)
    assert read["owner"] == npi and read["requester"] == {"reference": "Practitioner/pr-1"}


def test_a_caregivers_referral_task_names_the_child_so_its_ehr_is_known() -> None:
    from fhir_mappings.healthysteps.program import HEALTHYSTEPS_PROGRAM
    from fhir_mappings.healthysteps.referrals import Referral, referral_from, referral_resources

    child = Enrolment(
        "hs-1", EPIC, "child1", "Baby Diaz", "healthysteps", "active-treatment", date(2026, 1, 5)
    )
    referral = Referral("r1", "hs-1", "caregiver", "wic", "WIC", "requested", date(2026, 12, 1),
                        caregiver="RelatedPerson/rp-mother")  # fmt: skip
    program = HEALTHYSTEPS_PROGRAM
    resources = referral_resources(referral, child, services=program.services, concern=None, basis=(), goal=None,
                                   requester=Member("Practitioner/pr-hs"), now=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
    task = next(r for r in resources if r["resourceType"] == "Task")
    assert task["for"] == {"reference": "RelatedPerson/rp-mother"}
    assert resource_issuer(task) == EPIC
    stored = to_registry(task)
    assert stored["requester"] == {"type": "Practitioner", "identifier": {"system": EPIC, "value": "pr-hs"}}
    assert referral_from(from_registry(stored)) == referral_from(task)


def test_a_resource_without_an_issuer_that_names_the_ehr_needs_one() -> None:
    from fhir_mappings.common.registry_refs import needs_issuer

    assert needs_issuer({"resourceType": "Task", "for": {"reference": "Patient/p1"}})
    assert needs_issuer({"resourceType": "Task", "owner": {"reference": "Practitioner/x"}})
    assert not needs_issuer({"resourceType": "Questionnaire", "url": "https://tandem.health/q"})
    assert not needs_issuer({"resourceType": "Task", "for": PatientKey(EPIC, "p1").reference()})

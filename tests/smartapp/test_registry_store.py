"""RegistryClient: the registry Patient is written once, in the same transaction as the first write that needs it,
and a store that lost it gets it again (fault injection with `responses`; the real stores are in
tests/integration/test_registry_store.py).

Source: issue 27 §1 (a minimal registry Patient per (issuer, patient id), written in the same transaction as the
first resource that needs it); HAPI FHIR JPA answers a dangling reference with 400 "HAPI-1094: Resource
Patient/… not found, specified in path: Observation.subject".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from fhir_mappings.common.identity import PatientKey
from launch import errors
from launch.transport import HttpTransport, RetryPolicy
from smartapp.registry_store import RegistryClient

BASE = "http://registry.test/fhir"
ISS = "https://ehr.example/fhir"
KEY = PatientKey(ISS, "p1")


def _client() -> RegistryClient:
    return RegistryClient(
        BASE, HttpTransport(retry=RetryPolicy(attempts=1), sleep=lambda _s: None), name="registry"
    )


def _observation(key: PatientKey = KEY, oid: str = "o1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "PHQ-9"},
            "subject": key.reference(), "performer": [{"reference": "Practitioner/pr-1"}]}  # fmt: skip


def _echo(request: Any) -> tuple[int, dict[str, str], str]:
    body = json.loads(request.body)
    return 201, {}, json.dumps({**body, "meta": {"versionId": "1"}})


def _transaction_echo(request: Any) -> tuple[int, dict[str, str], str]:
    body = json.loads(request.body)
    entries = [{"response": {"status": "201 Created",
                             "location": f"{e['request']['url']}/_history/1"}, "resource": e.get("resource")}
               for e in body["entry"]]  # fmt: skip
    return 200, {}, json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})


@responses.activate
def test_the_first_write_for_a_patient_puts_its_registry_patient_once() -> None:
    responses.add_callback(responses.PUT, f"{BASE}/Patient/{KEY.registry_id}", callback=_echo)
    responses.add_callback(responses.PUT, f"{BASE}/Observation/o1", callback=_echo)
    responses.add_callback(responses.PUT, f"{BASE}/Observation/o2", callback=_echo)
    client = _client()
    written = client.update(_observation())
    client.update(_observation(oid="o2"))
    puts = [c.request.url for c in responses.calls]
    assert puts == [f"{BASE}/Patient/{KEY.registry_id}", f"{BASE}/Observation/o1", f"{BASE}/Observation/o2"]
    sent = json.loads(responses.calls[1].request.body)
    assert sent["subject"]["reference"] == KEY.relative
    assert sent["performer"] == [{"type": "Practitioner", "identifier": {"system": ISS, "value": "pr-1"}}]
    # What the caller gets back reads as it wrote it.
    assert written["performer"] == [{"reference": "Practitioner/pr-1"}]


@responses.activate
def test_a_transaction_carries_the_missing_patient_first_and_answers_only_the_callers_entries() -> None:
    responses.add_callback(responses.POST, BASE, callback=_transaction_echo)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _observation(), "request": {"method": "PUT", "url": "Observation/o1"}}]}  # fmt: skip
    client = _client()
    answered = client.transaction(bundle)
    sent = json.loads(responses.calls[0].request.body)
    assert [e["request"]["url"] for e in sent["entry"]] == [f"Patient/{KEY.registry_id}", "Observation/o1"]
    assert len(answered["entry"]) == 1
    assert answered["entry"][0]["response"]["location"].startswith("Observation/o1")
    assert answered["entry"][0]["resource"]["performer"] == [{"reference": "Practitioner/pr-1"}]
    client.transaction(bundle)  # known now: not sent again
    again = json.loads(responses.calls[1].request.body)
    assert [e["request"]["url"] for e in again["entry"]] == ["Observation/o1"]


@responses.activate
def test_a_patient_the_store_lost_is_written_again_and_the_write_retried_once() -> None:
    responses.add_callback(responses.PUT, f"{BASE}/Patient/{KEY.registry_id}", callback=_echo)
    refused = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing",
               "diagnostics": "HAPI-1094: Resource Patient/x not found, specified in path: Observation.subject"}]}  # fmt: skip
    answers = iter([(400, {}, json.dumps(refused))])

    def observation(request: Any) -> tuple[int, dict[str, str], str]:
        return next(answers, None) or _echo(request)

    responses.add_callback(responses.PUT, f"{BASE}/Observation/o1", callback=observation)
    client = _client()
    client.ensure_patients([KEY])  # remembered as existing...
    client.update(_observation())  # ...but the store had lost it
    urls = [c.request.url.rsplit("/", 2)[-2] for c in responses.calls]
    assert urls == ["Patient", "Observation", "Patient", "Observation"]


@responses.activate
def test_a_refusal_that_persists_is_raised() -> None:
    responses.add(
        responses.PUT, f"{BASE}/Patient/{KEY.registry_id}", json={"resourceType": "Patient"}, status=200
    )
    responses.add(responses.PUT, f"{BASE}/Observation/o1", status=400,
                  json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]})  # fmt: skip
    with pytest.raises(errors.FHIRBadRequest):
        _client().update(_observation())
    assert sum(1 for c in responses.calls if "Observation" in c.request.url) == 2  # one retry, no more


@responses.activate
def test_reads_map_logical_ehr_references_back() -> None:
    stored = {
        **_observation(),
        "performer": [{"type": "Practitioner", "identifier": {"system": ISS, "value": "pr-1"}}],
    }
    responses.add(responses.GET, f"{BASE}/Observation", json={"resourceType": "Bundle", "type": "searchset",
                                                                 "entry": [{"resource": stored}]})  # fmt: skip
    found = _client().search_all("Observation", {"subject": KEY.relative})
    assert found[0]["performer"] == [{"reference": "Practitioner/pr-1"}]


@responses.activate
def test_many_patients_are_written_in_transactions_of_500() -> None:
    # A measure population's List names every patient: one PUT each would be 20,000 requests at 20,000 patients.
    responses.add_callback(responses.POST, BASE, callback=_transaction_echo)
    keys = [PatientKey(ISS, f"p{n}") for n in range(1201)]
    client = _client()
    client.ensure_patients(keys + keys[:10])  # repeats are written once
    sizes = [len(json.loads(c.request.body)["entry"]) for c in responses.calls]
    assert sizes == [500, 500, 201]
    client.ensure_patients(keys)
    assert len(responses.calls) == 3  # known now


@responses.activate
def test_an_entry_that_names_no_patient_takes_the_transactions_ehr() -> None:
    responses.add_callback(responses.POST, BASE, callback=_transaction_echo)
    task = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
            "for": {"reference": "RelatedPerson/rp-1"}, "requester": {"reference": "Practitioner/pr-1"}}  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _observation(), "request": {"method": "PUT", "url": "Observation/o1"}},
        {"resource": task, "request": {"method": "PUT", "url": "Task/t1"}}]}  # fmt: skip
    _client().transaction(bundle)
    sent = json.loads(responses.calls[0].request.body)["entry"]
    assert sent[-1]["resource"]["requester"] == {
        "type": "Practitioner",
        "identifier": {"system": ISS, "value": "pr-1"},
    }


@responses.activate
def test_a_batch_gets_its_patients_before_it() -> None:
    # A batch's entries succeed one by one: its Patients are written first, not inside it.
    responses.add_callback(responses.PUT, f"{BASE}/Patient/{KEY.registry_id}", callback=_echo)
    responses.add_callback(responses.POST, BASE, callback=_transaction_echo)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _observation(), "request": {"method": "PUT", "url": "Observation/o1"}}]}  # fmt: skip
    answered = _client().transaction(bundle)
    assert [c.request.method for c in responses.calls] == ["PUT", "POST"]
    assert len(json.loads(responses.calls[1].request.body)["entry"]) == 1 and len(answered["entry"]) == 1

"""The FHIR gateway: retries, paging safety, conditional and versioned writes, error mapping, counting."""

from __future__ import annotations

import json
import logging

import pytest
import requests
import responses

from launch import errors
from launch.fhir import FHIRClient, StaticToken, etag_for
from launch.transport import HttpTransport, RetryPolicy, parse_retry_after

BASE = "https://ehr.example.org/fhir/R4"
OO = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "Observation.status: missing required element",
        }
    ],
}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fhir(sleeps: Sleeps) -> FHIRClient:
    transport = HttpTransport(timeout=2, retry=RetryPolicy(attempts=3, backoff_seconds=0.01), sleep=sleeps)
    return FHIRClient(BASE, transport, StaticToken("tok-123"), name="EHR")


def _bundle(resources: list[dict], next_url: str | None = None) -> dict:
    links = [{"relation": "self", "url": f"{BASE}/Observation"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": r} for r in resources],
    }


@responses.activate
def test_read_sends_the_bearer_token_and_fhir_accept(fhir: FHIRClient) -> None:
    responses.get(
        f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers={"ETag": 'W/"7"'}
    )
    patient = fhir.read("Patient", "p1")
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["Accept"] == "application/fhir+json"
    assert patient["meta"]["versionId"] == "7"
    assert fhir.counter.total == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
@responses.activate
def test_reads_are_retried_on_transient_statuses(fhir: FHIRClient, sleeps: Sleeps, status: int) -> None:
    responses.get(f"{BASE}/Patient/p1", status=status, headers={"Retry-After": "2"})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert fhir.read("Patient", "p1")["id"] == "p1"
    assert sleeps == [2.0]  # Retry-After honoured
    assert fhir.counter.total == 2


@responses.activate
def test_retries_give_up_with_a_typed_error(fhir: FHIRClient, sleeps: Sleeps) -> None:
    responses.get(f"{BASE}/Patient/p1", status=503, json=OO)
    with pytest.raises(errors.FHIRServerError) as raised:
        fhir.read("Patient", "p1")
    assert raised.value.http_status == 503
    assert len(sleeps) == 2 and fhir.counter.total == 3


@responses.activate
def test_plain_create_is_never_retried(fhir: FHIRClient, sleeps: Sleeps) -> None:
    responses.post(f"{BASE}/Observation", status=503)
    with pytest.raises(errors.FHIRServerError):
        fhir.create({"resourceType": "Observation", "status": "final"})
    assert fhir.counter.total == 1 and sleeps == []


@responses.activate
def test_conditional_create_is_retried_and_sends_if_none_exist(fhir: FHIRClient) -> None:
    responses.post(f"{BASE}/Observation", status=429, headers={"Retry-After": "1"})
    responses.post(f"{BASE}/Observation", status=201, json={"resourceType": "Observation", "id": "o1"})
    created = fhir.create({"resourceType": "Observation"}, if_none_exist="identifier=urn:tandem|sub-1")
    assert created["id"] == "o1"
    last = responses.calls[-1].request
    assert last.headers["If-None-Exist"] == "identifier=urn:tandem|sub-1"
    assert last.headers["Prefer"] == "return=representation"
    assert last.headers["Content-Type"] == "application/fhir+json"
    assert fhir.counter.total == 2


@responses.activate
def test_timeouts_are_retried_for_reads_then_raise(fhir: FHIRClient) -> None:
    responses.get(f"{BASE}/Patient/p1", body=requests.Timeout("slow"))
    with pytest.raises(errors.FHIRTimeout):
        fhir.read("Patient", "p1")
    assert fhir.counter.total == 3


@responses.activate
def test_connection_errors_become_transport_errors(fhir: FHIRClient) -> None:
    responses.get(f"{BASE}/Patient/p1", body=requests.ConnectionError("refused"))
    with pytest.raises(errors.FHIRTransportError):
        fhir.read("Patient", "p1")


@responses.activate
def test_update_sends_if_match_and_412_is_a_precondition_error(fhir: FHIRClient) -> None:
    resource = {"resourceType": "CarePlan", "id": "cp1", "meta": {"versionId": "4"}}
    responses.put(f"{BASE}/CarePlan/cp1", status=412, json=OO)
    with pytest.raises(errors.FHIRPreconditionFailed) as raised:
        fhir.update(resource, if_match=etag_for(resource))
    assert responses.calls[0].request.headers["If-Match"] == 'W/"4"'
    assert isinstance(raised.value, errors.FHIRConflict)
    assert raised.value.issues == ["error invalid: Observation.status: missing required element"]


@responses.activate
def test_transaction_posts_to_the_base_and_is_retried_only_when_idempotent(fhir: FHIRClient) -> None:
    responses.post(BASE, status=503)
    responses.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response"})
    safe = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Task", "id": "t1"}, "request": {"method": "PUT", "url": "Task/t1"}},
        {"resource": {"resourceType": "Task"}, "request": {"method": "POST", "url": "Task", "ifNoneExist": "identifier=x|1"}},
    ]}  # fmt: skip
    assert fhir.transaction(safe)["type"] == "transaction-response"
    assert fhir.counter.total == 2

    fhir.counter.reset()
    responses.post(BASE, status=503)
    unsafe = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Task"}, "request": {"method": "POST", "url": "Task"}},
    ]}  # fmt: skip
    responses.replace(responses.POST, BASE, status=503)
    with pytest.raises(errors.FHIRServerError):
        fhir.transaction(unsafe)
    assert fhir.counter.total == 1


@responses.activate
def test_paging_follows_same_origin_next_links(fhir: FHIRClient) -> None:
    responses.get(
        f"{BASE}/Observation", json=_bundle([{"resourceType": "Observation", "id": "1"}], f"{BASE}?page=2")
    )
    responses.get(f"{BASE}?page=2", json=_bundle([{"resourceType": "Observation", "id": "2"}]))
    found = fhir.search_all("Observation", {"patient": "p1", "code": ["44261-6", "89204-2"]})
    assert [r["id"] for r in found] == ["1", "2"]
    assert "code=44261-6&code=89204-2" in responses.calls[0].request.url


@pytest.mark.parametrize(
    "next_url",
    [
        "https://attacker.example.com/fhir/R4/Observation?page=2",
        "http://ehr.example.org/fhir/R4/Observation?page=2",  # scheme downgrade
        "https://ehr.example.org:8443/fhir/R4/Observation?page=2",  # other port
    ],
)
@responses.activate
def test_next_link_to_another_origin_is_refused_and_no_token_leaves(fhir: FHIRClient, next_url: str) -> None:
    responses.get(f"{BASE}/Observation", json=_bundle([{"resourceType": "Observation", "id": "1"}], next_url))
    with pytest.raises(errors.UnsafeURL):
        fhir.search_all("Observation", {"patient": "p1"})
    assert len(responses.calls) == 1  # the other host was never contacted


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, errors.FHIRBadRequest),
        (401, errors.FHIRUnauthorized),
        (403, errors.FHIRForbidden),
        (404, errors.FHIRNotFound),
        (409, errors.FHIRConflict),
        (410, errors.FHIRNotFound),
        (412, errors.FHIRPreconditionFailed),
        (422, errors.FHIRUnprocessable),
        (500, errors.FHIRServerError),
    ],
)
@responses.activate
def test_status_codes_map_to_typed_errors_with_operation_outcome_text(
    fhir: FHIRClient, status: int, error_type: type[errors.FHIRError], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # refusals callers handle log at INFO
    responses.get(f"{BASE}/Observation", status=status, json=OO)
    with pytest.raises(error_type) as raised:
        fhir.search("Observation", {"patient": "secret-patient-id", "code": "44261-6"})
    assert raised.value.http_status == status
    assert "missing required element" in caplog.text  # OperationOutcome text is logged
    assert "secret-patient-id" not in caplog.text  # the query (PHI) is not
    assert "tok-123" not in caplog.text


@responses.activate
def test_epic_style_403_with_empty_body_and_insufficient_scope(fhir: FHIRClient) -> None:
    responses.get(f"{BASE}/Condition", status=403, body="",
                  headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})  # fmt: skip
    with pytest.raises(errors.FHIRForbidden) as raised:
        fhir.search("Condition", {"patient": "p1"})
    assert any("insufficient_scope" in issue for issue in raised.value.issues)


@responses.activate
def test_401_invalidates_the_token_and_retries_once(sleeps: Sleeps) -> None:
    class Rotating:
        def __init__(self) -> None:
            self.current, self.invalidated = "old", 0

        def token(self) -> str:
            return self.current

        def invalidate(self) -> None:
            self.invalidated += 1
            self.current = "new"

    auth = Rotating()
    client = FHIRClient(BASE, HttpTransport(sleep=sleeps), auth)
    responses.get(f"{BASE}/Patient/p1", status=401)
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert client.read("Patient", "p1")["id"] == "p1"
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer old", "Bearer new"]
    assert auth.invalidated == 1


@responses.activate
def test_empty_201_takes_id_and_version_from_location(fhir: FHIRClient) -> None:
    responses.post(f"{BASE}/DocumentReference", status=201, body="",
                   headers={"Location": f"{BASE}/DocumentReference/d9/_history/1"})  # fmt: skip
    written = fhir.create({"resourceType": "DocumentReference", "status": "current"})
    assert written["id"] == "d9" and written["meta"]["versionId"] == "1" and written["status"] == "current"


@pytest.mark.parametrize(
    "body",
    ["<html>maintenance</html>", json.dumps({"resourceType": "OperationOutcome"}), json.dumps([1, 2])],
    ids=["html", "wrong-type", "not-an-object"],
)
@responses.activate
def test_malformed_answers_raise_malformed_resource(fhir: FHIRClient, body: str) -> None:
    responses.get(f"{BASE}/Patient/p1", body=body, status=200)
    with pytest.raises(errors.MalformedResource):
        fhir.read("Patient", "p1")


@pytest.mark.parametrize("bad_id", ["../Patient/2", "p1?x=1", "", "a" * 65])
def test_ids_that_would_change_the_url_are_refused(fhir: FHIRClient, bad_id: str) -> None:
    with pytest.raises(errors.FHIRBadRequest):
        fhir.read("Patient", bad_id)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@responses.activate
def test_retry_after_is_capped(fhir: FHIRClient, sleeps: Sleeps) -> None:
    responses.get(f"{BASE}/Patient/p1", status=503, headers={"Retry-After": "3600"})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    fhir.read("Patient", "p1")
    assert sleeps == [10.0]


@responses.activate
def test_429_is_replayed_even_for_a_plain_create(fhir: FHIRClient, sleeps: Sleeps) -> None:
    """A 429 means the server refused the request unprocessed, so replaying it cannot duplicate anything."""
    responses.post(f"{BASE}/Observation", status=429, headers={"Retry-After": "3"})
    responses.post(f"{BASE}/Observation", status=201, json={"resourceType": "Observation", "id": "o2"})
    assert fhir.create({"resourceType": "Observation"})["id"] == "o2"
    assert sleeps == [3.0] and fhir.counter.total == 2


@pytest.mark.parametrize(("if_match", "expected"), [
    # FHIR R4 http.html#concurrency: a stale If-Match is 412; HAPI FHIR JPA answers 409 (HAPI-0989). Both are the
    # version conflict a caller shows as "someone else changed this".
    ('W/"1"', errors.FHIRPreconditionFailed),
    # Without If-Match a 409 is some other conflict, and stays one.
    (None, errors.FHIRConflict),
])  # fmt: skip
@responses.activate
def test_a_409_to_a_versioned_update_is_the_version_conflict(
    fhir: FHIRClient, if_match: str | None, expected: type[errors.FHIRError]
) -> None:
    responses.put(f"{BASE}/CarePlan/cp1", status=409, json=OO)
    with pytest.raises(errors.FHIRError) as raised:
        fhir.update({"resourceType": "CarePlan", "id": "cp1"}, if_match=if_match)
    assert type(raised.value) is expected and raised.value.http_status == 409

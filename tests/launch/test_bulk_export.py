"""Bulk Data export as a client: kick-off, polling as the server asks, the manifest, NDJSON files, and the rules
that keep the token on the server's own origin. Recorded server behaviour and fault injection with `responses`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from launch import errors
from launch.bulk import MAX_POLL_SECONDS, MIN_POLL_SECONDS, BulkExport, parse_manifest
from launch.fhir import FHIRClient, StaticToken
from launch.transport import HttpTransport, RetryPolicy

BASE = "https://ehr.example.org/fhir"
STATUS = f"{BASE}/bulk-status/job-1"
FILE = f"{BASE}/bulk-files/job-1/Observation.ndjson"


def _client() -> FHIRClient:
    return FHIRClient(BASE, HttpTransport(retry=RetryPolicy(attempts=2), sleep=lambda _s: None),
                      StaticToken("system-token"))  # fmt: skip


def _manifest(output: list[dict[str, Any]], requires_token: bool = True) -> dict[str, Any]:
    return {"transactionTime": "2026-11-24T10:00:00.000Z", "request": f"{BASE}/Group/g/$export",
            "requiresAccessToken": requires_token, "output": output, "error": []}  # fmt: skip


@responses.activate
def test_kick_off_asks_asynchronously_for_the_group_with_an_escaped_type_filter() -> None:
    responses.get(f"{BASE}/Group/bh-registry/$export", status=202, headers={"Content-Location": STATUS})
    code = "http://loinc.org|44261-6,http://loinc.org|70274-6"
    status_url = BulkExport(_client()).kick_off_group(
        "bh-registry", types=["Observation"], type_filters=[f"Observation?code={code.replace(',', '%2C')}"],
        since="2026-11-23T10:00:00Z")  # fmt: skip
    assert status_url == STATUS
    sent = responses.calls[0].request
    assert (
        sent.headers["Prefer"] == "respond-async" and sent.headers["Authorization"] == "Bearer system-token"
    )
    query = parse_qs(urlsplit(sent.url).query)
    assert query["_type"] == ["Observation"] and query["_since"] == ["2026-11-23T10:00:00Z"]
    # One query of the comma-separated _typeFilter keeps its own commas escaped.
    assert query["_typeFilter"] == ["Observation?code=http://loinc.org|44261-6%2Chttp://loinc.org|70274-6"]
    assert "," not in query["_typeFilter"][0]


@pytest.mark.parametrize(("status", "headers", "error"), [
    (200, {"Content-Location": STATUS}, errors.FHIRError),  # answered synchronously: not the protocol
    (202, {}, errors.FHIRError),  # no status URL
    (202, {"Content-Location": "https://elsewhere.example.com/status/1"}, errors.UnsafeURL),
    (400, {}, errors.FHIRBadRequest),
    (403, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}, errors.FHIRForbidden),
])  # fmt: skip
@responses.activate
def test_a_kick_off_that_is_not_accepted_raises_the_typed_error(status: int, headers: dict[str, str],
                                                                error: type[Exception]) -> None:  # fmt: skip
    responses.get(
        f"{BASE}/Group/g/$export", status=status, headers=headers, json={"resourceType": "OperationOutcome"}
    )
    with pytest.raises(error):
        BulkExport(_client()).kick_off_group("g", types=["Observation"])


@responses.activate
def test_polling_waits_as_long_as_the_server_asks_within_bounds_and_reports_progress() -> None:
    for retry_after in ("3", "0", "999"):
        responses.get(
            STATUS, status=202, headers={"Retry-After": retry_after, "X-Progress": f"wait {retry_after}"}
        )
    responses.get(STATUS, status=200, json=_manifest([{"type": "Observation", "url": FILE, "count": 2}]))
    waits: list[float] = []
    progress: list[str | None] = []
    manifest = BulkExport(_client(), sleep=waits.append).wait(STATUS, on_progress=progress.append)
    assert waits == [3.0, MIN_POLL_SECONDS, MAX_POLL_SECONDS]
    assert progress == ["wait 3", "wait 0", "wait 999"]
    assert (
        manifest.transaction_time == "2026-11-24T10:00:00.000Z"
        and manifest.files("Observation")[0].count == 2
    )


@responses.activate
def test_polling_gives_up_at_the_deadline() -> None:
    responses.get(STATUS, status=202, headers={"Retry-After": "60"})
    clock = iter([0.0, 0.0, 60.0, 120.0])
    with pytest.raises(errors.FHIRTimeout):
        BulkExport(_client(), sleep=lambda _s: None, clock=lambda: next(clock)).wait(STATUS, timeout=100)


@responses.activate
def test_a_failed_export_and_a_forgotten_one_raise() -> None:
    responses.get(STATUS, status=500, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "exception", "diagnostics": "export failed"}]})  # fmt: skip
    with pytest.raises(errors.FHIRServerError):
        BulkExport(_client()).wait(STATUS)
    responses.replace(responses.GET, STATUS, status=404)
    with pytest.raises(errors.FHIRNotFound):
        BulkExport(_client()).wait(STATUS)


@responses.activate
def test_files_are_read_line_by_line_skipping_blank_and_broken_lines_and_other_types() -> None:
    lines = [json.dumps({"resourceType": "Observation", "id": "o1"}), "", "{not json",
             json.dumps({"resourceType": "Patient", "id": "p1"}), json.dumps({"resourceType": "Observation", "id": "o2"})]  # fmt: skip
    responses.get(FILE, body="\n".join(lines) + "\n", content_type="application/fhir+ndjson")
    manifest = parse_manifest(_manifest([{"type": "Observation", "url": FILE}]))
    found = list(BulkExport(_client()).resources(manifest, "Observation"))
    assert [r["id"] for r in found] == ["o1", "o2"]
    assert responses.calls[0].request.headers["Authorization"] == "Bearer system-token"


@responses.activate
def test_the_token_never_goes_to_a_file_on_another_origin() -> None:
    bucket = "https://bucket.example.com/export/Observation.ndjson"
    responses.get(bucket, body=json.dumps({"resourceType": "Observation", "id": "o1"}) + "\n")
    needs_token = parse_manifest(_manifest([{"type": "Observation", "url": bucket}], requires_token=True))
    with pytest.raises(errors.UnsafeURL):
        list(BulkExport(_client()).resources(needs_token, "Observation"))
    assert not responses.calls
    open_file = parse_manifest(_manifest([{"type": "Observation", "url": bucket}], requires_token=False))
    assert [r["id"] for r in BulkExport(_client()).resources(open_file, "Observation")] == ["o1"]
    assert "Authorization" not in responses.calls[0].request.headers


@pytest.mark.parametrize("body", [None, [], {}, {"transactionTime": 5}, "text"])
def test_a_manifest_without_a_transaction_time_is_refused(body: Any) -> None:
    with pytest.raises(errors.MalformedResource):
        parse_manifest(body)


def test_manifest_entries_of_another_shape_are_skipped() -> None:
    manifest = parse_manifest({"transactionTime": "t", "output": [
        {"type": "Observation", "url": FILE, "count": "3"}, {"type": 1, "url": FILE}, "x", {"url": FILE}]})  # fmt: skip
    assert manifest.output == (manifest.output[0],) and manifest.output[0].count is None

"""The SMART client's readers of outside data are total: the inputs the hypothesis fuzzing found crashing them
(TypeError, AttributeError) now give None, skip the odd element, or a typed error of the one hierarchy.
The properties over any JSON: tests/fuzz_readers.py (suite) and scripts/fuzz_readers.py (large budget)."""

from __future__ import annotations

from typing import Any

import pytest

from launch import errors
from launch.bulk import parse_manifest
from launch.discovery import OAUTH_URIS, parse_capability_oauth_uris
from launch.oauth import parse_token_response
from launch.transport import oauth_error_fields, outcome_issues

OAUTH = {"url": OAUTH_URIS, "extension": [{"url": "authorize", "valueUri": "https://e/authorize"},
                                         {"url": "token", "valueUri": "https://e/token"}]}  # fmt: skip


def _capability(rest: Any) -> dict[str, Any]:
    return {"resourceType": "CapabilityStatement", "rest": rest}


# Source: SMART App Launch 1.0 §Conformance (the oauth-uris extension in rest.security); the shapes are the fuzzer's.
@pytest.mark.parametrize(
    ("statement", "found"),
    [
        (_capability(7), False),  # rest not a list: TypeError before
        (_capability([{"security": ["not", "an", "object"]}]), False),  # AttributeError before
        (_capability([{"security": {"extension": True}}]), False),  # TypeError before
        (_capability([{"security": {"extension": [{**OAUTH, "extension": 3}]}}]), False),  # TypeError before
        (_capability([{"security": {"extension": [{**OAUTH, "extension": [{"url": ["x"]}, *OAUTH["extension"]]}]}}]),
         True),  # an unhashable url: TypeError before
        (_capability([{"security": "s"}, {"security": {"extension": [OAUTH]}}]), True),
        (_capability([{"security": {"extension": [OAUTH]}}]), True),
    ],
)  # fmt: skip
def test_the_capability_statement_fallback_is_total(statement: dict[str, Any], found: bool) -> None:
    config = parse_capability_oauth_uris(statement)
    assert (config is not None) is found
    if config is not None:
        assert (config.authorization_endpoint, config.token_endpoint) == (
            "https://e/authorize",
            "https://e/token",
        )


# Source: Bulk Data Access IG 2.0 §Response - Complete Status (transactionTime, output[], error[]).
@pytest.mark.parametrize(
    ("manifest", "outputs"),
    [
        ({"transactionTime": "t", "output": True}, 0),  # TypeError before
        ({"transactionTime": "t", "output": 12, "error": 1.5}, 0),
        ({"transactionTime": "t", "output": [{"type": "Observation", "url": "https://e/1"}, 7, "x"]}, 1),
    ],
)
def test_the_bulk_manifest_reader_is_total(manifest: dict[str, Any], outputs: int) -> None:
    assert len(parse_manifest(manifest).output) == outputs


@pytest.mark.parametrize("manifest", [None, [], {"transactionTime": 5}, {"output": []}])
def test_a_manifest_without_transaction_time_is_a_typed_error(manifest: Any) -> None:
    with pytest.raises(errors.MalformedResource):
        parse_manifest(manifest)


# Source: RFC 6749 §5.1 (expires_in: lifetime in seconds; scope: a space-separated string).
@pytest.mark.parametrize(
    ("fields", "lifetime", "scope"),
    [
        ({"expires_in": 570}, 570, ""),
        ({"expires_in": "3240"}, 3240, ""),
        ({"expires_in": float("inf")}, 300, ""),  # an infinite token was never refreshed
        ({"expires_in": 10**400}, 300, ""),  # OverflowError before
        ({"expires_in": -5}, 300, ""),
        ({"expires_in": True}, 300, ""),
        ({"scope": ["openid", "fhirUser"]}, 300, ""),  # was the text "['openid', 'fhirUser']"
        ({"scope": "openid fhirUser"}, 300, "openid fhirUser"),
    ],
)
def test_the_token_response_reader_is_total(fields: dict[str, Any], lifetime: int, scope: str) -> None:
    tokens = parse_token_response({"access_token": "a", **fields}, now=1000.0)
    assert tokens.expires_at == 1000.0 + lifetime and tokens.scope == scope


@pytest.mark.parametrize("body", [{"access_token": "a", "token_type": ["bearer"]}, {"access_token": 5}, []])
def test_an_unusable_token_response_is_a_typed_error(body: Any) -> None:
    with pytest.raises(errors.TokenError):
        parse_token_response(body)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"error": ["invalid_client"]},
            (None, None),
        ),  # unhashable: TypeError in the registration check before
        ({"error": "invalid_grant", "error_description": {"x": 1}}, ("invalid_grant", None)),
        ("not json object", (None, None)),
    ],
)
def test_the_token_error_reader_is_total(body: Any, fields: tuple[str | None, str | None]) -> None:
    assert oauth_error_fields(body) == fields


@pytest.mark.parametrize(
    ("outcome", "texts"),
    [
        ({"resourceType": "OperationOutcome", "issue": True}, []),  # TypeError before
        ({"resourceType": "OperationOutcome", "issue": [{"code": "processing", "diagnostics": ["x"]}]},
         ["error processing:"]),
        ({"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "details": {"text": "no"}}]},
         ["fatal : no"]),
    ],
)  # fmt: skip
def test_the_operation_outcome_reader_is_total(outcome: dict[str, Any], texts: list[str]) -> None:
    assert outcome_issues(outcome) == texts

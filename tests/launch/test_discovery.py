"""SMART discovery: smart-configuration first, CapabilityStatement oauth-uris as the fallback, cached."""

from __future__ import annotations

import pytest
import requests
import responses

from launch import errors
from launch.discovery import Discovery, parse_smart_configuration
from launch.store import EmbeddedStore
from launch.transport import HttpTransport, RetryPolicy

from ..ehr import load_fixture

ISS = "https://ehr.example.org/fhir"


@pytest.fixture
def discovery() -> Discovery:
    return Discovery(HttpTransport(retry=RetryPolicy(attempts=1)), EmbeddedStore(), ttl_seconds=60)


def test_oracle_smart_configuration_is_read_whole() -> None:
    config = parse_smart_configuration(load_fixture("oracle/smart-configuration.json"))
    assert config is not None
    assert config.supports_s256 and config.supports_authorize_post
    assert config.scope_versions == ["v1", "v2"]
    assert config.token_endpoint_auth_signing_alg_values_supported == ("RS384", "ES384")
    assert config.extra["management_endpoint"].endswith("/my-authorizations")


@responses.activate
def test_falls_back_to_the_capability_statement(discovery: Discovery) -> None:
    responses.get(f"{ISS}/.well-known/smart-configuration", status=404)
    responses.get(f"{ISS}/metadata", json=load_fixture("generic/metadata.json"))
    config = discovery.smart_configuration(ISS)
    assert config.source == "capability-statement"
    assert config.authorization_endpoint == "https://smart.example.org/auth/authorize"
    assert config.token_endpoint == "https://smart.example.org/auth/token"


@responses.activate
def test_malformed_smart_configuration_falls_back(discovery: Discovery) -> None:
    responses.get(f"{ISS}/.well-known/smart-configuration", body="<html>login</html>")
    responses.get(f"{ISS}/metadata", json=load_fixture("oracle/metadata.json"))
    assert discovery.smart_configuration(ISS).source == "capability-statement"


@responses.activate
def test_cached_per_issuer(discovery: Discovery) -> None:
    responses.get(
        f"{ISS}/.well-known/smart-configuration", json=load_fixture("epic/smart-configuration.json")
    )
    other = "https://other.example.org/fhir"
    responses.get(
        f"{other}/.well-known/smart-configuration", json=load_fixture("oracle/smart-configuration.json")
    )
    first = discovery.smart_configuration(ISS)
    assert discovery.smart_configuration(ISS) == first
    assert discovery.smart_configuration(other).token_endpoint != first.token_endpoint
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    "metadata",
    [
        {"status": 404},
        {"json": {"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]}},
        {"json": {"resourceType": "Patient"}},
        {"body": requests.ConnectionError("refused")},
    ],
    ids=["no-metadata", "no-oauth-uris", "not-a-capability-statement", "unreachable"],
)
@responses.activate
def test_servers_without_usable_discovery_raise_discovery_error(discovery: Discovery, metadata: dict) -> None:
    responses.get(f"{ISS}/.well-known/smart-configuration", status=404)
    responses.get(f"{ISS}/metadata", **metadata)
    with pytest.raises(errors.DiscoveryError):
        discovery.smart_configuration(ISS)


@responses.activate
def test_unreachable_smart_configuration_is_a_discovery_error(discovery: Discovery) -> None:
    responses.get(f"{ISS}/.well-known/smart-configuration", body=requests.ConnectionError("refused"))
    with pytest.raises(errors.DiscoveryError):
        discovery.smart_configuration(ISS)

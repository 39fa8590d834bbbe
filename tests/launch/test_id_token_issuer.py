"""The id_token's issuer is pinned to what the registration or discovery names, its keys come only from the
discovered or registered JWK Set, and an unknown `kid` re-fetches a key set at most once per interval.

Source: SMART App Launch 2.2 (../shared/reference/ehr-integration.md §2): the id_token `iss` is the issuer the
OpenID configuration names; legacy discovery (the CapabilityStatement's oauth-uris) names none, so the
registration does, by default the FHIR base URL; the JWKS is the `jwks_uri` of discovery or the registration.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import responses
from joserfc import jwt
from joserfc.jwk import RSAKey

from launch import errors
from launch.discovery import Discovery, SmartConfiguration
from launch.flow import LaunchFlow
from launch.keys import KeyRing
from launch.oauth import OAuthClient, id_token_issuers
from launch.registrations import Registration, parse_registrations
from launch.sessions import SessionStore
from launch.store import EmbeddedStore, RedisStore
from launch.transport import HttpTransport, RetryPolicy

from ..ehr import EPIC, GENERIC, RecordedEHR

CALLBACK = "https://tandem.test/callback"
ATTACKER = "https://attacker.example.net"


def _flow(key_ring: KeyRing, **registration: Any) -> LaunchFlow:
    store = EmbeddedStore()
    transport = HttpTransport(retry=RetryPolicy(attempts=1))
    discovery = Discovery(transport, store, ttl_seconds=60)
    regs = parse_registrations(
        {"issuer": [{"iss": GENERIC.iss, "client_id": GENERIC.client_id, **registration}]}
    )
    return LaunchFlow(regs, discovery, OAuthClient(transport, key_ring, discovery), SessionStore(store))


def _launch(flow: LaunchFlow) -> Any:
    started = flow.begin_launch({"iss": GENERIC.iss, "launch": "l"}, redirect_uri=CALLBACK)
    return flow.complete_launch({"state": started.state, "code": "c"}, started.binding_secret)


# Each case: a server with legacy discovery only (GENERIC's fixtures have no smart-configuration) whose id_token
# issuer has a path, as Epic's does (https://fhir.epic.com/interconnect-fhir-oauth/oauth2).
LEGACY_CASES = [
    # No registered issuer: the FHIR base URL (the launch `iss`) is the issuer; keys from the registered JWKS.
    ("fhir-base-default", GENERIC.iss, None, {"id_token_jwks_url": GENERIC.jwks_url}),
    # The registration names the issuer (a path, Epic-shaped); keys from that issuer's OpenID configuration.
    ("registered-issuer-with-path", "https://smart.example.org/auth",
     "https://smart.example.org/auth/.well-known/openid-configuration",
     {"id_token_issuers": ["https://smart.example.org/auth"]}),
    # One of several registered issuers (a trailing slash as the token spells it).
    ("one-of-a-list", "https://smart.example.org/oauth2/", None,
     {"id_token_issuers": ["https://old.example.org/oauth2", "https://smart.example.org/oauth2"],
      "id_token_jwks_url": GENERIC.jwks_url}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "issuer", "openid", "registration"), LEGACY_CASES, ids=[c[0] for c in LEGACY_CASES]
)
def test_legacy_discovery_with_an_issuer_that_has_a_path_launches(
    rsps: responses.RequestsMock, ehr_signing_key: RSAKey, key_ring: KeyRing,
    case: str, issuer: str, openid: str | None, registration: dict[str, Any],
) -> None:  # fmt: skip
    ehr = RecordedEHR(
        replace(GENERIC, id_token_issuer=issuer, openid_config_url=openid), rsps, ehr_signing_key
    )
    completed = _launch(_flow(key_ring, **registration))
    assert completed.session.context.fhir_user == GENERIC.fhir_user
    assert ehr.token_calls[0].form["grant_type"] == "authorization_code"
    assert all("attacker" not in call.request.url for call in rsps.calls)


@pytest.mark.parametrize(
    ("token_iss", "registration"),
    [
        (ATTACKER, {}),  # default: the FHIR base only
        (ATTACKER, {"id_token_issuers": ["https://smart.example.org/auth"]}),
        ("https://smart.example.org", {}),  # the token endpoint's bare origin is no longer assumed
        ("https://smart.example.org/v/r4", {}),  # a prefix of the FHIR base is another issuer
        ("https://smart.example.org/auth/evil", {"id_token_issuers": ["https://smart.example.org/auth"]}),
    ],
)
def test_an_id_token_from_an_issuer_not_named_is_refused_and_its_keys_never_fetched(
    rsps: responses.RequestsMock, ehr_signing_key: RSAKey, key_ring: KeyRing, token_iss: str,
    registration: dict[str, Any],
) -> None:  # fmt: skip
    attacker_key = RSAKey.generate_key(2048)
    ehr = RecordedEHR(GENERIC, rsps, ehr_signing_key)
    ehr.id_token_iss, ehr.id_token_key = token_iss, attacker_key
    for base in (ATTACKER, token_iss):
        rsps.get(
            f"{base}/.well-known/openid-configuration", json={"issuer": base, "jwks_uri": f"{ATTACKER}/jwks"}
        )
    rsps.get(f"{ATTACKER}/jwks", json={"keys": [{**attacker_key.as_dict(private=False), "kid": "ehr-1"}]})
    with pytest.raises(errors.IdTokenInvalid, match="not issued by this EHR"):
        _launch(_flow(key_ring, **registration))
    asked = [call.request.url for call in rsps.calls]
    assert not any(url.startswith(ATTACKER) or "openid-configuration" in url for url in asked)


def test_the_accepted_issuers_follow_registration_then_discovery_then_the_fhir_base() -> None:
    reg = Registration(iss=EPIC.iss, client_id="c")
    legacy = SmartConfiguration("https://a/authorize", "https://a/token", source="capability-statement")
    discovered = replace(legacy, issuer="https://a/oauth2", source="smart-configuration")
    listed = Registration(iss=EPIC.iss, client_id="c", id_token_issuers=["https://b/oauth2/", "https://c"])
    assert id_token_issuers(reg, legacy) == [EPIC.iss]
    assert id_token_issuers(reg, discovered) == ["https://a/oauth2"]
    assert id_token_issuers(listed, discovered) == ["https://b/oauth2", "https://c"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id_token_issuers", [], "id_token_issuers"),
        ("id_token_issuers", ["http://ehr.example.org/oauth2"], "https"),
        ("id_token_issuers", ["not a url"], "absolute https URL"),
        ("id_token_jwks_url", "https://ehr.example.org/jwks?x=1", "query"),
        ("id_token_jwks_url", "ftp://ehr.example.org/jwks", "absolute https URL"),
    ],
)
def test_the_id_token_settings_are_checked_at_start_up(field: str, value: Any, message: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=message):
        parse_registrations({"issuer": [{"iss": EPIC.iss, "client_id": "c", field: value}]})


# --- an unknown kid: one re-fetch per interval per JWK Set URL ------------------------------------------------


def _token(key: RSAKey, kid: str) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid}, {"iss": "x"}, key)


def test_many_tokens_with_unknown_kids_fetch_the_key_set_once(
    redis_url: str, ehr_signing_key: RSAKey
) -> None:
    """Two workers (two Discovery objects on one Redis): fifty tokens naming kids the set lacks, one fetch."""
    url = "https://ehr.example.org/jwks"
    store = RedisStore(redis_url, prefix="test-kid:")
    workers = [
        Discovery(HttpTransport(retry=RetryPolicy(attempts=1)), store, ttl_seconds=600) for _ in range(2)
    ]
    public = {**ehr_signing_key.as_dict(private=False), "kid": "known"}
    for key in (f"jwks:{url}", f"jwks-fetched:{url}"):
        store.delete(key)
    with responses.RequestsMock() as rsps:
        fetches = rsps.get(url, json={"keys": [public]})
        assert workers[0].jwks_for_kid(url, "known")["keys"][0]["kid"] == "known"
        store.delete(f"jwks-fetched:{url}")  # the interval since that first fetch has passed
        for n in range(50):
            workers[n % 2].jwks_for_kid(url, f"made-up-{n}")
        assert fetches.call_count == 2  # the first fetch, and one re-fetch for all fifty unknown kids
        workers[1].jwks_for_kid(url, "known")
        assert fetches.call_count == 2


def test_a_rotated_key_is_found_by_one_re_fetch_once_the_interval_has_passed(ehr_signing_key: RSAKey) -> None:
    url = "https://ehr.example.org/jwks"
    discovery = Discovery(
        HttpTransport(retry=RetryPolicy(attempts=1)), EmbeddedStore(), jwks_refetch_seconds=300
    )
    new_key = RSAKey.generate_key(2048)
    with responses.RequestsMock() as rsps:
        fetches = rsps.get(url, json={"keys": [{**ehr_signing_key.as_dict(private=False), "kid": "old"}]})
        discovery.jwks_for_kid(url, "old")
        # Within the interval the set is not fetched again for a kid it lacks.
        assert [k["kid"] for k in discovery.jwks_for_kid(url, "new")["keys"]] == ["old"]
        rsps.replace(responses.GET, url, json={"keys": [{**new_key.as_dict(private=False), "kid": "new"}]})
        discovery.store.delete(f"jwks-fetched:{url}")  # the interval has passed
        assert [k["kid"] for k in discovery.jwks_for_kid(url, "new")["keys"]] == ["new"]
        assert len(rsps.calls) == 2 and fetches is not None


def test_id_tokens_with_unknown_kids_fetch_the_issuers_key_set_once(
    rsps: responses.RequestsMock, ehr_signing_key: RSAKey, key_ring: KeyRing
) -> None:
    ehr = RecordedEHR(GENERIC, rsps, ehr_signing_key)
    flow = _flow(key_ring, id_token_issuers=[GENERIC.id_token_issuer])
    _launch(flow)  # fetches the key set
    flow.discovery.store.delete(f"jwks-fetched:{GENERIC.jwks_url}")
    ehr.id_token_key = RSAKey.generate_key(2048)
    original = ehr.id_token
    ehr.id_token = lambda **kw: _token_with_kid(original(**kw), "unknown-kid")  # type: ignore[method-assign]
    for _ in range(5):
        with pytest.raises(errors.IdTokenInvalid):
            _launch(flow)
    assert sum(call.request.url == GENERIC.jwks_url for call in rsps.calls) == 2


def _token_with_kid(token: str, kid: str) -> str:
    """The token's header rewritten to name `kid` (the signature no longer matters: no key has that kid)."""
    import base64
    import json

    head, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header["kid"] = kid
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{payload}.{signature}"

"""A CDS client JWT naming a kid the EHR's JWK Set lacks re-fetches the set at most once per interval: a flood of
JWTs with made-up kids cannot make Tandem hammer the EHR's key server (issue 26 §3; the shared helper is
launch.discovery.Discovery.jwks_for_kid, also used for id_tokens: tests/launch/test_id_token_issuer.py).
Source: CDS Hooks 2.0 §Trusting CDS Clients (the JWT's kid names a key in the client's JWK Set)."""

from __future__ import annotations

import pytest
import responses

from launch.discovery import Discovery
from launch.registrations import parse_registrations
from launch.store import EmbeddedStore
from launch.transport import HttpTransport, RetryPolicy
from smartapp.cds.client_auth import CdsClientVerifier
from smartapp.errors import CdsUnauthorized

from ..cds_client import CdsTestClient

EHR = "https://ehr.cds.test/fhir"
JWKS = "https://ehr.cds.test/jwks"
AUD = "https://tandem.test/cds-services/tandem-patient-view"


def test_jwts_with_unknown_kids_fetch_the_clients_key_set_once_per_interval() -> None:
    ehr = CdsTestClient(EHR, JWKS, "https://attacker.test/jwks")
    store = EmbeddedStore()
    discovery = Discovery(HttpTransport(retry=RetryPolicy(attempts=1)), store, ttl_seconds=600)
    regs = parse_registrations({"issuer": [{"iss": EHR, "client_id": "t", "cds": {"jwks_urls": [JWKS]}}]})
    verifier = CdsClientVerifier(regs, discovery, store)
    with responses.RequestsMock() as rsps:
        fetches = rsps.get(JWKS, json=ehr.published())
        assert verifier.verify(f"Bearer {ehr.sign(AUD)}", AUD).registration.iss == EHR
        for n in range(20):
            forged = ehr.sign(AUD, header={"kid": f"made-up-{n}"}, key=ehr.stranger)
            with pytest.raises(CdsUnauthorized):
                verifier.verify(f"Bearer {forged}", AUD)
        assert fetches.call_count == 1  # fetched just now: the made-up kids fetch nothing more
        store.delete(f"jwks-fetched:{JWKS}")  # the interval has passed
        for n in range(20):
            forged = ehr.sign(AUD, header={"kid": f"again-{n}"}, key=ehr.stranger)
            with pytest.raises(CdsUnauthorized):
                verifier.verify(f"Bearer {forged}", AUD)
        assert fetches.call_count == 2  # one re-fetch for all twenty
        assert verifier.verify(f"Bearer {ehr.sign(AUD, alg='RS384')}", AUD).registration.iss == EHR

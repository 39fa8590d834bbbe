"""`begin_launch` / `complete_launch` without a web framework: plain parameters and secrets in, decisions out."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from joserfc.jwk import RSAKey

from launch import errors
from launch.discovery import Discovery
from launch.flow import MAX_LAUNCH_QUERY, LaunchFlow
from launch.keys import KeyRing
from launch.oauth import OAuthClient
from launch.registrations import load_registrations
from launch.sessions import SessionStore
from launch.store import EmbeddedStore
from launch.transport import HttpTransport, RetryPolicy

from ..ehr import RecordedEHR

CALLBACK = "https://tandem.test/callback"


@pytest.fixture
def flow(registrations_file: Path, key_ring: KeyRing) -> LaunchFlow:
    environ = {"TANDEM_SECRET_GENERIC": "generic-client-secret"}
    store = EmbeddedStore()
    transport = HttpTransport(retry=RetryPolicy(attempts=1))
    discovery = Discovery(transport, store, ttl_seconds=60)
    return LaunchFlow(
        load_registrations(registrations_file, key_ids=key_ring.kids, environ=environ),
        discovery,
        OAuthClient(transport, key_ring, discovery, environ),
        SessionStore(store, session_ttl=600),
    )


def test_a_launch_begins_and_completes_into_a_session(flow: LaunchFlow, ehr: RecordedEHR) -> None:
    started = flow.begin_launch({"iss": ehr.shape.iss, "launch": "launch-abc"}, redirect_uri=CALLBACK)
    sent = (
        started.authorize.params
        if started.authorize.use_post
        else {k: v[0] for k, v in parse_qs(urlsplit(started.authorize.url).query).items()}
    )
    assert sent["state"] == started.state and sent["launch"] == "launch-abc"
    assert sent["code_challenge_method"] == "S256" and sent["redirect_uri"] == CALLBACK

    completed = flow.complete_launch({"state": started.state, "code": "auth-code-1"}, started.binding_secret)
    assert completed.session.iss == ehr.shape.iss
    assert completed.session.context.patient
    assert flow.sessions.get(completed.session.id, completed.secret) == completed.session
    with pytest.raises(errors.SessionExpired):
        flow.sessions.get(completed.session.id, started.binding_secret)
    assert ehr.token_calls[0].form["code_verifier"]


@pytest.mark.parametrize(
    ("params", "query_length", "error"),
    [
        ({}, 0, errors.InvalidLaunchRequest),
        ({"iss": "  "}, 0, errors.InvalidLaunchRequest),
        ({"iss": "https://elsewhere.example/fhir"}, 0, errors.UnknownIssuer),
        ({"iss": "https://elsewhere.example/fhir", "launch": "x" * 8193}, 0, errors.InvalidLaunchRequest),
        ({"iss": "https://elsewhere.example/fhir"}, MAX_LAUNCH_QUERY + 1, errors.InvalidLaunchRequest),
    ],
)
def test_bad_launch_requests_are_refused_before_any_request_is_sent(
    flow: LaunchFlow, rsps: responses.RequestsMock, params: dict[str, str], query_length: int,
    error: type[errors.TandemError],
) -> None:  # fmt: skip
    with pytest.raises(error):
        flow.begin_launch(params, redirect_uri=CALLBACK, query_length=query_length)
    assert len(rsps.calls) == 0


def test_the_callback_needs_the_browser_that_began_and_works_once(flow: LaunchFlow, ehr: RecordedEHR) -> None:
    started = flow.begin_launch({"iss": ehr.shape.iss, "launch": "l"}, redirect_uri=CALLBACK)
    answer = {"state": started.state, "code": "auth-code-1"}
    with pytest.raises(errors.StateMismatch):
        flow.complete_launch(answer, "another-browsers-secret")
    with pytest.raises(errors.StateMismatch):  # a refused attempt consumes the state too
        flow.complete_launch(answer, started.binding_secret)
    assert ehr.token_calls == []


@pytest.mark.parametrize(
    ("error", "description", "raised"),
    [
        ("access_denied", "The user said no", errors.AuthorizationDenied),
        ("invalid_scope", "", errors.RegistrationProblem),
        ("invalid_request", "redirect_uri is not registered", errors.RegistrationProblem),
    ],
)
def test_an_ehr_refusal_says_whether_relaunching_can_help(
    flow: LaunchFlow, ehr: RecordedEHR, error: str, description: str, raised: type[errors.TandemError]
) -> None:
    started = flow.begin_launch({"iss": ehr.shape.iss}, redirect_uri=CALLBACK)
    answer = {"state": started.state, "error": error, "error_description": description}
    with pytest.raises(raised) as caught:
        flow.complete_launch(answer, started.binding_secret)
    assert caught.value.detail["oauth_error"] == error
    assert ehr.token_calls == []


def test_an_id_token_signed_by_another_key_ends_the_launch(flow: LaunchFlow, ehr: RecordedEHR) -> None:
    ehr.id_token_key = RSAKey.generate_key(2048)
    started = flow.begin_launch({"iss": ehr.shape.iss, "launch": "l"}, redirect_uri=CALLBACK)
    with pytest.raises(errors.IdTokenInvalid):
        flow.complete_launch({"state": started.state, "code": "c"}, started.binding_secret)


# --- the CDS client block of a registration --------------------------------------------------------------------


def _cds_file(*blocks: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads("\n".join(blocks))


def test_a_cds_client_registration_is_validated() -> None:
    from launch.errors import ConfigurationError
    from launch.registrations import parse_registrations

    good = '[[issuer]]\niss = "https://ehr.test/fhir"\nclient_id = "c"\n[issuer.cds]\njwks_urls = ["https://ehr.test/jwks"]\n'
    regs = parse_registrations(_cds_file(good))
    assert regs.for_cds_client("https://ehr.test/fhir/", None) is regs.get("https://ehr.test/fhir")
    assert regs.for_cds_client("https://other.test", None) is None
    for bad, why in [
        (good.replace("https://ehr.test/jwks", "http://ehr.test/jwks"), "https"),
        (good.replace('jwks_urls = ["https://ehr.test/jwks"]', "jwks_urls = []"), "jwks_urls"),
        (good + 'bogus = "x"\n', "bogus"),
    ]:
        with pytest.raises(ConfigurationError, match=why):
            parse_registrations(_cds_file(bad))


def test_one_cds_issuer_for_several_ehrs_needs_tenants() -> None:
    from launch.errors import ConfigurationError
    from launch.registrations import parse_registrations

    def block(iss: str, tenant: str | None) -> str:
        extra = f'tenant = "{tenant}"\n' if tenant else ""
        return (f'[[issuer]]\niss = "{iss}"\nclient_id = "c"\n[issuer.cds]\nissuer = "https://cds-hooks.cerner.com"\n'
                f'jwks_urls = ["https://authorization.cerner.com/jwk"]\n{extra}')  # fmt: skip

    with pytest.raises(ConfigurationError, match="distinct cds.tenant"):
        parse_registrations(_cds_file(block("https://a.test/r4", None), block("https://b.test/r4", None)))
    regs = parse_registrations(_cds_file(block("https://a.test/r4", "ta"), block("https://b.test/r4", "tb")))
    assert regs.for_cds_client("https://cds-hooks.cerner.com", "tb").iss == "https://b.test/r4"  # type: ignore[union-attr]
    assert regs.for_cds_client("https://cds-hooks.cerner.com", None) is None

"""SMART App Launch flows through the Flask test client against Epic-, Oracle- and generic-shaped servers."""

from __future__ import annotations

import time

import responses
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from launch.keys import KeyRing
from launch.oauth import code_challenge_s256

from ..conftest import APP_BASE, finish_launch, full_launch, make_ehr, query, start_launch
from ..ehr import EPIC, GENERIC, ORACLE, RecordedEHR, basic_credentials

EXPECTED_READ_SCOPES_V2 = {"patient/Patient.r", "patient/Observation.rs", "patient/Condition.rs"}
EXPECTED_READ_SCOPES_V1 = {"patient/Patient.read", "patient/Observation.read", "patient/Condition.read"}


def test_ehr_launch_authorize_request_parameter_by_parameter(client: FlaskClient, ehr: RecordedEHR) -> None:
    response = client.get(
        "/launch", query_string={"iss": ehr.shape.iss, "launch": "xyz-123"}, base_url=APP_BASE
    )

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ehr.shape.authorize_url + "?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == ehr.shape.client_id
    assert params["redirect_uri"] == f"{APP_BASE}/callback"
    assert params["aud"] == ehr.shape.iss
    assert params["launch"] == "xyz-123"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url SHA-256, no padding
    assert len(params["state"]) >= 43  # ≥ 256 bits of randomness, base64url
    scopes = params["scope"].split()
    assert "launch" in scopes and "launch/patient" not in scopes
    assert {"openid", "fhirUser"} <= set(scopes)
    if ehr.shape.vendor == "generic":  # no smart-configuration: v1 spelling
        assert EXPECTED_READ_SCOPES_V1 <= set(scopes)
        assert not any(scope.endswith((".rs", ".r", ".c")) for scope in scopes)
    else:  # Epic and Oracle advertise permission-v2
        assert EXPECTED_READ_SCOPES_V2 <= set(scopes)
    assert not any("*" in scope for scope in scopes)

    cookie = response.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/callback;"):
        assert attribute in cookie
    assert response.headers["Cache-Control"] == "no-store"


def test_ehr_launch_completes_and_shows_the_patient(client: FlaskClient, ehr: RecordedEHR) -> None:
    params = start_launch(client, ehr)
    launch_id = finish_launch(client, params["state"], code="the-code")

    (call,) = ehr.token_calls
    assert call.form["grant_type"] == "authorization_code"
    assert call.form["code"] == "the-code"
    assert call.form["redirect_uri"] == f"{APP_BASE}/callback"
    assert code_challenge_s256(call.form["code_verifier"]) == params["code_challenge"]

    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    expected = {
        "epic": ("Camila Maria Lopez", "1987-09-12"),
        "oracle": ("SMART, NANCY", "1990-09-15"),
        "generic": ("Ana Sofia Rivera", "1979-03-02"),
    }[ehr.shape.vendor]
    assert expected[0] in html and expected[1] in html
    # The user comes from the verified id_token's fhirUser claim.
    assert ehr.shape.fhir_user in html
    # Oracle says need_patient_banner=false: no banner; Epic ("true") and generic (true) get one.
    assert ('class="patient-banner"' in html) is (ehr.shape.vendor != "oracle")
    # The token never reaches the browser.
    assert ehr.token_calls and all(token not in html for token in ehr.valid_tokens)


def test_public_client_sends_client_id(client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
                                      ) -> None:  # fmt: skip
    epic = make_ehr("epic", rsps, ehr_signing_key)
    full_launch(client, epic)
    form, headers = epic.token_calls[0].form, epic.token_calls[0].headers
    assert form["client_id"] == EPIC.client_id
    assert "Authorization" not in headers and "client_assertion" not in form


def test_client_secret_basic_authenticates_with_the_secret_from_the_environment(
    client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
) -> None:
    generic = make_ehr("generic", rsps, ehr_signing_key)
    full_launch(client, generic)
    call = generic.token_calls[0]
    assert basic_credentials(call.headers["Authorization"]) == (GENERIC.client_id, "generic-client-secret")
    assert "client_id" not in call.form


def test_private_key_jwt_signs_a_fresh_rs384_assertion(
    client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey, key_ring: KeyRing
) -> None:
    oracle = make_ehr("oracle", rsps, ehr_signing_key)
    full_launch(client, oracle)
    full_launch(client, oracle)
    public = KeySet.import_key_set(key_ring.public_jwks())  # type: ignore[arg-type]
    jtis = set()
    for call in oracle.token_calls:
        assert call.form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        token = jwt.decode(call.form["client_assertion"], public, algorithms=["RS384"])
        assert token.header["alg"] == "RS384" and token.header["kid"] in key_ring.kids
        claims = token.claims
        assert claims["iss"] == claims["sub"] == ORACLE.client_id
        assert claims["aud"] == ORACLE.token_url
        assert 0 < claims["exp"] - time.time() <= 300
        jtis.add(claims["jti"])
    assert len(jtis) == 2


def test_launch_context_is_parsed_and_vendor_extras_kept(
    app, client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
) -> None:  # type: ignore[no-untyped-def]
    epic = make_ehr("epic", rsps, ehr_signing_key)
    generic = make_ehr("generic", rsps, ehr_signing_key)
    sessions = app.extensions["tandem"].sessions

    epic_context = sessions.load(full_launch(client, epic)).context
    assert epic_context.patient == "erXuFYUfucBZaryVksYEcMg3"
    assert epic_context.encounter == "eGmO0h.1.UQQ5-Dmsb4wGPn6SReSEuLLSm-a8X5ri7Gs3"
    assert epic_context.extras["__epic.dstu2.patient"] == "Tbt3KuCY0B5PSrJvCu2j-PlK.aiHsu2xUjUM8bWpetXoB"
    assert epic_context.extras["loginDepartment"]
    assert epic_context.need_patient_banner is True
    assert epic_context.smart_style_url.startswith("https://fhir.epic.com/")
    assert epic_context.fhir_user == EPIC.fhir_user and epic_context.fhir_user_type == "Practitioner"

    generic_context = sessions.load(full_launch(client, generic)).context
    assert [item.reference for item in generic_context.fhir_context] == [
        "Encounter/4d7d4f24-1a0b-4f6b-a3b4-0b3e6e1a2f10",
        "DiagnosticReport/88",
    ]
    assert generic_context.fhir_context[1].role == "https://example.org/role/launch-report"


def test_oracle_session_has_tenant_and_570_second_token(
    app, client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
) -> None:  # type: ignore[no-untyped-def]
    oracle = make_ehr("oracle", rsps, ehr_signing_key)
    session = app.extensions["tandem"].sessions.load(full_launch(client, oracle))
    assert session.context.tenant == "ec2458f2-1e24-41c8-b71b-0e701af7583d"
    assert session.context.need_patient_banner is False
    assert 560 <= session.expires_at - time.time() <= 570
    assert session.context.extras["user"] == "12742069"


def test_standalone_launch_asks_for_a_patient(client: FlaskClient, ehr: RecordedEHR) -> None:
    params = start_launch(client, ehr, launch=None)
    scopes = params["scope"].split()
    assert "launch/patient" in scopes and "launch" not in scopes
    assert "launch" not in params
    finish_launch(client, params["state"])


def test_long_launch_token_uses_form_post_when_the_server_allows_it(
    client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
) -> None:
    epic = make_ehr("epic", rsps, ehr_signing_key)
    launch = "eyJ" + "x" * 3000  # Epic launch tokens are long JWTs
    response = client.get(
        "/launch", query_string={"iss": epic.shape.iss, "launch": launch}, base_url=APP_BASE
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'method="post" action="{EPIC.authorize_url}"' in html
    assert f'name="launch" value="{launch}"' in html
    assert 'name="code_challenge_method" value="S256"' in html
    assert "Set-Cookie" in response.headers


def test_discovery_is_cached_per_issuer(client: FlaskClient, rsps: responses.RequestsMock, ehr_signing_key: RSAKey
                                       ) -> None:  # fmt: skip
    epic = make_ehr("epic", rsps, ehr_signing_key)
    for _ in range(3):
        start_launch(client, epic)
    discovery_calls = [c for c in rsps.calls if c.request.url.endswith("/.well-known/smart-configuration")]
    assert len(discovery_calls) == 1

"""Configuration: the registration file and TANDEM_* variables are validated, and bad ones stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from launch.errors import ConfigurationError
from launch.keys import KeyRing
from launch.registrations import ClientAuth, load_registrations, parse_registrations
from launch.scopes import PROFILE_SCOPES, Vendor
from smartapp import create_app
from smartapp.config import Settings

GOOD = {"iss": "https://ehr.example.org/fhir/R4/", "client_id": "abc", "vendor": "oracle"}
BACKEND = {"client_id": "tandem-backend", "key_id": "k1"}


def test_a_good_registration_is_normalized() -> None:
    regs = parse_registrations({"issuer": [GOOD]})
    reg = regs.get("https://ehr.example.org/fhir/R4")
    assert reg is not None and reg.iss == "https://ehr.example.org/fhir/R4"
    assert regs.get("https://ehr.example.org/fhir/R4/") is reg
    assert reg.auth is ClientAuth.PUBLIC and reg.vendor is Vendor.ORACLE
    assert reg.base_scopes[: len(PROFILE_SCOPES[Vendor.ORACLE])] == list(PROFILE_SCOPES[Vendor.ORACLE])
    assert regs.get("https://other.example.org") is None and regs.get(None) is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"client_id": "abc"}, "#1 iss: Field required"),
        ({"iss": "https://ehr.example.org/fhir"}, "(https://ehr.example.org/fhir) client_id: Field required"),
        ({**GOOD, "client_id": ""}, "client_id: String should have at least 1 character"),
        ({**GOOD, "iss": "http://ehr.example.org/fhir"}, "iss: iss must use https"),
        ({**GOOD, "iss": "ftp://ehr.example.org"}, "iss: iss must be an absolute https URL"),
        ({**GOOD, "vendor": "meditech"}, "vendor: Input should be 'epic', 'oracle' or 'generic'"),
        ({**GOOD, "auth": "private_key_jwt"}, "needs key_id"),
        ({**GOOD, "auth": "client_secret_basic"}, "needs client_secret_env"),
        ({**GOOD, "client_secret_env": "EPIC_SECRET", "auth": "client_secret_basic"}, "client_secret_env: "),
        ({**GOOD, "key_id": "k1"}, "key_id is only used with auth = 'private_key_jwt'"),
        ({**GOOD, "scope": ["openid"]}, "scope: Extra inputs are not permitted"),
        ({**GOOD, "backend": {"key_id": "k1"}}, "backend.client_id: Field required"),
        ({**GOOD, "backend": {"client_id": "b"}}, "backend.key_id: Field required"),
        (
            {**GOOD, "backend": {**BACKEND, "group_id": "a/b"}},
            "backend.group_id: String should match pattern",
        ),
        ({**GOOD, "backend": {**BACKEND, "concurrency": 0}}, "backend.concurrency: Input should be greater"),
        ({**GOOD, "backend": {**BACKEND, "concurrency": 64}}, "backend.concurrency: Input should be less"),
        (
            {**GOOD, "backend": {**BACKEND, "token_url": "http://ehr.example.org/token"}},
            "token_url must use https",
        ),
        ({**GOOD, "backend": {**BACKEND, "group": "g"}}, "backend.group: Extra inputs are not permitted"),
    ],
)
def test_bad_registrations_name_the_field(entry: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_registrations({"issuer": [entry]}, source="reg.toml")
    assert raised.value.message.startswith("reg.toml: invalid registration file")
    assert expected in raised.value.message


def test_duplicate_issuers_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="listed twice"):
        parse_registrations({"issuer": [GOOD, GOOD]})


def test_key_id_must_exist_in_the_key_file(key_ring: KeyRing) -> None:
    entry = {**GOOD, "auth": "private_key_jwt", "key_id": "no-such-kid"}
    with pytest.raises(ConfigurationError, match="no key with kid 'no-such-kid'"):
        parse_registrations({"issuer": [entry]}, key_ids=key_ring.kids)
    kid = sorted(key_ring.kids)[0]
    assert parse_registrations({"issuer": [{**entry, "key_id": kid}]}, key_ids=key_ring.kids)


def test_a_backend_services_registration_has_sensible_defaults_and_a_known_key(key_ring: KeyRing) -> None:
    kid = sorted(key_ring.kids)[0]
    reg = parse_registrations(
        {"issuer": [{**GOOD, "backend": {**BACKEND, "key_id": kid}}]}, key_ids=key_ring.kids
    )
    backend = next(iter(reg)).backend
    assert backend is not None and backend.group_id is None and backend.concurrency == 4
    assert backend.scopes == [
        "system/Patient.rs",
        "system/Observation.rs",
        "system/Group.rs",
        "system/MedicationRequest.rs",
    ]  # SMI patients' antipsychotic orders
    assert backend.patients_per_search == 50
    assert next(iter(parse_registrations({"issuer": [GOOD]}))).backend is None
    with pytest.raises(ConfigurationError, match="backend.key_id: no key with kid 'k1'"):
        parse_registrations({"issuer": [{**GOOD, "backend": BACKEND}]}, key_ids=key_ring.kids)


def test_client_secret_variable_must_be_set() -> None:
    entry = {**GOOD, "auth": "client_secret_basic", "client_secret_env": "TANDEM_SECRET_X"}
    with pytest.raises(ConfigurationError, match="TANDEM_SECRET_X is not set"):
        parse_registrations({"issuer": [entry]}, environ={})
    assert parse_registrations({"issuer": [entry]}, environ={"TANDEM_SECRET_X": "s"})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="registration file not found"):
        load_registrations(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[issuer]\niss = ", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_registrations(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[[issuers]]\niss = "https://a.example"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="issuers: Extra inputs are not permitted"):
        load_registrations(unknown)


def test_example_registration_file_is_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "registrations.toml"
    regs = load_registrations(path, environ={"TANDEM_SECRET_SMART_LAUNCHER": "x"})
    assert len(regs) >= 1


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TANDEM_REDIS_ULR": "redis://x"}, "TANDEM_REDIS_ULR: unknown setting"),
        ({"TANDEM_HTTP_TIMEOUT": "fast"}, "TANDEM_HTTP_TIMEOUT: must be a number"),
        ({"TANDEM_SESSION_TTL": "1.5"}, "TANDEM_SESSION_TTL: must be a whole number"),
        ({"TANDEM_REGISTRY_AUTH": "oauth"}, "TANDEM_REGISTRY_AUTH: must be one of none, backend-services"),
        ({"TANDEM_ENV": "staging"}, "TANDEM_ENV: must be 'development' or 'production'"),
        ({"TANDEM_BASE_URL": "tandem.example.org"}, "TANDEM_BASE_URL: must be an absolute URL"),
        ({"TANDEM_REGISTRY_AUTH": "backend-services"}, "TANDEM_REGISTRY_CLIENT_ID: required when"),
        ({"TANDEM_ENV": "production"}, "TANDEM_REDIS_URL: required in production"),
        (
            {"TANDEM_ENV": "production", "TANDEM_SECRET_KEY": "short"},
            "TANDEM_SECRET_KEY: must be at least 32",
        ),
        ({"TANDEM_ENV": "production", "TANDEM_BASE_URL": "http://t.example"}, "must use https in production"),
        ({"TANDEM_EHR_REFRESH_MINUTES": "-1"}, "TANDEM_EHR_REFRESH_MINUTES: must be between 0 (never)"),
        ({"TANDEM_EHR_REFRESH_MINUTES": "hourly"}, "TANDEM_EHR_REFRESH_MINUTES: must be a whole number"),
        (
            {"TANDEM_GESTATIONAL_AGE_CODES": "GA-AT-BIRTH"},
            "TANDEM_GESTATIONAL_AGE_CODES: must be system|code pairs",
        ),
    ],
)
def test_bad_environment_fails_fast_naming_the_variable(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)
    assert expected in raised.value.message


def test_unrelated_and_secret_variables_are_allowed() -> None:
    settings = Settings.from_env({"PATH": "/bin", "TANDEM_SECRET_EPIC": "s", "TANDEM_HTTP_TIMEOUT": "3"})
    assert settings.http_timeout == 3.0 and not settings.production


def test_create_app_fails_fast_on_a_bad_registration_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[[issuer]]\niss = "https://ehr.example.org"\n', encoding="utf-8")
    environ = {"TANDEM_REGISTRATIONS": str(path)}
    with pytest.raises(ConfigurationError, match="client_id: Field required"):
        create_app(environ=environ)


def test_embedded_defaults_start_with_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING")
    app = create_app(environ={})
    assert app.test_client().get("/healthz").status_code == 200
    assert "embedded in-process store (single-process development only)" in caplog.text
    assert caplog.text.count("embedded in-process store") == 1

"""The `tandem` command: check an EHR before registration, and manage keys."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import requests
import responses
from click.testing import CliRunner

from smartapp.cli import main

from ..ehr import EPIC, GENERIC, ORACLE, load_fixture


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _serve(shape_iss: str, folder: str) -> None:
    responses.get(
        f"{shape_iss}/.well-known/smart-configuration",
        json=load_fixture(f"{folder}/smart-configuration.json"),
    )
    responses.get(f"{shape_iss}/metadata", json=load_fixture(f"{folder}/metadata.json"))


@responses.activate
def test_check_oracle(runner: CliRunner) -> None:
    _serve(ORACLE.iss, "oracle")
    result = runner.invoke(main, ["check", "--iss", ORACLE.iss, "--vendor", "oracle"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "PKCE S256:          yes" in out
    assert "Scope versions:     v1, v2" in out
    assert "authorize-post:     yes" in out
    assert "Observation           yes" in out
    assert "QuestionnaireResponse NO" in out  # Oracle: read, search, update, no create
    assert "DocumentReference     yes" in out
    assert "Condition             yes" in out
    assert "launch openid fhirUser online_access patient/Patient.r patient/Observation.rs" in out
    assert "launch/patient openid fhirUser" in out


@responses.activate
def test_check_epic(runner: CliRunner) -> None:
    _serve(EPIC.iss, "epic")
    result = runner.invoke(main, ["check", "--iss", EPIC.iss, "--vendor", "epic"])
    assert "Write-back:         a clinical note (DocumentReference), not structured results" in result.output
    assert result.exit_code == 0, result.output
    assert "Software:           Epic February 2026 (FHIR 4.0.1)" in result.output
    assert "QuestionnaireResponse NO" in result.output


@responses.activate
def test_check_uses_the_registration_file(runner: CliRunner, tmp_path: Path) -> None:
    _serve(ORACLE.iss, "oracle")
    path = tmp_path / "r.toml"
    path.write_text(f'[[issuer]]\niss = "{ORACLE.iss}"\nclient_id = "cid"\nvendor = "oracle"\n'
                    'scopes = ["openid", "fhirUser", "patient/Patient.r"]\n', encoding="utf-8")  # fmt: skip
    result = runner.invoke(main, ["check", "--iss", ORACLE.iss, "--registrations", str(path)])
    assert result.exit_code == 0, result.output
    assert "EHR launch:        launch openid fhirUser patient/Patient.r\n" in result.output


@responses.activate
def test_check_v1_server_by_capability_fallback(runner: CliRunner) -> None:
    responses.get(f"{GENERIC.iss}/.well-known/smart-configuration", status=404)
    responses.get(f"{GENERIC.iss}/metadata", json=load_fixture("generic/metadata.json"))
    result = runner.invoke(main, ["check", "--iss", GENERIC.iss])
    # Only the legacy oauth-uris discovery, no code_challenge_methods_supported: Tandem still sends PKCE, so this
    # is a warning, not a failure.
    assert result.exit_code == 0, result.output
    assert "Discovery:          capability-statement" in result.output
    assert "patient/Observation.read" in result.output
    assert "Warnings:" in result.output and "Tandem still sends PKCE S256" in result.output
    assert "Problems:" not in result.output


# Legacy discovery (SMART App Launch 2.2: the CapabilityStatement's oauth-uris extension) carries only the two
# endpoints: it cannot tell whether a capability is offered, so the report says "not advertised", never "NO".
@pytest.mark.parametrize(
    "line",
    ["PKCE S256:          not advertised", "authorize-post:     not advertised",
     "EHR launch:         not advertised", "Standalone launch:  not advertised"],
)  # fmt: skip
@responses.activate
def test_check_says_not_advertised_for_what_legacy_discovery_cannot_tell(
    runner: CliRunner, line: str
) -> None:
    responses.get(f"{GENERIC.iss}/.well-known/smart-configuration", status=404)
    responses.get(f"{GENERIC.iss}/metadata", json=load_fixture("generic/metadata.json"))
    result = runner.invoke(main, ["check", "--iss", GENERIC.iss])
    assert result.exit_code == 0, result.output
    assert line in result.output.splitlines()


@pytest.mark.parametrize(
    ("registration", "issuer_line", "warned"),
    [
        # Legacy discovery names no issuer, and no registration does: the FHIR base is assumed, and said so.
        ("", f"id_token issuer:    {GENERIC.iss} (assumed: the discovery names none)", True),
        ('id_token_issuers = ["https://smart.example.org/auth"]\n',
         "id_token issuer:    https://smart.example.org/auth (from the registration)", False),
    ],
)  # fmt: skip
@responses.activate
def test_check_warns_when_it_cannot_pin_the_id_token_issuer(
    runner: CliRunner, tmp_path: Path, registration: str, issuer_line: str, warned: bool
) -> None:
    responses.get(f"{GENERIC.iss}/.well-known/smart-configuration", status=404)
    responses.get(f"{GENERIC.iss}/metadata", json=load_fixture("generic/metadata.json"))
    path = tmp_path / "r.toml"
    path.write_text(f'[[issuer]]\niss = "{GENERIC.iss}"\nclient_id = "cid"\n{registration}', encoding="utf-8")
    result = runner.invoke(main, ["check", "--iss", GENERIC.iss, "--registrations", str(path)])
    assert result.exit_code == 0, result.output
    assert issuer_line in result.output.splitlines()
    assert ("names no issuer for its sign-in tokens" in result.output) is warned


@responses.activate
def test_check_of_a_server_with_smart_configuration_still_says_no(runner: CliRunner) -> None:
    config = {**load_fixture("oracle/smart-configuration.json"), "capabilities": ["launch-ehr"]}
    responses.get(f"{ORACLE.iss}/.well-known/smart-configuration", json=config)
    responses.get(f"{ORACLE.iss}/metadata", json=load_fixture("oracle/metadata.json"))
    out = runner.invoke(main, ["check", "--iss", ORACLE.iss]).output.splitlines()
    assert (
        "Standalone launch:  NO" in out
        and "authorize-post:     NO" in out
        and "EHR launch:         yes" in out
    )
    assert f"id_token issuer:    {ORACLE.id_token_issuer} (from the server's discovery)" in out
    assert not any("names no issuer" in line for line in out)


@pytest.mark.parametrize(
    ("smart", "metadata", "message"),
    [
        ({"body": requests.ConnectionError("refused")}, None, "could not be reached"),
        ({"status": 404}, {"status": 500}, "publishes neither"),
        ({"body": "<html>not json</html>"}, {"json": {"resourceType": "Bundle"}}, "publishes neither"),
        (
            {
                "json": {
                    "authorization_endpoint": "https://a/authorize",
                    "token_endpoint": "https://a/token",
                    "code_challenge_methods_supported": ["S256"],
                }
            },
            {"body": "oops"},
            "did not return a CapabilityStatement",
        ),
    ],
    ids=["unreachable", "nothing", "malformed", "no-capability-statement"],
)
@responses.activate
def test_check_unreachable_or_malformed_servers_exit_non_zero(
    runner: CliRunner, smart: dict, metadata: dict | None, message: str
) -> None:
    iss = "https://broken.example.org/fhir"
    responses.get(f"{iss}/.well-known/smart-configuration", **smart)
    if metadata is not None:
        responses.get(f"{iss}/metadata", **metadata)
    result = runner.invoke(main, ["check", "--iss", iss, "--timeout", "2"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not re.search(r"(\b[A-Z][\w ]+): \1", result.output), result.output  # no "X: X: …"


def test_keys_generate_and_public(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = runner.invoke(main, ["keys", "generate", "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private = json.loads(path.read_text())
    assert sorted(k["alg"] for k in private["keys"]) == ["ES384", "RS384"]
    assert {k["kty"] for k in private["keys"]} == {"RSA", "EC"}
    assert next(k for k in private["keys"] if k["kty"] == "EC")["crv"] == "P-384"

    again = runner.invoke(main, ["keys", "generate", "--out", str(path)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output

    public = runner.invoke(main, ["keys", "public", "--keys-file", str(path)])
    assert public.exit_code == 0
    jwks = json.loads(public.output)
    assert all("d" not in key and "p" not in key for key in jwks["keys"])
    assert {k["kid"] for k in jwks["keys"]} == {k["kid"] for k in private["keys"]}


def test_serve_fails_fast_on_bad_configuration(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_REGISTRY_AUTH", "magic")
    result = runner.invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "TANDEM_REGISTRY_AUTH: must be one of" in result.output


@responses.activate
def test_check_shows_the_scopes_per_launch_kind_and_whether_they_are_advertised(runner: CliRunner) -> None:
    _serve(ORACLE.iss, "oracle")
    out = runner.invoke(main, ["check", "--iss", ORACLE.iss, "--vendor", "oracle"]).output
    for kind in ("chart (EHR launch, a patient):", "worklist (EHR launch, no patient):",
                 "portal (the patient's own launch):"):  # fmt: skip
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        assert "patient/Patient.r" in line
    worklist = next(line for line in out.splitlines() if "worklist (EHR launch" in line)
    assert "user/DocumentReference.c" in worklist  # the consult note and follow-ups from the worklist
    assert re.search(r"^  user/DocumentReference\.c +UNCONFIRMED for this vendor", out, re.M)
    assert re.search(r"^  patient/Patient\.r +yes$", out, re.M)  # listed in the fixture's scopes_supported

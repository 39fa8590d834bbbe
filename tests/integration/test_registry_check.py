"""`tandem check --registry` against real FHIR stores, run as an operator runs it (the command, the settings from
the environment), with every interaction's verdict asserted per store.

`store` is parametrised: sekmet-fhir without authentication and sekmet-fhir as a SMART backend-services store
(as `sandbox/world.py` configures the demo's registry). A store's verdicts are what that real server answers; a
"NOT supported" below is a finding about the server, not something the check works around. To add another
store (HAPI FHIR JPA: `hapi_server` in tests/conftest.py), add a parameter to `store` with its own expected
verdicts (start from `SEKMET` and change what the server answers differently)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from launch.keys import KeyRing
from sandbox.processes import FhirServer
from smartapp.cli import main
from smartapp.registry_check import CHECK_TAG

pytestmark = pytest.mark.integration

CLIENT_ID = "tandem-registry-check"

#: sekmet-fhir 0.1.1's answers (verdicts; informational lines by what they say).
SEKMET: dict[str, str] = {
    "metadata (CapabilityStatement)": "supported",
    "update-as-create PUT (client id)": "supported",
    "reference to the registry Patient": "supported",
    # sekmet does not enforce referential integrity (informational: Tandem writes the Patient first anyway).
    "reference to a missing Patient": "not enforced (accepted)",
    "transaction Bundle": "supported",
    # sekmet refuses If-None-Exist on Questionnaire (it has no Questionnaire url/version search): Tandem falls
    # back to update-as-create, so this does not fail the check (not required).
    "conditional create (If-None-Exist)": "NOT supported",
    "versioned read": "supported",
    "If-Match": "supported",
    "search CarePlan?subject": "supported",
    "search CarePlan?category": "supported",
    "search CarePlan?_lastUpdated": "supported",
    "search CarePlan?_sort": "supported",
    "search CarePlan?_count": "supported",
    "search Task?patient": "supported",
    "search Task?based-on": "supported",
    "search Task?code (a list)": "supported",
    "search Task?_lastUpdated": "supported",
    "search Task?_sort": "supported",
    "search Task?_count": "supported",
    "search Observation?subject": "supported",
    "search Observation?subject (a list)": "supported",
    "search Observation?code (a list)": "supported",
    "search Observation?_lastUpdated": "supported",
    "search Observation?_sort": "supported",
    "search Observation?_count": "supported",
    "search RelatedPerson?patient": "supported",
    "search RelatedPerson?patient (a list)": "supported",
    "search RelatedPerson?_count": "supported",
    "search QuestionnaireResponse?_count": "supported",
    # sekmet ignores url and version on Questionnaire (it answers every Questionnaire): not required.
    "search Questionnaire?url": "NOT supported",
    "search Questionnaire?version": "NOT supported",
    # A search repeated right after a write finds it (HAPI: only because Tandem sends Cache-Control: no-cache).
    "search right after a write": "supported",
    "paging (_count=3, next links)": "supported",
}


@dataclass
class StoreUnderTest:
    name: str
    base_url: str
    env: dict[str, str]
    verdicts: dict[str, str]
    #: How the store's CapabilityStatement names its software (the report's second line).
    software: str


def _verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Each interaction's verdict; an informational one by what it says (its detail), clean-up left out."""
    out = {}
    for item in report["interactions"]:
        if item["name"] == "clean-up (delete)":
            continue
        out[item["name"]] = item["detail"] if item["verdict"] == "noted" else item["verdict"]
    return out


#: HAPI FHIR JPA 8.8.0 with its defaults (hapi/): what it answers differently from sekmet.
HAPI = {
    **SEKMET,
    "backend-services token": "not configured",  # HAPI has no authentication: a proxy stands in front of it
    "reference to a missing Patient": "enforced (refused: registry create Observation failed with HTTP 400)",
    "conditional create (If-None-Exist)": "supported",
    "search Questionnaire?url": "supported",
    "search Questionnaire?version": "supported",
}

#: The stores the check runs against.
STORES = ["sekmet", "sekmet-backend-services", "hapi"]


@pytest.fixture(scope="module", params=STORES)
def store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    key_file: Path,
    key_ring: KeyRing,
) -> Iterator[StoreUnderTest]:
    if request.param == "hapi":
        hapi = request.getfixturevalue("hapi_server")
        yield StoreUnderTest(
            "hapi", hapi.base_url, {"TANDEM_REGISTRY_AUTH": "none"}, HAPI, "HAPI FHIR Server"
        )
        return
    workdir = Path(tmp_path_factory.mktemp(request.param))
    software = "SEKMET FHIR R4 Tester"
    if request.param == "sekmet":
        server = FhirServer(workdir).start()
        env = {"TANDEM_REGISTRY_AUTH": "none"}
        verdicts = {"backend-services token": "not configured", **SEKMET}
    else:
        kid = next(k for k in sorted(key_ring.kids) if "rs384" in k)  # as the demo (sandbox/world.py)
        server = FhirServer(workdir, smart_clients=[
            {"client_id": CLIENT_ID, "jwks": key_ring.public_jwks(), "scopes": "system/*.cruds"}]).start()  # fmt: skip
        env = {"TANDEM_REGISTRY_AUTH": "backend-services", "TANDEM_REGISTRY_TOKEN_URL": server.token_url,
               "TANDEM_REGISTRY_CLIENT_ID": CLIENT_ID, "TANDEM_REGISTRY_KEY_ID": kid,
               "TANDEM_KEYS_FILE": str(key_file), "TANDEM_REGISTRY_SCOPES": "system/*.cruds"}  # fmt: skip
        verdicts = {"backend-services token": "supported", **SEKMET}
    try:
        yield StoreUnderTest(request.param, server.base_url, env, verdicts, software)
    finally:
        server.stop()


def _check(store: StoreUnderTest, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", "--registry", store.base_url, *extra], env=store.env)
    return result.exit_code, result.output


def test_every_interaction_gets_the_verdict_the_store_earns(store: StoreUnderTest) -> None:
    code, output = _check(store, "--json")
    report = json.loads(output)
    assert _verdicts(report) == store.verdicts
    required_failures = [i["name"] for i in report["interactions"] if i["failed"]]
    assert code == (1 if required_failures else 0) and report["ok"] is not required_failures


def test_the_check_cleans_up_after_itself(store: StoreUnderTest) -> None:
    code, output = _check(store)
    assert "deleted all" in output.splitlines()[-3]
    if store.env["TANDEM_REGISTRY_AUTH"] != "none":
        return  # reading the store directly needs a token: the run without authentication shows it
    tag = f"{CHECK_TAG['system']}|{CHECK_TAG['code']}"
    for resource_type in ("Patient", "CarePlan", "Task", "Observation", "RelatedPerson", "QuestionnaireResponse",
                          "Questionnaire"):  # fmt: skip
        bundle = requests.get(f"{store.base_url}/{resource_type}", params={"_tag": tag}, timeout=30).json()
        assert [e["resource"]["id"] for e in bundle.get("entry") or []] == [], resource_type


def test_the_report_is_lines_an_operator_reads(store: StoreUnderTest) -> None:
    code, output = _check(store)
    lines = output.splitlines()
    assert lines[0] == f"Registry store:     {store.base_url}"
    assert lines[1].startswith(f"Software:           {store.software}")
    assert lines[-1].startswith("Ready: every required interaction is supported")
    assert code == 0

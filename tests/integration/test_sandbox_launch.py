"""Launches over HTTP against the sandbox EHR (Authlib authorization server) and sekmet-fhir."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from launch import errors
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration


def _patient_name(html: str) -> list[str]:
    return re.findall(r'class="patient-name">([^<]*)<', html)


def _names(world: SandboxWorld) -> dict[str, str]:
    bundle = requests.get(f"{world.ehr.base_url}/Patient", params={"_count": "100"}, timeout=10).json()
    return {
        e["resource"]["id"]: " ".join(
            [*e["resource"]["name"][0]["given"], e["resource"]["name"][0]["family"]]
        )
        for e in bundle["entry"]
    }


@pytest.mark.parametrize("mode", ["generic", "epic", "oracle"])
def test_ehr_launch_over_http_shows_the_patient_and_the_user(world: SandboxWorld, browser: Browser, mode: str
                                                             ) -> None:  # fmt: skip
    page = browser.follow(launch_url(world, mode, patient="pt-0003"))
    assert page.status_code == 200, page.text[-800:]
    assert page.url.startswith(f"{world.tandem_url}/app/")
    assert _patient_name(page.text) == [_names(world)["pt-0003"]]
    assert "Signed in as <strong>Dana Whitfield</strong>" in page.text


def test_banner_hidden_when_the_ehr_shows_its_own(world: SandboxWorld, browser: Browser) -> None:
    page = browser.follow(launch_url(world, "epic", banner=False))
    assert page.status_code == 200
    assert 'class="patient-banner"' not in page.text
    assert 'data-patient-id="pt-0001"' in page.text


def test_worklist_launch_has_a_user_and_no_patient(world: SandboxWorld, browser: Browser) -> None:
    page = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    assert page.status_code == 200
    assert page.url.endswith("/worklist") and "Caseload worklist" in page.text
    assert 'class="patient-banner"' not in page.text
    assert "Signed in as <strong>Teresa Lindqvist</strong>" in page.text


def test_standalone_launch_lets_the_user_pick_a_patient(world: SandboxWorld, browser: Browser) -> None:
    picker = browser.follow(launch_url(world, "oracle", target="standalone"))
    assert picker.status_code == 200 and "Choose a patient for Tandem" in picker.text
    assert "launch/patient" in picker.text  # the scope Tandem asked for
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', picker.text))
    fields.update(sandbox_patient="pt-0005", sandbox_practitioner="pr-pcp-2")
    answer = browser.post(f"{world.sandbox_url}/auth/authorize", data=fields, allow_redirects=False)
    assert answer.status_code == 302
    page = browser.follow(answer.headers["Location"])
    assert page.status_code == 200
    assert _patient_name(page.text) == [_names(world)["pt-0005"]]


def test_token_refresh_against_the_real_authorization_server(world: SandboxWorld, browser: Browser,
                                                             sandbox_state: Any, tandem: Any) -> None:  # fmt: skip
    sandbox_state["config"].lifetimes["oracle"] = 30  # a short-lived token: shorter than the 60 s margin
    try:
        page = browser.follow(launch_url(world, "oracle"))
        launch_id = launch_id_of(page)
        first = tandem.sessions.load(launch_id)
        again = browser.get(f"{world.tandem_url}/app/{launch_id}/")
        assert again.status_code == 200 and 'data-patient-id="pt-0001"' in again.text
        # A token just given is never refreshed (the defect: with tokens of 60 s or less, every request did).
        assert tandem.sessions.load(launch_id).access_token == first.access_token
        # With less than a fifth of its lifetime left, it is.
        tandem.sessions.save(replace(first, issued_at=time.time() - 27, expires_at=time.time() + 3))
        again = browser.get(f"{world.tandem_url}/app/{launch_id}/")
        assert again.status_code == 200
        refreshed = tandem.sessions.load(launch_id)
        assert refreshed.access_token != first.access_token
        assert refreshed.refresh_token == first.refresh_token  # not rotated: the old one is kept
    finally:
        sandbox_state["config"].lifetimes["oracle"] = 570


def test_expired_and_unrefreshable_session_asks_to_launch_again(world: SandboxWorld, browser: Browser,
                                                                sandbox_state: Any) -> None:  # fmt: skip
    page = browser.follow(launch_url(world, "generic"))
    launch_id = launch_id_of(page)
    store = sandbox_state["store"]
    with store.lock:  # the EHR revokes everything: access and refresh tokens
        for record in [*store.tokens.values(), *store.refresh_tokens.values()]:
            record.revoked = True
    again = browser.get(f"{world.tandem_url}/app/{launch_id}/")
    assert again.status_code == 401
    assert "Launch Tandem again from the EHR" in again.text


def test_refused_scope_and_patient_compartment(world: SandboxWorld, browser: Browser, tandem: Any) -> None:
    launch_id = launch_id_of(browser.follow(launch_url(world, "epic", patient="pt-0002")))
    ehr = tandem.ehr_client(tandem.sessions.load(launch_id))
    with pytest.raises(errors.FHIRForbidden) as raised:
        ehr.search("Encounter", {"patient": "pt-0002"})  # no Encounter scope was granted
    assert any("insufficient_scope" in issue for issue in raised.value.issues)
    with pytest.raises(errors.FHIRForbidden):
        ehr.read("Patient", "pt-0004")  # another patient
    observations = ehr.search_all("Observation", {"patient": "pt-0002"})
    assert observations and all(o["subject"]["reference"].endswith("pt-0002") for o in observations)


def test_vendor_modes_refuse_what_the_ehrs_refuse(world: SandboxWorld, browser: Browser, tandem: Any) -> None:
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": "Patient/pt-0001"},
    }
    survey = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/pt-0001"},
              "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": "survey"}]}],
              "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]}, "valueInteger": 7}  # fmt: skip
    for mode, task_error, survey_error in [
        ("epic", errors.FHIRError, errors.FHIRUnprocessable),
        ("oracle", errors.FHIRError, errors.FHIRUnprocessable),
    ]:
        launch_id = launch_id_of(browser.follow(launch_url(world, mode)))
        ehr = tandem.ehr_client(tandem.sessions.load(launch_id))
        capability = ehr.capabilities()
        assert "create" not in {i["code"] for r in capability["rest"][0]["resource"] if r["type"] == "Task"
                                for i in r.get("interaction", [])}  # fmt: skip
        with pytest.raises(task_error) as raised:
            ehr.create(task)
        assert raised.value.http_status == 405
        with pytest.raises(survey_error):
            ehr.create(survey)
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic")))
    ehr = tandem.ehr_client(tandem.sessions.load(launch_id))
    assert ehr.create(survey)["id"]


def test_pkce_is_enforced_by_the_authorization_server(world: SandboxWorld, browser: Browser) -> None:
    start = browser.get(launch_url(world, "generic"), allow_redirects=False)
    tandem_launch = browser.get(start.headers["Location"], allow_redirects=False)
    authorize = browser.get(tandem_launch.headers["Location"], allow_redirects=False)
    code = re.search(r"code=([^&]+)", authorize.headers["Location"]).group(1)  # type: ignore[union-attr]
    answer = requests.post(f"{world.sandbox_url}/auth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "client_id": "tandem-sandbox",
        "redirect_uri": f"{world.tandem_url}/callback", "code_verifier": "x" * 64,
    })  # fmt: skip
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_registry_store_access_through_backend_services(world: SandboxWorld, tandem: Any) -> None:
    registry = tandem.registry
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "priority": "stat",
            "identifier": [{"system": "urn:tandem:test", "value": "backend-1"}],
            "for": {"reference": "Patient/pt-0001"}}  # fmt: skip
    created = registry.create(task, if_none_exist="identifier=urn:tandem:test|backend-1")
    again = registry.create(task, if_none_exist="identifier=urn:tandem:test|backend-1")
    assert created["id"] == again["id"]  # conditional create: no duplicate
    found = registry.search("Task", {"identifier": "urn:tandem:test|backend-1"})
    assert [e["resource"]["id"] for e in found["entry"]] == [created["id"]]
    # Without the backend services token the store refuses.
    anonymous = requests.get(f"{world.registry.base_url}/Task", timeout=10)
    assert anonymous.status_code == 401


def test_readyz_reaches_redis_and_the_registry(world: SandboxWorld) -> None:
    ready = requests.get(f"{world.tandem_url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "registry": "ok"}


def test_an_ehr_with_legacy_discovery_only_launches_with_its_fhir_base_as_issuer(
    world: SandboxWorld, browser: Browser, sandbox_state: Any, tandem: Any
) -> None:
    """No `.well-known/smart-configuration`, only the CapabilityStatement's oauth-uris (SMART App Launch 2.2's
    deprecated discovery): no issuer is named, so the id_token's (the FHIR base URL, a path as Epic's has) is
    accepted by default; the keys come from that issuer's OpenID configuration. Every launch used to fail."""
    iss = world.iss("epic")
    sandbox_state["config"].legacy_discovery.add("epic")
    tandem.discovery.store.delete(f"smart-config:{iss}")
    try:
        page = browser.follow(launch_url(world, "epic", patient="pt-0003"))
        assert page.status_code == 200, page.text[-800:]
        assert "Signed in as <strong>Dana Whitfield</strong>" in page.text
        assert tandem.discovery.smart_configuration(iss).source == "capability-statement"
    finally:
        sandbox_state["config"].legacy_discovery.discard("epic")
        tandem.discovery.store.delete(f"smart-config:{iss}")

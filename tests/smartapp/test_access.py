"""Who may see what: the route inventory (every `/app/<launch>/…` route refuses a missing or foreign launch, a
POST without the right CSRF token, and a user who is not of the care team), patient-scoped launches, framing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from fhir_mappings.common.identity import PatientKey
from launch.sessions import LaunchSession
from smartapp.access import access_for
from smartapp.errors import NotCareTeam

from ..conftest import APP_BASE, full_launch, make_ehr, post_from
from ..ehr import RecordedEHR

SAMPLE_VALUES = {
    "key": "phq9",
    "careplan_id": "cocm-0123",
    "task_id": "safety-0123",
    "record_id": "0" * 32,
    "referral_id": "0123",
    "item_id": "0" * 32,
    "index": "0",
    "number": "1",
}


#: The patient's own pages (portal launches only).
PORTAL = "/app/<launch_id>/me/"


def app_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every route inside a launch, with sample values for its other parameters."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "launch_id" not in rule.arguments:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule))
    assert len(routes) >= 20, routes  # the inventory is not empty by accident
    return routes


def fill(path: str, launch_id: str) -> str:
    path = path.replace("<launch_id>", launch_id)
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_VALUES[m.group(1)], path)


@pytest.fixture
def epic(rsps: Any, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


def test_every_launch_route_refuses_a_missing_or_foreign_launch(app: Flask, client: FlaskClient,
                                                                 epic: RecordedEHR) -> None:  # fmt: skip
    launch_id = full_launch(client, epic)
    stranger = app.test_client()  # another browser: no cookie for this launch
    for method, path in app_routes(app):
        for who, launch in ((stranger, launch_id), (client, "A" * 32), (client, "not-a-launch")):
            answer = who.open(fill(path, launch), method=method, base_url=APP_BASE, data={})
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert "Launch Tandem again" in answer.get_data(as_text=True)


def test_every_post_refuses_a_missing_or_wrong_csrf_token(app: Flask, client: FlaskClient,
                                                          epic: RecordedEHR) -> None:  # fmt: skip
    launch_id = full_launch(client, epic)
    posts = [path for method, path in app_routes(app) if method == "POST" and not path.startswith(PORTAL)]
    assert len(posts) >= 8
    for path in posts:
        for data in ({}, {"csrf_token": "0" * 64}):
            answer = post_from(client, f"/app/{launch_id}/", fill(path, launch_id), data)
            assert answer.status_code == 403, (path, answer.status_code)
            assert "This form has expired" in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    "fhir_user", ["Patient/erXuFYUfucBZaryVksYEcMg3", "RelatedPerson/rp-1", "Person/p-1"]
)
def test_a_patient_or_related_person_gets_the_care_team_page_everywhere(
    app: Flask, client: FlaskClient, epic: RecordedEHR, fhir_user: str
) -> None:
    epic.fhir_user = f"{epic.shape.iss}/{fhir_user}"
    launch_id = full_launch(client, epic)
    calls_before = len(epic.fhir_calls)
    for method, path in app_routes(app):
        if path.startswith(PORTAL):
            continue
        answer = client.open(fill(path, launch_id) + "?who=all", method=method, base_url=APP_BASE, data={})
        assert answer.status_code == 403, (method, path)
        assert "Tandem is for the care team" in answer.get_data(as_text=True)
    assert len(epic.fhir_calls) == calls_before  # refused before anything was read
    if fhir_user.startswith("Person/"):  # the patient's own pages are for a Patient or RelatedPerson only
        for method, path in app_routes(app):
            if path.startswith(PORTAL):
                answer = client.open(fill(path, launch_id), method=method, base_url=APP_BASE, data={})
                assert answer.status_code == 403 and "patient portal" in answer.get_data(as_text=True)


def test_the_care_team_gets_no_patient_portal_page(
    app: Flask, client: FlaskClient, epic: RecordedEHR
) -> None:
    launch_id = full_launch(client, epic)
    portal = [(m, p) for m, p in app_routes(app) if p.startswith(PORTAL)]
    assert len(portal) >= 4
    for method, path in portal:
        answer = client.open(fill(path, launch_id), method=method, base_url=APP_BASE, data={})
        assert answer.status_code == 403, (method, path)
        assert "patient portal" in answer.get_data(as_text=True)


def test_every_portal_post_refuses_a_missing_or_wrong_csrf_token(app: Flask, client: FlaskClient,
                                                                 epic: RecordedEHR) -> None:  # fmt: skip
    epic.fhir_user = f"{epic.shape.iss}/Patient/erXuFYUfucBZaryVksYEcMg3"
    launch_id = full_launch(client, epic)
    posts = [path for method, path in app_routes(app) if method == "POST" and path.startswith(PORTAL)]
    assert posts
    for path in posts:
        for data in ({}, {"csrf_token": "0" * 64}):
            answer = post_from(client, f"/app/{launch_id}/me/", fill(path, launch_id), data)
            assert answer.status_code == 403, (path, answer.status_code)
            assert "This form has expired" in answer.get_data(as_text=True)


def _session(scope: str, patient: str | None, fhir_user: str | None) -> LaunchSession:
    from launch.context import LaunchContext

    return LaunchSession(id="x" * 32, binding="b", iss="https://ehr.example.org/fhir", access_token="t",
                         expires_at=0, refresh_token=None, scope=scope,
                         context=LaunchContext(patient=patient, fhir_user=fhir_user))  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "patient", "fhir_user", "caseload"),
    [
        (
            "launch patient/Patient.r patient/Observation.rs user/Practitioner.rs",
            "p1",
            "Practitioner/1",
            False,
        ),
        ("launch user/Patient.rs user/Observation.rs", "p1", "Practitioner/1", True),
        ("launch user/*.read", "p1", "PractitionerRole/1", True),
        ("launch patient/Patient.r", None, "Practitioner/1", True),  # the EHR's worklist launch
        ("launch user/Patient.rs", "p1", None, True),  # no fhirUser, but user scopes: EHR staff
    ],
)
def test_access_mirrors_what_the_ehr_granted(scope: str, patient: str | None, fhir_user: str | None,
                                             caseload: bool) -> None:  # fmt: skip
    access = access_for(_session(scope, patient, fhir_user))
    assert access.caseload is caseload
    assert access.allows_patient(PatientKey("https://ehr.example.org/fhir", "p1"))
    assert access.allows_patient(PatientKey("https://ehr.example.org/fhir", "p2")) is caseload
    assert not access.allows_patient(PatientKey("https://other-ehr.example.org/fhir", "p1"))


@pytest.mark.parametrize(
    ("scope", "fhir_user"),
    [("launch/patient patient/Patient.r", "Patient/1"), ("launch/patient patient/Patient.r", None),
     ("launch user/Patient.rs", "RelatedPerson/9")],
)  # fmt: skip
def test_not_the_care_team(scope: str, fhir_user: str | None) -> None:
    with pytest.raises(NotCareTeam):
        access_for(_session(scope, "p1", fhir_user))


def test_a_patient_scoped_launch_cannot_open_the_caseload(app: Flask, client: FlaskClient,
                                                         epic: RecordedEHR) -> None:  # fmt: skip
    launch_id = full_launch(client, epic)  # Epic's fixture grants patient/ scopes only
    chart = client.get(f"/app/{launch_id}/", base_url=APP_BASE).get_data(as_text=True)
    assert f"/app/{launch_id}/worklist" not in chart  # no link to what the launch does not allow
    for path in ("worklist", "worklist.csv", "review", "billing"):
        answer = client.get(f"/app/{launch_id}/{path}?who=all", base_url=APP_BASE)
        assert answer.status_code == 403 and "This launch does not give access" in answer.get_data(
            as_text=True
        )


def test_frame_ancestors_are_self_and_the_registered_ehr_origins(client: FlaskClient) -> None:
    policy = client.get("/", base_url=APP_BASE).headers["Content-Security-Policy"]
    ancestors = re.search(r"frame-ancestors ([^;]+)", policy).group(1).split()  # type: ignore[union-attr]
    assert ancestors == ["'self'", "https://fhir.epic.com", "https://fhir-ehr-code.cerner.com",
                         "https://smart.example.org"]  # fmt: skip
    assert "*" not in policy


def test_frame_ancestors_from_the_registration_file(
    tmp_path: Any, environ: dict[str, str], redis_store: Any
) -> None:
    from smartapp import create_app

    path = tmp_path / "one.toml"
    path.write_text('[[issuer]]\niss = "https://fhir.example.org/r4"\nclient_id = "c"\n'
                    'frame_ancestors = ["https://ehr.example.org", "https://portal.example.org"]\n')  # fmt: skip
    app = create_app(environ={**environ, "TANDEM_REGISTRATIONS": str(path)})
    policy = app.test_client().get("/", base_url=APP_BASE).headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://ehr.example.org https://portal.example.org" in policy
    from launch import errors

    path.write_text(
        '[[issuer]]\niss = "https://fhir.example.org/r4"\nclient_id = "c"\nframe_ancestors = ["*"]\n'
    )
    with pytest.raises(errors.ConfigurationError, match="frame_ancestors"):
        create_app(environ={**environ, "TANDEM_REGISTRATIONS": str(path)})


@pytest.mark.parametrize(
    "path",
    [
        "registry/" + "x" * 200,
        "registry/bad%20id",
        "registry/a$b",
        "screenings/" + "f" * 65,
        "safety/t%2F1/close",
    ],
)
def test_malformed_ids_are_refused_before_any_request(
    client: FlaskClient, epic: RecordedEHR, path: str
) -> None:
    launch_id = full_launch(client, epic)
    calls = len(epic.fhir_calls)
    answer = client.get(f"/app/{launch_id}/{path}", base_url=APP_BASE)
    assert answer.status_code in (400, 404, 405)
    assert answer.status_code != 502 and len(epic.fhir_calls) == calls

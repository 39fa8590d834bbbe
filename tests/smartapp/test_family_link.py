"""Issue 26 §4: a RelatedPerson portal launch was accepted for a child who is not theirs. Before anything is
shown, the RelatedPerson (the launch's fhirUser) is read from the EHR and its `patient` must be the launch's
patient on the same EHR (FHIR R4 RelatedPerson.patient: "The patient this person is related to", 1..1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from launch.context import LaunchContext
from launch.sessions import LaunchSession
from smartapp import errors as app_errors
from smartapp.access import check_family_link, portal_access_for

from ..conftest import APP_BASE, full_launch, make_ehr
from ..ehr import RecordedEHR

ISS = "https://ehr.test/fhir"
CHILD = "child1"


def _portal(fhir_user: str = "RelatedPerson/rp1", patient: str = CHILD) -> Any:
    session = LaunchSession(id="x" * 32, binding="b", iss=ISS, access_token="t", expires_at=0, refresh_token=None,
                            scope="launch patient/Patient.rs patient/RelatedPerson.rs",
                            context=LaunchContext(patient=patient, fhir_user=fhir_user))  # fmt: skip
    return portal_access_for(session)


def _rp(patient: Any = f"Patient/{CHILD}", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "RelatedPerson", "id": "rp1", **extra}
    if patient is not None:
        resource["patient"] = {"reference": patient}
    return resource


@pytest.mark.parametrize(("related_person", "refused"), [
    (_rp(), None),  # theirs (relative reference)
    (_rp(f"{ISS}/Patient/{CHILD}"), None),  # theirs, absolute on the launch's own FHIR base
    (_rp(f"Patient/{CHILD}/_history/3"), None),  # a versioned reference to the same patient
    (_rp("Patient/child2"), app_errors.NotLinkedToPatient),  # another child
    (_rp(f"https://other-ehr.test/fhir/Patient/{CHILD}"), app_errors.NotLinkedToPatient),  # another EHR's patient
    (_rp(None), app_errors.NotLinkedToPatient),  # no patient on the RelatedPerson
    (_rp(f"Patient/{CHILD}", active=False), app_errors.NotLinkedToPatient),  # the link was ended in the EHR
    (_rp("Group/child1"), app_errors.NotLinkedToPatient),
    (None, app_errors.LinkNotConfirmed),  # the EHR would not let Tandem read it
    ({**_rp(), "id": "rp2"}, app_errors.LinkNotConfirmed),  # not the signed-in family member's resource
    ({"resourceType": "OperationOutcome"}, app_errors.LinkNotConfirmed),
])  # fmt: skip
def test_a_family_member_sees_only_a_patient_the_ehr_links_them_to(
    related_person: dict[str, Any] | None, refused: type[Exception] | None
) -> None:
    if refused is None:
        check_family_link(_portal(), related_person)
        return
    with pytest.raises(refused):
        check_family_link(_portal(), related_person)


def test_a_patient_needs_no_related_person() -> None:
    check_family_link(
        _portal("Patient/p1", "p1"), None
    )  # a Patient answers for themself only (portal_access_for)


# --- through the app: a recorded EHR whose RelatedPerson read answers as each case says --------------------------

PATIENT = "erXuFYUfucBZaryVksYEcMg3"  # the patient in the recorded Epic launch (tests/fixtures/epic)


@pytest.fixture
def epic(rsps: Any, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


@pytest.mark.parametrize(("status", "body", "expected_status", "says"), [
    (200, _rp(f"Patient/{PATIENT}"), 200, None),
    (200, _rp("Patient/someone-else"), 403, "You are not linked to this patient"),
    (200, _rp(None), 403, "You are not linked to this patient"),
    (404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}, 403,
     "Tandem could not confirm that you care for this patient"),
    (403, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]}, 403,
     "Tandem could not confirm that you care for this patient"),
])  # fmt: skip
def test_a_related_person_portal_launch_is_checked_against_the_ehr(
    app: Flask, client: FlaskClient, epic: RecordedEHR, rsps: responses.RequestsMock, status: int,
    body: dict[str, Any], expected_status: int, says: str | None,
) -> None:  # fmt: skip
    epic.fhir_user = f"{epic.shape.iss}/RelatedPerson/rp1"
    reads: list[str] = []

    def related_person(request: Any) -> tuple[int, dict[str, str], str]:
        reads.append(request.path_url)
        return status, {"Content-Type": "application/fhir+json"}, json.dumps(body)

    rsps.add_callback(responses.GET, f"{epic.shape.iss}/RelatedPerson/rp1", callback=related_person)
    launch_id = full_launch(client, epic)
    answer = client.get(f"/app/{launch_id}/me/", base_url=APP_BASE)
    text = answer.get_data(as_text=True)
    assert answer.status_code == expected_status, text[-600:]
    assert reads  # read from the EHR, never taken from the launch context alone
    if says is not None:
        shown = text.split("<details")[0]  # technical detail only under "Details for IT"
        assert says in shown and "RelatedPerson" not in shown and "rp1" not in shown  # words, no FHIR ids
        assert "Hello" not in text  # nothing about the patient shown

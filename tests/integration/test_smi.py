"""SMI Collaborative Care over HTTP against the real servers (sekmet-fhir EHR and registry, the sandbox's SMART
server, redis-server): enrolment by diagnosis, the chart's read of vitals, labs and antipsychotic orders with the
launch's token, the worker's batched read with backend services (requests bounded by N / batch), the social
questions written to the registry, and the whole-person worklist row with its request count."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.validation import r4_errors
from fhir_mappings.smi.social import SOCIAL, observation_id
from launch import errors
from sandbox.data import Cohort
from sandbox.processes import load_cohort
from sandbox.smi_seed import PEOPLE, add_smi_patients
from sandbox.world import SandboxWorld
from smartapp.caseload.ehr_refresh import ScoreRefresh, backend_client
from smartapp.smi.medical import read_batch, refresh_medical

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smi_world(world: SandboxWorld) -> SandboxWorld:
    """The sandbox EHR with the demo's five SMI patients added (diagnoses, orders, vitals and labs)."""
    cohort = Cohort()
    add_smi_patients(cohort, date.today())
    load_cohort(world.ehr.base_url, cohort.transaction_bundles())
    return world


def _enrol_smi(world: SandboxWorld, browser: Browser, patient: str) -> tuple[str, str]:
    chart = browser.follow(launch_url(world, "generic", patient=patient, practitioner="pr-cm-3"))
    launch_id = launch_id_of(chart)
    page = f"{world.tandem_url}/app/{launch_id}/enrol"
    enrol_page = browser.get(page).text
    # Eligibility by diagnosis: the SMI program is the suggestion for an active schizophrenia or bipolar diagnosis.
    assert re.search(r'value="cocm-smi"[^>]*checked', enrol_page), enrol_page[-2000:]
    form, target = browser.form(page)
    fields = {**form.hidden, "program": "cocm-smi", "pcp": "Practitioner/pr-pcp-2",
              "care-manager": "Practitioner/pr-cm-3", "psychiatric-consultant": "Practitioner/pr-psy-1",
              "consent": "yes", "consent_method": "verbal"}  # fmt: skip
    done = browser.post_from(page, target, fields)
    assert done.status_code == 303, done.text[-1500:]
    return launch_id, done.headers["Location"].rstrip("/").split("/")[-1]


def test_the_chart_reads_an_enrolled_patients_body_with_the_launch_token(
    smi_world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    launch_id, careplan_id = _enrol_smi(smi_world, browser, "smi-0002")
    key = PatientKey(smi_world.iss("generic"), "smi-0002")
    chart = browser.get(f"{smi_world.tandem_url}/app/{launch_id}/")
    assert chart.status_code == 200
    assert "Body (serious mental illness monitoring)" in chart.text
    assert "BP 148/95" in chart.text and "quetiapine since" in chart.text
    assert "BP at or above 140/90" in chart.text and "HbA1c 8 % or more" in chart.text
    copy = tandem.ehr_medical.for_patient(key)
    assert copy is not None and len(copy.requests) == 1  # the antipsychotic order only
    assert {o["code"]["coding"][0]["code"] for o in copy.observations} >= {"85354-9", "29463-7", "4548-4"}
    assert all(set(o) <= {"resourceType", "id", "status", "code", "effectiveDateTime", "effectivePeriod",
                          "valueQuantity", "valueCodeableConcept", "component"} for o in copy.observations)  # fmt: skip
    # Another EHR's patient of the same id has no copy (patients are keyed by issuer and id).
    assert tandem.ehr_medical.for_patient(PatientKey(smi_world.iss("epic"), "smi-0002")) is None
    page = browser.get(f"{smi_world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}")
    assert page.status_code == 200 and "Symptoms, body and life" in page.text
    assert "Blood pressure (mmHg)" in page.text and "target: below 140/90" in page.text


def test_the_worker_reads_many_patients_per_search(smi_world: SandboxWorld, tandem: Any) -> None:
    reg = tandem.registrations.get(smi_world.iss("generic"))
    client = backend_client(tandem, reg)
    ids = [p.pid for p in PEOPLE]
    found = read_batch(client, ids)
    assert client.counter.total - 1 <= 2  # a token, then one Observation and one MedicationRequest search
    assert {pid for pid, (obs, _) in found.items() if obs} == set(ids)
    assert [len(reqs) for _, reqs in found.values()].count(0) == 1  # Grace takes no antipsychotic
    for per_search in (1, 2, 50):
        before = client.counter.total
        report = refresh_medical(
            client, tandem.ehr_medical, smi_world.iss("generic"), ids, per_search=per_search
        )
        searches = client.counter.total - before
        print(f"medical refresh of {len(ids)} patients, {per_search} per search: {searches} EHR requests")  # noqa: T201
        assert report.updated == len(ids) and report.failed == 0
        assert searches == report.searches == 2 * math.ceil(len(ids) / per_search)


def test_social_questions_and_the_whole_person_row_over_http(
    smi_world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    iss = smi_world.iss("generic")
    launch_id, careplan_id = _enrol_smi(smi_world, browser, "smi-0003")
    base = f"{smi_world.tandem_url}/app/{launch_id}"
    page = f"{base}/enrolments/{careplan_id}"
    refused = browser.submit(page, {"social_day": date.today().isoformat(), "social-housing": "castle"},
                             action="/social")  # fmt: skip
    assert (
        refused.status_code == 422 and "Housing: &#39;castle&#39; is not one of its answers" in refused.text
    )
    saved = browser.submit(page, {"social_day": date.today().isoformat(), "social-housing": "unhoused",
                                  "social-justice": "yes", "social-connection": "lt-1"}, action="/social")  # fmt: skip
    assert saved.status_code == 303
    key = PatientKey(iss, "smi-0003")
    stored = tandem.registry.read("Observation", observation_id(key, "housing", date.today()))
    assert not r4_errors(stored) and stored["subject"]["identifier"] == {"system": iss, "value": "smi-0003"}
    assert stored["valueCodeableConcept"]["coding"][0]["system"] == SOCIAL.answer_system
    # The worker's refresh reads the SMI patients' medical data too, in batches, and says so.
    report = ScoreRefresh(tandem, tandem.registrations.get(iss)).run(full=True)
    assert report is not None and report.medical_patients >= 2 and report.medical_failed == 0
    assert "SMI patients" in report.summary()

    manager = Browser()
    worklist = manager.follow(launch_url(smi_world, "generic", patient=None, target="worklist",
                                         practitioner="pr-cm-3"))  # fmt: skip
    tandem.caseload.invalidate()
    listed = manager.get(f"{smi_world.tandem_url}/app/{launch_id_of(worklist)}/worklist",
                         params={"who": "all", "program": "cocm-smi"})  # fmt: skip
    requests_made = int(re.search(r"Registry requests for this page: (\d+)", listed.text).group(1))
    print(f"SMI worklist: {requests_made} registry requests for {listed.text.count('<tr class')} rows")  # noqa: T201
    assert requests_made <= 6  # per-type searches (one page each here), never one per patient
    row = re.search(rf'enrolments/{careplan_id}">[^<]+</a>(.*?)</tr>', listed.text, re.S)
    assert row, listed.text[-2000:]
    cells = re.sub(r"<[^>]+>", " ", row.group(1))
    # The Life column in plain words (issue 28; social.json's "row" words).
    assert (
        "no housing" in cells
        and "jail stay in the past year" in cells
        and "sees people less than weekly" in cells
    )
    assert "No A1c/glucose 12 mo" in cells and "Monitoring overdue" in cells  # from the worker's copy
    assert "Medical" in cells and "Social" in cells  # row flags
    csv_text = manager.get(f"{smi_world.tandem_url}/app/{launch_id_of(worklist)}/worklist.csv",
                           params={"who": "all", "program": "cocm-smi"}).text  # fmt: skip
    assert (
        "On an antipsychotic, no glucose or HbA1c in 12 months" in csv_text
        and "Does not have housing" in csv_text
    )


def test_an_ended_enrolment_takes_no_social_answers(
    smi_world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    launch_id, careplan_id = _enrol_smi(smi_world, browser, "smi-0005")
    page = f"{smi_world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}"
    assert browser.submit(page, {"phase": "discharged", "flag": "0"}, action="/update").status_code == 303
    shown = browser.get(page).text
    assert "Record social status" not in shown  # no form for an ended enrolment
    hidden = browser.form(page, f"/app/{launch_id}/enrolments/{careplan_id}/update")[0].hidden
    refused = browser.post_from(page, f"{page}/social", {**hidden, "social-housing": "housed"})
    assert refused.status_code == 400 and "has ended" in refused.text
    found = tandem.registry.search_all(
        "Observation", {"subject": "Patient/smi-0005", "code": SOCIAL.search_codes}
    )
    assert found == []


def test_a_registry_failure_saves_none_of_the_days_answers_and_keeps_them_on_the_form(
    smi_world: SandboxWorld, browser: Browser, tandem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch_id, careplan_id = _enrol_smi(smi_world, browser, "smi-0004")
    page = f"{smi_world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}"
    form, target = browser.form(page, f"/app/{launch_id}/enrolments/{careplan_id}/social")
    calls: list[Any] = []

    def refuse(bundle: Any) -> Any:  # fault injection: the registry store answers 503 to the write
        calls.append(bundle)
        raise errors.FHIRServerError("the registry store is unavailable", http_status=503)

    monkeypatch.setattr(tandem.registry, "transaction", refuse)
    answers = {"social_day": date.today().isoformat(), "social-housing": "unhoused", "social-justice": "yes"}
    failed = browser.post_from(page, target, {**form.hidden, **answers})
    assert failed.status_code == 503 and "The registry did not save the answers" in failed.text
    assert 'value="unhoused" selected' in failed.text and 'value="yes" selected' in failed.text  # kept
    assert len(calls) == 1 and len(calls[0]["entry"]) == 2  # both answers in one transaction
    monkeypatch.undo()
    key = PatientKey(smi_world.iss("generic"), "smi-0004")
    with pytest.raises(errors.FHIRNotFound):  # nothing of that day was written
        tandem.registry.read("Observation", observation_id(key, "housing", date.today()))

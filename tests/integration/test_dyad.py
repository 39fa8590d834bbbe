"""Dyadic care over HTTP: a caregiver's screen taken from the child's chart is recorded on the child with the
caregiver as focus and performer, its safety alert names the caregiver, the EHR is told whose screen it is (focus
when the EHR holds the caregiver, else a note), and nothing is written to the caregiver's own chart."""

from __future__ import annotations

import base64
import html
import re
from typing import Any

import pytest
import requests

from fhir_mappings.common.caregivers import EHR_COPY_URL, registry_id
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.resources import SUBMISSION_SYSTEM
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration

#: Children 0–3 of the shared test world, each with a mother in the EHR (sandbox/data.py `_dyad`).
PHQ9_ITEM9_POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}


def _ehr_search(base: str, resource_type: str, **params: str) -> list[dict[str, Any]]:
    bundle = requests.get(f"{base}/{resource_type}", params={**params, "_count": "200"}, timeout=10).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _mother(world: SandboxWorld, child: str) -> tuple[str, str]:
    """The EHR RelatedPerson id of the child's mother and the label Tandem shows."""
    related = next(
        r for r in world.cohort.of_type("RelatedPerson") if r["patient"]["reference"] == f"Patient/{child}"
    )
    name = related["name"][0]
    return related["id"], f"Mother ({' '.join(name['given'])} {name['family']})"


def _screen(browser: Browser, page: str, answers: dict[str, str]) -> requests.Response:
    form, target = browser.form(page)
    assert form.hidden.get("caregiver"), "the form carries the caregiver it is about"
    answer = browser.post_from(page, target, {**form.hidden, **answers})
    assert answer.status_code == 303, answer.text[-800:]
    return answer


def test_a_mothers_phq9_on_the_childs_chart_names_her_everywhere(world: SandboxWorld, browser: Browser,
                                                                 tandem: Any) -> None:  # fmt: skip
    child = "pt-0008"
    ehr_rp, label = _mother(world, child)
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=child)))
    base = f"{world.tandem_url}/app/{launch_id}"
    chart = html.unescape(browser.get(f"{base}/").text)
    assert "Caregivers" in chart and label in chart and "the EHR" in chart
    caregiver = registry_id(PatientKey(world.iss("generic"), child), ehr_rp)
    assert f"/screen/phq9?caregiver={caregiver}" in chart
    assert '/screen/phq9"' not in chart, "no PHQ-9 of the child's own"

    page = f"{base}/screen/phq9?caregiver={caregiver}"
    shown = html.unescape(browser.get(page).text)
    assert f"{label}: " in shown and "not the child's own result" in shown
    answer = _screen(browser, page, PHQ9_ITEM9_POSITIVE)
    result = html.unescape(browser.get(world.tandem_url + answer.headers["Location"]).text)
    assert f"Safety alert — {label}" in result
    assert f"Caregiver's screen — {label}" in result
    assert re.search(r'<td>EHR \(.*?\)</td><td class="status-saved">saved', result), result[-2000:]
    submission = answer.headers["Location"].rstrip("/").split("/")[-1]

    # Registry: the caregiver's RelatedPerson (a copy of the EHR's), the QR by her, the Observations about her.
    copy = tandem.registry.read("RelatedPerson", caregiver)
    assert copy["patient"]["identifier"] == {"system": world.iss("generic"), "value": child}
    assert any(e["url"] == EHR_COPY_URL and e["valueReference"]["reference"] == f"RelatedPerson/{ehr_rp}"
               for e in copy["extension"])  # fmt: skip
    qr = tandem.registry.read("QuestionnaireResponse", f"tandem-{submission}-qr")
    assert (
        qr["subject"]["reference"] == PatientKey(world.iss("generic"), child).relative
    )  # the registry Patient
    assert qr["author"]["reference"] == qr["source"]["reference"] == f"RelatedPerson/{caregiver}"
    total = tandem.registry.search_all(
        "Observation", {"identifier": f"{SUBMISSION_SYSTEM}|{submission}#total"}
    )[0]
    assert total["subject"]["reference"] == PatientKey(world.iss("generic"), child).relative
    assert (
        total["focus"][0]["reference"] == total["performer"][0]["reference"] == f"RelatedPerson/{caregiver}"
    )
    assert total["encounter"]["reference"] == f"Encounter/{child}-enc"
    task = tandem.registry.search_all("Task", {"identifier": f"{SUBMISSION_SYSTEM}|{submission}#safety"})[0]
    assert task["priority"] == "stat" and label in task["description"]
    assert task["for"]["reference"] == PatientKey(world.iss("generic"), child).relative

    # EHR (generic accepts structured results): focus is the EHR's own RelatedPerson; the child is the subject.
    written = [o for o in _ehr_search(world.ehr.base_url, "Observation", patient=child)
               if any(i["value"].startswith(submission) for i in o.get("identifier", []))]  # fmt: skip
    assert written and all(o["focus"][0]["reference"] == f"RelatedPerson/{ehr_rp}" for o in written)
    assert all(o["subject"]["reference"] == f"Patient/{child}" for o in written)

    # The chart: the alert names her, her series is hers, the child has no PHQ-9 of its own.
    chart = html.unescape(browser.get(f"{base}/").text)
    assert f"Safety alert — Caregiver's screen — {label} — not yet acknowledged" in chart
    assert f"{label}: PHQ-9" in chart
    assert "<strong>PHQ-9</strong>" not in chart


@pytest.mark.parametrize("mode", ["epic", "oracle"])
def test_where_the_ehr_takes_notes_the_note_says_whose_screen_it_is(world: SandboxWorld, browser: Browser,
                                                                    mode: str) -> None:  # fmt: skip
    child = {"epic": "pt-0013", "oracle": "pt-0022"}[mode]
    ehr_rp, label = _mother(world, child)
    launch_id = launch_id_of(browser.follow(launch_url(world, mode, patient=child)))
    caregiver = registry_id(PatientKey(world.iss(mode), child), ehr_rp)
    answer = _screen(browser, f"{world.tandem_url}/app/{launch_id}/screen/phq9?caregiver={caregiver}",
                     PHQ9_ITEM9_POSITIVE)  # fmt: skip
    submission = answer.headers["Location"].rstrip("/").split("/")[-1]
    notes = [d for d in _ehr_search(world.ehr.base_url, "DocumentReference", patient=child)
             if d["identifier"][0]["value"] == f"{submission}#note"]  # fmt: skip
    assert len(notes) == 1 and notes[0]["subject"]["reference"] == f"Patient/{child}"
    text = base64.b64decode(notes[0]["content"][0]["attachment"]["data"]).decode()
    assert text.startswith(f"SAFETY ALERT (Caregiver's screen — {label})")
    assert "not the child's own result" in text
    assert notes[0]["description"].startswith(f"Caregiver's screen — {label}")


def test_a_caregiver_recorded_in_tandem_is_linked_and_gets_a_note_never_her_own_chart(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    child, father_patient = "pt-0002", "pt-0001"
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=child)))
    base = f"{world.tandem_url}/app/{launch_id}"
    refused = browser.submit(
        f"{base}/", {"name": "", "relationship": "FTH"}, action=f"/app/{launch_id}/caregivers"
    )
    assert refused.status_code == 422 and "Enter the caregiver" in refused.text
    wrong = browser.submit(f"{base}/", {"name": "Sam Okafor", "relationship": "FTH", "patient_id": child},
                           action=f"/app/{launch_id}/caregivers")  # fmt: skip
    assert wrong.status_code == 422 and "not the child" in html.unescape(wrong.text)
    recorded = browser.submit(f"{base}/", {"name": "Sam Okafor", "relationship": "FTH",
                                           "patient_id": father_patient}, action=f"/app/{launch_id}/caregivers")  # fmt: skip
    assert recorded.status_code == 303
    chart = html.unescape(browser.get(f"{base}/").text)
    assert "Father (Sam Okafor)" in chart and "also a patient here" in chart
    caregiver = re.search(
        r'href="[^"]*/screen/phq9\?caregiver=([^"]+)" aria-label="PHQ-9 with the Father', chart
    )
    assert caregiver, chart[-3000:]
    answer = _screen(browser, f"{base}/screen/phq9?caregiver={caregiver.group(1)}",
                     {f"phq9-{n}": "LA6568-5" for n in range(1, 10)})  # fmt: skip
    submission = answer.headers["Location"].rstrip("/").split("/")[-1]
    result = html.unescape(browser.get(world.tandem_url + answer.headers["Location"]).text)
    assert "recorded only in Tandem" in result  # the plan says why a note goes instead of structured results
    ours = [r for t in ("Observation", "QuestionnaireResponse", "DocumentReference")
            for r in _ehr_search(world.ehr.base_url, t) if submission in str(r.get("identifier"))]  # fmt: skip
    assert [r["resourceType"] for r in ours] == ["DocumentReference"]
    assert ours[0]["subject"]["reference"] == f"Patient/{child}", "nothing goes to the father's own chart"
    held = tandem.registry.read("RelatedPerson", caregiver.group(1))
    assert held["relationship"][0]["coding"][0]["code"] == "FTH"
    linked = [e for e in held["extension"] if e["url"].endswith("caregiver-patient")]
    assert linked[0]["valueReference"]["identifier"] == {
        "system": world.iss("generic"),
        "value": father_patient,
    }


def test_the_visit_schedule_lists_the_family_needs_screen_until_a_caregiver_answers_it(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    child = "pt-0022"
    ehr_rp, label = _mother(world, child)
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient=child)))
    base = f"{world.tandem_url}/app/{launch_id}"
    chart = html.unescape(browser.get(f"{base}/").text)
    assert "HealthySteps visit schedule" in chart
    assert "Due:</strong> Yearly family needs screen (caregiver; none on record)." in chart
    caregiver = registry_id(PatientKey(world.iss("generic"), child), ehr_rp)
    assert f"AHC HRSN with the {label}" in chart
    answer = _screen(browser, f"{base}/screen/ahc-hrsn?caregiver={caregiver}",
                     {"ahc-1": "steady", "ahc-2": "no", "ahc-3": "sometimes", "ahc-4": "never", "ahc-5": "no",
                      "ahc-6": "no"})  # fmt: skip
    result = html.unescape(browser.get(world.tandem_url + answer.headers["Location"]).text)
    assert "Social needs: one or more needs" in result and "Positive: food." in result
    submission = answer.headers["Location"].rstrip("/").split("/")[-1]
    total = tandem.registry.search_all(
        "Observation", {"identifier": f"{SUBMISSION_SYSTEM}|{submission}#total"}
    )[0]
    assert total["code"]["coding"][0] == {"system": "https://tandem.health/fhir/CodeSystem/instrument",
                                          "code": "ahc-hrsn", "display": "AHC HRSN result"}  # fmt: skip
    assert total["interpretation"][0]["coding"][0]["code"] == "positive"
    chart = html.unescape(browser.get(f"{base}/").text)
    assert "Yearly family needs screen" not in chart

"""Screenings submitted through Tandem over HTTP, written to the registry store and to the sandbox EHR in each
vendor mode (generic, Epic-like, Oracle-like)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import requests

from fhir_mappings.screening.resources import SUBMISSION_SYSTEM
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration

PHQ9_ITEM9_POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}


def _form(browser: Browser, world: SandboxWorld, launch_id: str, key: str) -> dict[str, str]:
    """The hidden fields of a freshly opened screening form: its CSRF token and its server-minted id."""
    form, _ = browser.form(f"{world.tandem_url}/app/{launch_id}/screen/{key}")
    return form.hidden


def _search(base: str, resource_type: str, **params: str) -> list[dict[str, Any]]:
    bundle = requests.get(f"{base}/{resource_type}", params={**params, "_count": "100"}, timeout=10).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def _registry_search(tandem: Any, resource_type: str, **params: str) -> list[dict[str, Any]]:
    return tandem.registry.search_all(resource_type, params)


@pytest.mark.parametrize(
    ("mode", "expected_ehr"), [("generic", "structured"), ("epic", "note"), ("oracle", "note")]
)
def test_phq9_with_positive_item_9_is_written_everywhere_once(world: SandboxWorld, browser: Browser, tandem: Any,
                                                              mode: str, expected_ehr: str) -> None:  # fmt: skip
    patient = {"generic": "pt-0021", "epic": "pt-0007", "oracle": "pt-0024"}[
        mode
    ]  # adults (PHQ-9 is from 18 y)
    launch_id = launch_id_of(browser.follow(launch_url(world, mode, patient=patient)))
    hidden = _form(browser, world, launch_id, "phq9")
    submitted = {**hidden, **PHQ9_ITEM9_POSITIVE}
    answer = browser.post(
        f"{world.tandem_url}/app/{launch_id}/screen/phq9", data=submitted, allow_redirects=False
    )
    assert answer.status_code == 303
    result = browser.get(world.tandem_url + answer.headers["Location"])
    assert "Safety alert" in result.text and "same-day follow-up" in result.text
    assert re.search(r'<td>Tandem registry</td><td class="status-saved">saved', result.text)
    assert re.search(r'<td>EHR \(.*?\)</td><td class="status-saved">saved', result.text), result.text[-2500:]
    submission = hidden["submission_id"]

    # The same form posted again (double click, retry): nothing new anywhere.
    again = browser.post(
        f"{world.tandem_url}/app/{launch_id}/screen/phq9", data=submitted, allow_redirects=False
    )
    assert again.headers["Location"] == answer.headers["Location"]

    # Registry: the QuestionnaireResponse, the total and item 9, and the safety Task, once each.
    # (sekmet-fhir has no QuestionnaireResponse search parameters: list them all and filter here.)
    qr = _registry_search(tandem, "QuestionnaireResponse")
    assert [r["id"] for r in qr if r.get("identifier", {}).get("value") == submission] == [
        f"tandem-{submission}-qr"
    ]
    tasks = _registry_search(tandem, "Task", identifier=f"{SUBMISSION_SYSTEM}|{submission}#safety")
    assert len(tasks) == 1 and tasks[0]["priority"] == "stat" and tasks[0]["status"] == "requested"
    totals = _registry_search(tandem, "Observation", identifier=f"{SUBMISSION_SYSTEM}|{submission}#total")
    assert len(totals) == 1 and totals[0]["valueInteger"] == 17
    assert totals[0]["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/tandem-{submission}-qr"

    # EHR: what this vendor accepts, once.
    ehr_base = world.ehr.base_url
    notes = [d for d in _search(ehr_base, "DocumentReference", patient=patient)
             if d["identifier"][0]["value"] == f"{submission}#note"]  # fmt: skip
    ehr_observations = [o for o in _search(ehr_base, "Observation", patient=patient)
                        if any(i["value"].startswith(submission) for i in o.get("identifier", []))]  # fmt: skip
    if expected_ehr == "structured":
        assert notes == []
        assert sorted(o["code"]["coding"][0]["code"] for o in ehr_observations) == ["44260-8", "44261-6"]
        ehr_qr = [
            q
            for q in _search(ehr_base, "QuestionnaireResponse")
            if q.get("identifier", {}).get("value") == submission
        ]
        assert len(ehr_qr) == 1
        assert (
            ehr_observations[0]["derivedFrom"][0]["reference"] == f"QuestionnaireResponse/{ehr_qr[0]['id']}"
        )
    else:
        assert ehr_observations == []
        assert len(notes) == 1
        text = base64.b64decode(notes[0]["content"][0]["attachment"]["data"]).decode()
        assert (
            "SAFETY ALERT" in text
            and "PHQ-9 17" in text
            and "Thoughts that you would be better off dead" in text
        )
        assert notes[0]["context"]["encounter"][0]["reference"] == f"Encounter/{patient}-enc"

    # The chart shows the new score merged once, and the alert until it is acknowledged.
    chart = browser.get(f"{world.tandem_url}/app/{launch_id}/")
    assert "Safety alert — not yet acknowledged" in chart.text
    assert chart.text.count("<td>17</td>") == 1
    ack = browser.submit(
        f"{world.tandem_url}/app/{launch_id}/screenings/{submission}",
        action=f"/screenings/{submission}/acknowledge",
    )
    assert ack.status_code == 303
    assert "not yet acknowledged" not in browser.get(f"{world.tandem_url}/app/{launch_id}/").text


def test_invalid_answers_are_refused_and_nothing_is_written(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient="pt-0009")))
    hidden = _form(browser, world, launch_id, "gad7")
    refused = browser.post(f"{world.tandem_url}/app/{launch_id}/screen/gad7",
                           data={**hidden, "gad7-1": "LA6568-5", "gad7-2": "seven"})  # fmt: skip
    assert refused.status_code == 422
    assert (
        "question 2 (Not being able to stop or control worrying): &#39;seven&#39; is not one of its answers"
        in refused.text
    )
    assert 'value="LA6568-5" checked' in refused.text  # what was entered is kept
    assert tandem.screenings.load(hidden["submission_id"]) is None


def test_questionnaires_are_published_once_per_version(world: SandboxWorld, tandem: Any) -> None:
    from fhir_mappings.screening.instruments import INSTRUMENTS

    def ours() -> list[tuple[str, str]]:
        found = tandem.registry.search_all("Questionnaire", {"_count": "200"})
        return sorted(
            (q["url"], q["version"]) for q in found if q.get("url", "").startswith("https://tandem.health/")
        )

    # Once per canonical URL and version. The id is the store's: a store with Questionnaire search parameters
    # (HAPI) takes the conditional create and assigns it; one without (sekmet) gets update-as-create `tandem-<key>`.
    expected = sorted((i.url, i.version) for i in INSTRUMENTS.values())
    assert ours() == expected
    for key in list(INSTRUMENTS):  # forget that they were published, as a new deployment would
        tandem.store.delete(
            f"questionnaire-published:{tandem.registry.base_url}:{INSTRUMENTS[key].canonical}"
        )
    tandem.screenings.publish_questionnaires()
    assert ours() == expected
    phq9 = tandem.registry.search_all("Questionnaire", {"url": INSTRUMENTS["phq9"].url})
    phq9 = phq9[0] if len(phq9) == 1 else tandem.registry.read("Questionnaire", "tandem-phq9")
    assert phq9["url"] == INSTRUMENTS["phq9"].url and phq9["version"] == INSTRUMENTS["phq9"].version

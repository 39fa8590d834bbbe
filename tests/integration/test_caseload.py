"""The care manager's side over HTTP against the sandbox: enrol, contacts, worklist, case review, billing,
and two care managers editing one enrolment."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.worklist import Scores
from sandbox.world import SandboxWorld

from ..forms import form_in
from .conftest import Browser, launch_id_of, launch_url

pytestmark = pytest.mark.integration


def enrol(
    world: SandboxWorld,
    browser: Browser,
    patient: str,
    program: str = "cocm-depression",
    mode: str = "generic",
) -> tuple[str, str]:
    chart = browser.follow(launch_url(world, mode, patient=patient, practitioner="pr-cm-1"))
    launch_id = launch_id_of(chart)
    assert "nrol in the registry" in chart.text  # "Enrol", or "Re-enrol" after a discharge
    page = f"{world.tandem_url}/app/{launch_id}/enrol"
    form, target = browser.form(page)
    assert "Irene Castellanos — Psychiatric consultant" in browser.get(page).text  # pickers show roles
    fields = {**form.hidden, "program": program, "pcp": "Practitioner/pr-pcp-1",
              "care-manager": "Practitioner/pr-cm-1", "psychiatric-consultant": "Practitioner/pr-psy-1",
              "consent": "yes", "consent_method": "verbal"}  # fmt: skip
    done = browser.post_from(page, target, fields)
    assert done.status_code == 303, done.text[-1500:]
    again = browser.post_from(page, target, fields)
    assert again.headers["Location"] == done.headers["Location"]  # a resubmitted form enrols once
    return launch_id, done.headers["Location"].rstrip("/").split("/")[-1]


def test_enrolment_needs_consent(world: SandboxWorld, browser: Browser) -> None:
    launch_id = launch_id_of(browser.follow(launch_url(world, "generic", patient="pt-0011")))
    refused = browser.submit(f"{world.tandem_url}/app/{launch_id}/enrol", {"program": "cocm-depression"})
    assert refused.status_code == 422 and "needs the patient&#39;s consent" in refused.text


def test_care_manager_flow(world: SandboxWorld, browser: Browser, tandem: Any) -> None:
    launch_id, careplan_id = enrol(world, browser, "pt-0012")
    base = f"{world.tandem_url}/app/{launch_id}"
    detail = browser.get(f"{base}/enrolments/{careplan_id}")
    assert detail.status_code == 200 and "Active treatment" in detail.text
    enrolment = tandem.caseload.get(careplan_id, world.iss("generic"))
    assert enrolment.consent_given and enrolment.consent_method == "verbal"
    assert enrolment.member("care-manager").display == "Teresa Lindqvist"

    for minutes, kind in ((25, "phone"), (20, "in-person")):
        logged = browser.submit(f"{base}/enrolments/{careplan_id}", action="/contact", data={
            "minutes": str(minutes), "contact_type": kind, "role": "care-manager",
            "note": "Behavioral activation plan"})  # fmt: skip
        assert logged.status_code == 303
    discussed = browser.submit(f"{base}/enrolments/{careplan_id}", action="/contact", data={
        "minutes": "10", "contact_type": "video", "role": "care-manager", "discuss": "1"})  # fmt: skip
    assert discussed.status_code == 303
    detail = browser.get(f"{base}/enrolments/{careplan_id}")
    assert "99492" in detail.text  # 55 minutes in the first month
    assert "Flagged for review" in detail.text

    # The chart launch is for one patient: the caseload needs the EHR's worklist launch.
    assert browser.get(f"{base}/worklist", params={"who": "all"}).status_code == 403
    worklist = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    launch_id = launch_id_of(worklist)
    base = f"{world.tandem_url}/app/{launch_id}"
    worklist = browser.get(f"{base}/worklist", params={"who": "all"})
    row = re.search(
        rf'<a href="/app/{launch_id}/enrolments/{careplan_id}">([^<]+)</a>(.*?)</tr>', worklist.text, re.S
    )
    assert row, worklist.text[-2000:]
    assert "Flagged for review" in row.group(2) and "New (never reviewed)" in row.group(2)
    assert re.search(r"<td>55 <span", row.group(2))  # minutes this month, with the code they reach
    mine = browser.get(f"{base}/worklist", params={"who": "mine", "flag": "review"})
    assert careplan_id in mine.text
    by_minutes = browser.get(f"{base}/worklist", params={"who": "all", "column": "minutes", "value": ">=50"})
    assert careplan_id in by_minutes.text
    assert careplan_id not in browser.get(f"{base}/worklist", params={"who": "all", "column": "minutes",
                                                                      "value": "<50"}).text  # fmt: skip
    exported = browser.get(f"{base}/worklist.csv", params={"who": "all"})
    records = list(csv.DictReader(io.StringIO(exported.text)))
    me = next(r for r in records if r["MRN"] == "MRN100011")
    assert (
        me["Minutes this month"] == "55" and "review" in me["Flags"] and me["Billing this month"] == "99492"
    )

    review = browser.get(f"{base}/review")
    assert careplan_id in review.text
    closed = browser.submit(f"{base}/review", action=f"/review/{careplan_id}",
                            data={"recommendations": "Start sertraline 50 mg; PHQ-9 in 2 weeks"})  # fmt: skip
    assert closed.status_code == 303
    after = tandem.caseload.get(careplan_id, world.iss("generic"))
    assert not after.flagged_for_review
    tasks = [t for t in tandem.caseload.load(use_cache=False).tasks if t.careplan_id == careplan_id]
    assert tasks and all(not t.open for t in tasks if t.kind == "case-review")
    assert any(t.recommendations == "Start sertraline 50 mg; PHQ-9 in 2 weeks" for t in tasks)
    worklist = browser.get(f"{base}/worklist", params={"who": "all"})
    row = re.search(rf'enrolments/{careplan_id}">[^<]+</a>(.*?)</tr>', worklist.text, re.S)
    assert row and "New (never reviewed)" not in row.group(1) and "Flagged for review" not in row.group(1)

    report = browser.get(f"{base}/billing", params={"format": "csv"})
    lines = list(csv.DictReader(io.StringIO(report.text)))
    mine_line = next(line for line in lines if line["MRN"] == "MRN100011")
    assert (
        mine_line["Code"] == "99492"
        and mine_line["Minutes"] == "55"
        and mine_line["Care manager"] == "Teresa Lindqvist"
    )


def test_two_care_managers_editing_one_enrolment(world: SandboxWorld, tandem: Any) -> None:
    first, second = Browser(), Browser()
    launch_id, careplan_id = enrol(world, first, "pt-0019")
    other_launch = launch_id_of(second.follow(launch_url(world, "generic", patient=None, target="worklist",
                                                         practitioner="pr-cm-2")))  # fmt: skip
    page_a = f"{world.tandem_url}/app/{launch_id}/enrolments/{careplan_id}"
    page_b = f"{world.tandem_url}/app/{other_launch}/enrolments/{careplan_id}"
    form_a, target_a = first.form(page_a, "/update")
    form_b, target_b = second.form(page_b, "/update")  # both opened the page before either saved
    version = form_a.hidden["version"]
    assert version == form_b.hidden["version"]
    saved = first.post_from(page_a, target_a, {**form_a.hidden, "phase": "relapse-prevention", "flag": "0"})
    assert saved.status_code == 303
    stale = second.post_from(page_b, target_b, {**form_b.hidden, "phase": "discharged", "flag": "0"})
    assert stale.status_code == 409
    assert "Someone else changed this enrolment" in stale.text
    assert "status is now relapse prevention (you were changing it to discharged)" in stale.text
    assert (
        tandem.caseload.get(careplan_id, world.iss("generic")).phase == "relapse-prevention"
    )  # the second write was not applied
    assert (
        form_in(stale.text, "/update", page=page_b).hidden["version"] != version
    )  # the page now has the latest


def test_worklist_requests_grow_with_pages_not_patients_and_are_cached(world: SandboxWorld, browser: Browser,
                                                                        tandem: Any) -> None:  # fmt: skip
    tandem.caseload.invalidate()
    cold = tandem.caseload.load()
    assert 3 <= cold.requests <= 6  # CarePlans, Tasks, Observations: one page each at this size
    warm = tandem.caseload.load()
    assert warm.requests == 0 and len(warm.enrolments) == len(cold.enrolments)
    enrol(world, browser, "pt-0014", program="cocm-anxiety")  # a write invalidates the cache
    assert any(e.patient_id == "pt-0014" for e in tandem.caseload.load().enrolments)


def test_discharge_and_re_enrolment(world: SandboxWorld, browser: Browser, tandem: Any) -> None:
    launch_id, careplan_id = enrol(world, browser, "pt-0017")
    base = f"{world.tandem_url}/app/{launch_id}"
    discharged = browser.submit(f"{base}/enrolments/{careplan_id}", {"phase": "discharged", "flag": "0"},
                                action="/update")  # fmt: skip
    assert discharged.status_code == 303
    first = tandem.caseload.get(careplan_id, world.iss("generic"))
    assert first.phase == "discharged" and first.end is not None
    chart = browser.get(f"{base}/")
    assert "Re-enrol in the registry" in chart.text and "discharged" in chart.text
    worklist = browser.get(f"{base}/worklist", params={"who": "all"})
    assert careplan_id not in worklist.text  # discharged patients leave the worklist
    _, second_id = enrol(world, browser, "pt-0017")
    assert second_id != careplan_id
    assert [e.active for e in tandem.caseload.enrolments_for(world.iss("generic"), "pt-0017")] == [
        True,
        False,
    ]


def test_ehr_scores_reach_the_worklist_after_a_chart_open(
    world: SandboxWorld, browser: Browser, tandem: Any
) -> None:
    """pt-0016 has seven PHQ-9s in the EHR and none recorded in Tandem (enrolled here at the Epic-like EHR: at the
    generic one the browser tests enrol it)."""
    launch_id, careplan_id = enrol(world, browser, "pt-0016", mode="epic")
    key = PatientKey(world.iss("epic"), "pt-0016")
    assert tandem.ehr_scores.for_patient(key) == []  # not enrolled when its chart was first opened
    chart = browser.get(f"{world.tandem_url}/app/{launch_id}/")  # the next chart open copies what it read
    assert chart.status_code == 200
    copied = tandem.ehr_scores.for_patient(key)
    assert len(copied) == 7 and {p.source for p in copied} == {"EHR"}

    manager = Browser()
    worklist = manager.follow(
        launch_url(world, "epic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    page = manager.get(f"{world.tandem_url}/app/{launch_id_of(worklist)}/worklist", params={"who": "all"})
    row = re.search(rf'enrolments/{careplan_id}">[^<]+</a>(.*?)</tr>', page.text, re.S)
    assert row, page.text[-1500:]
    expected = Scores.of(copied, date.today(), 30, 14)  # the program's baseline window
    assert expected.first is not None and expected.latest is not None
    assert f"{expected.first} → <strong>{expected.latest}</strong>" in row.group(1)
    assert '<span class="source small">EHR</span>' in row.group(1)  # each score says where it came from


def test_worklist_review_safety_and_chart_pages_never_load_the_whole_caseload(
    world: SandboxWorld, browser: Browser, tandem: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 27 §2: a view costs the rows it shows. The worklist, the case review, the safety follow-ups (and
    # every page's header counting them) read the ready rows; a chart reads its patient only.
    from .test_parked_form_kinds import patient as make_patient

    patient = make_patient(world, "wl-whole")  # a patient of its own: pt-0021 is test_registry_versions'
    _, careplan_id = enrol(world, browser, patient)
    worklist = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    base = f"{world.tandem_url}/app/{launch_id_of(worklist)}"

    def whole_caseload(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the whole caseload was loaded")

    monkeypatch.setattr(tandem.caseload, "load", whole_caseload)
    for path, shows in (("/worklist?who=all", "MRN"), ("/worklist?who=all&sort=patient&order=desc", "MRN"),
                        ("/worklist.csv?who=all", "Patient"), ("/review?who=all", "review"),
                        ("/safety", "afety"), (f"/enrolments/{careplan_id}", "Active treatment")):  # fmt: skip
        page = browser.get(f"{base}{path}")
        assert page.status_code == 200 and shows in page.text, path
    chart = browser.follow(launch_url(world, "generic", patient=patient, practitioner="pr-cm-1"))
    assert chart.status_code == 200 and "Registry enrolments" not in chart.text  # no part failed

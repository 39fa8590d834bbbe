"""Patients answering themselves, over HTTP against the sandbox: the portal launch (the patient; a parent with
proxy access), one question per screen, a positive item 9 raising the care team's alert and Task and showing 988,
the result patient-reported on the registry, chart and worklist; and the care manager's single-use link with the
date-of-birth check."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest

from fhir_mappings.common.identity import PatientKey, patient_key
from fhir_mappings.registry.resources import Enrolment, Member
from fhir_mappings.screening.history import is_patient_reported
from fhir_mappings.screening.resources import resource_id
from sandbox.world import SandboxWorld

from .conftest import Browser, launch_url

pytestmark = pytest.mark.integration
POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}
NEGATIVE = {f"phq9-{n}": "LA6568-5" for n in range(1, 10)}


def _enrolled(world: SandboxWorld, tandem: Any, pid: str) -> None:
    iss = world.iss("generic")
    if any(
        e.active
        for e in tandem.caseload.load(use_cache=False).enrolments_of(
            __import__("fhir_mappings.common.identity", fromlist=["PatientKey"]).PatientKey(iss, pid)
        )
    ):
        return
    start = date.today() - timedelta(days=60)
    tandem.caseload.enrol(Enrolment(
        id=f"sr-{pid}", iss=iss, patient_id=pid, patient_name=None, program="cocm-depression",
        phase="active-treatment", start=start, consent_given=True, consent_date=start, consent_method="verbal",
        team={"care-manager": Member("Practitioner/pr-cm-1", "Teresa Lindqvist")}))  # fmt: skip


def _portal(world: SandboxWorld, browser: Browser, pid: str, target: str = "portal") -> tuple[str, str]:
    page = browser.follow(f"{world.sandbox_url}/launch-app?mode=generic&target={target}&patient={pid}")
    assert page.status_code == 200 and "/me/" in page.url, (page.status_code, page.url)
    return page.url, page.text


def _registry_qr(tandem: Any, record_id: str) -> dict[str, Any]:
    found: dict[str, Any] = tandem.registry.read("QuestionnaireResponse", resource_id(record_id, "qr"))
    return found


def _due_adult(world: SandboxWorld, skip: tuple[str, ...] = ()) -> str:
    """An adult of the cohort with no PHQ-9 in the last five weeks (a PHQ-9 is due once enrolled)."""
    last: dict[str, date] = {}
    for o in world.cohort.of_type("Observation"):
        codes = {c.get("code") for c in o.get("code", {}).get("coding", [])}
        if codes & {"44261-6", "89204-2"}:
            pid = o["subject"]["reference"].split("/")[-1]
            day = date.fromisoformat(o["effectiveDateTime"][:10])
            last[pid] = max(day, last.get(pid, day))
    adults = [p["id"] for p in world.cohort.of_type("Patient") if p["birthDate"] < "2000-01-01"]
    return next(pid for pid in reversed(adults) if pid not in skip
                and (pid not in last or (date.today() - last[pid]).days > 35))  # fmt: skip


def test_a_patient_answers_a_phq9_one_question_per_screen_and_the_care_team_is_alerted(
    world: SandboxWorld, tandem: Any, browser: Browser
) -> None:
    pid = _due_adult(world)
    _enrolled(world, tandem, pid)
    home, text = _portal(world, browser, pid)
    assert "PHQ-9" in text and "worklist" not in text.lower()
    one = re.search(r'href="([^"]*/me/q/phq9\?one=1)"', text)
    assert one, text[-1500:]
    # One question per page (issue 28): each answer is posted and redirected (303) to the next question's own page.
    page = browser.follow(world.tandem_url + unescape(one.group(1))).url
    shown = None
    for _ in range(12):  # nine questions and the difficulty question, one per page
        assert re.search(r"/me/q/phq9/\d+$", page), page
        form, target = browser.form(page)
        text = browser.get(page).text
        assert text.count('<fieldset class="question"') == 1  # one question per page
        link_id = re.search(r'<fieldset class="question" id="q-([^"]+)"', text).group(1)  # type: ignore[union-attr]
        first_choice = re.search(rf'name="{link_id}" id="[^"]+" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
        shown = browser.post_from(page, target, {**form.hidden, link_id: POSITIVE.get(link_id, first_choice),
                                                 "go": "next"})  # fmt: skip
        assert shown.status_code == 303, shown.text[-800:]
        if "/me/done/" in shown.headers["Location"]:
            break
        page = world.tandem_url + shown.headers["Location"]
    last = shown
    assert last.status_code == 303
    done = browser.get(world.tandem_url + last.headers["Location"])
    assert "988" in done.text and "Your care team has been told" in done.text
    assert re.search(r"\b(9|1[0-9]|2[0-7])\b points?", done.text) is None  # no score shown to the patient
    record_id = last.headers["Location"].rstrip("/").split("/")[-1]
    record = tandem.screenings.load(record_id)
    assert (
        record.author == f"Patient/{pid}"
        and record.result.has_safety_flag
        and record.registry.status == "saved"
    )
    qr = _registry_qr(tandem, record_id)
    # The patient as author is the registry's Patient for (issuer, id), as the subject is.
    assert qr["author"] == qr["source"] == PatientKey(
        world.iss("generic"), pid
    ).reference() and is_patient_reported(qr)
    task = tandem.registry.read("Task", resource_id(record_id, "safety"))
    assert task["priority"] == "stat" and patient_key(task["for"]) == PatientKey(world.iss("generic"), pid)
    # The care manager's worklist: the safety flag and the result marked patient-reported.
    worklist = browser.follow(
        launch_url(world, "generic", patient=None, target="worklist", practitioner="pr-cm-1")
    )
    row = re.search(
        rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(f'sr-{pid}')}(?:(?!</tr>).)*</tr>", worklist.text, re.S
    )
    assert row and "Patient-reported" in row.group(0) and "Safety" in row.group(0), worklist.text[-2000:]


def urlpath(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


def test_a_patient_sees_only_their_own_questionnaires(
    world: SandboxWorld, tandem: Any, browser: Browser
) -> None:
    pid = "pt-0007"
    _enrolled(world, tandem, pid)
    home, text = _portal(world, browser, pid)
    launch = re.search(r"/app/([^/]+)/", home).group(1)  # type: ignore[union-attr]
    for path in ("", "worklist", "safety", f"enrolments/sr-{pid}", "screen/phq9"):
        answer = browser.get(f"{world.tandem_url}/app/{launch}/{path}")
        assert answer.status_code == 403 and "Tandem is for the care team" in answer.text, path
    assert (
        browser.get(f"{world.tandem_url}/app/{launch}/me/q/audit-c").status_code == 404
    )  # not due, not theirs
    assert browser.get(f"{world.tandem_url}/app/{launch}/me/q/cssrs-screener").status_code == 404


def test_a_parent_with_proxy_access_reaches_only_their_own_screens(
    world: SandboxWorld, browser: Browser
) -> None:
    child = next(r["patient"]["reference"].split("/")[-1] for r in world.cohort.of_type("RelatedPerson"))
    home, text = _portal(world, browser, child, target="portal-proxy")
    assert "Hello" in text
    for key in re.findall(r"/me/q/([a-z0-9-]+)", text):
        assert key in ("epds", "phq2", "phq9", "gad7"), key  # the parent's own screens only


def test_a_questionnaire_link_is_single_use_and_asks_the_date_of_birth_first(
    world: SandboxWorld, tandem: Any, browser: Browser
) -> None:
    pid = "pt-0012"
    _enrolled(world, tandem, pid)
    chart = browser.follow(launch_url(world, "generic", patient=pid, practitioner="pr-cm-1"))
    launch = re.search(r"/app/([^/]+)/", chart.url).group(1)  # type: ignore[union-attr]
    careplan = next(
        e.id for e in tandem.caseload.load(use_cache=False).enrolments if e.patient_id == pid and e.active
    )
    made = browser.submit(
        f"{world.tandem_url}/app/{launch}/enrolments/{careplan}/link", {"instrument": "phq9"}
    )
    assert made.status_code == 200, made.text[-800:]
    url = unescape(re.search(r'id="link-url" readonly value="([^"]+)"', made.text).group(1))  # type: ignore[union-attr]
    assert pid not in url and re.fullmatch(r".*/r/[A-Za-z0-9_-]{43}", url)  # unguessable, no PHI
    patient_browser = Browser()
    first = patient_browser.get(url)
    assert first.status_code == 200 and "date of birth" in first.text and "PHQ" not in first.text
    born = date.fromisoformat(next(p for p in world.cohort.of_type("Patient") if p["id"] == pid)["birthDate"])
    wrong = patient_browser.submit(url, {"day": "1", "month": "1", "year": "1900"})
    assert wrong.status_code == 422 and "4 tries left" in wrong.text
    assert patient_browser.get(url.rstrip("/") + "/q").status_code == 410  # nothing before the date of birth
    ok = patient_browser.submit(url, {"day": str(born.day), "month": str(born.month), "year": str(born.year)})
    assert ok.status_code == 303 and ok.headers["Location"].endswith("/start")  # Post/Redirect/Get
    assert "One question at a time" in patient_browser.get(world.tandem_url + ok.headers["Location"]).text
    assert Browser().get(url.rstrip("/") + "/q").status_code == 410  # another browser cannot use the visit
    form_page = patient_browser.get(url.rstrip("/") + "/q")
    assert "PHQ-9" in form_page.text
    answer_form, target = patient_browser.form(url.rstrip("/") + "/q")
    sent = {**answer_form.hidden, **NEGATIVE}
    done = patient_browser.post_from(url, target, sent)
    assert done.status_code == 303 and done.headers["Location"].endswith("/done")  # Post/Redirect/Get
    thanks = patient_browser.get(world.tandem_url + done.headers["Location"])
    assert (
        thanks.status_code == 200
        and "Thank you" in thanks.text
        and "988" not in thanks.text.split("Thank you")[1]
    )
    assert (
        Browser().get(world.tandem_url + done.headers["Location"]).status_code == 410
    )  # this visit's page only
    assert patient_browser.get(url).status_code == 410  # used once
    again = patient_browser.post_from(url, target, sent)  # Back + send again: the first result, nothing saved
    assert again.status_code == 303 and again.headers["Location"] == done.headers["Location"]
    saved = [
        r for r in tandem.screenings.for_patient(world.iss("generic"), pid) if r.author == f"Patient/{pid}"
    ]
    assert saved and saved[0].registry.status == "saved" and saved[0].plan_types == []


def test_five_wrong_dates_of_birth_void_the_link(world: SandboxWorld, tandem: Any) -> None:
    from smartapp.selfreport.links import QuestionnaireLinks

    links = QuestionnaireLinks(tandem.store, tandem.secret_key)
    token, _ = links.create(PatientKey(world.iss("generic"), "pt-0010"), "phq9", date(1980, 1, 2), None, 7)
    browser = Browser()
    url = f"{world.tandem_url}/r/{token}"
    form, _ = browser.form(url)  # a refused date does not spend the form: it is corrected and sent again

    def send(day: str, year: str) -> Any:
        return browser.post_from(url, url, {**form.hidden, "day": day, "month": "1", "year": year})

    for left in (4, 3, 2, 1):
        assert f"{left} tries left" in send("2", "1981").text
    assert send("2", "1981").status_code == 410
    assert send("2", "1980").status_code == 410  # void now


def test_a_standalone_patient_launch_opens_the_patients_own_page(
    world: SandboxWorld, browser: Browser
) -> None:
    picker = browser.follow(launch_url(world, "generic", patient=None, target="standalone"))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', picker.text))
    fields.update(sandbox_patient="pt-0014", sandbox_practitioner="pr-pcp-2", sandbox_user_type="Patient")
    answer = browser.post(f"{world.sandbox_url}/auth/authorize", data=fields, allow_redirects=False)
    page = browser.follow(answer.headers["Location"])
    assert page.status_code == 200 and re.search(r"/app/[^/]+/me/$", page.url), page.url
    assert "Hello" in page.text and "worklist" not in page.text.lower()

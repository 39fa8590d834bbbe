"""The whole CDS Hooks loop over HTTP: the sandbox EHR opens a chart, calls Tandem's `patient-view` with its
signed JWT (prefetch in the generic EHR, only a FHIR token in the Oracle-like one), shows the cards; a card's link
launches Tandem straight on its page (appContext, or the opaque key where the EHR drops appContext); a dismissal
comes back as feedback. Registry cards (not improving, no contact, open safety Task) from a real registry."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from fhir_mappings.registry.resources import Enrolment, Member
from fhir_mappings.screening.history import score_points
from fhir_mappings.screening.resources import Submission
from fhir_mappings.screening.scoring import parse_answers, score
from fhir_mappings.screening.writeback import WritebackPlan
from sandbox.world import SandboxWorld

from .conftest import Browser

pytestmark = pytest.mark.integration


def chart_page(
    world: SandboxWorld, patient: str, mode: str = "generic", practitioner: str = "pr-pcp-1"
) -> str:
    url = (f"{world.sandbox_url}/launch-app?mode={mode}&practitioner={practitioner}&target=chart&cds=1"
           f"&patient={patient}")  # fmt: skip
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    return response.text


def summaries(page: str) -> list[str]:
    return [unescape(s) for s in re.findall(r'class="cds-summary">([^<]*)<', page)]


def card_links(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'class="cds-link" target="tandem-frame" href="([^"]*)"', page)]


def _non_improving_patient(world: SandboxWorld, enrolled: set[str]) -> tuple[str, int]:
    """A cohort patient not yet enrolled whose EHR PHQ-9s started at 10 or more and never halved (and their
    first score)."""
    by_patient: dict[str, list[Any]] = {}
    for point in score_points(world.cohort.of_type("Observation"), "EHR"):
        if point.instrument == "PHQ-9" and point.focus is None:
            by_patient.setdefault(point.resource_id or "", []).append(point)
    observations = {
        o["id"]: o["subject"]["reference"].split("/")[-1] for o in world.cohort.of_type("Observation")
    }
    series: dict[str, list[Any]] = {}
    for oid, points in by_patient.items():
        series.setdefault(observations[oid], []).extend(points)
    for pid, points in sorted(series.items()):
        if pid in enrolled:
            continue
        points.sort(key=lambda p: p.when)
        if len(points) >= 3 and points[0].score >= 10 and points[-1].score > points[0].score / 2 \
                and (date.today() - points[0].day).days > 90:  # fmt: skip
            return pid, points[0].score
    raise AssertionError("the cohort has no non-improving PHQ-9 history")


def test_cards_beside_the_chart_and_a_click_opens_tandem_on_the_screening(
    world: SandboxWorld, browser: Browser
) -> None:
    page = chart_page(world, "pt-0002")
    found = summaries(page)
    assert found, page[-2000:]
    assert any(s.startswith("Screening due") for s in found), found
    link = next(h for h, s in zip(card_links(page), found, strict=True) if s.startswith("Screening due"))
    opened = browser.follow(world.sandbox_url + link)
    assert opened.status_code == 200
    assert re.search(r"/app/[^/]+/screen/[a-z0-9-]+$", opened.url), opened.url  # straight to the form
    first = next(s for s in found if s.startswith("Screening due")).removeprefix("Screening due: ")
    assert re.split(r", | and ", first)[0] in unescape(opened.text)  # the instrument the card names
    query = parse_qs(urlsplit(link).query)
    assert "appContext" in query
    # appContext alone (an EHR that drops the link's query string) opens the same page.
    bare = {**{k: v[0] for k, v in query.items()}, "url": query["url"][0].split("?")[0]}
    again = browser.follow(f"{world.sandbox_url}/cds-launch?{urlencode(bare)}")
    assert urlsplit(again.url).path.split("/")[-2:] == urlsplit(opened.url).path.split("/")[-2:], again.url


def test_oracle_like_ehr_without_prefetch_or_appcontext_still_lands_on_the_page(
    world: SandboxWorld, browser: Browser
) -> None:
    page = chart_page(world, "pt-0002", mode="oracle")
    found = summaries(page)
    assert any(s.startswith("Screening due") for s in found), page[-2000:]
    link = next(h for h, s in zip(card_links(page), found, strict=True) if s.startswith("Screening due"))
    opened = browser.follow(world.sandbox_url + link)
    assert re.search(r"/app/[^/]+/screen/[a-z0-9-]+$", opened.url), opened.url  # by the opaque key in the URL


def test_registry_cards_not_improving_no_contact_and_safety(
    world: SandboxWorld, tandem: Any, browser: Browser
) -> None:
    iss = world.iss("generic")
    enrolled = {e.patient_id for e in tandem.caseload.load(use_cache=False).enrolments if e.active}
    pid, _first = _non_improving_patient(world, enrolled)
    start = date.today() - timedelta(days=120)
    tandem.caseload.enrol(Enrolment(
        id=f"cds-{pid}", iss=iss, patient_id=pid, patient_name=None, program="cocm-depression",
        phase="active-treatment", start=start, consent_given=True, consent_date=start, consent_method="verbal",
        team={"care-manager": Member("Practitioner/pr-cm-1", "Teresa Lindqvist")}))  # fmt: skip
    found = summaries(chart_page(world, pid))
    assert any(s.startswith("Not improving in Collaborative Care") for s in found), found
    assert any(s.startswith("No care-manager contact for 120 days") for s in found) or len(found) == 3, found
    # A positive item 9 recorded now: the critical card comes first, and its link opens the safety follow-ups.
    phq = tandem.catalogue.get("phq9")
    answers, _ = parse_answers(phq, {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"})
    submission = Submission(uuid.uuid4().hex, phq, answers, score(phq, answers), pid,
                            datetime.now(UTC).replace(microsecond=0), iss=iss)  # fmt: skip
    tandem.screenings.record(
        submission, iss=iss, vendor="generic", sex=None, plan=WritebackPlan((), "registry only")
    )
    page = chart_page(world, pid)
    found = summaries(page)
    assert found[0].startswith("Open safety follow-up") and "cds-critical" in page
    # Issue 26 §2: the screening and its open follow-up Task state the same alert: the card states it once.
    detail = unescape(re.search(r'class="cds-detail">([^<]*)<', page).group(1))  # type: ignore[union-attr]
    assert detail.count("Assess suicide risk today") == 1, detail
    sentences = [s.strip() for s in re.split(r"(?<=[.:])\s+", detail) if s.strip()]
    assert len(sentences) == len(set(sentences)), detail  # no sentence repeated
    opened = browser.follow(world.sandbox_url + card_links(page)[0])
    assert re.search(r"/app/[^/]+/safety", opened.url), opened.url
    # The not-improving card opens the registry record of the enrolment.
    link = next(h for h, s in zip(card_links(page), found, strict=True) if s.startswith("Not improving"))
    opened = browser.follow(world.sandbox_url + link)
    assert opened.url.rstrip("/").endswith(f"/enrolments/cds-{pid}"), opened.url


def test_a_dismissal_comes_back_as_feedback(world: SandboxWorld, tandem: Any) -> None:
    page = chart_page(world, "pt-0004")
    card = re.search(r'data-card="([^"]+)"', page)
    assert card, page[-1500:]
    service = re.search(r'name="service" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    system = re.search(r'name="system" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    for _ in range(2):  # sent twice: recorded once
        sent = requests.post(f"{world.sandbox_url}/cds-feedback", data={
            "mode": "generic", "service": service, "card": card.group(1), "outcome": "overridden",
            "system": system, "reason": "done-elsewhere"}, timeout=10)  # fmt: skip
        assert "Feedback sent" in sent.text
    summary = world.tandem_app.extensions["tandem_cds"].feedback_summary()
    assert any(counts.get("overridden:done-elsewhere") for counts in summary.values()), summary


def _dismiss(world: SandboxWorld, page: str, index: int, reason: str) -> str:
    """Post the sandbox EHR's dismissal form of the card at `index` with `reason` (as the form's select sends)."""
    forms = re.findall(r'<form method="post" action="/cds-feedback".*?</form>', page, flags=re.S)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', forms[index]))
    sent = requests.post(f"{world.sandbox_url}/cds-feedback", data={**fields, "reason": reason}, timeout=10)
    assert sent.status_code == 200
    return sent.text


def test_the_sandbox_ehr_never_chooses_an_override_reason(world: SandboxWorld, tandem: Any) -> None:
    # Issue 26 §2: the card UI pre-selected the first override reason, so a bare "Dismiss" sent one on the user's
    # behalf. The select now starts on a disabled "Choose a reason" placeholder and is required.
    page = chart_page(world, "pt-0004")
    selects = re.findall(r'<select id="reason-\d+" name="reason"([^>]*)>(.*?)</select>', page, flags=re.S)
    assert selects, page[-1500:]
    for attributes, options in selects:
        assert "required" in attributes
        first, *rest = re.findall(r"<option[^>]*>[^<]*</option>", options)
        assert 'value="" selected disabled>Choose a reason<' in first
        assert rest and not any("selected" in option for option in rest)
    before = world.tandem_app.extensions["tandem_cds"].feedback_summary()
    assert "Choose a reason first" in _dismiss(world, page, 0, "")  # nothing is sent without a reason
    assert world.tandem_app.extensions["tandem_cds"].feedback_summary() == before


def test_overriding_the_safety_card_never_closes_or_hides_the_follow_up(
    world: SandboxWorld, tandem: Any, browser: Browser
) -> None:
    # Issue 26 §2: feedback is counted, never acted on. A clinician dismisses the critical card with each of its
    # override reasons; the next chart open still shows it, the safety follow-up Task stays open and listed.
    pid, iss = "pt-0011", world.iss("generic")
    phq = tandem.catalogue.get("phq9")
    answers, _ = parse_answers(phq, {f"phq9-{n}": "LA6568-5" for n in range(1, 9)} | {"phq9-9": "LA6571-9"})
    submission = Submission(uuid.uuid4().hex, phq, answers, score(phq, answers), pid,
                            datetime.now(UTC).replace(microsecond=0), iss=iss)  # fmt: skip
    record = tandem.screenings.record(
        submission, iss=iss, vendor="generic", sex=None, plan=WritebackPlan((), "registry only")
    )
    tandem.screenings.run(record, None, force=True)  # the registry now holds the open follow-up Task too
    assert tandem.registry.read("Task", submission.resource_id("safety"))["status"] == "requested"
    page = chart_page(world, pid)
    assert summaries(page)[0].startswith("Open safety follow-up")
    # The unacknowledged screening and its open Task state one alert: the card states it once.
    detail = unescape(re.search(r'class="cds-detail">([^<]*)<', page).group(1))  # type: ignore[union-attr]
    assert detail.count("Assess suicide risk today") == 1, detail
    reasons = re.findall(
        r'<option value="([^"]+)">', page.split('class="cds-card cds-critical"')[1].split("</form>")[0]
    )
    assert reasons
    for (
        reason
    ) in reasons:  # each on the card of a fresh chart open (feedback is one per card, outcome and time)
        assert "Feedback sent" in _dismiss(world, page, 0, reason)
        page = chart_page(world, pid)
        assert summaries(page)[0].startswith("Open safety follow-up") and "cds-critical" in page
    counts = world.tandem_app.extensions["tandem_cds"].feedback_summary().get("safety", {})
    assert all(counts.get(f"overridden:{reason}") for reason in reasons), counts
    again = chart_page(world, pid)
    assert summaries(again)[0].startswith("Open safety follow-up") and "cds-critical" in again
    assert (
        tandem.registry.read("Task", submission.resource_id("safety"))["status"] == "requested"
    )  # still open
    worklist = browser.follow(
        f"{world.sandbox_url}/launch-app?mode=generic&practitioner=pr-cm-1&target=worklist"
    )
    safety = browser.get(re.sub(r"(/app/[^/]+/).*", r"\1safety", worklist.url))
    # Still listed (its close form names the Task; the list names patients, never by their FHIR id).
    task_id = submission.resource_id("safety")
    assert safety.status_code == 200 and task_id in safety.text, safety.text[-1500:]

"""A running program for the demo: enrolments weeks to months old, contacts and minutes near the billing
thresholds, the EHR's scores read by the worker's refresh (backend services, Bulk Data export), a flagged patient, an open safety
follow-up, and past reviews with recommendations. Written through Tandem's own caseload service, so the registry
holds exactly what a team using Tandem would have written. Each patient's launcher label is computed from the row
the worklist then shows, never asserted."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fhir_mappings.common.patient import birth_date, display_name, identifier_value
from fhir_mappings.registry.recommendations import Recommendation, Review
from fhir_mappings.registry.resources import PROGRAM_TITLES, Enrolment, Member
from fhir_mappings.registry.worklist import build_rows
from fhir_mappings.screening.history import ScorePoint, score_points
from smartapp.caseload.ehr_refresh import ScoreRefresh

from .data import Cohort
from .measure_population import POPULATION_PREFIX

log = logging.getLogger(__name__)

CARE_MANAGERS = (
    Member("Practitioner/pr-cm-1", "Teresa Lindqvist"),
    Member("Practitioner/pr-cm-2", "Jamal Ortega"),
)
CONSULTANT = Member("Practitioner/pr-psy-1", "Irene Castellanos")
PCPS = {"pr-pcp-1": "Dana Whitfield", "pr-pcp-2": "Marcus Oyelaran"}
#: Patients the test suite enrols itself are left alone (they start un-enrolled).
MAX_ENROLLED = 60
#: The consultant's past reviews (varied, as a caseload's are).
REVIEWS = (
    Review((Recommendation("dose-change", "sertraline 50 mg to 100 mg daily"),
            Recommendation("therapy", "behavioral activation, weekly")), "PHQ-9 in 4 weeks"),
    Review((Recommendation("continue", "continue escitalopram 10 mg daily"),), "PHQ-9 in 4 weeks"),
    Review((Recommendation("therapy", "problem-solving therapy, 6 sessions"),), "PHQ-9 in 2 weeks"),
)  # fmt: skip


def _points(cohort: Cohort, patient_id: str) -> list[ScorePoint]:
    mine = [o for o in cohort.of_type("Observation")
            if o.get("subject", {}).get("reference") == f"Patient/{patient_id}"]  # fmt: skip
    return score_points(mine, "EHR")


def seed_caseload(cohort: Cohort, services: Any, iss: str, *, today: date, seed: int = 7,
                  skip: frozenset[str] = frozenset()) -> dict[str, str]:  # fmt: skip
    """Enrol the cohort's adults with a PHQ-9 history; return each enrolled patient's scenario label."""
    rng = random.Random(seed)  # noqa: S311 - synthetic demo data, not security
    caseload, ehr_scores = services.caseload, services.ehr_scores
    patients = {p["id"]: p for p in cohort.of_type("Patient")}
    item9 = {o["subject"]["reference"].split("/")[-1] for o in cohort.of_type("Observation")
             if o["id"].endswith("-phq9-item9")}  # fmt: skip
    labels: dict[str, str] = {}
    enrolled = 0
    flagged_one = False
    for patient_id, patient in patients.items():
        if enrolled >= MAX_ENROLLED or patient_id in skip or patient_id.startswith(POPULATION_PREFIX):
            continue  # the measures' wider population is the EHR's, not the registry's
        points = _points(cohort, patient_id)
        phq = sorted((p for p in points if p.instrument == "PHQ-9"), key=lambda p: p.when)
        if not phq:
            continue
        has_gad = any(p.instrument == "GAD-7" for p in points)
        program = (
            "cocm-anxiety"
            if has_gad and enrolled % 5 == 3
            else "bhi-general"
            if enrolled % 9 == 8
            else "cocm-depression"
        )
        start = phq[0].day if len(phq) > 1 else today - timedelta(days=rng.randint(5, 20))
        gp = next((g.get("reference", "").split("/")[-1] for g in patient.get("generalPractitioner", [])), "")
        team = {"care-manager": CARE_MANAGERS[enrolled % 2]}
        if gp in PCPS:
            team["pcp"] = Member(f"Practitioner/{gp}", PCPS[gp])
        if program != "bhi-general":
            team["psychiatric-consultant"] = CONSULTANT
        enrolment = Enrolment(
            id=f"demo-{patient_id}", iss=iss, patient_id=patient_id, patient_name=display_name(patient),
            program=program, phase="active-treatment", start=start, team=team, consent_given=True,
            consent_date=start, consent_method="verbal" if enrolled % 3 else "written",
            birth_date=birth_date(patient), mrn=identifier_value(patient),
        )  # fmt: skip
        enrolment = caseload.enrol(enrolment)
        enrolled += 1
        cm = team["care-manager"]
        # Contacts about every two weeks since enrolment; this month's minutes land near the thresholds.
        day = start + timedelta(days=rng.randint(3, 10))
        while day < today.replace(day=1):
            caseload.log_contact(enrolment, day, rng.choice((15, 20, 25, 30)), rng.choice(("phone", "in-person", "video")),
                                 "care-manager", cm, "Symptom check and behavioral activation", f"contact-demo-{patient_id}-{day}")  # fmt: skip
            day += timedelta(days=14)
        this_month = rng.choice((0, 20, 30, 34, 45, 70))
        if this_month and today.day > 1:
            when = today - timedelta(days=rng.randint(0, min(today.day - 1, 10)))
            caseload.log_contact(enrolment, when, this_month, "phone", "care-manager", cm,
                                 "Follow-up call with PHQ-9", f"contact-demo-{patient_id}-{when}")  # fmt: skip
        weeks = (today - start).days // 7
        # A running program: the consultant has reviewed most patients past their first weeks (so "new" and
        # "first review overdue" single patients out); one in six is still waiting for a first review.
        if program != "bhi-general" and weeks >= 4 and enrolled % 6 != 5:
            # Half were reviewed last week (recently reviewed: off "to review" unless a new reason arises), half
            # three weeks ago (back on the list when a flag calls for it).
            reviewed = datetime.combine(today - timedelta(days=7 if enrolled % 2 else 21), time(15, 0), UTC)
            enrolment, _ = caseload.record_review(enrolment, REVIEWS[enrolled % len(REVIEWS)], CONSULTANT,
                                                  at=reviewed)  # fmt: skip
        if patient_id in item9:
            caseload.add_task("safety-follow-up", enrolment, due=today,
                              description="PHQ-9 item 9 positive at the last visit: same-day follow-up")  # fmt: skip
        elif not flagged_one and program == "cocm-depression" and weeks >= 4:
            enrolment = caseload.request_review(
                enrolment, "Discuss with the psychiatric consultant: side effects"
            )
            flagged_one = True
        if rng.random() < 0.3:
            caseload.add_task("follow-up", enrolment, due=today + timedelta(days=rng.randint(-5, 10)),
                              description="Follow-up contact with PHQ-9")  # fmt: skip
        labels[patient_id] = ""
    # The EHR's scores reach the registry as they do in production: the worker's refresh with backend services.
    reg = services.registrations.get(iss)
    if reg is not None and reg.backend is not None:
        report = ScoreRefresh(services, reg).run(full=True)
        log.info("demo caseload: EHR scores %s", report.summary() if report else "not refreshed")
    data = caseload.load(use_cache=False).for_issuer(iss).with_ehr_scores(ehr_scores.for_issuer(iss))
    for row in build_rows(data.enrolments, data.contacts, data.tasks, data.scores, today):
        labels[row.enrolment.patient_id] = scenario_label(row, PROGRAM_TITLES)
    log.info("demo caseload: %d enrolments", enrolled)
    return labels


def scenario_label(row: Any, titles: Mapping[str, str]) -> str:
    """What the row shows, in the words a care manager uses (from the computed row, never hard-coded)."""
    parts = [titles.get(row.enrolment.program, row.enrolment.program).replace("Collaborative Care", "CoCM")]
    if "safety" in row.flags:
        parts.append("item 9 positive last visit")
    if "review" in row.flags:
        parts.append("flagged for review")
    if "not-improving" in row.flags:
        parts.append(f"not improving at {row.weeks_in_treatment} weeks")
    elif row.remission:
        parts.append("in remission")
    elif row.response:
        parts.append("responding")
    if "new" in row.flags:
        parts.append("new, first review due")
    elif "first-review-overdue" in row.flags:
        parts.append("first review overdue")
    if row.billing.code in (None, "G2214") and row.minutes_this_month >= 20:
        parts.append(f"{row.minutes_this_month} min this month, short of 99492/99493")
    return " · ".join(parts)

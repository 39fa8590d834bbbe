"""HealthySteps as data: the program file's checks, the site's tier rules (which only suggest), the Gravity
referral chain (parse, dump, re-parse with R4B), the tier history on the CarePlan, visit billing suggestions, the
Specialist's worklist rows and the program report."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.common.caregivers import Caregiver
from fhir_mappings.common.gestation import Gestation
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.healthysteps.billing import visit_billing
from fhir_mappings.healthysteps.program import (
    HEALTHYSTEPS_PROGRAM,
    PROGRAM_FILE,
    HealthyStepsError,
    read_program,
)
from fhir_mappings.healthysteps.referrals import (
    Referral,
    closed_referral,
    referral_from,
    referral_resources,
)
from fhir_mappings.healthysteps.report import Figure, build_report, report_csv
from fhir_mappings.healthysteps.worklist import build_rows, filter_rows
from fhir_mappings.registry.resources import (
    Contact,
    Enrolment,
    Member,
    TierMove,
    WorkTask,
    careplan,
    contact_from,
    contact_task,
    enrolment_from,
)
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.schedule import HEALTHYSTEPS

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ISS = "https://ehr.example/fhir"
MOTHER = "RelatedPerson/m1"
SPECIALIST = Member("Practitioner/hs1", "Sam Specialist")
P = HEALTHYSTEPS_PROGRAM


def _reparsed(resource: dict[str, Any]) -> dict[str, Any]:
    """Parse with R4B, dump and return the JSON again (what a FHIR server would store)."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    dumped: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return dumped


def _event(key: str, days_ago: int, flag: str | None, focus: str | None = None, score: int | None = None,
           source: str | None = None) -> ScreenEvent:  # fmt: skip
    when = datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC)
    return ScreenEvent(key, when, focus, flag, f"{key} {score}", source, score)


def _enrolment(tier: str = "1", held_days: int = 400, born_days: int = 200, basis: tuple[str, ...] = (),
               pid: str = "child1") -> Enrolment:  # fmt: skip
    start = TODAY - timedelta(days=held_days)
    return Enrolment(f"hs-{pid}", ISS, pid, "Baby Diaz", "healthysteps", "active-treatment",
                     TODAY - timedelta(days=min(held_days, born_days)), team={"hs-specialist": SPECIALIST},
                     birth_date=TODAY - timedelta(days=born_days),
                     tiers=(TierMove(tier, start, "enrolled", SPECIALIST, basis),))  # fmt: skip


# --- the program file --------------------------------------------------------------------------------


def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PROGRAM_FILE.read_text(encoding="utf-8"))
    return data


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_data())
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["billing"]["z_codes"].update({"Z13.32": {"text": "maternal depression screening"}}), "Z13.32"),
    (lambda d: d["tiers"].pop("3"), "tiers 1, 2 and 3"),
    (lambda d: d["tier_rules"][0].update({"reason": "whim"}), "reason 'whim'"),
    (lambda d: d["tier_rules"][0].update({"to": 4}), "tiers must be among"),
    (lambda d: d["tier_rules"][0].update({"flags": ["negative"]}), "flags must be among"),
    (lambda d: d["tier_rules"][0].pop("distinct_needs_at_least"), "at least one condition"),
    (lambda d: d["billing"]["payers"]["default"]["codes"].append("99999"), "unknown code(s) 99999"),
    (lambda d: d["billing"]["instrument_codes"]["96110"]["instruments"].append("nope"), "unknown instrument"),
    (lambda d: d["billing"]["z_codes"]["Z65.9"]["when_concern"].append("nope"), "unknown concern"),
    (lambda d: d.update({"mystery": 1}), "unknown field(s): mystery"),
    (lambda d: d.update({"referral_overdue_days": -1}), "referral_overdue_days"),
    (lambda d: d["reasons"].pop("enrolled"), "'enrolled'"),
])  # fmt: skip
def test_a_broken_program_file_is_refused_with_the_reason(change: Any, message: str) -> None:
    with pytest.raises(HealthyStepsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_program(_broken(change))


def test_the_shipped_program_reads() -> None:
    assert P.key == "healthysteps" and P.exit_at_months == 36 and P.referral_overdue_days == 30
    assert set(P.tiers) == {"1", "2", "3"}
    assert not any(z.code.startswith("Z13.32") for z in P.z_codes)
    assert P.fits_age(0) and P.fits_age(35) and not P.fits_age(36) and not P.fits_age(None)


# --- tier suggestions (table) ------------------------------------------------------------------------


@pytest.mark.parametrize(("tier", "held_days", "events", "open_referrals", "expected"), [
    # Tier 1 → 2: any positive or monitoring-zone screen since the last move.
    ("1", 300, [_event("bpsc", 3, "positive")], 0, ("2", "positive-screen")),
    ("1", 300, [_event("asq-se2", 3, "monitor")], 0, ("2", "positive-screen")),
    ("1", 300, [_event("bpsc", 3, "negative")], 0, None),
    ("1", 300, [_event("bpsc", 200, "positive")], 0, None),  # outside the 180-day window
    ("1", 10, [_event("bpsc", 20, "positive")], 0, None),  # before the current tier began
    # Positive screens in two areas → Tier 3 (from 1 or 2).
    ("1", 300, [_event("epds", 5, "positive", MOTHER), _event("ahc-hrsn", 5, "positive", MOTHER)], 0,
     ("3", "multiple-risks")),
    ("2", 300, [_event("epds", 5, "positive", MOTHER), _event("swyc-milestones", 2, "positive")], 0,
     ("3", "multiple-risks")),
    ("2", 300, [_event("epds", 5, "positive", MOTHER), _event("phq9", 2, "positive", MOTHER)], 0, None),
    ("3", 300, [_event("epds", 5, "positive", MOTHER), _event("bpsc", 2, "positive")], 0, None),
    # Back to Tier 1: nothing flagged for 180 days, no open referral, and the tier held that long.
    ("2", 200, [_event("bpsc", 190, "positive"), _event("bpsc", 20, "negative")], 0, ("1", "resolved")),
    ("3", 200, [], 0, ("1", "resolved")),
    ("2", 200, [], 1, None),
    ("2", 100, [], 0, None),
    ("2", 200, [_event("bpsc", 20, "monitor")], 0, None),
])  # fmt: skip
def test_tier_rules_suggest_a_move(tier: str, held_days: int, events: list[ScreenEvent], open_referrals: int,
                                   expected: tuple[str, str] | None) -> None:  # fmt: skip
    found = P.suggest(tier, TODAY - timedelta(days=held_days), TODAY, events, HEALTHYSTEPS, open_referrals)
    assert ((found.to, found.reason) if found else None) == expected


def test_screens_already_behind_the_tier_do_not_prompt_it_again() -> None:
    positive = _event("bpsc", 0, "positive", source="Observation/o1")
    assert P.suggest("1", TODAY, TODAY, [positive], HEALTHYSTEPS, 0) is not None
    assert (
        P.suggest("1", TODAY, TODAY, [positive], HEALTHYSTEPS, 0, already_counted=["Observation/o1"]) is None
    )


def test_a_suggestion_names_the_screens_that_prompted_it() -> None:
    events = [_event("epds", 1, "positive", MOTHER, 15, "Observation/e"), _event("bpsc", 1, "negative")]
    found = P.suggest("1", TODAY - timedelta(days=300), TODAY, events, HEALTHYSTEPS, 0)
    assert found is not None and [e.source for e in found.basis] == ["Observation/e"]


# --- tier history on the CarePlan ------------------------------------------------------------------


def test_tier_history_round_trips_through_a_valid_careplan() -> None:
    moves = (TierMove("1", TODAY - timedelta(days=90), "enrolled", SPECIALIST),
             TierMove("2", TODAY, "positive-screen", SPECIALIST, ("Observation/o1", "Observation/o2"), "EPDS 15"))  # fmt: skip
    enrolment = Enrolment("hs-1", ISS, "child1", "Baby Diaz", "healthysteps", "active-treatment",
                          TODAY - timedelta(days=90), team={"hs-specialist": SPECIALIST}, tiers=moves)  # fmt: skip
    resource = careplan(enrolment)
    parsed = _reparsed(resource)
    again = enrolment_from(parsed)
    assert again is not None and again.tiers == moves and again.tier == moves[-1]
    assert again.member("hs-specialist") == SPECIALIST and not again.collaborative
    assert "goal" not in resource  # no PHQ-9 remission goal on a child's HealthySteps plan
    assert resource["title"] == "HealthySteps (Tier 2 — short-term support)"


def test_a_specialist_contact_records_who_was_present() -> None:
    enrolment = _enrolment()
    contact = Contact(
        "c1", enrolment.id, TODAY, 25, "home-visit", "hs-specialist", SPECIALIST, "fed well", "both"
    )
    task = contact_task(contact, enrolment, NOW, kind="hs-contact")
    _reparsed(task)
    assert contact_from(task, kind="hs-contact") == contact
    assert contact_from(task) is None  # not a care manager's CoCM contact (never billed as CoCM minutes)


# --- the referral loop -------------------------------------------------------------------------------


def _referral(for_whom: str = "both", status: str = "requested", days_ago: int = 0) -> Referral:
    return Referral("r1", "hs-child1", for_whom, "wic", "WIC", status, TODAY - timedelta(days=days_ago),
                    caregiver=MOTHER if for_whom != "child" else None, concern="food-insecurity",
                    organisation="County WIC office", note="call Tuesday")  # fmt: skip


@pytest.mark.parametrize("for_whom", ["child", "caregiver", "both"])
def test_a_referral_is_the_gravity_chain_and_reads_back(for_whom: str) -> None:
    resources = referral_resources(_referral(for_whom), _enrolment(), services=P.services,
                                   concern=P.concerns["food-insecurity"], basis=("Observation/hvs",),
                                   goal="Enough food every week", requester=SPECIALIST, now=NOW)  # fmt: skip
    by_type = {r["resourceType"]: r for r in resources}
    for resource in resources:
        _reparsed(resource)
    condition, request, task = by_type["Condition"], by_type["ServiceRequest"], by_type["Task"]
    assert condition["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z59.41",
                                              "display": "Food insecurity"}  # fmt: skip
    assert condition["evidence"][0]["detail"] == [{"reference": "Observation/hvs"}]
    assert condition["subject"]["identifier"] == {"system": ISS, "value": "child1"}
    assert request["reasonReference"] == [{"reference": "Condition/concern-r1"}]
    assert by_type["Goal"].get("expressedBy") == ({"reference": MOTHER} if for_whom != "child" else None)
    assert task["focus"]["reference"] == "ServiceRequest/sr-r1"
    # The child is the registry's Patient for (issuer, child1) (issue 27: references that resolve in the store).
    # For both, the child with the caregiver as an input: R4 Group.member.entity allows no RelatedPerson.
    expected_for = {"child": PatientKey(ISS, "child1").relative, "caregiver": MOTHER,
                    "both": PatientKey(ISS, "child1").relative}[for_whom]  # fmt: skip
    assert task["for"]["reference"] == expected_for
    assert "Group" not in by_type
    back = referral_from(_reparsed(task))
    assert back == _referral(for_whom)


@pytest.mark.parametrize(("status", "request_status", "procedure"), [
    ("completed", "completed", True), ("cancelled", "revoked", False), ("rejected", "revoked", False),
    ("failed", "revoked", False),
])  # fmt: skip
def test_closing_the_loop(status: str, request_status: str, procedure: bool) -> None:
    resources = referral_resources(_referral(), _enrolment(), services=P.services, concern=None, basis=(),
                                   goal=None, requester=SPECIALIST, now=NOW - timedelta(days=12))  # fmt: skip
    by_type = {r["resourceType"]: r for r in resources}
    written = closed_referral(
        by_type["Task"], by_type["ServiceRequest"], status, "enrolled in WIC", NOW, SPECIALIST
    )
    for resource in written:
        _reparsed(resource)
    closed = referral_from(written[0])
    assert closed is not None and not closed.open and closed.closed == TODAY and closed.age_days(TODAY) == 12
    assert closed.outcome_note == "enrolled in WIC" and closed.received == (status == "completed")
    assert written[1]["status"] == request_status
    assert any(r["resourceType"] == "Procedure" for r in written) == procedure


def test_a_referral_cannot_close_as_open() -> None:
    with pytest.raises(ValueError, match="closes as one of"):
        closed_referral({"id": "referral-x"}, {"id": "sr-x"}, "in-progress", None, NOW, None)


@pytest.mark.parametrize("task", [
    {}, {"resourceType": "Task", "id": "contact-1"},
    {"resourceType": "Task", "id": "referral-1", "status": "requested"},
    {"resourceType": "Task", "id": "referral-1", "status": "weird", "authoredOn": "2026-01-01",
     "code": {"coding": [{"system": "https://tandem.health/fhir/CodeSystem/task", "code": "referral"}]}},
])  # fmt: skip
def test_odd_tasks_are_not_referrals(task: dict[str, Any]) -> None:
    assert referral_from(task) is None


# --- billing (table) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("events", "concerns", "diagnosed", "payer", "expected"), [
    # One caregiver EPDS and one caregiver HRSN: 96161 × 2 on the child's claim.
    ([_event("epds", 0, "negative", MOTHER), _event("ahc-hrsn", 0, "negative", MOTHER)], (), False, None,
     {("96161", 2, True)}),
    # Child instruments: BPSC → 96127; SWYC milestones and ASQ-3 → 96110 × 2.
    ([_event("bpsc", 0, "negative"), _event("swyc-milestones", 0, "negative"), _event("asq3", 0, None)], (), False,
     None, {("96127", 1, True), ("96110", 2, True)}),
    # A caregiver's positive EPDS suggests Z63.8 for the child, never Z13.32.
    ([_event("epds", 0, "positive", MOTHER)], (), False, None, {("96161", 1, True), ("Z63.8", 1, True)}),
    # A diagnosis on the claim: no Z-code suggestion.
    ([_event("epds", 0, "positive", MOTHER)], (), True, None, {("96161", 1, True)}),
    # A positive Hunger Vital Sign and the food-insecurity concern → Z59.41 once.
    ([_event("hunger-vital-sign", 0, "positive", MOTHER)], ("food-insecurity",), False, None,
     {("96161", 1, True), ("Z59.41", 1, True)}),
    # The payer that does not pay 96161: still shown, not offered.
    ([_event("epds", 0, "negative", MOTHER)], (), False, "commercial-no-96161", {("96161", 1, False)}),
    # Screens on another day do not count today.
    ([_event("epds", 3, "negative", MOTHER)], (), False, None, set()),
])  # fmt: skip
def test_visit_billing(events: list[ScreenEvent], concerns: tuple[str, ...], diagnosed: bool, payer: str | None,
                       expected: set[tuple[str, int, bool]]) -> None:  # fmt: skip
    lines = visit_billing(P, TODAY, events, concerns=concerns, diagnosed=diagnosed, payer=payer)
    assert {(line.code, line.units, line.offered) for line in lines} == expected
    assert not any(line.code.startswith("Z13.32") for line in lines)


def test_a_z_code_suggestion_gives_its_reason_in_words() -> None:
    # Issue 28: the Specialist reads instrument names and concerns, never their keys ("positive epds").
    lines = visit_billing(P, TODAY, [_event("epds", 0, "positive", MOTHER), _event("hunger-vital-sign", 0, "positive",
                          MOTHER)], concerns=("food-insecurity",))  # fmt: skip
    reasons = " ".join(line.because for line in lines if line.code.startswith("Z"))
    assert "caregiver's positive EPDS" in reasons and "concern: food insecurity" in reasons, reasons
    assert "epds" not in reasons and "food-insecurity" not in reasons and "hunger-vital-sign" not in reasons


# --- worklist and report ------------------------------------------------------------------------------


def test_worklist_rows_flag_what_the_specialist_works_first() -> None:
    baby = _enrolment(pid="baby", born_days=60)  # 2 months: caregiver depression due
    toddler = _enrolment(pid="toddler", born_days=700, tier="2", held_days=100)
    aged_out = _enrolment(pid="old", born_days=1100, held_days=1000)
    mother = Caregiver("m1", baby.key, "Ana Diaz", "MTH")
    events = {baby.key: [_event("epds", 0, "positive", mother.reference, 15, "Observation/e1")],
              toddler.key: [_event("mchat-rf", 10, "negative")]}  # fmt: skip
    referral = Referral("r9", toddler.id, "child", "early-intervention", "Early intervention", "requested",
                        TODAY - timedelta(days=45))  # fmt: skip
    safety = WorkTask("s1", "safety-follow-up", "requested", "baby", None, TODAY, TODAY, iss=ISS)
    contact = Contact("c1", toddler.id, TODAY - timedelta(days=3), 20, "phone", "hs-specialist", SPECIALIST,
                      present="caregiver")  # fmt: skip
    cocm = Enrolment("cocm-1", ISS, "adult", "Adult", "cocm-depression", "active-treatment", TODAY)
    rows = build_rows(P, HEALTHYSTEPS, [baby, toddler, aged_out, cocm], caregivers={baby.key: [mother]},
                      events=events, referrals=[referral], contacts=[contact], safety_tasks=[safety], today=TODAY)  # fmt: skip
    by_id = {r.enrolment.patient_id: r for r in rows}
    assert set(by_id) == {"baby", "toddler", "old"}  # a CoCM enrolment is not a HealthySteps row
    assert rows[0].enrolment.patient_id == "baby"  # the safety flag first
    assert {"safety", "positive", "tier-suggested"} <= set(by_id["baby"].flags)
    assert by_id["baby"].caregiver_results[0].text.startswith("Mother (Ana Diaz): epds 15 — positive")
    assert by_id["baby"].suggestion is not None and by_id["baby"].suggestion.to == "2"
    assert by_id["toddler"].overdue_referrals == (referral,) and "referral-overdue" in by_id["toddler"].flags
    assert by_id["toddler"].last_contact == TODAY - timedelta(days=3)
    assert "exit-due" in by_id["old"].flags
    assert [r.enrolment.patient_id for r in filter_rows(rows, tier="2")] == ["toddler"]
    assert [r.enrolment.patient_id for r in filter_rows(rows, flag="exit-due")] == ["old"]


def test_the_report_counts_over_counts() -> None:
    a = _enrolment(pid="a", born_days=500, held_days=500)  # past the 1- to 12-month visits
    b = _enrolment(pid="b", born_days=500, held_days=500, tier="2")
    mother = "RelatedPerson/ma"
    events = {
        a.key: [_event("epds", 500 - 30, "positive", mother, 14), _event("epds", 500 - 60, "negative", mother, 6),
                *[_event("bpsc", 500 - d, "negative") for d in (60, 180, 365, 400, 430, 450)]],
        b.key: [_event("bpsc", 500 - 60, "positive")],
    }  # fmt: skip
    referrals = [Referral("1", a.id, "child", "wic", "WIC", "completed", TODAY - timedelta(days=20), TODAY - timedelta(days=10)),
                 Referral("2", b.id, "child", "wic", "WIC", "requested", TODAY - timedelta(days=40))]  # fmt: skip
    report = build_report(P, HEALTHYSTEPS, [a, b], events, referrals, [], TODAY)
    figures = {(f.section, f.label): f for f in report.figures}
    month1 = figures[("completion", "1 month: caregiver depression (caregiver)")]
    assert (month1.count, month1.of) == (1, 2)
    assert figures[("positive", "BPSC: positive or monitoring zone")].shown == "1 of 7 (14.3%)"
    assert figures[("referrals", "Referrals closed (loop closed)")].shown == "1 of 2 (50%)"
    assert figures[("referrals", "Open longer than 30 days")].count == 1
    assert report.median_days_to_close == 10
    assert figures[("tiers", "Tier 2 — short-term support")].shown == "1 of 2 (50%)"
    improved = figures[
        ("caregivers", "Caregivers with a positive depression screen whose later score was lower")
    ]
    assert (improved.count, improved.of) == (1, 1)
    visits = next(f for f in report.figures if f.section == "visits")
    assert (visits.count, visits.of) == (1, 2)  # a: 8 visit days by 15 months; b: 1
    assert report_csv(report).splitlines()[0] == "Section,Measure,Count,Of,Percent"


def test_the_worklist_due_list_follows_the_age_corrected_for_prematurity() -> None:
    # healthysteps.md §1a (the schedule file's corrected_age): under 24 months and born ≥ 3 weeks early, the
    # child's screens follow chronological age − (40 weeks − gestational age). 250 days old, born at 32 weeks:
    # corrected 194 days, so the 6-month social-emotional screen is due, not the 9-month developmental one.
    child = _enrolment(pid="early", born_days=250)
    mother = "RelatedPerson/m1"
    events = {child.key: [_event("bpsc", 100, "negative"), _event("epds", 50, "negative", mother),
                          _event("ahc-hrsn", 10, "negative", mother)]}  # fmt: skip

    def lines(gestations: dict[Any, Gestation] | None) -> set[tuple[str, str, str]]:
        [row] = build_rows(P, HEALTHYSTEPS, [child], caregivers={}, events=events, referrals=[], contacts=[],
                           safety_tasks=[], today=TODAY, gestations=gestations)  # fmt: skip
        return {(s.need.need, s.status, s.visit) for s in row.schedule}

    assert lines(None) == {("development", "due", "9 months"), ("social-emotional", "overdue", "6 months")}
    assert lines({child.key: Gestation(32 * 7, "Tandem")}) == {("social-emotional", "due", "6 months")}


@pytest.mark.parametrize(
    ("figure", "shown", "pct"),
    [
        # issue 28: a figure Tandem cannot read says "not available", never 0 %.
        (Figure("visits", "Well-child visits", 0, 6, not_available="the EHR's visit list is not read"),
         "not available", None),
        # A count over nobody is not a rate either.
        (Figure("referrals", "Referrals closed", 0, 0), "none yet (no one to count)", None),
        # A real zero stays a result (healthysteps.md §4: every figure is a count over a count).
        (Figure("completion", "1 month", 0, 9), "0 of 9 (0%)", 0.0),
        (Figure("tiers", "Tier 1", 9, 11), "9 of 11 (81.8%)", 81.8),
    ],
)  # fmt: skip
def test_a_report_figure_says_not_available_rather_than_zero(
    figure: Figure, shown: str, pct: float | None
) -> None:
    assert (figure.shown, figure.pct) == (shown, pct)


def test_the_report_names_its_period_and_the_visits_it_cannot_count() -> None:
    a = _enrolment(pid="a", born_days=500, held_days=500)
    b = _enrolment(pid="b", born_days=200, held_days=100)
    report = build_report(P, HEALTHYSTEPS, [a, b], {}, [], [], TODAY)
    assert (report.since, report.until) == (TODAY - timedelta(days=500), TODAY)
    visits = next(f for f in report.figures if f.section == "visits")
    # The EHR's well-child visit list is not read (report.py): the visit figure is not a 0 % result.
    assert visits.shown == "not available" and visits.pct is None
    assert "not available" in report_csv(report).splitlines()[-2]
    # Sections by their titles in the spreadsheet a person opens, not their keys (issue 28).
    assert report_csv(report).splitlines()[-2].startswith("Well-child visits by 15 months,")
    empty = build_report(P, HEALTHYSTEPS, [], {}, [], [], TODAY)
    assert (empty.since, empty.until) == (None, None)

"""The HealthySteps visit schedule as data: which screens are due or overdue for a child of each age, given the
screens done (for the child, and for any caregiver), and the checks a site's own schedule file must pass."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fhir_mappings.common.gestation import Gestation
from fhir_mappings.screening.events import ScreenEvent, events_from_observations, merged
from fhir_mappings.screening.schedule import (
    HEALTHYSTEPS,
    ScheduleError,
    load_schedule,
    read_schedule,
    scheduled,
)

TODAY = date(2026, 11, 24)
MOTHER = "RelatedPerson/m1"


def _born(days_old: int) -> date:
    return TODAY - timedelta(days=days_old)


def _done(key: str, days_ago: int, focus: str | None = None) -> ScreenEvent:
    when = datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), UTC)
    return ScreenEvent(key, when, focus, "negative", key)


def _lines(days_old: int, events: list[ScreenEvent]) -> set[tuple[str, str, str, str]]:
    return {
        (s.need.need, s.need.for_whom, s.status, s.visit)
        for s in scheduled(HEALTHYSTEPS, _born(days_old), TODAY, events)
    }


@pytest.mark.parametrize(
    ("days_old", "events", "expected"),
    [
        (10, [], {("family needs", "caregiver", "due", "yearly")}),
        (30, [], {("caregiver depression", "caregiver", "due", "1 month"), ("family needs", "caregiver", "due", "yearly")}),
        # A caregiver's EPDS in the window and a yearly HRSN: nothing due.
        (30, [_done("epds", 3, MOTHER), _done("ahc-hrsn", 3, MOTHER)], set()),
        # The child's own PHQ-9 (no focus) does not count as the caregiver's depression screen.
        (30, [_done("phq9", 3), _done("ahc-hrsn", 3, MOTHER)], {("caregiver depression", "caregiver", "due", "1 month")}),
        # 2-month visit: caregiver depression and the child's social-emotional screen.
        (60, [_done("epds", 30, MOTHER), _done("hunger-vital-sign", 30, MOTHER)],
         {("caregiver depression", "caregiver", "due", "2 months"), ("social-emotional", "child", "due", "2 months")}),
        (60, [_done("phq2", 5, MOTHER), _done("bpsc", 5), _done("hunger-vital-sign", 30, MOTHER)], set()),
        # 9 months: the developmental screen; the 6-month caregiver screen missed is overdue.
        (270, [_done("bpsc", 100), _done("ahc-hrsn", 100, MOTHER)],
         {("development", "child", "due", "9 months"), ("caregiver depression", "caregiver", "overdue", "6 months")}),
        (270, [_done("asq3", 2), _done("epds", 100, MOTHER), _done("asq-se2", 100), _done("ahc-hrsn", 100, MOTHER)], set()),
        # 14 months: the 9-month developmental screen never done is overdue (the optional 4- and 15-month ones are not,
        # and the 15-month one does not hide it).
        (420 + 10, [_done("bpsc", 50), _done("epds", 250, MOTHER), _done("ahc-hrsn", 50, MOTHER)],
         {("development", "child", "overdue", "9 months")}),
        # 18 months: development, autism, social-emotional; family needs a year on.
        (540, [_done("ahc-hrsn", 400, MOTHER), _done("epds", 360, MOTHER), _done("asq3", 250), _done("bpsc", 200)],
         {("development", "child", "due", "18 months"), ("autism", "child", "due", "18 months"),
          ("social-emotional", "child", "due", "18 months"), ("family needs", "caregiver", "due", "yearly")}),
        # Late is still done: an autism screen at 24 months closes the 18-month one.
        (700, [_done("mchat-rf", 1), _done("ppsc", 1), _done("swyc-milestones", 100), _done("ahc-hrsn", 10, MOTHER),
               _done("epds", 500, MOTHER)], set()),
        # The 6-month caregiver screen done before its window opened (at 4 months) leaves the 6-month one overdue.
        (300, [_done("epds", 170, MOTHER), _done("asq3", 5), _done("bpsc", 100), _done("ahc-hrsn", 5, MOTHER)],
         {("caregiver depression", "caregiver", "overdue", "6 months")}),
        # Past 36 months (1,126 days) the schedule has nothing.
        (1200, [], set()),
    ],
)  # fmt: skip
def test_due_and_overdue_screens_by_age(days_old: int, events: list[ScreenEvent],
                                        expected: set[tuple[str, str, str, str]]) -> None:  # fmt: skip
    assert _lines(days_old, events) == expected


def test_overdue_lines_come_first_and_say_what_was_missed() -> None:
    lines = scheduled(HEALTHYSTEPS, _born(270), TODAY, [])
    assert lines[0].status == "overdue"
    assert lines[0].reason == "Caregiver depression screen (caregiver) of the 6 months visit was not done."
    assert any(line.reason == "Development screen (child) at the 9 months visit." for line in lines)


def test_unknown_or_future_birth_dates_give_nothing() -> None:
    assert scheduled(HEALTHYSTEPS, None, TODAY, []) == []
    assert scheduled(HEALTHYSTEPS, TODAY + timedelta(days=1), TODAY, []) == []


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda d: d["visits"][0]["screens"][0].update({"any_of": ["nope"]}), "unknown instrument 'nope'"),
        (lambda d: d["visits"][0]["screens"][0].update({"for": "sibling"}), "'for' must be one of"),
        (
            lambda d: d["visits"][0]["screens"][0].update({"any_of": ["bpsc"]}),
            "bpsc is not a caregiver screen",
        ),
        (lambda d: d["visits"][1].update({"from_days": 30}), "overlap or are out of order"),
        (lambda d: d["visits"][0].update({"to_days": -1}), "from ≤ to"),
        (lambda d: d["recurring"][0].update({"every_days": 0}), "every_days must be"),
        (lambda d: d.pop("ages_months"), "ages_months"),
    ],
)
def test_a_sites_schedule_file_is_checked_at_start_up(tmp_path: Path, edit, problem: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(
        (Path(__file__).parents[2] / "fhir_mappings/data/schedules/healthysteps.json").read_text()
    )
    edit(data)
    path = tmp_path / "site-schedule.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScheduleError, match="site-schedule.json") as raised:
        load_schedule(path)
    assert problem in str(raised.value)
    with pytest.raises(ScheduleError):
        read_schedule({"key": "x"})


def test_result_observations_become_events_with_whom_and_flag() -> None:
    observations = [
        {"resourceType": "Observation", "id": "1", "status": "final", "effectiveDateTime": "2026-11-01T10:00:00Z",
         "code": {"coding": [{"system": "http://loinc.org", "code": "99046-5"}]}, "valueInteger": 14,
         "focus": [{"reference": MOTHER}]},
        {"resourceType": "Observation", "id": "2", "status": "final", "effectiveDateTime": "2026-11-01T10:05:00Z",
         "code": {"coding": [{"system": "https://tandem.health/fhir/CodeSystem/instrument", "code": "bpsc"}]},
         "valueCodeableConcept": {"text": "positive"},
         "interpretation": [{"coding": [{"system": "https://tandem.health/fhir/CodeSystem/screen-result", "code": "positive"}]}]},
        {"resourceType": "Observation", "id": "3", "status": "entered-in-error", "effectiveDateTime": "2026-11-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": "99046-5"}]}, "valueInteger": 3},
        {"resourceType": "Observation", "id": "4", "code": {"coding": [{"system": "http://loinc.org", "code": "0000-0"}]},
         "effectiveDateTime": "2026-11-01"},
        "junk",
    ]  # fmt: skip
    events = events_from_observations(observations)
    assert [(e.key, e.focus, e.flag, e.summary) for e in events] == [
        ("epds", MOTHER, "positive", "EPDS 14"), ("bpsc", None, "positive", "BPSC: positive")]  # fmt: skip
    assert len(merged(events, events)) == 2


def _gestation(weeks: int) -> Gestation:
    return Gestation(weeks * 7, "Tandem")


def _corrected_lines(
    days_old: int, events: list[ScreenEvent], weeks: int | None
) -> set[tuple[str, str, str, str]]:
    return {
        (s.need.need, s.need.for_whom, s.status, s.visit)
        for s in scheduled(HEALTHYSTEPS, _born(days_old), TODAY, events, _gestation(weeks) if weeks else None)
    }


@pytest.mark.parametrize(
    ("days_old", "events", "weeks", "expected"),
    [
        # healthysteps.md §1a: correct for prematurity under 24 months when born ≥ 3 weeks early; corrected age =
        # chronological − (40 weeks − gestational age). The schedule file's corrected_age says so.
        # 60 days old, born at 30 weeks (corrected −10 days): no child screen is due yet; the caregiver's
        # postpartum depression screen still follows the time since the birth.
        (60, [_done("epds", 30, MOTHER)], None,
         {("caregiver depression", "caregiver", "due", "2 months"), ("social-emotional", "child", "due", "2 months"),
          ("family needs", "caregiver", "due", "yearly")}),
        (60, [_done("epds", 30, MOTHER)], 30,
         {("caregiver depression", "caregiver", "due", "2 months"), ("family needs", "caregiver", "due", "yearly")}),
        # 250 days old, born at 32 weeks (corrected 194 days): the 6-month social-emotional screen is due, not the
        # 9-month developmental one.
        (250, [_done("bpsc", 100), _done("epds", 50, MOTHER), _done("ahc-hrsn", 10, MOTHER)], None,
         {("development", "child", "due", "9 months"), ("social-emotional", "child", "overdue", "6 months")}),
        (250, [_done("bpsc", 100), _done("epds", 50, MOTHER), _done("ahc-hrsn", 10, MOTHER)], 32,
         {("social-emotional", "child", "due", "6 months")}),
        # Born at 37 weeks (3 weeks early): corrected; at 38 weeks (2 weeks early): not.
        (250, [_done("bpsc", 100), _done("epds", 50, MOTHER), _done("ahc-hrsn", 10, MOTHER)], 37,
         {("social-emotional", "child", "due", "6 months")}),
        (250, [_done("bpsc", 100), _done("epds", 50, MOTHER), _done("ahc-hrsn", 10, MOTHER)], 38,
         {("development", "child", "due", "9 months"), ("social-emotional", "child", "overdue", "6 months")}),
    ],
)  # fmt: skip
def test_the_childs_due_list_follows_the_age_corrected_for_prematurity(
    days_old: int, events: list[ScreenEvent], weeks: int | None, expected: set[tuple[str, str, str, str]]
) -> None:
    assert _corrected_lines(days_old, events, weeks) == expected


def test_from_24_months_the_chronological_age_is_used() -> None:
    # healthysteps.md §1a: the correction applies under 24 months only (corrected_age.below_months).
    events = [_done("mchat-rf", 5), _done("ppsc", 5), _done("ahc-hrsn", 10, MOTHER)]
    assert _corrected_lines(760, events, 28) == _corrected_lines(760, events, None)
    assert HEALTHYSTEPS.corrected_age == (24, 3)


@pytest.mark.parametrize(
    "corrected",
    [{"below_months": 24, "weeks_early_at_least": 3}, {"below_months": "24", "weeks_early_at_least": 3, "_source": "x"},
     {"weeks_early_at_least": 3, "_source": "x"}, "yes"],
)  # fmt: skip
def test_a_schedules_corrected_age_rule_is_checked(corrected: object) -> None:
    data = json.loads(
        (Path(__file__).parents[2] / "fhir_mappings/data/schedules/healthysteps.json").read_text()
    )
    data["corrected_age"] = corrected
    with pytest.raises(ScheduleError, match="corrected_age"):
        read_schedule(data)

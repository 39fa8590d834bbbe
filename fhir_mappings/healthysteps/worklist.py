"""The HealthySteps Specialist's worklist: one row per child actively enrolled, built from the enrolments, the
child's caregivers, screens (registry, EHR and Tandem's own, caregivers' included), referrals, contacts and open
safety Tasks, read in a few searches and joined here. Pure and total."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from fhir_mappings.common.caregivers import Caregiver, find
from fhir_mappings.common.dates import age_months, age_text
from fhir_mappings.common.gestation import Gestation
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.healthysteps.program import HealthySteps, TierSuggestion
from fhir_mappings.healthysteps.referrals import Referral
from fhir_mappings.registry.resources import Contact, Enrolment, WorkTask
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.instruments import CATALOGUE, Catalogue
from fhir_mappings.screening.schedule import Schedule, ScheduledScreen, scheduled

#: Flags in the order a Specialist works them.
FLAGS = {
    "safety": "Safety follow-up open",
    "referral-overdue": "Referral open too long",
    "overdue": "Screen overdue",
    "positive": "Latest screen positive or in the monitoring zone",
    "tier-suggested": "Tier move suggested",
    "exit-due": "Turns 3: exit HealthySteps",
    "due": "Screen due at this visit",
}


@dataclass(frozen=True)
class ResultLine:
    """One latest result, always saying whose it is."""

    whose: str  # "Child" or the caregiver's label
    event: ScreenEvent
    instrument: str

    @property
    def flagged(self) -> bool:
        """Positive or in the monitoring zone: shown first and in red on the worklist row."""
        return self.event.flag in ("positive", "monitor")

    @property
    def text(self) -> str:
        flag = {"positive": " — positive", "monitor": " — monitor"}.get(self.event.flag or "", "")
        return f"{self.whose}: {self.event.summary}{flag} ({self.event.day.isoformat()})"


@dataclass(frozen=True)
class Row:
    enrolment: Enrolment
    age: str | None
    months: int | None
    tier: str | None
    caregivers: tuple[Caregiver, ...]
    schedule: tuple[ScheduledScreen, ...]
    child_results: tuple[ResultLine, ...]
    caregiver_results: tuple[ResultLine, ...]
    referrals: tuple[Referral, ...]
    overdue_referrals: tuple[Referral, ...]
    safety_tasks: tuple[WorkTask, ...]
    last_contact: date | None
    suggestion: TierSuggestion | None
    flags: tuple[str, ...] = field(default=())

    @property
    def due(self) -> list[ScheduledScreen]:
        return [s for s in self.schedule if s.status == "due"]

    @property
    def overdue(self) -> list[ScheduledScreen]:
        return [s for s in self.schedule if s.status == "overdue"]

    @property
    def open_referrals(self) -> list[Referral]:
        return [r for r in self.referrals if r.open]

    @property
    def priority(self) -> int:
        order = list(FLAGS)
        return min((order.index(f) for f in self.flags), default=len(order))


def _results(events: list[ScreenEvent], caregivers: list[Caregiver], catalogue: Catalogue
             ) -> tuple[tuple[ResultLine, ...], tuple[ResultLine, ...]]:  # fmt: skip
    """The latest result per instrument for the child, and per caregiver and instrument."""
    latest: dict[tuple[str | None, str], ScreenEvent] = {}
    for event in sorted(events, key=lambda e: e.when):
        latest[(event.focus, event.key)] = event
    child, adult = [], []
    for (focus, key), event in sorted(latest.items(), key=lambda kv: kv[1].when, reverse=True):
        instrument = catalogue.get(key)
        name = instrument.name if instrument else key
        if focus is None:
            child.append(ResultLine("Child", event, name))
        else:
            who = find(caregivers, focus)
            adult.append(ResultLine(who.label if who else "Caregiver", event, name))
    return tuple(child), tuple(adult)


def build_rows(
    program: HealthySteps,
    schedule: Schedule,
    enrolments: Iterable[Enrolment],
    *,
    caregivers: Mapping[PatientKey, list[Caregiver]],
    events: Mapping[PatientKey, list[ScreenEvent]],
    referrals: Iterable[Referral],
    contacts: Iterable[Contact],
    safety_tasks: Iterable[WorkTask],
    today: date,
    catalogue: Catalogue = CATALOGUE,
    gestations: Mapping[PatientKey, Gestation] | None = None,
) -> list[Row]:
    """One row per active HealthySteps enrolment, the most urgent first."""
    referrals_by_plan: dict[str, list[Referral]] = {}
    for referral in referrals:
        referrals_by_plan.setdefault(referral.careplan_id, []).append(referral)
    last_contact: dict[str, date] = {}
    for contact in contacts:
        last_contact[contact.careplan_id] = max(
            contact.when, last_contact.get(contact.careplan_id, contact.when)
        )
    safety: dict[PatientKey, list[WorkTask]] = {}
    for task in safety_tasks:
        if task.kind == "safety-follow-up" and task.open and task.key is not None:
            safety.setdefault(task.key, []).append(task)
    rows = []
    for e in enrolments:
        if e.program != program.key or not e.active:
            continue
        mine = events.get(e.key, [])
        people = caregivers.get(e.key, [])
        months = age_months(e.birth_date, today)
        plan_referrals = tuple(
            sorted(referrals_by_plan.get(e.id, []), key=lambda r: r.authored, reverse=True)
        )
        overdue_referrals = tuple(r for r in plan_referrals
                                  if r.open and r.age_days(today) > program.referral_overdue_days)  # fmt: skip
        # The child's own screens follow the age corrected for prematurity where the schedule says so.
        lines = tuple(scheduled(schedule, e.birth_date, today, mine, (gestations or {}).get(e.key)))
        child_results, caregiver_results = _results(mine, people, catalogue)
        move = e.tier
        suggestion = (
            program.suggest(move.tier, move.start, today, mine, schedule, sum(r.open for r in plan_referrals),
                            already_counted=move.basis)
            if move is not None else None
        )  # fmt: skip
        flags = []
        if safety.get(e.key):
            flags.append("safety")
        if overdue_referrals:
            flags.append("referral-overdue")
        if any(s.status == "overdue" for s in lines):
            flags.append("overdue")
        if any(r.event.flag in ("positive", "monitor") and (move is None or r.event.day >= move.start)
               for r in (*child_results, *caregiver_results)):  # fmt: skip
            flags.append("positive")
        if suggestion is not None:
            flags.append("tier-suggested")
        if months is not None and months >= program.exit_at_months:
            flags.append("exit-due")
        if any(s.status == "due" for s in lines):
            flags.append("due")
        rows.append(Row(e, age_text(e.birth_date, today), months, move.tier if move else None, tuple(people),
                        lines, child_results, caregiver_results, plan_referrals, overdue_referrals,
                        tuple(safety.get(e.key, [])), last_contact.get(e.id), suggestion, tuple(flags)))  # fmt: skip
    return sorted(rows, key=lambda r: (r.priority, r.enrolment.patient_name or "", r.enrolment.id))


def filter_rows(rows: Iterable[Row], *, flag: str | None = None, tier: str | None = None,
                specialist: str | None = None) -> list[Row]:  # fmt: skip
    def keep(row: Row) -> bool:
        if flag and flag not in row.flags:
            return False
        if tier and row.tier != tier:
            return False
        member = row.enrolment.member("hs-specialist")
        return not specialist or (member is not None and member.reference == specialist)

    return [r for r in rows if keep(r)]

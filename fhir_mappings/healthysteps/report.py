"""The HealthySteps program report (healthysteps.md §4): screening completion by visit age, positive rates, the
referral loop's closure rate and time, the tier mix, caregivers with a positive depression screen whose later
scores improved, and children with six or more well-child visits by 15 months. Every figure is a count over a
count, so a reader sees what it rests on. Pure and total."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.healthysteps.program import HealthySteps
from fhir_mappings.healthysteps.referrals import Referral
from fhir_mappings.registry.resources import Contact, Enrolment
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.instruments import CATALOGUE, Catalogue
from fhir_mappings.screening.schedule import Schedule

#: Caregiver depression instruments whose later scores are compared.
DEPRESSION = ("epds", "phq9", "phq2")
WELL_CHILD_BY_MONTHS = 15
WELL_CHILD_AT_LEAST = 6
VISITS_NOT_READ = "Tandem does not read the EHR's visit list yet"
#: Each section in the words the report's page and spreadsheet use (never its key).
SECTION_TITLES = {"completion": "Screening completion by visit age", "positive": "Positive rates",
                  "referrals": "Referral loop", "tiers": "Tier mix (children enrolled now)",
                  "caregivers": "Caregivers' depression", "visits": "Well-child visits by 15 months"}  # fmt: skip


@dataclass(frozen=True)
class Figure:
    section: str
    label: str
    count: int
    of: int | None = None  # the denominator; None for a plain count
    #: Why Tandem cannot give this figure (it rests on data Tandem does not read): the page says "not available"
    #: and why, never a 0 % that reads as a result. Empty when the figure stands.
    not_available: str = ""

    @property
    def pct(self) -> float | None:
        if self.not_available:
            return None
        return round(100 * self.count / self.of, 1) if self.of else None

    @property
    def shown(self) -> str:
        if self.not_available:
            return "not available"
        if self.of is None:
            return str(self.count)
        if not self.of:
            return "none yet (no one to count)"
        return f"{self.count} of {self.of}" + (f" ({self.pct:g}%)" if self.pct is not None else "")


@dataclass(frozen=True)
class Report:
    figures: tuple[Figure, ...]
    median_days_to_close: float | None
    children: int
    #: The period the report covers: from the program's first enrolment to the day it was made (None: no one yet).
    since: date | None = None
    until: date | None = None

    def section(self, name: str) -> list[Figure]:
        return [f for f in self.figures if f.section == name]


def _completion(schedule: Schedule, enrolments: list[Enrolment], events: Mapping[PatientKey, list[ScreenEvent]],
                today: date) -> list[Figure]:  # fmt: skip
    """Per visit and need: of the enrolled children past the visit's window, how many had the screen in it."""
    figures = []
    for visit in schedule.visits:
        for need in visit.needs:
            if not need.required:
                continue
            eligible = done = 0
            for e in enrolments:
                born = e.birth_date
                if born is None or (today - born).days <= visit.to_days:
                    continue
                start, end = born + timedelta(days=visit.from_days), born + timedelta(days=visit.to_days)
                if e.start > end:
                    continue  # enrolled after this visit
                eligible += 1
                done += any(ev.key in need.any_of and (ev.focus is not None) == (need.for_whom == "caregiver")
                            and start <= ev.day <= end for ev in events.get(e.key, []))  # fmt: skip
            if eligible:
                figures.append(
                    Figure("completion", f"{visit.label}: {need.need} ({need.for_whom})", done, eligible)
                )
    return figures


def _positives(events: Iterable[ScreenEvent], catalogue: Catalogue) -> list[Figure]:
    by_key: dict[str, list[ScreenEvent]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    figures = []
    for key, found in sorted(by_key.items()):
        instrument = catalogue.get(key)
        name = instrument.name if instrument else key
        flagged = [e for e in found if e.flag in ("positive", "monitor")]
        figures.append(Figure("positive", f"{name}: positive or monitoring zone", len(flagged), len(found)))
    return figures


def _improved(events: Mapping[PatientKey, list[ScreenEvent]]) -> tuple[int, int]:
    """Caregivers (per child) with a positive depression screen, and those with a later lower score."""
    positive = improved = 0
    for found in events.values():
        by_person: dict[tuple[str, str], list[ScreenEvent]] = {}
        for e in found:
            if e.focus and e.key in DEPRESSION and e.score is not None:
                by_person.setdefault((e.focus, e.key), []).append(e)
        for series in by_person.values():
            series.sort(key=lambda e: e.when)
            first = next((i for i, e in enumerate(series) if e.flag == "positive"), None)
            if first is None:
                continue
            positive += 1
            base = series[first].score or 0
            improved += any((e.score or 0) < base for e in series[first + 1 :])
    return positive, improved


def build_report(program: HealthySteps, schedule: Schedule, enrolments: Iterable[Enrolment],
                 events: Mapping[PatientKey, list[ScreenEvent]], referrals: Iterable[Referral],
                 contacts: Iterable[Contact], today: date, catalogue: Catalogue = CATALOGUE) -> Report:  # fmt: skip
    mine = [e for e in enrolments if e.program == program.key]
    plans = {e.id for e in mine}
    keys = {e.key for e in mine}
    events = {k: v for k, v in events.items() if k in keys}
    figures = _completion(schedule, mine, events, today)
    figures += _positives((e for found in events.values() for e in found), catalogue)
    referrals = [r for r in referrals if r.careplan_id in plans]
    closed = [r for r in referrals if not r.open]
    figures += [
        Figure("referrals", "Referrals closed (loop closed)", len(closed), len(referrals)),
        Figure("referrals", "Service received", sum(r.received for r in closed), len(referrals)),
        Figure("referrals", "Declined or not completed", sum(not r.received for r in closed), len(referrals)),
        Figure("referrals", f"Open longer than {program.referral_overdue_days} days",
               sum(r.open and r.age_days(today) > program.referral_overdue_days for r in referrals), len(referrals)),
    ]  # fmt: skip
    days = [r.age_days(today) for r in closed]
    active = [e for e in mine if e.active]
    for tier in program.tiers:
        figures.append(Figure("tiers", program.tier_title(tier),
                              sum(1 for e in active if e.tier and e.tier.tier == tier), len(active)))  # fmt: skip
    positive, improved = _improved(events)
    figures.append(Figure("caregivers", "Caregivers with a positive depression screen whose later score was lower",
                          improved, positive))  # fmt: skip
    joint: dict[str, set[date]] = {}
    for contact in contacts:
        if contact.careplan_id in plans and contact.contact_type == "joint-well-child":
            joint.setdefault(contact.careplan_id, set()).add(contact.when)
    old_enough = with_visits = 0
    for e in mine:
        if e.birth_date is None or (today - e.birth_date).days < 457:  # 15 months
            continue
        by = e.birth_date + timedelta(days=457)
        old_enough += 1
        visit_days = {ev.day for ev in events.get(e.key, []) if ev.day <= by} | {
            d for d in joint.get(e.id, set()) if d <= by}  # fmt: skip
        with_visits += len(visit_days) >= WELL_CHILD_AT_LEAST
    # Tandem does not read the EHR's visit list (Encounter) yet, so the days it recorded are a floor, not the
    # figure: it is "not available" rather than a rate that reads as a result.
    figures.append(Figure("visits", f"Children with ≥ {WELL_CHILD_AT_LEAST} well-child visits by "
                          f"{WELL_CHILD_BY_MONTHS} months", with_visits, old_enough,
                          not_available=VISITS_NOT_READ))  # fmt: skip
    since = min((e.start for e in mine), default=None)
    return Report(
        tuple(figures), float(median(days)) if days else None, len(mine), since, today if mine else None
    )


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("Section", "Measure", "Count", "Of", "Percent"))
    for f in report.figures:
        section = SECTION_TITLES.get(f.section, f.section)
        if f.not_available:
            writer.writerow((section, f.label, "", "", f"not available: {f.not_available}"))
            continue
        writer.writerow(
            (section, f.label, f.count, "" if f.of is None else f.of, "" if f.pct is None else f.pct)
        )
    writer.writerow((SECTION_TITLES["referrals"], "Median days to close", "" if report.median_days_to_close is None
                     else report.median_days_to_close, "", ""))  # fmt: skip
    return out.getvalue()

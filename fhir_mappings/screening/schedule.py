"""The visit schedule as data (`data/schedules/<key>.json`, or a site's own file): which screens a child's visit
calls for, for the child and for the caregiver, and which are due or overdue given the screens done. Read and
checked at start-up (ScheduleError names the file and the problem); `scheduled` is pure and total."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhir_mappings.common.dates import age_bounds
from fhir_mappings.common.gestation import Gestation, corrected_birth
from fhir_mappings.screening.events import ScreenEvent, latest
from fhir_mappings.screening.instruments import CATALOGUE, Catalogue

DATA_FOLDER = Path(__file__).resolve().parent.parent / "data" / "schedules"
WHOM = ("child", "caregiver")


class ScheduleError(ValueError):
    """A schedule file that cannot be used: named, with the reason."""


@dataclass(frozen=True)
class Need:
    need: str  # "caregiver depression", "development", "autism", …
    for_whom: str  # child | caregiver
    any_of: tuple[str, ...]  # instrument keys, the first offered first
    #: Missed in its window → overdue until done; optional screens are only ever "due".
    required: bool = True


@dataclass(frozen=True)
class Visit:
    label: str
    from_days: int
    to_days: int
    needs: tuple[Need, ...]


@dataclass(frozen=True)
class Recurring:
    need: Need
    every_days: int
    from_days: int
    to_days: int


@dataclass(frozen=True)
class Schedule:
    key: str
    title: str
    ages_months: tuple[int, int | None]
    visits: tuple[Visit, ...]
    recurring: tuple[Recurring, ...]
    #: The child's own screens are timed by the age corrected for prematurity: (below_months,
    #: weeks_early_at_least), from the file's `corrected_age`; None: by the chronological age. Caregiver screens
    #: (postpartum depression, family needs) always follow the chronological age: they are about the time since
    #: the birth.
    corrected_age: tuple[int, int] | None = None

    def visit_at(self, age_days: int) -> Visit | None:
        return next((v for v in self.visits if v.from_days <= age_days <= v.to_days), None)

    def need_of(self, event: ScreenEvent) -> str:
        """The need (area) a screen answers: "caregiver depression", "development", …; else the instrument key."""
        whom = "caregiver" if event.focus else "child"
        needs = [*(n for v in self.visits for n in v.needs), *(r.need for r in self.recurring)]
        return next((n.need for n in needs if n.for_whom == whom and event.key in n.any_of), event.key)


@dataclass(frozen=True)
class ScheduledScreen:
    """One line of a child's due list."""

    need: Need
    status: str  # due | overdue
    visit: str  # the visit's label, or "yearly"
    since: date  # when its window opened
    last: ScreenEvent | None = None

    @property
    def reason(self) -> str:
        whom = "caregiver" if self.need.for_whom == "caregiver" else "child"
        if self.visit == "yearly":
            when = f"last on {self.last.day}" if self.last else "none on record"
            return f"Yearly {self.need.need} screen ({whom}; {when})."
        if self.status == "overdue":
            return f"{self.need.need.capitalize()} screen ({whom}) of the {self.visit} visit was not done."
        return f"{self.need.need.capitalize()} screen ({whom}) at the {self.visit} visit."


def _need(data: Mapping[str, Any], catalogue: Catalogue) -> Need:
    if data.get("for") not in WHOM:
        raise ScheduleError(f"need {data.get('need')!r}: 'for' must be one of {', '.join(WHOM)}")
    keys = tuple(data.get("any_of") or ())
    if not keys or not data.get("need"):
        raise ScheduleError("every need has a name and at least one instrument (any_of)")
    for key in keys:
        instrument = catalogue.get(key)
        if instrument is None:
            raise ScheduleError(f"need {data['need']!r} names an unknown instrument {key!r}")
        if data["for"] == "caregiver" and instrument.caregiver_of_child_months is None:
            raise ScheduleError(f"need {data['need']!r}: {key} is not a caregiver screen")
    return Need(str(data["need"]), data["for"], keys, bool(data.get("required", True)))


def _window(data: Mapping[str, Any], where: str) -> tuple[int, int]:
    low, high = data.get("from_days"), data.get("to_days")
    if not isinstance(low, int) or not isinstance(high, int) or not 0 <= low <= high:
        raise ScheduleError(f"{where}: from_days and to_days must be whole days, from ≤ to")
    return low, high


def read_schedule(data: Mapping[str, Any], catalogue: Catalogue = CATALOGUE) -> Schedule:
    visits = []
    for entry in data.get("visits") or []:
        low, high = _window(entry, f"visit {entry.get('visit')!r}")
        visits.append(
            Visit(
                str(entry.get("visit")),
                low,
                high,
                tuple(_need(n, catalogue) for n in entry.get("screens", [])),
            )
        )
    for before, after in zip(visits, visits[1:], strict=False):
        if after.from_days <= before.to_days:
            raise ScheduleError(f"visits {before.label!r} and {after.label!r} overlap or are out of order")
    recurring = []
    for entry in data.get("recurring") or []:
        low, high = _window(entry, f"recurring {entry.get('need')!r}")
        every = entry.get("every_days")
        if not isinstance(every, int) or every < 1:
            raise ScheduleError(
                f"recurring {entry.get('need')!r}: every_days must be a positive whole number"
            )
        recurring.append(Recurring(_need(entry, catalogue), every, low, high))
    ages = age_bounds(data.get("ages_months"))
    if ages is None or not data.get("key") or not visits:
        raise ScheduleError("a schedule has a key, ages_months [lowest, highest] and at least one visit")
    corrected = data.get("corrected_age")
    rule: tuple[int, int] | None = None
    if corrected is not None:
        below, early = (corrected.get("below_months"), corrected.get("weeks_early_at_least")) \
            if isinstance(corrected, Mapping) else (None, None)  # fmt: skip
        if not isinstance(below, int) or not isinstance(early, int) or below < 1 or early < 1 \
                or not corrected.get("_source"):  # fmt: skip
            raise ScheduleError("corrected_age needs below_months, weeks_early_at_least (whole numbers) and its "
                                "_source")  # fmt: skip
        rule = (below, early)
    return Schedule(
        str(data["key"]), str(data.get("title") or data["key"]), ages, tuple(visits), tuple(recurring), rule
    )


def load_schedule(path: Path, catalogue: Catalogue = CATALOGUE) -> Schedule:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ScheduleError("not a JSON object")
        return read_schedule(data, catalogue)
    except (OSError, ValueError) as error:
        raise ScheduleError(f"{path.name}: {error}") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise ScheduleError(f"{path.name}: missing or malformed {error}") from None


#: The shipped HealthySteps schedule (read and checked at import).
HEALTHYSTEPS = load_schedule(DATA_FOLDER / "healthysteps.json")


def _done_since(
    events: Iterable[ScreenEvent], need: Need, since: date, keys: Iterable[str]
) -> ScreenEvent | None:
    found = latest(events, keys, any_caregiver=need.for_whom == "caregiver")
    return found if found is not None and found.day >= since else None


def scheduled(
    schedule: Schedule, born: date | None, today: date, events: Iterable[ScreenEvent],
    gestation: Gestation | None = None,
) -> list[ScheduledScreen]:  # fmt: skip
    """The child's due and overdue screens today: earlier visits' required needs not done since their window opened
    (one line per need: the latest such visit), else the current visit's needs not yet done in its window, and
    recurring needs whose interval has passed. Nothing for a child outside the schedule's ages. With the
    gestational age at birth and a schedule that says so (`corrected_age`), the child's own screens follow the
    age corrected for prematurity; the caregiver's follow the chronological age."""
    if born is None or born > today:
        return []
    births = {"child": corrected_birth(born, today, gestation, schedule.corrected_age), "caregiver": born}
    ages = {whom: (today - day).days for whom, day in births.items()}
    last_day = max(v.to_days for v in schedule.visits)
    if min(ages.values()) > last_day:
        return []
    events = list(events)
    # A need is met by any instrument the schedule lists for it at any visit (a PPSC at 24 months closes a missed
    # 12-month social-emotional screen done with the BPSC).
    meets: dict[tuple[str, str], set[str]] = {}
    for visit in schedule.visits:
        for need in visit.needs:
            meets.setdefault((need.for_whom, need.need), set()).update(need.any_of)
    found: dict[str, ScheduledScreen] = {}
    for visit in schedule.visits:
        for need in visit.needs:
            age_days = ages[need.for_whom]
            if visit.from_days > age_days or age_days > last_day:
                continue
            since = births[need.for_whom] + timedelta(days=visit.from_days)
            current = age_days <= visit.to_days
            if _done_since(events, need, since, meets[(need.for_whom, need.need)]) is not None \
                    or not (current or need.required):  # fmt: skip
                continue
            key = f"{need.for_whom}:{need.need}"
            if current and key in found:
                continue  # a missed earlier visit's line stays: doing the screen now closes both
            found[key] = ScheduledScreen(need, "due" if current else "overdue", visit.label, since)
    for recurring in schedule.recurring:
        age_days = ages[recurring.need.for_whom]
        if not recurring.from_days <= age_days <= recurring.to_days:
            continue
        last = latest(events, recurring.need.any_of, any_caregiver=recurring.need.for_whom == "caregiver")
        if last is None or (today - last.day).days >= recurring.every_days:
            since = (
                last.day + timedelta(days=recurring.every_days)
                if last
                else births[recurring.need.for_whom] + timedelta(days=recurring.from_days)
            )
            found.setdefault(f"{recurring.need.for_whom}:{recurring.need.need}",
                             ScheduledScreen(recurring.need, "due", "yearly", since, last))  # fmt: skip
    return sorted(found.values(), key=lambda s: (s.status != "overdue", s.need.for_whom, s.since))

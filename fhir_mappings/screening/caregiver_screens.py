"""Each caregiver's screens on a child's chart, grouped by due status (issue 28: the infant chart's caregiver-screen
buttons by caregiver and by due now / done / not due yet, not a wall of buttons). Pure and total.

- Due now: the schedule's caregiver needs that are due or overdue today (any caregiver's screen meets them, so the
  need is offered to each caregiver), with the instruments that meet each need, in the schedule's order.
- Done: each instrument's latest screen of this caregiver recorded on the child (whose it is, always).
- Not due yet: the other caregiver instruments for a child of this age, offered without a prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fhir_mappings.common.caregivers import Caregiver
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.schedule import ScheduledScreen


@dataclass(frozen=True)
class DueNeed:
    need: str  # "caregiver depression", "family needs", …
    status: str  # due | overdue
    visit: str  # the visit's label, or "yearly"
    keys: tuple[str, ...]  # the instruments that meet it


@dataclass(frozen=True)
class CaregiverScreens:
    caregiver: Caregiver
    due_now: tuple[DueNeed, ...]
    #: The latest screen per instrument, newest first.
    done: tuple[ScreenEvent, ...]
    not_due: tuple[str, ...]


def caregiver_screens(caregivers: Iterable[Caregiver], lines: Iterable[ScheduledScreen],
                      instrument_keys: Sequence[str], events: Iterable[ScreenEvent]) -> list[CaregiverScreens]:  # fmt: skip
    """Per caregiver (in the order given): the needs due now, the screens done, the instruments not due yet."""
    offered = list(dict.fromkeys(instrument_keys))
    needs = []
    for line in lines:
        if line.need.for_whom != "caregiver":
            continue
        keys = tuple(k for k in line.need.any_of if k in offered)
        if keys:
            needs.append(DueNeed(line.need.need, line.status, line.visit, keys))
    needs.sort(key=lambda n: n.status != "overdue")  # overdue first, as the schedule lists them
    due_keys = {k for n in needs for k in n.keys}
    events = sorted((e for e in events if e.focus), key=lambda e: e.when)
    found = []
    for caregiver in caregivers:
        latest: dict[str, ScreenEvent] = {}
        for event in events:
            if caregiver.refers_to(event.focus):
                latest[event.key] = event
        done = tuple(sorted(latest.values(), key=lambda e: e.when, reverse=True))
        found.append(
            CaregiverScreens(caregiver, tuple(needs), done, tuple(k for k in offered if k not in due_keys))
        )
    return found

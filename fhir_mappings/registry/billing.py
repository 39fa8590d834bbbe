"""Which code a month of care management time reaches (Medicare, CY2026; clinical.md §4). Pure.

CoCM: the first calendar month of an episode bills 99492 from 36 minutes (70 nominal), later months 99493 from 31
(60 nominal); each further 30 minutes adds a 99494 once 16 of them are reached; when 99492/99493 is not reached,
G2214 from 16 minutes. General BHI (not CoCM): 99484 from 20 minutes by clinical staff, G0323 from 20 by a
psychologist, LCSW, counselor or MFT — never in a month billed as CoCM. Which rule applies is the program
definition's `billing` ("cocm" or "bhi").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fhir_mappings.registry.programs import program_for
from fhir_mappings.registry.resources import Contact, Enrolment


@dataclass(frozen=True)
class MonthCode:
    code: str | None  # None: no threshold reached
    units: int  # 99494 add-ons
    minutes: int
    description: str

    @property
    def label(self) -> str:
        if self.code is None:
            return "—"
        return self.code + (f" + 99494×{self.units}" if self.units else "")


def month_of(day: date) -> date:
    return day.replace(day=1)


def cocm_code(minutes: int, first_month: bool) -> MonthCode:
    base, threshold, code = (70, 36, "99492") if first_month else (60, 31, "99493")
    if minutes >= threshold:
        extra = minutes - base
        units = 0 if extra < 16 else 1 + (extra - 16) // 30
        return MonthCode(code, units, minutes, f"{'First' if first_month else 'Later'} CoCM month")
    if minutes >= 16:
        return MonthCode("G2214", 0, minutes, "CoCM, 30 minutes (99492/99493 time not reached)")
    return MonthCode(
        None, 0, minutes, f"{threshold - minutes} more minutes reach {code}; {16 - minutes} reach G2214"
    )


def bhi_code(minutes: int, licensed_clinician: bool) -> MonthCode:
    if minutes >= 20:
        code = "G0323" if licensed_clinician else "99484"
        return MonthCode(code, 0, minutes, "General behavioral health integration")
    return MonthCode(
        None, 0, minutes, f"{20 - minutes} more minutes reach {'G0323' if licensed_clinician else '99484'}"
    )


def minutes_in_month(contacts: Iterable[Contact], month: date, enrolment: Enrolment) -> int:
    """Minutes of this enrolment's contacts in the calendar month, up to its discharge."""
    first = month_of(month)
    return sum(
        c.minutes
        for c in contacts
        if c.careplan_id == enrolment.id
        and month_of(c.when) == first
        and (enrolment.end is None or c.when <= enrolment.end)
    )


def month_code(enrolment: Enrolment, contacts: Iterable[Contact], month: date) -> MonthCode:
    """The code reached by an enrolment in a calendar month (nothing outside the enrolment's period)."""
    first = month_of(month)
    if first < month_of(enrolment.start) or (enrolment.end and first > month_of(enrolment.end)):
        return MonthCode(None, 0, 0, "Not enrolled this month")
    minutes = minutes_in_month(contacts, first, enrolment)
    program = program_for(enrolment.program)
    if program is not None and program.billing == "bhi":
        # Care-manager contacts are clinical staff time; G0323 (psychologist, LCSW, …) is chosen by the biller.
        return bhi_code(minutes, licensed_clinician=False)
    return cocm_code(minutes, first_month=first == month_of(enrolment.start))

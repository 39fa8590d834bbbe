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
from datetime import date, timedelta

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


#: What each code is, in words, for the report and its CSV (clinical.md §4, Medicare CY2026). Data, not logic:
#: a deployment's biller reads these beside the code.
CODE_DESCRIPTIONS: dict[str, str] = {
    "99492": "First Collaborative Care month (70 minutes nominal, billable from 36)",
    "99493": "Later Collaborative Care month (60 minutes nominal, billable from 31)",
    "99494": "Collaborative Care add-on, each further 30 minutes (from 16 past the base)",
    "G2214": "Collaborative Care, 30 minutes, when 99492/99493 time is not reached (from 16)",
    "99484": "General behavioral health integration by clinical staff (from 20 minutes)",
    "G0323": "General behavioral health integration by a psychologist, LCSW, counselor or MFT (from 20 minutes)",
}


def code_description(code: MonthCode) -> str:
    """The code reached and its add-ons, in words ("" when none is reached)."""
    if code.code is None:
        return ""
    said = CODE_DESCRIPTIONS.get(code.code, code.description)
    if code.units:
        said += f"; plus {code.units} × 99494 ({CODE_DESCRIPTIONS['99494']})"
    return said


@dataclass(frozen=True)
class Requirement:
    """One thing a patient-month needs before it is billed, that Tandem can see in its registry.

    `rules`: the program billing rules it applies to ("cocm", "bhi"). `missing`: what the report says when it is
    not met. Source: clinical.md §4 ("CoCM billing needs: consent (verbal or written, documented), …, registry
    tracking, validated scales, psychiatric consultant review"). That a validated scale and a case review count
    when recorded any time from enrolment to the month's end is Tandem's reading, not a confirmed rule: it is
    data here so a deployment's compliance team can change it."""

    key: str
    rules: tuple[str, ...]
    missing: str


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("consent", ("cocm", "bhi"), "consent is not documented (how and when the patient agreed)"),
    Requirement(
        "billing-practitioner",
        ("cocm", "bhi"),
        "no billing practitioner (primary care provider) on the care team",
    ),
    Requirement("consultant", ("cocm",), "no psychiatric consultant on the care team"),
    Requirement(
        "scale", ("cocm",), "no validated scale score (such as a PHQ-9) recorded by the end of the month"
    ),
    Requirement("review", ("cocm",), "no psychiatric case review recorded by the end of the month"),
)
#: What CoCM needs that Tandem cannot see, said under the report (clinical.md §4).
NOT_CHECKED = (
    "an initiating visit when the patient was not seen in the past year, weekly caseload review and a relapse "
    "prevention plan"
)


@dataclass(frozen=True)
class MonthReadiness:
    """A patient-month as the biller reads it: the code reached and what stops it from being billed."""

    code: MonthCode
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return self.code.code is not None and not self.missing

    @property
    def state(self) -> str:
        if self.ready:
            return "Ready to bill"
        return "Not ready: " + "; ".join(self.missing) + "."


def month_end(month: date) -> date:
    first = month_of(month)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return date.fromordinal(following.toordinal() - 1)


def month_readiness(
    enrolment: Enrolment,
    contacts: Iterable[Contact],
    month: date,
    *,
    scored: Iterable[date] = (),
    reviewed: Iterable[date] = (),
    requirements: tuple[Requirement, ...] = REQUIREMENTS,
) -> MonthReadiness:
    """The code the month reaches and, in words, each requirement not met. `scored`: days of the patient's
    validated-scale scores; `reviewed`: days of the enrolment's completed case reviews."""
    code = month_code(enrolment, contacts, month)
    program = program_for(enrolment.program)
    rule = program.billing if program is not None else "cocm"
    #: A baseline taken before enrolment counts, within the program's own baseline window.
    baseline_days = program.outcome.baseline_days_before_enrolment if program is not None else 0
    end = month_end(month)
    pcp, consultant = enrolment.member("pcp"), enrolment.member("psychiatric-consultant")
    met = {
        "consent": enrolment.consent_given
        and enrolment.consent_method is not None
        and (enrolment.consent_date is None or enrolment.consent_date <= end),
        "billing-practitioner": pcp is not None,
        "consultant": consultant is not None,
        "scale": any(enrolment.start - timedelta(days=baseline_days) <= d <= end for d in scored),
        "review": any(d <= end for d in reviewed),
    }
    missing = [] if code.code is not None else [f"minutes not reached ({code.description})"]
    missing += [r.missing for r in requirements if rule in r.rules and not met.get(r.key, False)]
    return MonthReadiness(code, tuple(missing))


@dataclass(frozen=True)
class CodeTotal:
    code: str
    patient_months: int  # how many patient-months reached it (99494: how many have add-ons)
    units: int  # units to bill (99494: the add-on units; others: one per patient-month)
    ready: int  # of those patient-months, how many are ready to bill


def billing_totals(months: Iterable[MonthReadiness]) -> list[CodeTotal]:
    """Per code: patient-months, units and how many are ready, in the order of CODE_DESCRIPTIONS."""
    counts: dict[str, list[int]] = {}
    for m in months:
        if m.code.code is None:
            continue
        base = counts.setdefault(m.code.code, [0, 0, 0])
        base[0], base[1], base[2] = base[0] + 1, base[1] + 1, base[2] + int(m.ready)
        if m.code.units:
            add = counts.setdefault("99494", [0, 0, 0])
            add[0], add[1], add[2] = (
                add[0] + 1,
                add[1] + m.code.units,
                add[2] + int(m.ready),
            )
    order = list(CODE_DESCRIPTIONS)
    return [
        CodeTotal(code, *values)
        for code, values in sorted(
            counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99
        )
    ]

"""Billing suggestions for one HealthySteps visit (healthysteps.md §6): per caregiver-focused instrument 96161 on
the child's claim, per child instrument 96127 or 96110, and Z-codes for the child when there is no diagnosis.
Z13.32 is never suggested for a child (the program file cannot name it). The payer decides which codes are offered.
Suggestions only: the billing team codes the claim. Pure and total."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fhir_mappings.healthysteps.program import HealthySteps
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.instruments import CATALOGUE, Catalogue


@dataclass(frozen=True)
class BillingLine:
    code: str
    text: str
    units: int
    because: str
    #: False when the chosen payer's list does not offer the code (shown struck, with the reason).
    offered: bool = True


def visit_billing(program: HealthySteps, day: date, events: Iterable[ScreenEvent], *, concerns: Iterable[str] = (),
                  diagnosed: bool = False, payer: str | None = None,
                  catalogue: Catalogue = CATALOGUE) -> list[BillingLine]:  # fmt: skip
    """The codes one visit day suggests, on the child's claim."""
    todays = [e for e in events if e.day == day]
    offered = program.codes_for(payer)
    lines: list[BillingLine] = []
    for billing in program.instrument_codes:
        counted = [e for e in todays if (e.focus is not None) == (billing.for_whom == "caregiver")
                   and (not billing.instruments or e.key in billing.instruments)]  # fmt: skip
        if counted:
            names = ", ".join(sorted({_name(catalogue, e.key) for e in counted}))
            whose = "caregiver-focused" if billing.for_whom == "caregiver" else "child"
            lines.append(BillingLine(billing.code, billing.text, len(counted), f"{len(counted)} {whose} "
                                     f"instrument(s): {names}", billing.code in offered))  # fmt: skip
    if not diagnosed:
        concerns = set(concerns)
        positive = {e.key for e in todays if e.flag == "positive"}
        caregiver_positive = {e.key for e in todays if e.flag == "positive" and e.focus is not None}
        for z in program.z_codes:
            reasons = [f"concern: {_concern(program, c)}" for c in z.when_concern if c in concerns]
            reasons += [f"positive {_name(catalogue, k)}" for k in z.when_positive if k in positive]
            reasons += [
                f"caregiver's positive {_name(catalogue, k)}"
                for k in z.when_caregiver_positive
                if k in caregiver_positive
            ]
            if reasons:
                lines.append(BillingLine(z.code, z.text, 1, "; ".join(reasons), z.code in offered))
    return lines


def _concern(program: HealthySteps, key: str) -> str:
    concern = program.concerns.get(key)
    return concern.text.lower() if concern else key


def _name(catalogue: Catalogue, key: str) -> str:
    instrument = catalogue.get(key)
    return instrument.name if instrument else key


def billing_days(events: Iterable[ScreenEvent], since: date, until: date) -> list[date]:
    """The visit days with screens in a period, newest first."""
    return sorted({e.day for e in events if since <= e.day <= until}, reverse=True)

"""The one reader of FHIR date and dateTime values (total: anything else gives None)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def parse_datetime(value: Any) -> datetime | None:
    """A FHIR dateTime, date or partial date (YYYY, YYYY-MM) as an aware datetime; no zone is read as UTC."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value.replace("Z", "+00:00")
    try:
        if len(text) == 4:
            parsed = datetime(int(text), 1, 1)
        elif len(text) == 7:
            parsed = datetime(int(text[:4]), int(text[5:7]), 1)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    """The calendar day of a full FHIR date or dateTime (its first ten characters); partial dates give None."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def age_months(born: date | None, today: date) -> int | None:
    """Completed months of age (a child born on the 31st is a month old on the last day of a shorter month only
    once the day number is reached, as clinicians count); None when unknown or born after today."""
    if born is None or born > today:
        return None
    return (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)


def age_text(born: date | None, today: date) -> str | None:
    """Age as a clinician writes it: `12 days`, `9 mo` under two years, `2 y 4 mo` under three, then `46 y`."""
    months = age_months(born, today)
    if months is None or born is None:
        return None
    if months < 1:
        days = (today - born).days
        return f"{days} day{'s' if days != 1 else ''}"
    if months < 24:
        return f"{months} mo"
    if months < 36:
        return f"{months // 12} y {months % 12} mo" if months % 12 else f"{months // 12} y"
    return f"{months // 12} y"


def age_range_text(bounds: tuple[int, int | None] | None) -> str:
    """`18 years and older`, `12 to 17 years`, `1 to 66 months` (bounds in completed months, the upper inclusive)."""
    if bounds is None:
        return "any age"
    low, high = bounds
    in_years = low % 12 == 0 and (high is None or (high + 1) % 12 == 0)
    if high is None:
        return f"{low // 12} years and older" if in_years else f"{low} months and older"
    if in_years:
        return f"{low // 12} to {(high + 1) // 12 - 1} years"
    return f"{low} to {high} months"


def age_bounds(value: Any) -> tuple[int, int | None] | None:
    """`[lowest, highest]` completed months from a data file (highest may be null: no upper limit); None when the
    value is not of that shape (the caller names the file and field)."""
    if not (isinstance(value, list) and len(value) == 2 and type(value[0]) is int and value[0] >= 0
            and (value[1] is None or type(value[1]) is int and value[1] >= value[0])):  # fmt: skip
        return None
    return value[0], value[1]

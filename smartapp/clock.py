"""The deployment's time zone (`TANDEM_TIME_ZONE`): what "today" is, and how times are shown."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from markupsafe import Markup, escape


def zone() -> ZoneInfo:
    name = current_app.config.get("TANDEM_TIME_ZONE", "UTC") if has_app_context() else "UTC"
    return ZoneInfo(name)


def today() -> date:
    """Today in the deployment's time zone (a contact logged at 8 pm in Chicago is not tomorrow's)."""
    return datetime.now(zone()).date()


def local_time(value: str | datetime | None) -> str:
    """An instant as the deployment shows it: `2026-11-24 14:05 CST`; a bare date stays a date. A deployment
    whose zone is UTC (the demo's) shows the time alone: "UTC" is machinery a person does not read (issue 28)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if len(value) <= 10:
            return value
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone())
    shown = local.strftime("%Y-%m-%d %H:%M")
    label = local.strftime("%Z")
    return shown if label in ("UTC", "GMT", "Z") or label.startswith(("+", "-")) else f"{shown} {label}"


def time_element(value: str | datetime | None) -> Markup:
    """`local_time` as an HTML `<time>` that never wraps (the templates' `local_time` filter)."""
    shown = local_time(value)
    if not shown:
        return Markup("")
    machine = value.isoformat() if isinstance(value, datetime) else str(value)
    return Markup('<time class="nowrap" datetime="{}">{}</time>').format(machine, shown)


def day_element(value: str | datetime | None) -> Markup:
    """The local day of an instant as an HTML `<time>` (the templates' `local_day` filter): `2026-11-24`."""
    shown = local_time(value)[:10]
    if not shown:
        return Markup("")
    machine = value.isoformat() if isinstance(value, datetime) else str(value)
    return Markup('<time class="nowrap" datetime="{}">{}</time>').format(machine, shown)


def nowrap_parts(text: str | None, separator: str = " · ") -> Markup:
    """`DOB 1980-05-02 · 46 y · MRN 100007` that wraps between its parts, never inside a date or an MRN."""
    if not text:
        return Markup("")
    return escape(separator).join(
        Markup('<span class="nowrap">{}</span>').format(p) for p in str(text).split(separator)
    )

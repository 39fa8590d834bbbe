"""The deployment's time zone (`TANDEM_TIME_ZONE`): what "today" is, and how times are shown."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context


def zone() -> ZoneInfo:
    name = current_app.config.get("TANDEM_TIME_ZONE", "UTC") if has_app_context() else "UTC"
    return ZoneInfo(name)


def today() -> date:
    """Today in the deployment's time zone (a contact logged at 8 pm in Chicago is not tomorrow's)."""
    return datetime.now(zone()).date()


def local_time(value: str | datetime | None) -> str:
    """An instant as the deployment shows it: `2026-11-24 14:05 CST`; a bare date stays a date. A regional zone
    is named (CST, CEST); UTC or GMT is not: a person reads the time as the deployment's local time (issue 28)."""
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
    named = local.strftime("%Z")
    return local.strftime("%Y-%m-%d %H:%M") + ("" if named in ("UTC", "GMT") else f" {named}")

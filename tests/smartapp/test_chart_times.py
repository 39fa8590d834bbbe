"""Times a person reads are the deployment's local time, never "UTC" (issue 28, "Everywhere")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from smartapp.clock import local_time


@pytest.mark.parametrize(
    ("zone", "instant", "shown"),
    [
        # A deployment in UTC (the demo's) shows the time alone: "UTC" is machinery (issue 28, "Everywhere").
        ("UTC", "2026-12-07T14:19:00+00:00", "2026-12-07 14:19"),
        ("Etc/UTC", datetime(2026, 12, 7, 14, 19, tzinfo=UTC), "2026-12-07 14:19"),
        # A zone without a name (IANA abbreviates it as an offset) shows the time alone too.
        ("Asia/Dubai", "2026-12-07T14:19:00+00:00", "2026-12-07 18:19"),
        # A named zone keeps its abbreviation: a Chicago clinic reads CST.
        ("America/Chicago", "2026-12-07T14:19:00+00:00", "2026-12-07 08:19 CST"),
    ],
)
def test_local_time_never_says_utc(zone: str, instant: str | datetime, shown: str) -> None:
    app = Flask(__name__)
    app.config["TANDEM_TIME_ZONE"] = zone
    with app.app_context():
        assert local_time(instant) == shown

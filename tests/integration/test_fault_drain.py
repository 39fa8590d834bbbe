"""Write-backs drain by themselves through every fault (a short run; `benchmarks/fault_drain.py` runs 100)."""

from __future__ import annotations

import pytest

from .fault_run import run

pytestmark = pytest.mark.integration


def test_screenings_survive_every_fault_and_drain_without_a_page(redis_url: str) -> None:
    counts = run(10, drain_timeout=120)
    assert counts["recorded (Redis)"] == 10  # nothing lost, also those saved again after the Redis outage
    assert counts["answered 503 with answers kept (Redis down), saved again"] >= 1
    assert counts["pending when the last page was answered"] >= 1  # the worker had work to do
    assert counts["in the registry store exactly once"] == 10 and counts["registry duplicates"] == 0
    # Every part counted (the response, the note, the total and item 9): none lost, none written twice, and no
    # structured write-back without its total.
    assert counts["lost"] == 0 and counts["duplicated"] == 0 and counts["EHR duplicates"] == 0
    assert counts["total Observations missing (structured write-backs)"] == 0
    statuses = counts["EHR statuses"]
    assert set(statuses) <= {"EHR saved", "EHR unconfirmed"} and statuses.get("EHR saved", 0) >= 7
    assert counts["safety Tasks in the registry"] == counts["positive item 9"] >= 1
    # Unconfirmed write-backs stay on the pending page for a person to check, never re-created.
    assert counts["unconfirmed listed as pending"] == statuses.get("EHR unconfirmed", 0)

"""The worklist's kept entries read back totally: anything that is not an entry this release wrote is None (the
worklist rebuilds it), never an exception or a wrong row (issue 27 §2)."""

from __future__ import annotations

import json

import pytest

from fhir_mappings.registry.programs import COLUMNS
from smartapp.caseload.ready import Entry
from smartapp.healthysteps.ready import HsEntry

GOOD = Entry("cp-1", "https://ehr.example/fhir", "p1", "cocm-depression", "ana ruiz", ("Practitioner/cm-1",),
             ("review", "new"), tuple([0] * len(COLUMNS)), "1980-01-01", (True, False, False, False), {})  # fmt: skip


def test_an_entry_reads_back_as_written() -> None:
    assert Entry.from_json(GOOD.to_json()) == GOOD
    safety = GOOD.with_safety()
    assert safety.flags == ("safety", "review", "new") and safety.sort[COLUMNS.index("flags")] == [0, -3]
    assert Entry.from_json(safety.to_json()) == safety and safety.with_safety() == safety


@pytest.mark.parametrize(
    "raw",
    [
        # Damaged, another release's shape, or not JSON at all.
        None,
        "",
        "not json",
        "[]",
        "{}",
        "null",
        json.dumps(["cp-1"]),
        json.dumps(
            [
                "cp-1",
                "i",
                "p",
                "prog",
                "name",
                [],
                ["no-such-flag"],
                [0] * len(COLUMNS),
                "d",
                [1, 0, 0, 0],
                {},
            ]
        ),
        json.dumps(["cp-1", "i", "p", "prog", "name", [], [], [0] * 3, "d", [1, 0, 0, 0], {}]),
        json.dumps([1, "i", "p", "prog", "name", [], [], [0] * len(COLUMNS), "d", [1, 0, 0, 0], {}]),
        json.dumps(["cp-1", "i", "p", "prog", "name", [], [], [0] * len(COLUMNS), "d", [1], {}]),
        json.dumps(["cp-1", "i", "p", "prog", "name", [], [], [0] * len(COLUMNS), "d", [1, 0, 0, 0], 7]),
    ],
)
def test_anything_else_reads_as_none(raw: str | None) -> None:
    assert Entry.from_json(raw) is None


@pytest.mark.parametrize(
    "raw",
    [None, "", "[1,2]", json.dumps(["hs-1", "i", "c1", "Child", "1", None, ["nonsense"], 3]),
     json.dumps(["hs-1", "i", "c1", "Child", 1, None, [], 3]), json.dumps(["hs-1", "i", "c1", "Child", "1", None, [], "x"])],
)  # fmt: skip
def test_a_healthysteps_entry_reads_back_totally(raw: str | None) -> None:
    good = HsEntry("hs-1", "i", "c1", "Child", "1", "Practitioner/hs-1", ("due",), 3)
    assert HsEntry.from_json(good.to_json()) == good
    assert HsEntry.from_json(raw) is None

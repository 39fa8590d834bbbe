"""The infant chart's caregiver screens grouped by caregiver and by due status (issue 28): due now, done, not due
yet — each caregiver's buttons in three groups, not a wall of "<instrument> with the <caregiver>" buttons."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_mappings.common.caregivers import Caregiver
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.caregiver_screens import caregiver_screens
from fhir_mappings.screening.events import ScreenEvent
from fhir_mappings.screening.schedule import Need, ScheduledScreen

CHILD = PatientKey("https://ehr.example/fhir", "baby")
MOTHER = Caregiver("rp-ma", CHILD, "Ana Diaz", "MTH")
FATHER = Caregiver("rp-pa", CHILD, "Luis Diaz", "FTH", ehr_reference="RelatedPerson/ehr-pa")
OFFERED = ("epds", "phq2", "phq9", "ahc-hrsn", "hunger-vital-sign")
DEPRESSION = ScheduledScreen(Need("caregiver depression", "caregiver", ("epds", "phq2", "phq9")), "overdue",
                             "1 month", date(2026, 11, 1))  # fmt: skip
NEEDS = ScheduledScreen(Need("family needs", "caregiver", ("ahc-hrsn", "hunger-vital-sign")), "due", "yearly",
                        date(2026, 10, 1))  # fmt: skip
DEVELOPMENT = ScheduledScreen(Need("development", "child", ("asq3",)), "due", "2 months", date(2026, 12, 1))


def _screen(key: str, day: int, focus: str | None) -> ScreenEvent:
    return ScreenEvent(key, datetime(2026, 11, day, 10, tzinfo=UTC), focus, "negative", f"{key} 4")


@pytest.mark.parametrize(
    ("lines", "events", "due", "done", "not_due"),
    [
        # Nothing due: every caregiver instrument is offered, folded as "not due yet".
        ([], [], [], [], list(OFFERED)),
        # The schedule's caregiver needs (healthysteps.json, healthysteps.md §1a) are due now with the instruments
        # that meet them, overdue first; the child's own needs are not a caregiver's.
        ([NEEDS, DEPRESSION, DEVELOPMENT], [], [("caregiver depression", "overdue", ["epds", "phq2", "phq9"]),
                                                ("family needs", "due", ["ahc-hrsn", "hunger-vital-sign"])], [], []),
        # A screen done is the mother's only (whose it is, always); the latest per instrument, newest first.
        ([NEEDS], [_screen("epds", 2, "RelatedPerson/rp-ma"), _screen("epds", 20, "RelatedPerson/rp-ma"),
                   _screen("phq2", 10, "RelatedPerson/rp-ma"), _screen("asq3", 12, None)],
         [("family needs", "due", ["ahc-hrsn", "hunger-vital-sign"])], [("epds", 20), ("phq2", 10)],
         ["epds", "phq2", "phq9"]),
    ],
)  # fmt: skip
def test_the_mothers_screens_by_due_status(lines: list[ScheduledScreen], events: list[ScreenEvent],
                                           due: list[tuple[str, str, list[str]]], done: list[tuple[str, int]],
                                           not_due: list[str]) -> None:  # fmt: skip
    mother = caregiver_screens([MOTHER, FATHER], lines, OFFERED, events)[0]
    assert mother.caregiver == MOTHER
    assert [(n.need, n.status, list(n.keys)) for n in mother.due_now] == due
    assert [(e.key, e.day.day) for e in mother.done] == done
    assert list(mother.not_due) == not_due


def test_each_caregiver_has_their_own_row_and_an_ehr_caregiver_is_found_by_the_ehr_reference() -> None:
    found = caregiver_screens(
        [MOTHER, FATHER], [DEPRESSION], OFFERED, [_screen("phq9", 5, "RelatedPerson/ehr-pa")]
    )
    assert [c.caregiver.label for c in found] == ["Mother (Ana Diaz)", "Father (Luis Diaz)"]
    assert found[0].done == () and [e.key for e in found[1].done] == ["phq9"]
    # An instrument the site does not offer for this child's age is never a button.
    assert caregiver_screens([MOTHER], [DEPRESSION], ("phq2",), [])[0].due_now[0].keys == ("phq2",)
    assert caregiver_screens([], [DEPRESSION], OFFERED, []) == []

"""What the care manager reads after a follow-up measurement, and how times are shown (issue 28)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from fhir_mappings.screening.writeback import NOTE, STRUCTURED, plan_writeback
from smartapp.caseload.followup import where_it_went
from smartapp.clock import local_time
from smartapp.screening.service import FAILED, PENDING, SAVED, SKIPPED, UNCONFIRMED, ScreeningRecord, Target

RESOURCE_NAMES = ("QuestionnaireResponse", "Observation", "DocumentReference", "Task", "CarePlan")
NO_WRITE = plan_writeback(None, lambda _: False, "generic", has_encounter=False)


def record(registry: str, ehr: str, plan_types: tuple[str, ...] = STRUCTURED, ehr_detail: str = "",
           plan_reason: str = "The EHR accepts questionnaire answers and scores from Tandem.") -> ScreeningRecord:  # fmt: skip
    return ScreeningRecord(id="s1", iss="https://ehr.example", vendor="generic", patient_id="p1", instrument="phq9",
                           answers={}, authored="2026-12-07T10:00:00+00:00", author=None, encounter_id=None, sex=None,
                           plan_kind="structured", plan_types=list(plan_types), plan_reason=plan_reason,
                           registry=Target(status=registry), ehr=Target(status=ehr, detail=ehr_detail))  # fmt: skip


# Issue 28 ("Care manager"): the page says once, in words, where the result went — "Saved to Tandem's registry
# and sent to the chart as …" / "kept; the EHR did not accept it yet — Tandem will retry" — not twice, not with
# resource names. Statuses: smartapp/screening/service.py (saved, pending, unconfirmed, failed, skipped).
@pytest.mark.parametrize(
    ("rec", "starts", "contains"),
    [
        (
            record(SAVED, SAVED),
            "Saved to Tandem's registry; sent to the patient's chart",
            "as a questionnaire with its score.",
        ),
        (
            record(SAVED, SAVED, NOTE),
            "Saved to Tandem's registry; sent to the patient's chart",
            "as a clinical note.",
        ),
        (
            record(SAVED, PENDING, ehr_detail="The EHR did not answer in time. Tandem will retry in 1 min."),
            "Saved to Tandem's registry; not in the patient's chart yet",
            "Tandem will retry in 1 min.",
        ),
        (
            record(SAVED, PENDING),
            "Saved to Tandem's registry; not in the patient's chart yet",
            "Tandem will retry by itself.",
        ),
        (
            record(SAVED, UNCONFIRMED),
            "Saved to Tandem's registry; the EHR did not confirm",
            "check the chart",
        ),
        (
            record(SAVED, FAILED, ehr_detail="The EHR did not accept …"),
            "Saved to Tandem's registry; the EHR did not accept it",
            "Pending and failed write-backs",
        ),
        (
            record(SAVED, SKIPPED, (), NO_WRITE.reason, NO_WRITE.reason),
            "Saved to Tandem's registry; not sent to the patient's chart.",
            "The EHR accepts no write-back from Tandem with the granted scopes.",
        ),
        (
            record(PENDING, SAVED),
            "Kept in Tandem; the registry could not be reached yet and Tandem will retry",
            "sent to the patient's chart",
        ),
    ],
)
def test_a_follow_up_says_once_where_it_went(rec: ScreeningRecord, starts: str, contains: str) -> None:
    said = where_it_went(rec)
    assert said.startswith(starts) and contains in said, said
    assert not any(name in said for name in RESOURCE_NAMES), said
    assert said.count("registry") == 1, (
        said
    )  # the plan's own "kept in the registry" is not said a second time
    assert said.count("retry") <= 1, said


@pytest.mark.parametrize(
    ("zone", "instant", "shown"),
    [
        # A regional zone is named (README: times in the deployment's TANDEM_TIME_ZONE).
        ("America/Chicago", datetime(2026, 11, 24, 2, 30, tzinfo=UTC), "2026-11-23 20:30 CST"),
        # Issue 28 "Everywhere": no UTC on a page a person reads — a UTC deployment's local time is unlabelled.
        ("UTC", datetime(2026, 12, 7, 14, 19, tzinfo=UTC), "2026-12-07 14:19"),
        ("Europe/London", datetime(2026, 12, 7, 14, 19, tzinfo=UTC), "2026-12-07 14:19"),  # GMT in winter
        ("Europe/London", datetime(2026, 7, 7, 14, 19, tzinfo=UTC), "2026-07-07 15:19 BST"),
    ],
)
def test_local_time_never_says_utc(zone: str, instant: datetime, shown: str) -> None:
    app = Flask(__name__)
    app.config["TANDEM_TIME_ZONE"] = zone
    with app.app_context():
        assert local_time(instant) == shown
        assert local_time(instant.isoformat()) == shown


@pytest.mark.parametrize(
    ("parts", "said"),
    [
        # A write-back not sent: its detail is the plan's reason; the result page says it once (issue 28).
        (("Epic takes notes only with an encounter.", "Epic takes notes only with an encounter."),
         "Epic takes notes only with an encounter."),
        (("Sent as a note.", "Tandem will retry in 2 min."), "Sent as a note. Tandem will retry in 2 min."),
        (("", None, " Kept in Tandem only. "), "Kept in Tandem only."),
    ],
)  # fmt: skip
def test_the_result_page_says_each_sentence_once(parts: tuple[str | None, ...], said: str) -> None:
    from smartapp.screening.service import said_once

    assert said_once(*parts) == said

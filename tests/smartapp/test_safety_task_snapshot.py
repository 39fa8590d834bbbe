"""The caseload snapshot (the registry's cached copy every page reads) keeps what a safety Task says about who the
patient is, who raised it and when: the list names the patient from it, from any launch (issue 26 §2)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from fhir_mappings.common.patient_summary import PatientLabel
from fhir_mappings.registry.resources import Member, WorkTask
from smartapp.caseload.snapshot import Snapshot


# A safety Task as a chart launch writes it, one of an older release (day only, no copy), one raised by a patient.
@pytest.mark.parametrize(
    ("label", "requester", "authored_at"),
    [
        (PatientLabel("Alex Rivera", date(1980, 5, 2), "100007"), Member("Practitioner/p", "Dana Whitfield"),
         datetime(2026, 12, 7, 5, 30, tzinfo=UTC)),
        (None, None, None),
        (PatientLabel(None, None, "100007"), Member("", "the patient, in the patient portal"),
         datetime(2026, 12, 7, 23, 59, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_a_safety_tasks_copy_survives_the_snapshot(
    label: PatientLabel | None, requester: Member | None, authored_at: datetime | None
) -> None:
    task = WorkTask("tandem-x-safety", "safety-follow-up", "requested", "p-1", None, date(2026, 12, 7),
                    date(2026, 12, 7), iss="https://ehr.example.org/fhir", patient=label, requester=requester,
                    authored_at=authored_at)  # fmt: skip
    snapshot = Snapshot(tasks={task.id: task})
    again = Snapshot.from_json(json.loads(snapshot.dumps()))
    assert again.tasks[task.id] == task

"""Next steps on the item-9 safety follow-up (issue 28, "Clinician (chart)"): each is kept on the safety Task as a
note with who and when, once per form, and the follow-up's closing keeps them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.task import Task

from fhir_mappings.registry.resources import (
    Member,
    closed_safety_task,
    safety_step_added,
    safety_steps,
    work_task_from,
)

TASK: dict[str, Any] = {
    "resourceType": "Task", "id": "tandem-abc-safety", "status": "requested", "intent": "order", "priority": "stat",
    "code": {"coding": [{"system": "https://tandem.health/fhir/CodeSystem/task", "code": "safety-follow-up"}]},
    "for": {"reference": "Patient/pt-0010"}, "authoredOn": "2026-12-07T14:00:00+00:00",
    "note": [{"text": "An ordinary note, not a step"}],
}  # fmt: skip
AT = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
PCP = Member("Practitioner/pr-pcp-1", "Dana Whitfield")


@pytest.mark.parametrize(
    ("kind", "note", "label", "kept_note"),
    [
        # The three next steps the issue names (issue 28: "start the C-SSRS screener, record a safety plan or a
        # referral, each recorded on the safety follow-up").
        ("cssrs-started", "", "C-SSRS screener started", None),
        ("safety-plan", "Call sister; crisis line 988", "Safety plan made", "Call sister; crisis line 988"),
        ("referral", "Crisis team, seen today 5 pm", "Referral made", "Crisis team, seen today 5 pm"),
        # The C-SSRS screener started from the alert keeps its result on the follow-up.
        ("cssrs-done", "C-SSRS screener: low risk", "C-SSRS screener result", "C-SSRS screener: low risk"),
    ],
)
def test_a_step_is_kept_with_who_and_when(kind: str, note: str, label: str, kept_note: str | None) -> None:
    updated = safety_step_added(TASK, "step-1", kind, note, AT, PCP)
    Task.model_validate(updated)  # outgoing resources are valid R4B
    (step,) = safety_steps(updated)
    assert (step.kind, step.label, step.note, step.at, step.by) == (kind, label, kept_note, AT, PCP)
    assert updated["note"][0] == TASK["note"][0]  # other notes stay


def test_a_resubmitted_step_is_recorded_once_and_closing_keeps_the_steps() -> None:
    once = safety_step_added(TASK, "step-1", "safety-plan", "Plan", AT, PCP)
    assert safety_step_added(once, "step-1", "safety-plan", "Plan", AT, PCP) == once
    twice = safety_step_added(once, "step-2", "referral", "ED", AT.replace(hour=16), None)
    assert [s.kind for s in safety_steps(twice)] == ["safety-plan", "referral"]
    closed = closed_safety_task(twice, "referred", "Seen in the ED", AT.replace(hour=17), PCP)
    task = work_task_from(closed)
    assert task is not None and not task.open and [s.kind for s in task.steps] == ["safety-plan", "referral"]


def test_unknown_steps_are_refused_and_odd_notes_are_not_steps() -> None:
    with pytest.raises(ValueError, match="unknown safety step"):
        safety_step_added(TASK, "s", "prayer", "", AT, None)
    odd = {**TASK, "note": [{"extension": [{"url": "https://tandem.health/fhir/StructureDefinition/safety-step"}]},
                            "not a note", {"text": "plain"}]}  # fmt: skip
    assert safety_steps(odd) == ()

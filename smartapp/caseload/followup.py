"""Where a follow-up measurement went, said once and in words (issue 28, "Care manager"): the care manager who
recorded a PHQ-9 by phone from a worklist row reads one sentence on the patient's page, never the resource
types written, never the same reason twice."""

from __future__ import annotations

import re

from fhir_mappings.screening.writeback import NOTE, STRUCTURED
from smartapp.screening.service import FAILED, PENDING, SAVED, SKIPPED, UNCONFIRMED, ScreeningRecord


def _as_what(plan_types: list[str]) -> str:
    """What the chart received, in a clinician's words (the plan's resource types stay under Details for IT)."""
    if tuple(plan_types) == NOTE:
        return "a clinical note"
    if set(plan_types) == set(STRUCTURED):
        return "a questionnaire with its score"
    return "the result"


#: The plan's own "so it is kept in the registry" clause: the sentence already says where it was kept.
_KEPT_CLAUSE = re.compile(
    r"[;:,]?\s*(?:so )?the (?:result|recommendations) (?:is|are) kept in the Tandem registry[^.]*"
)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def where_it_went(record: ScreeningRecord) -> str:
    """One sentence: where the registry copy and the chart copy of a follow-up are now, and what happens next."""
    registry = {
        SAVED: "Saved to Tandem's registry",
        PENDING: "Kept in Tandem; the registry could not be reached yet and Tandem will retry",
        UNCONFIRMED: "Kept in Tandem; the registry did not confirm it yet",
        FAILED: "Kept in Tandem; the registry did not accept it (IT can see why on Pending and failed write-backs)",
        SKIPPED: "Kept in Tandem",
    }.get(record.registry.status, "Kept in Tandem")
    chart = "the patient's chart"
    status = record.ehr.status
    if status == SAVED:
        ehr = f"sent to {chart} as {_as_what(record.plan_types)}."
    elif status == PENDING:
        ehr = f"not in {chart} yet: {_sentence(record.ehr.detail) or 'Tandem will retry by itself.'}"
        if "retry" not in ehr:
            ehr += " Tandem will retry by itself."
    elif status == UNCONFIRMED:
        ehr = (
            f"the EHR did not confirm it reached {chart}: check the chart (it is listed on Pending and failed "
            "write-backs)."
        )
    elif status == FAILED:
        ehr = (
            f"the EHR did not accept it, so it is not in {chart}; it stays listed on Pending and failed "
            "write-backs until someone checks it."
        )
    else:  # skipped: this EHR or this launch takes no write-back; the plan says why, once
        why = _sentence(_KEPT_CLAUSE.sub("", record.ehr.detail or record.plan_reason))
        ehr = f"not sent to {chart}. {why}".rstrip()
    return f"{registry}; {ehr}"

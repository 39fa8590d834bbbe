"""Which write-back an EHR gets, chosen from its CapabilityStatement, the granted scopes and the vendor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappings.common.capability import accepts_create

STRUCTURED = ("QuestionnaireResponse", "Observation")
NOTE = ("DocumentReference",)
#: Vendors whose EHRs refuse survey Observations and QuestionnaireResponses although their servers accept some
#: Observation creates (vital signs) — ehr-integration.md §1.
NO_STRUCTURED_SCREENINGS = frozenset({"epic", "oracle"})


@dataclass(frozen=True)
class WritebackPlan:
    #: Resource types Tandem will create in the EHR: STRUCTURED, NOTE, or nothing.
    ehr_types: tuple[str, ...]
    reason: str

    @property
    def kind(self) -> str:
        return {STRUCTURED: "structured", NOTE: "note"}.get(self.ehr_types, "none")


def plan_writeback(capability: Mapping[str, Any] | None, scopes_allow_create: Callable[[str], bool], vendor: str,
                   *, has_encounter: bool, caregiver_in_ehr: bool | None = None) -> WritebackPlan:  # fmt: skip
    """`scopes_allow_create(type)` answers from the granted scopes (the SMART client's one scope grammar).
    `caregiver_in_ehr`: for a caregiver's screen recorded on the child, whether the EHR holds the caregiver's
    RelatedPerson (structured results can then name it as `focus`); otherwise only a note can say whose it is."""

    def can_create(resource_type: str) -> bool:
        return accepts_create(capability, resource_type) and scopes_allow_create(resource_type)

    structured_focus_ok = caregiver_in_ehr is not False
    if (
        vendor not in NO_STRUCTURED_SCREENINGS
        and all(can_create(t) for t in STRUCTURED)
        and structured_focus_ok
    ):
        return WritebackPlan(STRUCTURED, "The EHR accepts questionnaire answers and scores from Tandem.")
    if can_create("DocumentReference"):
        if vendor == "epic" and not has_encounter:
            return WritebackPlan((), "Epic files clinical notes against an encounter; this launch has none, so the "
                                     "result is kept in the Tandem registry only.")  # fmt: skip
        if not structured_focus_ok:
            return WritebackPlan(NOTE, "The caregiver is recorded only in Tandem, so a structured result in the EHR "
                                       "could not say whose screen it is: a clinical note naming the caregiver goes "
                                       "to the child's chart instead.")  # fmt: skip
        return WritebackPlan(NOTE, "The EHR accepts clinical notes from Tandem: the result goes there as a note; the "
                                   "answers and scores are kept in the Tandem registry.")  # fmt: skip
    return WritebackPlan((), "The EHR accepts no write-back from Tandem with the granted scopes; the result is kept "
                             "in the Tandem registry.")  # fmt: skip


def plan_consult_note(capability: Mapping[str, Any] | None, scopes_allow_create: Callable[[str], bool], vendor: str,
                      *, has_encounter: bool) -> WritebackPlan:  # fmt: skip
    """Whether a case review's consult note (DocumentReference) can go to the EHR from this launch."""
    if not (accepts_create(capability, "DocumentReference") and scopes_allow_create("DocumentReference")):
        return WritebackPlan((), "The EHR does not accept clinical notes from Tandem with this launch's permissions: "
                                 "the recommendations are kept in the Tandem registry and shown on Tandem's chart view.")  # fmt: skip
    if vendor == "epic" and not has_encounter:
        return WritebackPlan((), "Epic files clinical notes against an encounter and this launch has none: the "
                                 "recommendations are kept in the Tandem registry and shown on Tandem's chart view.")  # fmt: skip
    return WritebackPlan(NOTE, "The EHR accepts clinical notes from Tandem.")

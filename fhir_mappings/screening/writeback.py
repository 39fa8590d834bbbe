"""Which write-back an EHR gets, chosen from its CapabilityStatement, the granted scopes and the vendor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def _scope_allows_create(scopes: Iterable[str], resource_type: str) -> bool:
    for scope in scopes:
        context, _, rest = scope.partition("/")
        if context not in ("patient", "user") or "." not in rest:
            continue
        kind, _, permission = rest.partition(".")
        permission = permission.split("?", 1)[0]
        if kind in (resource_type, "*") and (permission in ("write", "*") or (
                permission not in ("read",) and "c" in permission)):  # fmt: skip
            return True
    return False


def plan_writeback(capability: Mapping[str, Any] | None, granted_scopes: Iterable[str], vendor: str,
                   *, has_encounter: bool) -> WritebackPlan:  # fmt: skip
    scopes = list(granted_scopes)

    def can_create(resource_type: str) -> bool:
        return accepts_create(capability, resource_type) and _scope_allows_create(scopes, resource_type)

    if vendor not in NO_STRUCTURED_SCREENINGS and all(can_create(t) for t in STRUCTURED):
        return WritebackPlan(
            STRUCTURED, "The EHR accepts QuestionnaireResponse and screening Observation creates."
        )
    if can_create("DocumentReference"):
        if vendor == "epic" and not has_encounter:
            return WritebackPlan((), "Epic files clinical notes against an encounter; this launch has none, so the "
                                     "result is kept in the Tandem registry only.")  # fmt: skip
        return WritebackPlan(NOTE, "The EHR accepts clinical notes (DocumentReference); structured screening "
                                   "results are kept in the Tandem registry.")  # fmt: skip
    return WritebackPlan((), "The EHR accepts no write-back from Tandem with the granted scopes; the result is kept "
                             "in the Tandem registry.")  # fmt: skip

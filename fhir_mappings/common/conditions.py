"""The patient's behavioral health Conditions, grouped for the chart. Total over odd input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappings.common.access import codes, obj, objs, text

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"

# ICD-10-CM prefixes per group (F32/F33 depressive episodes, F34.1 dysthymia, F41/F40 anxiety, F31 bipolar,
# F20-F29 schizophrenia spectrum, F10-F19 substance use).
_ICD_GROUPS = (
    ("bipolar disorder", ("F31",)),
    ("depression", ("F32", "F33", "F34.1")),
    ("anxiety", ("F40", "F41")),
    ("psychotic disorder", ("F20", "F21", "F22", "F23", "F24", "F25", "F28", "F29")),
    ("substance use", ("F10", "F11", "F12", "F13", "F14", "F15", "F16", "F17", "F18", "F19")),
)
_SNOMED_GROUPS = {
    "370143000": "depression", "35489007": "depression", "36923009": "depression",
    "21897009": "anxiety", "197480006": "anxiety",
    "13746004": "bipolar disorder",
    "58214004": "psychotic disorder", "69322001": "psychotic disorder",
    "7200002": "substance use", "66214007": "substance use",
}  # fmt: skip


@dataclass(frozen=True)
class ConditionRow:
    group: str
    display: str
    status: str  # active, recurrence, relapse, inactive, remission, resolved, or unknown
    onset: str | None
    code: str | None

    @property
    def active(self) -> bool:
        return self.status in ("active", "recurrence", "relapse")


def _group(coding: Mapping[str, Any]) -> str | None:
    code = coding.get("code")
    if not isinstance(code, str):
        return None
    if coding.get("system") == ICD10:
        return next((group for group, prefixes in _ICD_GROUPS if code.startswith(prefixes)), None)
    if coding.get("system") == SNOMED:
        return _SNOMED_GROUPS.get(code)
    return None


def behavioral_conditions(conditions: Iterable[Any]) -> list[ConditionRow]:
    rows = []
    for condition in conditions:
        if not isinstance(condition, Mapping) or condition.get("resourceType") != "Condition":
            continue
        verification = codes(condition.get("verificationStatus"))
        if "entered-in-error" in verification or "refuted" in verification:
            continue
        concept = obj(condition.get("code"))
        codings = objs(concept.get("coding"))
        match = next(((c, g) for c in codings if (g := _group(c))), None)
        if match is None:
            continue
        coding, group = match
        status = next(iter(codes(condition.get("clinicalStatus"))), None)
        rows.append(ConditionRow(
            group=group,
            display=text(concept.get("text")) or text(coding.get("display")) or str(coding.get("code")),
            status=str(status or "unknown"),
            onset=condition.get("onsetDateTime") if isinstance(condition.get("onsetDateTime"), str) else None,
            code=str(coding.get("code")),
        ))  # fmt: skip
    return sorted(rows, key=lambda r: (not r.active, r.group, r.display))

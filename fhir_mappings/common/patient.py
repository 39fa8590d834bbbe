"""Patient and user display values from FHIR JSON. Total functions: missing or odd data gives None."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from fhir_mappings.common.access import codes, field, obj, objs
from fhir_mappings.common.dates import parse_date

_NAME_USE_ORDER = ("official", "usual", None, "nickname", "maiden", "temp", "anonymous", "old")


def _pick_name(resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    names = objs(obj(resource).get("name"))
    if not names:
        return None
    for use in _NAME_USE_ORDER:
        for name in names:
            if name.get("use") == use and not field(name, "period", "end"):
                return name
    return names[0]


def display_name(resource: Mapping[str, Any] | None) -> str | None:
    """'Given Family' from the official (else usual, else first) HumanName of a Patient or Practitioner."""
    if not isinstance(resource, Mapping):
        return None
    name = _pick_name(resource)
    if name is None:
        return None
    text = name.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    given_value = name.get("given")
    given = [part for part in (given_value if isinstance(given_value, list) else []) if isinstance(part, str)]
    family = name.get("family") if isinstance(name.get("family"), str) else None
    full = " ".join([*given, family] if family else given).strip()
    return full or None


def birth_date(resource: Mapping[str, Any] | None) -> date | None:
    value = resource.get("birthDate") if isinstance(resource, Mapping) else None
    return parse_date(value) if isinstance(value, str) and len(value) == 10 else None


def birth_date_text(resource: Mapping[str, Any] | None) -> str | None:
    """The birth date as FHIR gives it (also partial dates such as '1980' or '1980-04')."""
    if not isinstance(resource, Mapping) or not isinstance(resource.get("birthDate"), str):
        return None
    return str(resource["birthDate"])


def age_in_years(resource: Mapping[str, Any] | None, today: date) -> int | None:
    born = birth_date(resource)
    if born is None or born > today:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def age_in_months(resource: Mapping[str, Any] | None, today: date) -> int | None:
    born = birth_date(resource)
    if born is None or born > today:
        return None
    return (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)


def administrative_gender(resource: Mapping[str, Any] | None) -> str | None:
    if not isinstance(resource, Mapping):
        return None
    value = resource.get("gender")
    return value if value in ("male", "female", "other", "unknown") else None


def identifier_value(resource: Mapping[str, Any] | None, type_code: str = "MR") -> str | None:
    """The first identifier whose type has the given v2-0203 code (MR = medical record number)."""
    if not isinstance(resource, Mapping):
        return None
    for identifier in objs(resource.get("identifier")):
        value = identifier.get("value")
        if type_code in codes(identifier.get("type")) and isinstance(value, str | int) and str(value):
            return str(value)
    return None


def qualification_text(resource: Mapping[str, Any] | None) -> str | None:
    """A practitioner's first qualification as text (its `code.text`, else a coding's display): the role a picker
    shows beside the name."""
    if not isinstance(resource, Mapping):
        return None
    for qualification in objs(resource.get("qualification")):
        code = qualification.get("code")
        if isinstance(code, Mapping):
            if isinstance(code.get("text"), str) and code["text"].strip():
                return str(code["text"]).strip()
            for coding in objs(code.get("coding")):
                if isinstance(coding.get("display"), str) and coding["display"].strip():
                    return str(coding["display"]).strip()
    return None

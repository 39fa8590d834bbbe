"""Tolerant access to FHIR JSON: every reader in fhir_mappings goes through these, so one odd element (a `coding`
that is `true`, a `name` that is a number, an `identifier` that is a string) is skipped, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_EMPTY: Mapping[str, Any] = {}


def obj(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else _EMPTY


def objs(value: Any) -> list[Mapping[str, Any]]:
    """The JSON objects in a list (a single object counts as a list of one; anything else gives [])."""
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def field(resource: Any, *path: str) -> Any:
    """resource[path[0]][path[1]]…, or None where any step is not an object."""
    current: Any = resource
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def text_at(resource: Any, *path: str) -> str | None:
    return text(field(resource, *path))


def codes(concept: Any, system: str | None = None) -> list[str]:
    """The codes of a CodeableConcept (optionally of one system), skipping malformed codings."""
    return [
        str(coding["code"])
        for coding in objs(obj(concept).get("coding"))
        if isinstance(coding.get("code"), str | int)
        and str(coding.get("code"))
        and (system is None or coding.get("system") == system)
    ]


def code(concept: Any, system: str) -> str | None:
    found = codes(concept, system)
    return found[0] if found else None


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id of a relative (or absolute) reference of one type: `Patient/123` → `123`."""
    ref = text(obj(reference).get("reference"))
    if ref is None:
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def version_id(resource: Any) -> str | None:
    value = field(resource, "meta", "versionId")
    return str(value) if isinstance(value, str | int) and str(value) else None

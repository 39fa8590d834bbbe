"""What a FHIR server says it supports, read from its CapabilityStatement. Total: unknown → empty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_mappings.common.access import objs, text

#: Resource types Tandem may write back to an EHR.
WRITE_BACK_TYPES = ("Observation", "QuestionnaireResponse", "DocumentReference", "Condition")


def _server_rest(capability: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not isinstance(capability, Mapping) or capability.get("resourceType") != "CapabilityStatement":
        return []
    return [rest for rest in objs(capability.get("rest")) if rest.get("mode", "server") == "server"]


def interactions(capability: Mapping[str, Any] | None, resource_type: str) -> set[str]:
    """Type-level interaction codes (read, search-type, create, update, ...) declared for a resource type."""
    codes: set[str] = set()
    for rest in _server_rest(capability):
        for resource in objs(rest.get("resource")):
            if resource.get("type") == resource_type:
                codes.update(c for c in (text(i.get("code")) for i in objs(resource.get("interaction"))) if c)
    return codes


def accepts_create(capability: Mapping[str, Any] | None, resource_type: str) -> bool:
    return "create" in interactions(capability, resource_type)


def supports_conditional_create(capability: Mapping[str, Any] | None, resource_type: str) -> bool:
    """Whether the server declares `conditionalCreate` for the type (so If-None-Exist makes a create safe to replay)."""
    for rest in _server_rest(capability):
        for resource in objs(rest.get("resource")):
            if resource.get("type") == resource_type:
                return resource.get("conditionalCreate") is True
    return False


def system_interactions(capability: Mapping[str, Any] | None) -> set[str]:
    """Whole-system interactions such as `transaction` and `batch`."""
    return {c for rest in _server_rest(capability) for c in (text(i.get("code")) for i in objs(rest.get("interaction")))
            if c}  # fmt: skip


def software_name(capability: Mapping[str, Any] | None) -> str | None:
    if not isinstance(capability, Mapping):
        return None
    software = capability.get("software")
    if isinstance(software, Mapping) and isinstance(software.get("name"), str):
        version = software.get("version")
        return f"{software['name']} {version}" if isinstance(version, str) else str(software["name"])
    name = capability.get("publisher") or capability.get("name")
    return name if isinstance(name, str) else None


def fhir_version(capability: Mapping[str, Any] | None) -> str | None:
    if not isinstance(capability, Mapping):
        return None
    version = capability.get("fhirVersion")
    return version if isinstance(version, str) else None

"""The launch context in a SMART token response, parsed into one typed value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Fields of the token response that are OAuth plumbing, not launch context.
_TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}
_CONTEXT_FIELDS = {
    "patient", "encounter", "fhirContext", "need_patient_banner", "smart_style_url", "intent", "tenant",
}  # fmt: skip


@dataclass(frozen=True)
class FhirContextItem:
    """One `fhirContext` entry. SMART 2.0 sends plain reference strings; 2.1 sends objects."""

    reference: str | None = None
    canonical: str | None = None
    identifier: dict[str, Any] | None = None
    type: str | None = None
    role: str | None = None

    @property
    def resource_type(self) -> str | None:
        if self.type:
            return self.type
        if self.reference and "/" in self.reference:
            return self.reference.rstrip("/").split("/")[-2]
        return None


@dataclass(frozen=True)
class LaunchContext:
    patient: str | None = None
    encounter: str | None = None
    fhir_context: tuple[FhirContextItem, ...] = ()
    need_patient_banner: bool = True
    smart_style_url: str | None = None
    intent: str | None = None
    tenant: str | None = None
    fhir_user: str | None = None
    #: Vendor additions (Epic: `__epic.dstu2.patient`, `location`, `appointment`, `loginDepartment`...).
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchContext:
        item_fields = {f.name for f in fields(FhirContextItem)}
        items = tuple(FhirContextItem(**{k: v for k, v in item.items() if k in item_fields})
                      for item in data.get("fhir_context") or () if isinstance(item, Mapping))  # fmt: skip
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "fhir_context": items})

    @property
    def fhir_user_type(self) -> str | None:
        """Practitioner, Patient, RelatedPerson or Person, from a relative or absolute fhirUser URL."""
        if not self.fhir_user or "/" not in self.fhir_user:
            return None
        return self.fhir_user.rstrip("/").split("/")[-2]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_fhir_context(value: Any) -> tuple[FhirContextItem, ...]:
    if not isinstance(value, list):
        return ()
    items = []
    for entry in value:
        if isinstance(entry, str) and entry:
            items.append(FhirContextItem(reference=entry))
        elif isinstance(entry, Mapping):
            identifier = entry.get("identifier")
            item = FhirContextItem(
                reference=_str_or_none(entry.get("reference")),
                canonical=_str_or_none(entry.get("canonical")),
                identifier=dict(identifier) if isinstance(identifier, Mapping) else None,
                type=_str_or_none(entry.get("type")),
                role=_str_or_none(entry.get("role")),
            )
            if item.reference or item.canonical or item.identifier:
                items.append(item)
    return tuple(items)


def parse_banner(value: Any) -> bool:
    """`need_patient_banner`: only an explicit false hides the banner (some servers send the string)."""
    return not (value is False or (isinstance(value, str) and value.strip().lower() == "false"))


def parse_launch_context(token_response: Mapping[str, Any], fhir_user: str | None = None) -> LaunchContext:
    extras = {
        key: value
        for key, value in token_response.items()
        if key not in _TOKEN_FIELDS and key not in _CONTEXT_FIELDS and isinstance(key, str)
    }
    return LaunchContext(
        patient=_str_or_none(token_response.get("patient")),
        encounter=_str_or_none(token_response.get("encounter")),
        fhir_context=parse_fhir_context(token_response.get("fhirContext")),
        need_patient_banner=parse_banner(token_response.get("need_patient_banner", True)),
        smart_style_url=_str_or_none(token_response.get("smart_style_url")),
        intent=_str_or_none(token_response.get("intent")),
        tenant=_str_or_none(token_response.get("tenant")),
        fhir_user=fhir_user,
        extras=extras,
    )

"""Every outgoing resource is checked against the FHIR R4 (R4B) models before it leaves Tandem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


def r4_errors(resource: Mapping[str, Any]) -> list[str]:
    """Validation messages (empty when valid). Total: never raises."""
    resource_type = resource.get("resourceType") if isinstance(resource, Mapping) else None
    if not isinstance(resource_type, str):
        return ["not a FHIR resource (no resourceType)"]
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, LookupError):
        return [f"{resource_type} is not an R4 resource type"]
    try:
        model.model_validate(dict(resource))
    except ValidationError as error:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
    except (TypeError, ValueError) as error:
        return [str(error)]
    return []

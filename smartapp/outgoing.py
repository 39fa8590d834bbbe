"""Every resource Tandem sends is checked against the R4 (R4B) models first; an invalid one never leaves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_mappings.common.validation import r4_errors
from launch import errors


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource itself when valid; otherwise MalformedResource naming the first problem."""
    problems = r4_errors(resource)
    if problems:
        raise errors.MalformedResource(f"{resource['resourceType']} failed R4 validation: {problems[0]}")
    return resource


def put_transaction(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One transaction Bundle that PUTs each resource by its id (all written, or none), each validated first."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": validated(r),
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}  # fmt: skip

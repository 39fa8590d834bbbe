"""The registry stores the integration tier runs Tandem's registry paths against: sekmet-fhir (the light peer)
and HAPI FHIR JPA with its default settings (referential integrity on), each started fresh on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.processes import FhirServer

REGISTRY_SERVERS = ["sekmet", "hapi"]


def start_registry(kind: str, workdir: Path) -> Any:
    """A started registry store of that kind, without authentication (tests talk to it directly)."""
    if kind == "hapi":
        from sandbox.processes import HapiServer

        return HapiServer(workdir).start()
    return FhirServer(workdir).start()

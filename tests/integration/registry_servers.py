"""The registry stores the integration tier runs Tandem's registry paths against: sekmet-fhir (the light peer)
and HAPI FHIR JPA with its default settings (referential integrity on), each started fresh on loopback, and
seeded as Tandem writes (through `RegistryClient`: the registry Patients first, references the store resolves)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from launch.transport import HttpTransport
from sandbox.processes import FhirServer
from smartapp.caseload.service import SYNC_OVERLAP_SECONDS
from smartapp.registry_store import RegistryClient

REGISTRY_SERVERS = ["sekmet", "hapi"]


def start_registry(kind: str, workdir: Path) -> Any:
    """A started registry store of that kind, without authentication (tests talk to it directly)."""
    if kind == "hapi":
        from sandbox.processes import HapiServer

        return HapiServer(workdir).start()
    return FhirServer(workdir).start()


def registry_client(base: str) -> RegistryClient:
    return RegistryClient(base, HttpTransport(timeout=60), name="registry")


def put_resources(base: str, resources: list[dict[str, Any]]) -> None:
    """PUT every resource in one transaction, as Tandem writes to the registry."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}  # fmt: skip
    registry_client(base).transaction(bundle)


@contextmanager
def seeded_registry(kind: str, workdir: Path, resources: list[dict[str, Any]]) -> Iterator[Any]:
    """A started store holding `resources`, quiet for longer than a sync's overlap (so an incremental sync in a
    test reads only what that test changes); stopped afterwards."""
    server = start_registry(kind, workdir)
    try:
        put_resources(server.base_url, resources)
        time.sleep(SYNC_OVERLAP_SECONDS + 1)
        yield server
    finally:
        server.stop()

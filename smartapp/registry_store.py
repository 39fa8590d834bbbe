"""The registry store's client: the FHIR client plus what a store with referential integrity needs.

Every write goes through `RegistryClient`, which (1) rewrites references so they resolve in the store
(`fhir_mappings.common.registry_refs.to_registry`: the patient as the registry's own Patient per (issuer, id),
other EHR resources as logical references), and (2) makes sure the registry Patient of each patient a write
references exists: in the same transaction when the write is a transaction (its PUT comes first), otherwise by an
idempotent PUT just before the write. Patients known to exist are remembered per process (bounded); a write the
store refuses because such a Patient is gone anyway (deleted by hand, a restored backup) writes it and is retried
once. Every read is mapped back (`from_registry`), so the rest of Tandem reads what it wrote.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_mappings.common.identity import PatientKey, registry_patient
from fhir_mappings.common.registry_refs import (
    bundle_patients,
    from_registry,
    needs_issuer,
    resource_issuer,
    resource_patients,
    to_registry,
)
from launch import errors
from launch.fhir import FHIRClient, SearchParams, etag_for

log = logging.getLogger(__name__)

#: Asks the store for a search of its data now, not a cached result (HAPI honours it).
NO_CACHE = {"Cache-Control": "no-cache"}
#: Registry Patients written in one transaction when a write names many (a measure population's List).
PATIENTS_PER_TRANSACTION = 500
#: Registry Patients remembered as existing, per process.
KNOWN_PATIENTS_LIMIT = 100_000
#: What a store answers when a reference does not resolve (HAPI: 400 "HAPI-1094: Resource Patient/… not found",
#: Google: 400/422; some answer 404 or 409).
_UNRESOLVED = (errors.FHIRBadRequest, errors.FHIRUnprocessable, errors.FHIRNotFound, errors.FHIRConflict)


def _patient_entry(key: PatientKey) -> dict[str, Any]:
    """A transaction entry that writes the registry Patient of `key` (update-as-create: idempotent)."""
    return {"fullUrl": f"Patient/{key.registry_id}", "resource": registry_patient(key),
            "request": {"method": "PUT", "url": f"Patient/{key.registry_id}"}}  # fmt: skip


class RegistryClient(FHIRClient):
    """The registry store (see the module doc). Reads and writes take and give what the domain writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    # --- the registry Patients ---------------------------------------------------------------------

    def _is_known(self, key: PatientKey) -> bool:
        with self._lock:
            if key.registry_id in self._known:
                self._known.move_to_end(key.registry_id)
                return True
            return False

    def _remember(self, keys: Iterable[PatientKey]) -> None:
        with self._lock:
            for key in keys:
                self._known[key.registry_id] = None
                self._known.move_to_end(key.registry_id)
            while len(self._known) > KNOWN_PATIENTS_LIMIT:
                self._known.popitem(last=False)

    def _forget(self, keys: Iterable[PatientKey]) -> None:
        with self._lock:
            for key in keys:
                self._known.pop(key.registry_id, None)

    def ensure_patients(self, keys: Iterable[PatientKey]) -> None:
        """Write the registry Patient of each key not known to exist: an idempotent PUT, or transactions of
        PUTs when there are many (a measure's list of its population)."""
        missing = [key for key in dict.fromkeys(keys) if not self._is_known(key)]
        if len(missing) == 1:
            FHIRClient.update(self, registry_patient(missing[0]))
        for start in range(0, len(missing) if len(missing) > 1 else 0, PATIENTS_PER_TRANSACTION):
            chunk = missing[start : start + PATIENTS_PER_TRANSACTION]
            FHIRClient.transaction(self, {"resourceType": "Bundle", "type": "transaction",
                                          "entry": [_patient_entry(k) for k in chunk]})  # fmt: skip
        self._remember(missing)

    def _write(self, resource: Mapping[str, Any], send: Any) -> dict[str, Any]:
        outgoing = to_registry(resource)
        keys = resource_patients(outgoing)
        self.ensure_patients(keys)
        try:
            written = send(outgoing)
        except _UNRESOLVED as error:
            if not keys or isinstance(error, errors.FHIRPreconditionFailed):
                raise  # an If-Match refusal is about the version, not a missing Patient
            # A remembered Patient may be gone: write them again and retry once.
            self._forget(keys)
            self.ensure_patients(keys)
            written = send(outgoing)
        return dict(from_registry(written))

    # --- writes ------------------------------------------------------------------------------------

    def create(
        self, resource: Mapping[str, Any], *, if_none_exist: str | None = None, retry_safe: bool | None = None
    ) -> dict[str, Any]:
        return self._write(
            resource,
            lambda out: FHIRClient.create(self, out, if_none_exist=if_none_exist, retry_safe=retry_safe),
        )

    def update(self, resource: Mapping[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        return self._write(resource, lambda out: FHIRClient.update(self, out, if_match=if_match))

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        entries = [dict(e) for e in bundle.get("entry") or [] if isinstance(e, Mapping)]
        resources = [e["resource"] for e in entries if isinstance(e.get("resource"), Mapping)]
        # An entry that names no patient itself (a referral Task for a caregiver) belongs to the same EHR as the
        # others in its transaction.
        issuer = next((i for i in (resource_issuer(r) for r in resources) if i), None)
        for entry in entries:
            if isinstance(entry.get("resource"), Mapping):
                entry["resource"] = to_registry(entry["resource"], issuer)
        outgoing = {**bundle, "entry": entries}
        keys = bundle_patients(outgoing)
        if bundle.get("type") != "transaction":
            # A batch's entries succeed or fail one by one: its Patients are written (and known) before it.
            self.ensure_patients(keys)
            return dict(from_registry(FHIRClient.transaction(self, outgoing)))

        def send(known_missing: list[PatientKey]) -> dict[str, Any]:
            # The missing registry Patients are written first, in the same transaction.
            patients = [_patient_entry(k) for k in known_missing]
            response = FHIRClient.transaction(self, {**outgoing, "entry": patients + entries})
            self._remember(known_missing)
            answered = list(response.get("entry") or [])
            return {**response, "entry": answered[len(patients) :]}

        missing = [k for k in keys if not self._is_known(k)]
        try:
            response = send(missing)
        except _UNRESOLVED as error:
            if not keys or len(missing) == len(keys) or isinstance(error, errors.FHIRPreconditionFailed):
                raise
            self._forget(keys)
            response = send(list(keys))
        self._remember(keys)
        return dict(from_registry(response))

    # --- reads -------------------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return dict(from_registry(super().read(resource_type, resource_id)))

    def search(self, resource_type: str, params: SearchParams | None = None, *,
               headers: Mapping[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        return dict(from_registry(self.fresh_search(resource_type, params, headers=headers)))

    def fresh_search(self, resource_type: str, params: SearchParams | None = None, *,
                     headers: Mapping[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        """A search the store answers from its data now, in the stored form: HAPI FHIR JPA by default answers a
        search repeated within 60 s from its cache of results (`reuse_cached_search_results_millis`), so a
        worklist would miss what was just written; `Cache-Control: no-cache` asks for a fresh search."""
        return FHIRClient.search(self, resource_type, params, headers={**NO_CACHE, **(headers or {})})

    def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        page = super().next_page(bundle)
        return None if page is None else dict(from_registry(page))


# --- migration -------------------------------------------------------------------------------------------

#: Every resource type Tandem writes to the registry store that can reference a patient or an EHR resource.
MIGRATED_TYPES = ("CarePlan", "Task", "Observation", "QuestionnaireResponse", "RelatedPerson", "ServiceRequest",
                  "Goal", "Condition", "Group", "MeasureReport", "List", "Procedure")  # fmt: skip


@dataclass
class Migration:
    """What `tandem registry migrate-patients` found (and, when applied, changed), by resource type."""

    changed: dict[str, int] = field(default_factory=dict)
    patients: int = 0
    #: Resources that name a patient without an issuer: `tandem registry migrate-issuer` assigns them first.
    without_issuer: dict[str, int] = field(default_factory=dict)
    #: Resources that changed meanwhile (If-Match refused): run again.
    conflicts: int = 0


def raw_pages(client: RegistryClient, resource_type: str, params: SearchParams) -> Iterator[dict[str, Any]]:
    """The stored form of every matching resource (no mapping back), across pages."""
    page: dict[str, Any] | None = client.fresh_search(resource_type, params)
    while page is not None:
        for entry in page.get("entry") or []:
            if isinstance(entry.get("resource"), dict):
                yield entry["resource"]
        page = FHIRClient.next_page(client, page)


def migrate_references(client: RegistryClient, *, apply: bool, page_size: int = 200) -> Migration:
    """Rewrite registry resources whose references do not hold in a store with referential integrity: the
    patient as `Patient/<EHR id>` (written before registry Patients) and EHR resources as literal references.
    Without `apply` it only counts. Idempotent: a second run finds nothing to change. Updates use If-Match."""
    report = Migration()
    patients: set[PatientKey] = set()
    for resource_type in MIGRATED_TYPES:
        # Read every page before writing: a store that pages by offset in order of last change (sekmet) would
        # otherwise skip what moves to the end as it is rewritten.
        for stored in list(raw_pages(client, resource_type, {"_count": str(page_size)})):
            if resource_issuer(stored) is None:
                if needs_issuer(stored):
                    report.without_issuer[resource_type] = report.without_issuer.get(resource_type, 0) + 1
                continue
            wanted = to_registry(stored)
            if wanted == stored:
                continue
            report.changed[resource_type] = report.changed.get(resource_type, 0) + 1
            keys = resource_patients(wanted)
            patients.update(keys)
            if not apply:
                continue
            client.ensure_patients(keys)
            try:
                FHIRClient.update(client, wanted, if_match=etag_for(stored))
            except errors.FHIRPreconditionFailed:
                report.conflicts += 1
    report.patients = len(patients)
    return report

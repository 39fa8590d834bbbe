"""Marks on the worklist's ready rows that the EHR's copies set when they write (see `ready`): kept apart so the
copies' modules need not import the worklist."""

from __future__ import annotations

from fhir_mappings.common.identity import PatientKey
from launch.store import KeyValueStore
from smartapp.caseload.snapshot import SNAPSHOT_SCHEMA

#: Bumped whenever an entry's or a patient's stored form changes.
READY_SCHEMA = 1
READY_PREFIX = f"ready:v{READY_SCHEMA}.{SNAPSHOT_SCHEMA}"
DIRTY_KEY = f"{READY_PREFIX}:dirty"
#: The HealthySteps worklist's own mark (each worklist drains its set).
HS_DIRTY_KEY = f"hs-ready:v{READY_SCHEMA}:dirty"


def patient_field(key: PatientKey) -> str:
    """A patient's field in the ready hashes (a newline is in no issuer URL and no FHIR id)."""
    return f"{key.iss}\n{key.patient_id}"


def mark_dirty(store: KeyValueStore, key: PatientKey) -> None:
    """Something a patient's rows show changed outside the registry (the EHR's scores or medical data): the next
    view rebuilds that patient's rows."""
    store.add_to_set(DIRTY_KEY, patient_field(key))
    store.add_to_set(HS_DIRTY_KEY, patient_field(key))

"""A child's caregivers: the EHR's RelatedPersons (when the launch may read them) merged with those the care team
recorded in the registry store. Nothing here writes to the EHR, or to the caregiver's own chart."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace

from fhir_mappings.common.caregivers import (
    RELATIONSHIPS,
    Caregiver,
    from_ehr,
    from_registry,
    merged,
    registry_id,
    related_person,
)
from fhir_mappings.common.identity import PatientKey
from launch import errors
from launch.fhir import FHIRClient
from launch.scopes import allows
from smartapp.outgoing import validated

log = logging.getLogger(__name__)


class CaregiverError(errors.TandemError):
    """A caregiver the form cannot record as entered (the message says what to change)."""


def may_read_ehr_caregivers(granted: list[str]) -> bool:
    return any(allows(granted, context, "RelatedPerson", "s") for context in ("patient", "user"))


class CaregiverService:
    def __init__(self, registry: FHIRClient | None) -> None:
        self.registry = registry

    def for_child(
        self, child: PatientKey, ehr: FHIRClient | None, granted: list[str]
    ) -> tuple[list[Caregiver], list[str]]:
        """The child's caregivers and a notice per source that could not be read (never raises for a source)."""
        notices: list[str] = []
        in_ehr: list[Caregiver] = []
        if ehr is not None and may_read_ehr_caregivers(granted):
            try:
                in_ehr = from_ehr(
                    ehr.search_all("RelatedPerson", {"patient": child.patient_id}, max_pages=5), child
                )
            except (errors.LaunchError, errors.FHIRUnauthorized):
                raise
            except errors.TandemError as error:
                notices.append(f"Caregivers could not be read from the EHR ({error.message}).")
        held: list[Caregiver] = []
        if self.registry is not None:
            try:
                held = from_registry(self.registry.search_all("RelatedPerson", {"patient": child.relative},
                                                              max_pages=5), child)  # fmt: skip
            except errors.TandemError as error:
                notices.append(f"Caregivers recorded in Tandem could not be read ({error.message}).")
        return merged(in_ehr, held), notices

    def record(self, child: PatientKey, *, name: str, relationship: str, patient_id: str | None = None,
               existing: Caregiver | None = None) -> Caregiver:  # fmt: skip
        """Record a caregiver in the registry (or, for an EHR caregiver, Tandem's copy with the patient link)."""
        name, patient_id = name.strip(), (patient_id or "").strip() or None
        if relationship not in RELATIONSHIPS:
            raise CaregiverError("Choose the caregiver's relationship to the child.")
        if existing is None and not name:
            raise CaregiverError("Enter the caregiver's name, so every screen says whose it is.")
        if patient_id is not None and (patient_id == child.patient_id or len(patient_id) > 64
                                       or not all(c.isalnum() or c in "-." for c in patient_id)):  # fmt: skip
            raise CaregiverError("The caregiver's patient id must be their own id in this EHR (letters, digits, "
                                 "'-' and '.'), not the child's.")  # fmt: skip
        if existing is not None:
            caregiver = replace(existing, patient_id=patient_id)
        else:
            caregiver = Caregiver(registry_id(child, nonce=secrets.token_hex(8)), child, name, relationship,
                                  patient_id=patient_id)  # fmt: skip
        self.save(caregiver)
        return caregiver

    def save(self, caregiver: Caregiver) -> None:
        """Put the registry's RelatedPerson (idempotent: the id is deterministic)."""
        if self.registry is None:
            raise errors.ConfigurationError("no registry store is configured (TANDEM_REGISTRY_URL)")
        self.registry.update(validated(related_person(caregiver)))

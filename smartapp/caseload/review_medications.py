"""The case review's current psychotropic medications, read from the EHR with the session's token: one search per
type for the page's patients (`patient=a,b,c`). A refused or failed read is reported to the page as None (the
section says so on its own; the rest of the page still loads)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fhir_mappings.common.access import reference_id
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.psychotropics import Medication, current_psychotropics
from launch import errors
from launch.fhir import FHIRClient

log = logging.getLogger(__name__)
MAX_PAGES = 5


def read_psychotropics(ehr: FHIRClient, iss: str, keys: Sequence[PatientKey]
                       ) -> dict[PatientKey, list[Medication]] | None:  # fmt: skip
    """Each patient's current psychotropics, by (issuer, patient id); only the patients of this EHR (`iss`) are
    asked for. None when the EHR could not be read. A MedicationStatement search the EHR does not support (404,
    400) leaves the orders alone."""
    ids = list(dict.fromkeys(k.patient_id for k in keys if k.iss == iss))
    if not ids:
        return {}
    found: dict[str, list[dict[str, object]]] = {p: [] for p in ids}
    patients = ",".join(ids)
    try:
        resources = ehr.search_all("MedicationRequest", {"patient": patients, "status": "active,on-hold",
                                                         "_count": "200"}, max_pages=MAX_PAGES)  # fmt: skip
        try:
            resources += ehr.search_all("MedicationStatement", {"patient": patients, "status": "active",
                                                                "_count": "200"}, max_pages=MAX_PAGES)  # fmt: skip
        except (errors.FHIRNotFound, errors.FHIRBadRequest):
            log.info("the EHR does not search MedicationStatement: orders only")
    except errors.TandemError as exc:
        log.warning("psychotropic medications not read from the EHR: %s", type(exc).__name__)
        return None
    for resource in resources:
        subject = reference_id(resource.get("subject"), "Patient")
        if subject in found:
            found[subject].append(resource)
    return {PatientKey(iss, patient): current_psychotropics(items) for patient, items in found.items()}

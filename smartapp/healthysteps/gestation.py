"""A child's gestational age at birth: read from the EHR under the codes the site confirmed
(TANDEM_GESTATIONAL_AGE_CODES) and from Tandem's own record in the registry store; recorded in the registry when
the care team enters it. Used to correct the age an instrument reads for prematurity (SWYC under 24 months)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from fhir_mappings.common.gestation import (
    GESTATION_CODE,
    GESTATION_SYSTEM,
    Gestation,
    gestation_from,
    gestation_observation,
    observation_id,
)
from fhir_mappings.common.identity import PatientKey
from launch import errors
from launch.fhir import FHIRClient
from smartapp.outgoing import validated

log = logging.getLogger(__name__)
OURS = ((GESTATION_SYSTEM, GESTATION_CODE),)


class GestationProblem(ValueError):
    """A gestational age the form cannot record as entered (the message says what to change)."""


class GestationService:
    def __init__(self, registry: FHIRClient | None, site_codes: tuple[tuple[str, str], ...]) -> None:
        self.registry = registry
        self.site_codes = site_codes

    def for_child(self, child: PatientKey, ehr: FHIRClient | None) -> tuple[Gestation | None, list[str]]:
        """The gestational age to use and a notice per source that could not be read or that disagrees. The
        EHR's value wins over Tandem's own record (the EHR is the record of the birth)."""
        notices: list[str] = []
        in_ehr = held = None
        if ehr is not None and self.site_codes:
            try:
                found = ehr.search_all("Observation", {
                    "patient": child.patient_id, "code": ",".join(f"{s}|{c}" for s, c in self.site_codes),
                    "_count": "20"}, max_pages=2)  # fmt: skip
                in_ehr = gestation_from(found, self.site_codes, "EHR")
            except (errors.LaunchError, errors.FHIRUnauthorized):
                raise
            except errors.TandemError as error:
                notices.append(
                    f"The gestational age at birth could not be read from the EHR ({error.message})."
                )
        if self.registry is not None:
            try:
                held = gestation_from([self.registry.read("Observation", observation_id(child))], OURS, "Tandem",
                                      child)  # fmt: skip
            except errors.FHIRNotFound:
                held = None
            except errors.TandemError as error:
                notices.append(f"The gestational age recorded in Tandem could not be read ({error.message}).")
        if in_ehr is not None and held is not None and in_ehr.days != held.days:
            notices.append(f"The EHR records a gestational age at birth of {in_ehr.text} and Tandem's record says "
                           f"{held.text}; the EHR's is used.")  # fmt: skip
        return in_ehr or held, notices

    def record(self, child: PatientKey, weeks: str, days: str, *, born: date | None, performer: str | None
               ) -> Gestation:  # fmt: skip
        """Record (or correct) the child's gestational age at birth in the registry store."""
        if self.registry is None:
            raise errors.ConfigurationError("no registry store is configured (TANDEM_REGISTRY_URL)")
        try:
            whole, rest = int(weeks.strip()), int((days or "0").strip() or "0")
        except ValueError:
            raise GestationProblem("Enter the gestational age at birth in whole weeks and days (0–6), "
                                   "such as 32 weeks 4 days.") from None  # fmt: skip
        if not 22 <= whole <= 44 or not 0 <= rest <= 6:
            raise GestationProblem("A gestational age at birth is between 22 and 44 weeks, with 0–6 days.")
        now = datetime.now(UTC).replace(microsecond=0)
        self.registry.update(validated(gestation_observation(child, whole, rest, born, now, performer,
                                                             self.site_codes)))  # fmt: skip
        return Gestation(whole * 7 + rest, "Tandem", now)

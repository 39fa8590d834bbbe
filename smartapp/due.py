"""What is due for a patient today, from what is known about them (the EHR's Patient, scores and Conditions, the
registry's enrolments and scores, Tandem's own records not yet written): the screenings of measurement-based care
and of the patient's programs, and a young child's visit screens (their own and their caregiver's). Shared by the
CDS Hooks cards and the patient's own questionnaires, so both say the same thing."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from fhir_mappings.cds.cards import DueScreen
from fhir_mappings.common.conditions import ConditionRow
from fhir_mappings.common.gestation import Gestation
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient import age_in_months, age_in_years, birth_date
from fhir_mappings.registry.programs import due_with_programs
from fhir_mappings.registry.resources import Enrolment
from fhir_mappings.screening.due import due_screenings
from fhir_mappings.screening.events import ScreenEvent, events_from_points
from fhir_mappings.screening.events import merged as merged_events
from fhir_mappings.screening.history import ScorePoint
from fhir_mappings.screening.instruments import Catalogue
from fhir_mappings.screening.resources import result_flag
from fhir_mappings.screening.schedule import Schedule, scheduled
from launch import errors
from smartapp.healthysteps.gestation import GestationService
from smartapp.screening.service import ScreeningRecord

log = logging.getLogger(__name__)


def schedule_gestation(service: GestationService, key: PatientKey, patient: Mapping[str, Any] | None,
                       schedule: Schedule, today: date) -> Gestation | None:  # fmt: skip
    """The child's gestational age at birth as Tandem recorded it, read only when the schedule times the child's
    screens by the corrected age and the child is young enough for it (nobody else costs a request); None when
    unknown or unreadable (the chronological age is then used)."""
    months = age_in_months(patient, today)
    if schedule.corrected_age is None or months is None or months >= schedule.corrected_age[0]:
        return None
    try:
        found, _notices = service.for_child(key, None)
    except errors.TandemError as error:
        log.info("due list: the gestational age could not be read (%s)", type(error).__name__)
        return None
    return found


def due_screens(patient: Mapping[str, Any] | None, history: list[ScorePoint], conditions: list[ConditionRow],
                enrolments: Iterable[Enrolment], records: Iterable[ScreeningRecord], catalogue: Catalogue,
                schedule: Schedule, today: date, gestation: Gestation | None = None) -> list[DueScreen]:  # fmt: skip
    """Every screen due today, most relevant first (the patient's own, then the visit's)."""
    born = birth_date(patient)
    years = age_in_years(patient, today)
    months = age_in_months(patient, today)
    due = due_screenings(history, conditions, years, (today - born).days if born else None, today)
    due = due_with_programs(due, [e.program for e in enrolments if e.active], history,
                            {c.group for c in conditions if c.active}, years, today)  # fmt: skip
    screens = [DueScreen(d.instrument, i.name, d.reason) for d in due
               if (i := catalogue.get(d.instrument)) is not None and i.for_age(months)]  # fmt: skip
    own = [ScreenEvent(r.instrument, datetime.fromisoformat(r.authored),
                       r.caregiver_of_record.reference if r.caregiver_of_record else None,
                       result_flag(r.result), r.result.interpretation) for r in records]  # fmt: skip
    events = merged_events(events_from_points(history, catalogue), own)
    for line in scheduled(schedule, born, today, events, gestation):  # the child's by the corrected age
        instrument = next((i for k in line.need.any_of if (i := catalogue.get(k)) is not None), None)
        if instrument is not None:
            screens.append(DueScreen(instrument.key, instrument.name, line.reason,
                                     caregiver=line.need.for_whom == "caregiver"))  # fmt: skip
    return screens

"""What is due for a patient today, from what is known about them (the EHR's Patient, scores and Conditions, the
registry's enrolments and scores, Tandem's own records not yet written): the screenings of measurement-based care
and of the patient's programs, and a young child's visit screens (their own and their caregiver's). Shared by the
CDS Hooks cards and the patient's own questionnaires, so both say the same thing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from fhir_mappings.cds.cards import DueScreen
from fhir_mappings.common.conditions import ConditionRow
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
from smartapp.screening.service import ScreeningRecord


def due_screens(patient: Mapping[str, Any] | None, history: list[ScorePoint], conditions: list[ConditionRow],
                enrolments: Iterable[Enrolment], records: Iterable[ScreeningRecord], catalogue: Catalogue,
                schedule: Schedule, today: date) -> list[DueScreen]:  # fmt: skip
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
    for line in scheduled(schedule, born, today, merged_events(events_from_points(history, catalogue), own)):
        instrument = next((i for k in line.need.any_of if (i := catalogue.get(k)) is not None), None)
        if instrument is not None:
            screens.append(DueScreen(instrument.key, instrument.name, line.reason,
                                     caregiver=line.need.for_whom == "caregiver"))  # fmt: skip
    return screens

"""FHIR resources → the rows of the measure tables (one table per resource type, only the columns the measures
read). Pure and total: a malformed resource gives no row, never an exception. Times are kept as UTC timestamps and
as the day in the evaluation time zone (CQL compares days in one time zone: a PHQ-9 at 23:30 -05:00 is the next
day in UTC). A date without a time is that day, at midnight in the evaluation time zone."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from fhir_mappings.common.access import obj, objs, reference_id, text
from fhir_mappings.common.patient import display_name, identifier_value

#: Column names and types of each table (types: str, bool, int, date, timestamp).
SCHEMAS: dict[str, dict[str, str]] = {
    "patient": {"patient_id": "str", "birth_date": "date", "deceased": "bool", "deceased_day": "date",
                "name": "str", "mrn": "str"},
    "encounter": {"encounter_id": "str", "patient_id": "str", "status": "str", "system": "str", "code": "str",
                  "start_ts": "timestamp", "end_ts": "timestamp", "start_day": "date", "end_day": "date",
                  "clinic": "str"},
    "condition": {"condition_id": "str", "patient_id": "str", "system": "str", "code": "str",
                  "clinical_status": "str", "verification_status": "str", "category": "str", "onset_day": "date"},
    "observation": {"observation_id": "str", "patient_id": "str", "system": "str", "code": "str", "status": "str",
                    "effective_ts": "timestamp", "effective_day": "date", "issued_ts": "timestamp", "issued_day": "date",
                    "value_int": "int", "value_system": "str", "value_code": "str", "reason_code": "str"},
    "service_request": {"request_id": "str", "patient_id": "str", "system": "str", "code": "str", "status": "str",
                        "intent": "str", "do_not_perform": "bool", "authored_ts": "timestamp", "authored_day": "date"},
    "medication_request": {"request_id": "str", "patient_id": "str", "system": "str", "code": "str",
                           "status": "str", "intent": "str", "authored_ts": "timestamp", "authored_day": "date"},
    "procedure": {"procedure_id": "str", "patient_id": "str", "system": "str", "code": "str", "status": "str",
                  "performed_ts": "timestamp", "performed_day": "date"},
}  # fmt: skip
#: The FHIR resource type each table is flattened from.
RESOURCE_TABLES = {"Patient": "patient", "Encounter": "encounter", "Condition": "condition",
                   "Observation": "observation", "ServiceRequest": "service_request",
                   "MedicationRequest": "medication_request", "Procedure": "procedure"}  # fmt: skip


def moment(value: Any, zone: ZoneInfo) -> tuple[datetime, date] | None:
    """A FHIR dateTime → (UTC timestamp, day in the evaluation zone); None when it is not one."""
    raw = text(value)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day, time(0), zone).astimezone(UTC), day
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if (
        parsed.tzinfo is None
    ):  # FHIR requires an offset with a time; read a missing one as the evaluation zone
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC), parsed.astimezone(zone).date()


def _codings(concept: Any) -> Iterator[tuple[str, str]]:
    for coding in objs(obj(concept).get("coding")):
        system, code = text(coding.get("system")), text(coding.get("code"))
        if system and code:
            yield system, code


def _clinic(encounter: Mapping[str, Any]) -> str | None:
    """Where the visit happened: the service provider's name, else its reference."""
    provider = obj(encounter.get("serviceProvider"))
    return text(provider.get("display")) or text(provider.get("reference"))


def _subject(resource: Mapping[str, Any]) -> str | None:
    return reference_id(resource.get("subject") or resource.get("patient"), "Patient")


def _day(value: Any, zone: ZoneInfo) -> date | None:
    found = moment(value, zone)
    return found[1] if found else None


def _ts(value: Any, zone: ZoneInfo) -> datetime | None:
    found = moment(value, zone)
    return found[0] if found else None


def _code_of(concept: Any) -> str | None:
    """The first code of a concept, with or without its system (statuses and categories)."""
    return next(
        (code for coding in objs(obj(concept).get("coding")) if (code := text(coding.get("code")))), None
    )


def rows(resource: Any, zone: ZoneInfo) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) for one resource: one row per coding of its code (or type), so value-set membership is a
    plain filter."""
    resource = obj(resource)
    kind, rid = text(resource.get("resourceType")), text(resource.get("id"))
    if kind not in RESOURCE_TABLES or rid is None:
        return
    if kind == "Patient":
        yield "patient", {"patient_id": rid, "birth_date": _day(resource.get("birthDate"), zone),
                          "deceased": bool(resource.get("deceasedBoolean")) or "deceasedDateTime" in resource,
                          "deceased_day": _day(resource.get("deceasedDateTime"), zone),
                          # For the patient lists behind the numbers (care gaps are worked by name).
                          "name": display_name(resource), "mrn": identifier_value(resource)}  # fmt: skip
        return
    patient = _subject(resource)
    if patient is None:
        return
    status = text(resource.get("status"))
    if kind == "Encounter":
        period = obj(resource.get("period"))
        start, end = moment(period.get("start"), zone), moment(period.get("end") or period.get("start"), zone)
        for concept in objs(resource.get("type")):
            for system, code in _codings(concept):
                yield "encounter", {"encounter_id": rid, "patient_id": patient, "status": status, "system": system,
                                    "code": code, "start_ts": start[0] if start else None,
                                    "end_ts": end[0] if end else None, "start_day": start[1] if start else None,
                                    "end_day": end[1] if end else None,
                                    "clinic": _clinic(resource)}  # fmt: skip
    elif kind == "Condition":
        category = next(filter(None, (_code_of(concept) for concept in objs(resource.get("category")))), None)
        for system, code in _codings(resource.get("code")):
            yield "condition", {"condition_id": rid, "patient_id": patient, "system": system, "code": code,
                                "clinical_status": _code_of(resource.get("clinicalStatus")),
                                "verification_status": _code_of(resource.get("verificationStatus")),
                                "category": category, "onset_day": _day(resource.get("onsetDateTime"), zone)}  # fmt: skip
    elif kind == "Observation":
        when = moment(
            resource.get("effectiveDateTime") or obj(resource.get("effectivePeriod")).get("start"), zone
        )
        value = resource.get("valueInteger")
        quantity = obj(resource.get("valueQuantity")).get("value")
        number = value if isinstance(value, int) and not isinstance(value, bool) else (
            round(quantity) if isinstance(quantity, int | float) and not isinstance(quantity, bool)
            and abs(quantity) < 10**9 else None)  # fmt: skip
        concept = resource.get("valueCodeableConcept")
        value_coding = next(_codings(concept), (None, None))
        reason = next((_code_of(ext.get("valueCodeableConcept")) for ext in objs(resource.get("extension"))
                       if str(ext.get("url", "")).endswith(("notDoneReason", "event-statusReason"))), None)  # fmt: skip
        for system, code in _codings(resource.get("code")):
            yield "observation", {"observation_id": rid, "patient_id": patient, "system": system, "code": code,
                                  "status": status, "effective_ts": when[0] if when else None,
                                  "effective_day": when[1] if when else None,
                                  "issued_ts": _ts(resource.get("issued"), zone),
                                  "issued_day": _day(resource.get("issued"), zone), "value_int": number,
                                  "value_system": value_coding[0], "value_code": value_coding[1],
                                  "reason_code": reason}  # fmt: skip
    elif kind in ("ServiceRequest", "MedicationRequest"):
        when = moment(resource.get("authoredOn"), zone)
        concept = (
            resource.get("code") if kind == "ServiceRequest" else resource.get("medicationCodeableConcept")
        )
        table = "service_request" if kind == "ServiceRequest" else "medication_request"
        for system, code in _codings(concept):
            row: dict[str, Any] = {"request_id": rid, "patient_id": patient, "system": system, "code": code, "status": status,
                   "intent": text(resource.get("intent")), "authored_ts": when[0] if when else None,
                   "authored_day": when[1] if when else None}  # fmt: skip
            if kind == "ServiceRequest":
                row["do_not_perform"] = bool(resource.get("doNotPerform"))
            yield table, row
    elif kind == "Procedure":
        when = moment(
            resource.get("performedDateTime") or obj(resource.get("performedPeriod")).get("start"), zone
        )
        for system, code in _codings(resource.get("code")):
            yield "procedure", {"procedure_id": rid, "patient_id": patient, "system": system, "code": code,
                                "status": status, "performed_ts": when[0] if when else None,
                                "performed_day": when[1] if when else None}  # fmt: skip

"""FHIR resources → the rows of the measure tables (one table per resource type, only the columns the measures
read). Pure and total: a malformed resource gives no row, never an exception. Times are kept as UTC timestamps (the
instant, for comparisons finer than a day) and as the day on the calendar of the time's OWN offset: CQL compares
at day precision (`during day of`, `same day as`, `days between`) without normalising offsets (the CQL
specification's DateTime comparison and difference operators normalise offsets only at hour precision or finer;
cql-execution: DateTime.sameAs/sameOrBefore/sameOrAfter/differenceBetween), so a PHQ-9 at 23:30 -05:00 on 31 December is on 31 December, in
whatever zone the measure is evaluated. A time without an offset is read in the evaluation time zone (as the engine
reads it in the offset of the evaluation request); a date without a time is that day, at midnight in that zone."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
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
                  "clinic": "str", "discharge_system": "str", "discharge_code": "str"},
    "condition": {"condition_id": "str", "patient_id": "str", "system": "str", "code": "str",
                  "clinical_status": "str", "verification_status": "str", "category": "str", "onset_day": "date",
                  # onset_ts: null when the onset has no time of day (CQL then compares at day precision)
                  "onset_ts": "timestamp", "abatement_day": "date", "abated": "bool"},
    "observation": {"observation_id": "str", "patient_id": "str", "system": "str", "code": "str", "status": "str",
                    "effective_ts": "timestamp", "effective_day": "date", "issued_ts": "timestamp", "issued_day": "date",
                    "value_int": "int", "value_system": "str", "value_code": "str", "reason_code": "str",
                    "value_kind": "str", "reason_system": "str"},
    "service_request": {"request_id": "str", "patient_id": "str", "system": "str", "code": "str", "status": "str",
                        "intent": "str", "do_not_perform": "bool", "authored_ts": "timestamp", "authored_day": "date"},
    "medication_request": {"request_id": "str", "patient_id": "str", "system": "str", "code": "str",
                           "status": "str", "intent": "str", "authored_ts": "timestamp", "authored_day": "date",
                           "period_start_day": "date", "period_end_day": "date"},
    "procedure": {"procedure_id": "str", "patient_id": "str", "system": "str", "code": "str", "status": "str",
                  "performed_ts": "timestamp", "performed_day": "date", "performed_end_day": "date"},
    "medication_dispense": {"dispense_id": "str", "patient_id": "str", "system": "str", "code": "str",
                            "status": "str", "handed_over_ts": "timestamp", "handed_over_day": "date"},
}  # fmt: skip
#: The FHIR resource type each table is flattened from.
RESOURCE_TABLES = {"Patient": "patient", "Encounter": "encounter", "Condition": "condition",
                   "Observation": "observation", "ServiceRequest": "service_request",
                   "MedicationRequest": "medication_request", "Procedure": "procedure",
                   "MedicationDispense": "medication_dispense"}  # fmt: skip


def moment(value: Any, zone: ZoneInfo) -> tuple[datetime, date] | None:
    """A FHIR dateTime → (UTC timestamp, day in its own offset); None when it is not one. `zone` is the
    evaluation zone: the offset of a time that has none, and the midnight of a date without a time."""
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
    return parsed.astimezone(UTC), parsed.date()  # the day as written, in the time's own offset (see above)


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


#: UCUM (and common) time units in days, as CumulativeMedicationDuration's conversions read them.
_DAYS = {"h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24, "d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0,
         "weeks": 7.0, "mo": 30.0, "month": 30.0, "months": 30.0, "a": 365.0, "year": 365.0, "years": 365.0}  # fmt: skip


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def request_period(request: Mapping[str, Any], zone: ZoneInfo) -> tuple[date | None, date | None]:
    """CumulativeMedicationDuration 6.0.000 `medicationRequestPeriod()` (CMS2's follow-up medication): from the
    dosage's bounds start, else authoredOn, else the dispense validity start, for the days supplied (expected
    supply duration, else quantity ÷ (dose × doses a day)) × (1 + refills), else to the bounds end; (None, None)
    when the CQL gives null (then the order is not a follow-up)."""
    dosages = objs(request.get("dosageInstruction"))
    dosage = dosages[0] if len(dosages) == 1 else {}
    rates = objs(dosage.get("doseAndRate"))
    rate = rates[0] if len(rates) == 1 else {}
    repeat = obj(obj(dosage.get("timing")).get("repeat"))
    bounds = obj(repeat.get("boundsPeriod"))
    dispense = obj(request.get("dispenseRequest"))
    start = (_day(bounds.get("start"), zone) or _day(request.get("authoredOn"), zone)
             or _day(obj(dispense.get("validityPeriod")).get("start"), zone))  # fmt: skip
    if start is None:
        return None, None
    supply = obj(dispense.get("expectedSupplyDuration"))
    days = _number(supply.get("value"))
    days = days * _DAYS[str(supply.get("code") or supply.get("unit"))] if days is not None and str(
        supply.get("code") or supply.get("unit")) in _DAYS else None  # fmt: skip
    if days is None:
        quantity = _number(obj(dispense.get("quantity")).get("value"))
        dose = _number(obj(rate.get("doseQuantity")).get("value")) or _number(
            obj(obj(rate.get("doseRange")).get("high")).get("value"))  # fmt: skip
        frequency = _number(repeat.get("frequencyMax")) or _number(repeat.get("frequency"))
        period = _number(repeat.get("period"))
        unit = _DAYS.get(str(repeat.get("periodUnit")))
        per_day = (frequency / (period * unit) if frequency and period and unit
                   else float(len(repeat["timeOfDay"])) if isinstance(repeat.get("timeOfDay"), list)
                   and repeat["timeOfDay"] else 1.0)  # fmt: skip
        days = quantity / (dose * per_day) if quantity is not None and dose else None
    if days is not None:
        refills = _number(dispense.get("numberOfRepeatsAllowed")) or 0.0
        total = days * (1 + refills)
        try:
            return start, start + timedelta(days=max(total - 1, 0))
        except (OverflowError, ValueError):
            return None, None
    end = _day(bounds.get("end"), zone)
    return (start, end) if end is not None else (None, None)


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
        # FHIRHelpers ToInterval(Period): a missing end is a closed null boundary, i.e. still going (kept null).
        start, end = moment(period.get("start"), zone), moment(period.get("end"), zone)
        # CMS159 "Has Hospice Services": an inpatient stay discharged to hospice (`~` matches any coding; the
        # SNOMED CT one is kept when there are several).
        dispositions = list(_codings(obj(resource.get("hospitalization")).get("dischargeDisposition")))
        discharge = next((c for c in dispositions if c[0] == "http://snomed.info/sct"),
                         dispositions[0] if dispositions else (None, None))  # fmt: skip
        for concept in objs(resource.get("type")):
            for system, code in _codings(concept):
                yield "encounter", {"encounter_id": rid, "patient_id": patient, "status": status, "system": system,
                                    "code": code, "start_ts": start[0] if start else None,
                                    "end_ts": end[0] if end else None, "start_day": start[1] if start else None,
                                    "end_day": end[1] if end else None,
                                    "clinic": _clinic(resource), "discharge_system": discharge[0],
                                    "discharge_code": discharge[1]}  # fmt: skip
    elif kind == "Condition":
        category = next(filter(None, (_code_of(concept) for concept in objs(resource.get("category")))), None)
        # QI-Core's prevalenceInterval() starts at onset (onsetDateTime, or the start of onsetPeriod) and ends at
        # the abatement (abatementDateTime, or the end of abatementPeriod).
        onset_value = resource.get("onsetDateTime") or obj(resource.get("onsetPeriod")).get("start")
        onset = moment(onset_value, zone)
        # The time only when the EHR gave one: a date-only onset compares at day precision in CQL.
        onset_time = onset[0] if onset and len(str(onset_value)) > 10 else None
        abatement = obj(resource.get("abatementPeriod"))
        abated = _day(
            resource.get("abatementDateTime") or abatement.get("end") or abatement.get("start"), zone
        )
        has_abatement = any(str(key).startswith("abatement") for key in resource)
        for system, code in _codings(resource.get("code")):
            yield "condition", {"condition_id": rid, "patient_id": patient, "system": system, "code": code,
                                "clinical_status": _code_of(resource.get("clinicalStatus")),
                                "verification_status": _code_of(resource.get("verificationStatus")),
                                "category": category, "onset_day": onset[1] if onset else None,
                                "onset_ts": onset_time, "abatement_day": abated,
                                "abated": has_abatement}  # fmt: skip
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
        reason = next((next(_codings(ext.get("valueCodeableConcept")), (None, _code_of(ext.get("valueCodeableConcept"))))
                       for ext in objs(resource.get("extension"))
                       if str(ext.get("url", "")).endswith(("notDoneReason", "event-statusReason"))), (None, None))  # fmt: skip
        # Which value[x] the Observation carries: CMS2 asks only that a value exists; CMS159 reads an integer.
        value_kind = next((str(key)[5:] for key in resource if str(key).startswith("value")
                           and resource[key] is not None), None)  # fmt: skip
        for system, code in _codings(resource.get("code")):
            yield "observation", {"observation_id": rid, "patient_id": patient, "system": system, "code": code,
                                  "status": status, "effective_ts": when[0] if when else None,
                                  "effective_day": when[1] if when else None,
                                  "issued_ts": _ts(resource.get("issued"), zone),
                                  "issued_day": _day(resource.get("issued"), zone), "value_int": number,
                                  "value_system": value_coding[0], "value_code": value_coding[1],
                                  "reason_code": reason[1], "reason_system": reason[0],
                                  "value_kind": value_kind}  # fmt: skip
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
            else:
                row["period_start_day"], row["period_end_day"] = request_period(resource, zone)
            yield table, row
    elif kind == "Procedure":
        performed = obj(resource.get("performedPeriod"))
        when = moment(resource.get("performedDateTime") or performed.get("start"), zone)
        ended = _day(resource.get("performedDateTime") or performed.get("end"), zone)
        for system, code in _codings(resource.get("code")):
            yield "procedure", {"procedure_id": rid, "patient_id": patient, "system": system, "code": code,
                                "status": status, "performed_ts": when[0] if when else None,
                                "performed_day": when[1] if when else None,
                                "performed_end_day": ended}  # fmt: skip
    elif kind == "MedicationDispense":
        when = moment(resource.get("whenHandedOver"), zone)
        for system, code in _codings(resource.get("medicationCodeableConcept")):
            yield "medication_dispense", {"dispense_id": rid, "patient_id": patient, "system": system,
                                          "code": code, "status": status,
                                          "handed_over_ts": when[0] if when else None,
                                          "handed_over_day": when[1] if when else None}  # fmt: skip

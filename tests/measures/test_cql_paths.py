"""Every population path of CMS159 (v0.3.000) and CMS2 (v0.4.001) as their CQL defines it, one patient per case,
on DuckDB, with the value sets looked up by OID. Each case cites the CQL define it exercises (the CQL is the
text/cql of the main Library in the measure bundles of the eCQI/MADiE content, CC0). The codes below are taken
from those bundles' official expansions (a few per set: enough for the case, not the whole set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.measures.logic import Period, cms2, cms159
from fhir_mappings.measures.valuesets import OID, ValueSet
from smartapp.measures.columnar import ParquetTables
from smartapp.measures.engines import connect, tables, to_arrow

from .deck import (
    CPT,
    ICD,
    LOINC,
    RX,
    SCT,
    condition,
    encounter,
    patient,
    prescription,
    referral,
    score,
    screen,
)

ZONE = ZoneInfo("America/Chicago")
PERIOD = Period(2026)
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

#: Filed by OID, as the official expansions are loaded (codes from the bundles' expansions).
CODES: dict[str, list[tuple[str, str]]] = {
    OID.CONTACT_OR_OFFICE_VISIT: [(CPT, "99213")],
    OID.MAJOR_DEPRESSION_INCLUDING_REMISSION: [(ICD, "F32.9"), (SCT, "370143000")],
    OID.DYSTHYMIA: [(ICD, "F34.1")],
    OID.PHQ_9_AND_PHQ_9M_TOOLS: [(LOINC, "44261-6"), (LOINC, "89204-2")],
    OID.ENCOUNTER_INPATIENT: [(SCT, "183452005")],
    OID.HOSPICE_ENCOUNTER: [(SCT, "183919006")],
    OID.HOSPICE_CARE_AMBULATORY: [(SCT, "385763009")],
    OID.HOSPICE_DIAGNOSIS: [(SCT, "170935008")],
    OID.PALLIATIVE_CARE_DIAGNOSIS: [(ICD, "Z51.5")],
    OID.PALLIATIVE_CARE_ENCOUNTER: [(SCT, "305284002")],
    OID.PALLIATIVE_CARE_INTERVENTION: [(SCT, "103735009")],
    OID.BIPOLAR_DISORDER: [(ICD, "F31.9"), (SCT, "10875004")],
    OID.PERSONALITY_DISORDER_EMOTIONALLY_LABILE: [(ICD, "F60.3")],
    OID.SCHIZOPHRENIA_OR_PSYCHOTIC_DISORDER: [(SCT, "111482003"), (ICD, "F20.0")],
    OID.PERVASIVE_DEVELOPMENTAL_DISORDER: [(ICD, "F84.0")],
    OID.ENCOUNTER_TO_SCREEN_FOR_DEPRESSION: [(SCT, "10197000")],
    OID.PHYSICAL_THERAPY_EVALUATION: [(CPT, "97161")],
    OID.TELEPHONE_VISITS: [(CPT, "98966")],
    # The adolescent and adult sets overlap; each also holds codes the other lacks.
    OID.REFERRAL_FOR_ADOLESCENT_DEPRESSION: [(SCT, "183524004"), (SCT, "306291008")],
    OID.REFERRAL_FOR_ADULT_DEPRESSION: [(SCT, "183524004"), (SCT, "183528001")],
    OID.ADOLESCENT_DEPRESSION_MEDICATIONS: [(RX, "1190110")],
    OID.ADULT_DEPRESSION_MEDICATIONS: [(RX, "1190110"), (RX, "1000048")],
    OID.FOLLOW_UP_FOR_ADOLESCENT_DEPRESSION: [(SCT, "108313002")],
    OID.FOLLOW_UP_FOR_ADULT_DEPRESSION: [(SCT, "108313002")],
    OID.MEDICAL_REASON: [(SCT, "183932001")],
}
VALUESETS = {oid: ValueSet(oid, oid, oid, "complete", "test", tuple(codes)) for oid, codes in CODES.items()}


def _subject(pid: str) -> dict[str, Any]:
    return {"reference": f"Patient/{pid}"}


def _resource(kind: str, rid: str, pid: str, code: tuple[str, str], **fields: Any) -> dict[str, Any]:
    field = {"Encounter": "type", "MedicationRequest": "medicationCodeableConcept"}.get(kind, "code")
    concept = {"coding": [{"system": code[0], "code": code[1]}]}
    return {"resourceType": kind, "id": rid, "subject": _subject(pid),
            field: [concept] if kind == "Encounter" else concept, **fields}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# CMS159: index 2025-02-20 (PHQ-9 14) at a visit on 2025-02-25; the DIP starts 2024-11-01; the MAP is
# 2025-12-22 .. 2026-04-21; a PHQ-9 of 3 on 2026-02-19 is remission unless the patient is excluded.


def _c159(pid: str, *extra: dict[str, Any], dx: dict[str, Any] | None = None,
          index: dict[str, Any] | None = None, last: int | None = 3) -> list[dict[str, Any]]:  # fmt: skip
    found = [
        patient(pid, "1980-01-01"),
        encounter(f"{pid}-v", pid, "2025-02-25T10:00:00-06:00", code=(CPT, "99213")),
        dx or condition(f"{pid}-dx", pid, "F32.9", "2024-01-01"),
        index or score(f"{pid}-i", pid, "2025-02-20T10:00:00-06:00", 14),
    ]
    if last is not None:
        found.append(score(f"{pid}-f", pid, "2026-02-19T10:00:00-06:00", last))
    return found + list(extra)


def _hospice_stay(
    pid: str, end: str, disposition: str, kind: tuple[str, str] = (SCT, "183452005")
) -> dict[str, Any]:
    return _resource("Encounter", f"{pid}-stay", pid, kind, status="finished",
                     period={"start": "2024-10-01T10:00:00-05:00", "end": end},
                     hospitalization={"dischargeDisposition": {"coding": [{"system": SCT, "code": disposition}]}})  # fmt: skip


def _obs(pid: str, code: tuple[str, str], status: str = "final", **value: Any) -> dict[str, Any]:
    return _resource("Observation", f"{pid}-o", pid, code, status=status,
                     effectiveDateTime="2025-06-01T10:00:00-05:00", **value)  # fmt: skip


YES = {"valueCodeableConcept": {"coding": [{"system": SCT, "code": "373066001"}]}}
IN_WINDOW = {"start": "2025-06-01T10:00:00-05:00", "end": "2025-06-02T10:00:00-05:00"}
CMS159_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    # "Depression Diagnoses": the SNOMED CT half of "Major Depression Including Remission" indexes too.
    "snomed-depression": (
        _c159(
            "snomed-depression",
            dx=condition("snomed-depression-dx", "snomed-depression", "370143000", "2024-01-01", system=SCT),
        ),
        {"numerator": True},
    ),  # fmt: skip
    # "Depression Encounter" … overlaps Depression.prevalenceInterval(): onset may be an onsetPeriod.
    "onset-period": (
        _c159(
            "onset-period",
            dx={
                **condition("onset-period-dx", "onset-period", "F32.9", None),
                "onsetPeriod": {"start": "2024-01-01"},
            },
        ),
        {"numerator": True},
    ),  # fmt: skip
    # "… overlaps Depression.prevalenceInterval()" at full precision: a date-only onset on the visit day is
    # uncertain (null), an onset with a time before the visit's end overlaps.
    "onset-date-on-visit-day": (
        _c159(
            "onset-date-on-visit-day",
            dx=condition("onset-date-on-visit-day-dx", "onset-date-on-visit-day", "F32.9", "2025-02-25"),
        ),
        None,
    ),  # fmt: skip
    "onset-time-during-visit": (
        _c159(
            "onset-time-during-visit",
            dx=condition(
                "onset-time-during-visit-dx", "onset-time-during-visit", "F32.9", "2025-02-25T10:00:00-06:00"
            ),
        ),
        {"numerator": True},
    ),  # fmt: skip
    # "Depression Encounter" … "period ends during day of" the DIP: FHIRHelpers reads a period without an end as
    # still going, so it does not end in the DIP.
    "visit-without-an-end": (
        [
            {**r, "period": {"start": r["period"]["start"]}} if r["resourceType"] == "Encounter" else r
            for r in _c159("visit-without-an-end")
        ],
        None,
    ),  # fmt: skip
    # prevalenceInterval() ends at the abatement: a depression over before the visit does not index.
    "abated-before-visit": (
        _c159(
            "abated-before-visit",
            dx={
                **condition("abated-before-visit-dx", "abated-before-visit", "F32.9", "2024-01-01"),
                "abatementDateTime": "2025-01-01",
            },
        ),
        None,
    ),  # fmt: skip
    # "Depression Assessments Greater Than 9": value as Integer; a valueQuantity is no score.
    "quantity-index": (
        _c159(
            "quantity-index",
            index={
                **{
                    k: v
                    for k, v in score(
                        "quantity-index-i", "quantity-index", "2025-02-20T10:00:00-06:00", 14
                    ).items()
                    if k != "valueInteger"
                },
                "valueQuantity": {"value": 14},
            },
        ),
        None,
    ),  # fmt: skip
    # "Numerator": the last assessment in the MAP decides, even one without a value.
    "last-without-value": (
        _c159(
            "last-without-value",
            {
                k: v
                for k, v in score(
                    "last-without-value-n", "last-without-value", "2026-03-01T10:00:00-06:00", 0
                ).items()
                if k != "valueInteger"
            },
        ),
        {"numerator": False, "last_score": None},
    ),  # fmt: skip
    # "Has Hospice Services …": an inpatient stay discharged to hospice, ending from the DIP start to the MAP end.
    "discharged-to-hospice-home": (
        _c159(
            "discharged-to-hospice-home",
            _hospice_stay("discharged-to-hospice-home", "2024-11-01T08:00:00-05:00", "428361000124107"),
        ),
        {"excluded": True, "exclusion": "hospice care", "numerator": False},
    ),  # fmt: skip
    "discharged-to-hospice-facility": (
        _c159(
            "discharged-to-hospice-facility",
            _hospice_stay("discharged-to-hospice-facility", "2026-04-21T08:00:00-05:00", "428371000124100"),
        ),
        {"excluded": True, "exclusion": "hospice care"},
    ),  # fmt: skip
    "discharged-home": (
        _c159("discharged-home", _hospice_stay("discharged-home", "2025-01-10T08:00:00-06:00", "306689006")),
        {"excluded": False, "numerator": True},
    ),  # fmt: skip
    "discharged-to-hospice-before-dip": (
        _c159(
            "discharged-to-hospice-before-dip",
            _hospice_stay("discharged-to-hospice-before-dip", "2024-10-31T08:00:00-05:00", "428361000124107"),
        ),
        {"excluded": False},
    ),  # fmt: skip
    "discharged-to-hospice-not-inpatient": (
        _c159(
            "discharged-to-hospice-not-inpatient",
            _hospice_stay(
                "discharged-to-hospice-not-inpatient",
                "2025-01-10T08:00:00-06:00",
                "428361000124107",
                (CPT, "99213"),
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    # … a hospice encounter overlapping the window (the DIP start day included), not cancelled.
    "hospice-encounter": (
        _c159(
            "hospice-encounter",
            _resource(
                "Encounter",
                "hospice-encounter-h",
                "hospice-encounter",
                (SCT, "183919006"),
                status="in-progress",
                period={"start": "2024-10-20T10:00:00-05:00", "end": "2024-11-01T10:00:00-05:00"},
            ),
        ),
        {"excluded": True, "exclusion": "hospice care"},
    ),  # fmt: skip
    "hospice-encounter-cancelled": (
        _c159(
            "hospice-encounter-cancelled",
            _resource(
                "Encounter",
                "hospice-encounter-cancelled-h",
                "hospice-encounter-cancelled",
                (SCT, "183919006"),
                status="cancelled",
                period=IN_WINDOW,
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    # … "Hospice care [Minimum Data Set]" = Yes, final, amended or corrected.
    "hospice-mds-yes": (
        _c159("hospice-mds-yes", _obs("hospice-mds-yes", (LOINC, "45755-6"), **YES)),
        {"excluded": True, "exclusion": "hospice care"},
    ),  # fmt: skip
    "hospice-mds-preliminary": (
        _c159(
            "hospice-mds-preliminary",
            _obs("hospice-mds-preliminary", (LOINC, "45755-6"), "preliminary", **YES),
        ),
        {"excluded": False},
    ),  # fmt: skip
    # … a hospice order (active or completed, an order intent, not "do not perform").
    "hospice-order": (
        _c159(
            "hospice-order",
            _resource(
                "ServiceRequest",
                "hospice-order-r",
                "hospice-order",
                (SCT, "385763009"),
                status="active",
                intent="order",
                authoredOn="2026-04-21",
            ),
        ),
        {"excluded": True, "exclusion": "hospice care"},
    ),  # fmt: skip
    "hospice-order-do-not-perform": (
        _c159(
            "hospice-order-do-not-perform",
            _resource(
                "ServiceRequest",
                "hospice-order-do-not-perform-r",
                "hospice-order-do-not-perform",
                (SCT, "385763009"),
                status="active",
                intent="order",
                doNotPerform=True,
                authoredOn="2025-06-01",
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    "hospice-order-after-map": (
        _c159(
            "hospice-order-after-map",
            _resource(
                "ServiceRequest",
                "hospice-order-after-map-r",
                "hospice-order-after-map",
                (SCT, "385763009"),
                status="active",
                intent="order",
                authoredOn="2026-04-22",
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    # … hospice care performed (a procedure that was not "not-done").
    "hospice-procedure": (
        _c159(
            "hospice-procedure",
            _resource(
                "Procedure",
                "hospice-procedure-p",
                "hospice-procedure",
                (SCT, "385763009"),
                status="in-progress",
                performedPeriod={"start": "2024-06-01"},
            ),
        ),
        {"excluded": True, "exclusion": "hospice care"},
    ),  # fmt: skip
    "hospice-procedure-not-done": (
        _c159(
            "hospice-procedure-not-done",
            _resource(
                "Procedure",
                "hospice-procedure-not-done-p",
                "hospice-procedure-not-done",
                (SCT, "385763009"),
                status="not-done",
                performedDateTime="2025-06-01",
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    # … a confirmed active hospice diagnosis whose prevalence overlaps the window.
    "hospice-diagnosis": (
        _c159(
            "hospice-diagnosis",
            condition("hospice-diagnosis-h", "hospice-diagnosis", "170935008", "2020-01-01", system=SCT),
        ),
        {"excluded": True, "exclusion": "hospice care"},
    ),  # fmt: skip
    "hospice-diagnosis-abated-before-dip": (
        _c159(
            "hospice-diagnosis-abated-before-dip",
            {
                **condition(
                    "hospice-diagnosis-abated-before-dip-h",
                    "hospice-diagnosis-abated-before-dip",
                    "170935008",
                    "2020-01-01",
                    system=SCT,
                ),
                "abatementDateTime": "2024-10-31",
            },
        ),
        {"excluded": False},
    ),  # fmt: skip
    # "Has Palliative Care …": FACIT-Pal, a diagnosis, an encounter, an intervention.
    "facit-pal": (
        _c159("facit-pal", _obs("facit-pal", (LOINC, "71007-9"), valueInteger=40)),
        {"excluded": True, "exclusion": "palliative care"},
    ),  # fmt: skip
    "palliative-diagnosis": (
        _c159(
            "palliative-diagnosis",
            condition("palliative-diagnosis-p", "palliative-diagnosis", "Z51.5", "2026-04-21"),
        ),
        {"excluded": True, "exclusion": "palliative care"},
    ),  # fmt: skip
    "palliative-diagnosis-unconfirmed": (
        _c159(
            "palliative-diagnosis-unconfirmed",
            condition(
                "palliative-diagnosis-unconfirmed-p",
                "palliative-diagnosis-unconfirmed",
                "Z51.5",
                "2025-06-01",
                verification="provisional",
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    "palliative-encounter": (
        _c159(
            "palliative-encounter",
            _resource(
                "Encounter",
                "palliative-encounter-e",
                "palliative-encounter",
                (SCT, "305284002"),
                status="finished",
                period=IN_WINDOW,
            ),
        ),
        {"excluded": True, "exclusion": "palliative care"},
    ),  # fmt: skip
    "palliative-encounter-planned": (
        _c159(
            "palliative-encounter-planned",
            _resource(
                "Encounter",
                "palliative-encounter-planned-e",
                "palliative-encounter-planned",
                (SCT, "305284002"),
                status="planned",
                period=IN_WINDOW,
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    "palliative-intervention": (
        _c159(
            "palliative-intervention",
            _resource(
                "Procedure",
                "palliative-intervention-p",
                "palliative-intervention",
                (SCT, "103735009"),
                status="completed",
                performedDateTime="2025-06-01",
            ),
        ),
        {"excluded": True, "exclusion": "palliative care"},
    ),  # fmt: skip
    # "Has Mental Health Disorder Diagnoses": any of the four sets, SNOMED CT or ICD-10-CM, onset by the MAP end.
    "schizophrenia-snomed-after-index": (
        _c159(
            "schizophrenia-snomed-after-index",
            condition(
                "schizophrenia-snomed-after-index-c",
                "schizophrenia-snomed-after-index",
                "111482003",
                "2026-04-21",
                system=SCT,
                category="encounter-diagnosis",
            ),
        ),
        {"excluded": True, "exclusion": "mental-health diagnosis"},
    ),  # fmt: skip
    "schizophrenia-after-map": (
        _c159(
            "schizophrenia-after-map",
            condition("schizophrenia-after-map-c", "schizophrenia-after-map", "F20.0", "2026-04-22"),
        ),
        {"excluded": False},
    ),  # fmt: skip
    "pervasive-developmental-disorder": (
        _c159(
            "pervasive-developmental-disorder",
            condition(
                "pervasive-developmental-disorder-c",
                "pervasive-developmental-disorder",
                "F84.0",
                "2010-01-01",
            ),
        ),
        {"excluded": True, "exclusion": "mental-health diagnosis"},
    ),  # fmt: skip
    "bipolar-snomed": (
        _c159(
            "bipolar-snomed",
            condition("bipolar-snomed-c", "bipolar-snomed", "10875004", "2010-01-01", system=SCT),
        ),
        {"excluded": True, "exclusion": "mental-health diagnosis"},
    ),  # fmt: skip
    "personality-disorder-resolved": (
        _c159(
            "personality-disorder-resolved",
            condition(
                "personality-disorder-resolved-c",
                "personality-disorder-resolved",
                "F60.3",
                "2010-01-01",
                status="resolved",
            ),
        ),
        {"excluded": False},
    ),  # fmt: skip
    # Permanent nursing-home residence is not among v0.3.000's "Denominator Exclusions" (it was in v8; measures.md).
    "nursing-home-resident": (
        _c159(
            "nursing-home-resident",
            _obs(
                "nursing-home-resident",
                (LOINC, "71802-3"),
                valueCodeableConcept={"coding": [{"system": SCT, "code": "160734000"}]},
            ),
        ),
        {"excluded": False, "numerator": True},
    ),  # fmt: skip
    # "Depression Encounter" … overlaps Depression.prevalenceInterval(): QICoreCommon's prevalenceInterval() of an
    # active diagnosis is Interval[start of onset, end of abatement], closed, so a missing onset leaves it unbounded
    # below (fqm-execution 1.8.6 counts the index); an abatement before the visit still ends it.
    "dx-without-onset": (
        _c159("dx-without-onset", dx=condition("dx-without-onset-dx", "dx-without-onset", "F32.9", None)),
        {"numerator": True},
    ),
    "dx-without-onset-abated-before-visit": (
        _c159(
            "dx-without-onset-abated-before-visit",
            dx={
                **condition(
                    "dx-without-onset-abated-before-visit-dx",
                    "dx-without-onset-abated-before-visit",
                    "F32.9",
                    None,
                ),
                "abatementDateTime": "2020-01-01",
            },
        ),
        None,
    ),
    # "Has Hospice Services …": HospiceCareDiagnosis.prevalenceInterval() overlaps day of [DIP start, MAP end]; no
    # onset: unbounded below, so it overlaps (fqm-execution 1.8.6 excludes).
    "hospice-diagnosis-without-onset": (
        _c159(
            "hospice-diagnosis-without-onset",
            condition(
                "hospice-diagnosis-without-onset-h",
                "hospice-diagnosis-without-onset",
                "170935008",
                None,
                system=SCT,
            ),
        ),
        {"excluded": True, "exclusion": "hospice care"},
    ),
    # "Has Mental Health Disorder Diagnoses": ToDate(start of prevalenceInterval()) on or before …: the start of
    # Interval[null, null] is null, so a bipolar diagnosis without onset (or abatement) does not exclude.
    "bipolar-without-onset": (
        _c159(
            "bipolar-without-onset",
            condition("bipolar-without-onset-c", "bipolar-without-onset", "F31.9", None),
        ),
        {"excluded": False, "numerator": True},
    ),
    # … with an abatement date: the start of Interval[null, abatement] is the minimum date, so it excludes.
    "bipolar-without-onset-abated": (
        _c159(
            "bipolar-without-onset-abated",
            {
                **condition("bipolar-without-onset-abated-c", "bipolar-without-onset-abated", "F31.9", None),
                "abatementDateTime": "2030-01-01",
            },
        ),
        {"excluded": True, "exclusion": "mental-health diagnosis"},
    ),
    # "Initial Population": AgeInYearsAt(start of "Index Depression Assessment".effective.toInterval()) >= 12. The
    # birth date (a Date) against the index's date and time: on the birthday the completed years are uncertain by
    # one (null), so the 12th birthday does not count, the day after does, and a 13th birthday is 12 either way.
    **{
        name: ([patient(name, born), *_c159(name)[1:]], expected)
        for name, born, expected in (
            ("twelfth-birthday-on-index-day", "2013-02-20", None),
            ("twelve-the-day-before-the-index", "2013-02-19", {"numerator": True, "stratum": "12-17"}),
            ("eleven-on-index-day", "2013-02-21", None),
            ("thirteenth-birthday-on-index-day", "2012-02-20", {"numerator": True, "stratum": "12-17"}),
        )
    },
}

# ---------------------------------------------------------------------------------------------------------------
# CMS2: one qualifying visit on 1 March 2026 (09:00–09:15, Chicago) unless the case says otherwise.
VISIT, VISIT_END = "2026-03-01T09:00:00-06:00", "2026-03-01T09:15:00-06:00"


def _c2(pid: str, *extra: dict[str, Any], born: str = "1980-01-01", visit: tuple[str, str] = (VISIT, VISIT_END),
        kind: tuple[str, str] = (SCT, "10197000")) -> list[dict[str, Any]]:  # fmt: skip
    return [patient(pid, born), encounter(f"{pid}-v", pid, visit[0], visit[1], kind), *extra]


def _cancelled(pid: str, issued: str, reason: str, adult: bool = True) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"{pid}-x", "status": "cancelled", "subject": _subject(pid),
            "code": {"coding": [{"system": LOINC, "code": "73832-8" if adult else "73831-0"}]}, "issued": issued,
            "extension": [{"url": "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-notDoneReason",
                           "valueCodeableConcept": {"coding": [{"system": SCT, "code": reason}]}}]}  # fmt: skip


def _valued(pid: str, value: dict[str, Any]) -> dict[str, Any]:
    found = screen(f"{pid}-s", pid, VISIT, False)
    del found["valueCodeableConcept"]
    return {**found, **value}


def _drug(pid: str, code: str, authored: str = "2026-03-01", **fields: Any) -> dict[str, Any]:
    return {**prescription(f"{pid}-m", pid, authored, code), **fields}


TEEN = "2011-06-01"  # 14 at the start of 2026
CMS2_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    # "Qualifying Encounter During Measurement Period": the three encounter sets.
    "physical-therapy-visit": (_c2("physical-therapy-visit", kind=(CPT, "97161")), {"numerator": False}),
    "telephone-visit": (_c2("telephone-visit", kind=(CPT, "98966")), {"numerator": False}),
    # "period during day of Measurement Period": a visit without an end is still going, so not within the period.
    "visit-without-an-end": (
        [
            {**r, "period": {"start": VISIT}} if r["resourceType"] == "Encounter" else r
            for r in _c2("visit-without-an-end")
        ],
        None,
    ),  # fmt: skip
    # "Has Adult Depression Screening": a value of any kind is a screening, so the refusal beside it is no
    # exception ("Denominator Exceptions" … and not "Has Adult Depression Screening").
    "screen-with-a-text-value": (
        _c2(
            "screen-with-a-text-value",
            _valued("screen-with-a-text-value", {"valueString": "declined"}),
            _cancelled("screen-with-a-text-value", VISIT, "720834000"),
        ),
        {"numerator": False, "exception": False},
    ),  # fmt: skip
    "screen-without-a-value": (
        _c2(
            "screen-without-a-value",
            _valued("screen-without-a-value", {}),
            _cancelled("screen-without-a-value", VISIT, "720834000"),
        ),
        {"numerator": False, "exception": True},
    ),  # fmt: skip
    # "Medical or Patient Reason for Not Screening Adult …": issued during any day of the visit.
    "declined-on-the-second-day": (
        _c2(
            "declined-on-the-second-day",
            _cancelled("declined-on-the-second-day", "2026-03-02T08:00:00-06:00", "720834000"),
            visit=(VISIT, "2026-03-02T10:00:00-06:00"),
        ),
        {"exception": True},
    ),  # fmt: skip
    "declined-the-day-after": (
        _c2(
            "declined-the-day-after",
            _cancelled("declined-the-day-after", "2026-03-02T08:00:00-06:00", "720834000"),
        ),
        {"exception": False},
    ),  # fmt: skip
    "medical-reason": (
        _c2("medical-reason", _cancelled("medical-reason", VISIT, "183932001")),
        {"exception": True},
    ),
    "other-reason": (
        _c2("other-reason", _cancelled("other-reason", VISIT, "182890002")),
        {"exception": False},
    ),
    # The exception is per kind and not by age: an adolescent refusal for an adult is still an exception.
    "adolescent-refusal-for-an-adult": (
        _c2(
            "adolescent-refusal-for-an-adult",
            _cancelled("adolescent-refusal-for-an-adult", VISIT, "720834000", adult=False),
        ),
        {"exception": True},
    ),  # fmt: skip
    # "Follow Up Intervention for Positive Adult Depression Screening": the adult sets only, and vice versa.
    "adult-with-an-adolescent-referral": (
        _c2(
            "adult-with-an-adolescent-referral",
            screen("adult-with-an-adolescent-referral-s", "adult-with-an-adolescent-referral", VISIT, True),
            referral(
                "adult-with-an-adolescent-referral-r",
                "adult-with-an-adolescent-referral",
                "2026-03-01",
                "306291008",
            ),
        ),
        {"numerator": False},
    ),  # fmt: skip
    "adult-with-an-adult-referral": (
        _c2(
            "adult-with-an-adult-referral",
            screen("adult-with-an-adult-referral-s", "adult-with-an-adult-referral", VISIT, True),
            referral(
                "adult-with-an-adult-referral-r", "adult-with-an-adult-referral", "2026-03-03", "183528001"
            ),
        ),
        {"numerator": True},
    ),  # fmt: skip
    "teen-with-an-adult-only-drug": (
        _c2(
            "teen-with-an-adult-only-drug",
            screen(
                "teen-with-an-adult-only-drug-s", "teen-with-an-adult-only-drug", VISIT, True, adult=False
            ),
            _drug(
                "teen-with-an-adult-only-drug",
                "1000048",
                dispenseRequest={"expectedSupplyDuration": {"value": 30, "code": "d"}},
            ),
            born=TEEN,
        ),
        {"numerator": False},
    ),  # fmt: skip
    "teen-with-an-adolescent-drug": (
        _c2(
            "teen-with-an-adolescent-drug",
            screen(
                "teen-with-an-adolescent-drug-s", "teen-with-an-adolescent-drug", VISIT, True, adult=False
            ),
            _drug(
                "teen-with-an-adolescent-drug",
                "1190110",
                dispenseRequest={"expectedSupplyDuration": {"value": 30, "code": "d"}},
            ),
            born=TEEN,
        ),
        {"numerator": True},
    ),  # fmt: skip
    # medicationRequestPeriod() from the dosage's bounds, or from quantity ÷ (dose × doses a day).
    "drug-with-bounds": (
        _c2(
            "drug-with-bounds",
            screen("drug-with-bounds-s", "drug-with-bounds", VISIT, True),
            _drug(
                "drug-with-bounds",
                "1000048",
                dosageInstruction=[
                    {"timing": {"repeat": {"boundsPeriod": {"start": "2026-03-01", "end": "2026-04-01"}}}}
                ],
            ),
        ),
        {"numerator": True},
    ),  # fmt: skip
    "drug-with-quantity": (
        _c2(
            "drug-with-quantity",
            screen("drug-with-quantity-s", "drug-with-quantity", VISIT, True),
            _drug(
                "drug-with-quantity",
                "1000048",
                dispenseRequest={"quantity": {"value": 30}},
                dosageInstruction=[
                    {
                        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                        "doseAndRate": [{"doseQuantity": {"value": 1}}],
                    }
                ],
            ),
        ),
        {"numerator": True},
    ),  # fmt: skip
    # "overlaps after day of" the visit: an order starting the day after the visit does not overlap it.
    "drug-the-day-after": (
        _c2(
            "drug-the-day-after",
            screen("drug-the-day-after-s", "drug-the-day-after", VISIT, True),
            _drug(
                "drug-the-day-after",
                "1000048",
                "2026-03-02",
                dispenseRequest={"expectedSupplyDuration": {"value": 30, "code": "d"}},
            ),
        ),
        {"numerator": False},
    ),  # fmt: skip
    # "History of Bipolar Diagnosis Before Qualifying Encounter": SNOMED CT counts as ICD-10-CM does.
    "bipolar-snomed": (
        _c2(
            "bipolar-snomed",
            condition("bipolar-snomed-c", "bipolar-snomed", "10875004", "2020-01-01", system=SCT),
        ),
        {"excluded": True},
    ),  # fmt: skip
    # "History of Bipolar Diagnosis Before Qualifying Encounter": BipolarDiagnosis.prevalenceInterval() starts
    # before day of start of the visit. QICoreCommon's prevalenceInterval() of a Condition that is not active is
    # `(end of abatementInterval()) abatementDate return …`, a query over a null source when no abatement date is
    # recorded: null, so it never starts before (fqm-execution 1.8.6 does not exclude); with an abatement date, or
    # when active, it does.
    **{
        f"bipolar-{name}": (
            _c2(
                f"bipolar-{name}",
                {
                    **condition(
                        f"bipolar-{name}-c",
                        f"bipolar-{name}",
                        "F31.9",
                        None if "without-onset" in name else "2020-01-01",
                        status=status,
                    ),
                    **abatement,
                },
            ),
            {"excluded": excluded},
        )
        for name, status, abatement, excluded in (
            ("resolved", "resolved", {}, False),
            ("inactive", "inactive", {}, False),
            ("remission", "remission", {}, False),
            ("resolved-abated-boolean", "resolved", {"abatementBoolean": True}, False),
            ("resolved-with-abatement-date", "resolved", {"abatementDateTime": "2021-01-01"}, True),
            ("resolved-abated-after-visit", "resolved", {"abatementDateTime": "2026-12-01"}, True),
            ("active-abated", "active", {"abatementDateTime": "2021-01-01"}, True),
            ("relapse", "relapse", {}, True),
            # No onset: the start of Interval[null, abatement] (closed) is the minimum date when an abatement date
            # is recorded, whatever the status; null with neither (fqm-execution 1.8.6).
            ("active-without-onset-abated", "active", {"abatementDateTime": "2030-01-01"}, True),
            ("resolved-without-onset-abated", "resolved", {"abatementDateTime": "2030-01-01"}, True),
            ("active-without-onset", "active", {}, False),
        )
    },
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("paths")
    with ParquetTables(found, ZONE) as writer:
        for name, cases in (("c159", CMS159_CASES), ("c2", CMS2_CASES)):
            for pid, (resources, _) in cases.items():
                # Each case's resources under the case's own patient id, prefixed per measure.
                writer.add(_prefixed(resources, pid, f"{name}-{pid}"))
    return found


def _run(engine: str, folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    deck = tables(connect(engine), folder)
    return {name: {row["patient_id"]: row for row in to_arrow(measure(deck, PERIOD, VALUESETS)).to_pylist()}
            for name, measure in (("c159", cms159), ("c2", cms2))}  # fmt: skip


@pytest.fixture(scope="module")
def results(folder: Path) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
    yield _run("duckdb", folder)


def test_spark_agrees_on_every_path(folder: Path, results: dict[str, dict[str, dict[str, Any]]]) -> None:
    """The same expressions on Spark give the same rows (the path cases are the small sample)."""
    spark = _run("spark", folder)
    for name in ("c159", "c2"):
        assert spark[name] == results[name]


def _prefixed(resources: list[dict[str, Any]], pid: str, new: str) -> Iterator[dict[str, Any]]:
    for resource in resources:
        if resource["resourceType"] == "Patient":
            yield {**resource, "id": new}
        else:
            yield {**resource, "id": f"{new}-{resource['id']}", "subject": _subject(new)}


def _check(found: dict[str, dict[str, Any]], case: str, expected: dict[str, Any] | None) -> None:
    if expected is None:
        assert case not in found, found.get(case)
        return
    assert case in found, f"{case} is not in the initial population"
    for key, value in expected.items():
        assert found[case][key] == value, (case, key, found[case])


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in CMS159_CASES.items()])
def test_cms159_paths(
    results: dict[str, dict[str, dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["c159"], f"c159-{case}", expected)


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in CMS2_CASES.items()])
def test_cms2_paths(
    results: dict[str, dict[str, dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["c2"], f"c2-{case}", expected)

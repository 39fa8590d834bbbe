"""The measures as Ibis expressions: written once, run on DuckDB (one machine) or Spark (a cluster). Each measure
takes the flattened tables (`flatten.SCHEMAS`) and returns one row per patient of its initial population with the
population flags and the evidence behind them. Lazy: nothing here reads data.

Decided once, used everywhere (measures.md §8):
- Several scores at one time: the order is effective time, then `issued`, then the Observation id; "first" and
  "last" follow it (`TIE_ORDER`).
- Days are compared in the evaluation time zone (the flattening keeps each time's day there).
- Statuses: final, amended and corrected count (CMS2 v0.4.001: final and corrected), never preliminary,
  entered-in-error or cancelled (cancelled only for CMS2's exceptions).
- A Condition's prevalence is QICoreCommon 4.0.000's `prevalenceInterval()` as fqm-execution evaluates it:
  for an active one (active, recurrence, relapse) `Interval[start of onset, end of abatement]`, closed, so a
  missing onset or abatement leaves that side unbounded (a depression diagnosis without onset indexes; a hospice or
  palliative diagnosis without onset excludes); for any other (or no) clinical status the interval is built by a
  query over the abatement, which is null when no abatement date is recorded, so such a Condition neither indexes
  nor excludes (a resolved bipolar diagnosis without an abatement date does not exclude from CMS2). "starts
  before"/"on or before" on an interval with no onset is null (`recordedDate` is not used).
- Age at a CMS159 index assessment: `AgeInYearsAt(start of effective)` compares the birth *date* with a date and
  time, so on the birthday itself the completed years are uncertain by one: a patient whose 12th birthday is the
  index day is not (yet) 12 and stays out of the initial population.
- A Patient marked deceased without a date is not "expired" for CMS159: the ELM reads
  `FHIRHelpers.ToValue(Patient.deceased) as DateTime`, which is null for `deceasedBoolean` (measures.md had left
  this open).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
from ibis import _
from ibis.expr.types import BooleanValue, Table

from fhir_mappings.measures.valuesets import OID, VALUESETS, ValueSet

COUNTED = ("final", "amended", "corrected")
CMS2_COUNTED = ("final", "corrected")  # CMS2FHIR v0.4.001
ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")
#: QICoreCommon 4.0.000 isActive(): the clinical statuses of an active condition.
ACTIVE = ("active", "recurrence", "relapse")
NOT_DONE = ("not-done", "entered-in-error", "unknown")  # CMS159: procedures that did not happen
SCT, LOINC = "http://snomed.info/sct", "http://loinc.org"
# The codes the CQL names directly (not value sets), as the CQL declares them.
ADOLESCENT_SCREEN, ADULT_SCREEN = (LOINC, "73831-0"), (LOINC, "73832-8")  # CMS2
SCREEN_POSITIVE, SCREEN_NEGATIVE = (SCT, "428181000124104"), (SCT, "428171000124102")  # CMS2
SCREEN_DECLINED = (SCT, "720834000")  # CMS2 "Depression screening declined (situation)"
HOSPICE_MDS, YES = (LOINC, "45755-6"), (SCT, "373066001")  # CMS159 "Hospice care [Minimum Data Set]" = Yes
FACIT_PAL = (LOINC, "71007-9")  # CMS159
# CMS159: discharged to home / to a healthcare facility for hospice care (SNOMED CT).
DISCHARGED_TO_HOSPICE = ("428361000124107", "428371000124100")

#: Until the official expansions are loaded by OID, the hand-made sets answer under their former names (one former
#: set may stand for several OIDs: CMS2's encounter sets, or the adolescent and adult halves of a pair).
FORMER_NAMES = {
    OID.ENCOUNTER_TO_SCREEN_FOR_DEPRESSION: "cms2_encounter", OID.PHYSICAL_THERAPY_EVALUATION: "cms2_encounter",
    OID.TELEPHONE_VISITS: "cms2_encounter", OID.REFERRAL_FOR_ADOLESCENT_DEPRESSION: "cms2_referral",
    OID.REFERRAL_FOR_ADULT_DEPRESSION: "cms2_referral", OID.ADOLESCENT_DEPRESSION_MEDICATIONS: "cms2_medication",
    OID.ADULT_DEPRESSION_MEDICATIONS: "cms2_medication",
    OID.FOLLOW_UP_FOR_ADOLESCENT_DEPRESSION: "cms2_followup_procedure",
    OID.FOLLOW_UP_FOR_ADULT_DEPRESSION: "cms2_followup_procedure", OID.MEDICAL_REASON: "medical_reason",
    OID.BIPOLAR_DISORDER: "bipolar", OID.CONTACT_OR_OFFICE_VISIT: "office_visit",
    OID.MAJOR_DEPRESSION_INCLUDING_REMISSION: "major_depression", OID.DYSTHYMIA: "dysthymia",
    OID.PERSONALITY_DISORDER_EMOTIONALLY_LABILE: "personality_labile",
    OID.SCHIZOPHRENIA_OR_PSYCHOTIC_DISORDER: "psychosis", OID.PERVASIVE_DEVELOPMENTAL_DISORDER: "pdd",
    OID.PALLIATIVE_CARE_DIAGNOSIS: "palliative_diagnosis", OID.HOSPICE_DIAGNOSIS: "hospice_diagnosis",
    OID.PHQ_9_AND_PHQ_9M_TOOLS: "phq9_total",
}  # fmt: skip
#: The OID as CMS159 0.3.000's canonical URL spells it (MADiE dropped a ".1"): an expansion loaded from the
#: published bundle may be filed under it.
AS_PUBLISHED = {OID.MAJOR_DEPRESSION_INCLUDING_REMISSION: "2.16.840.113883.3.67.1.101.3.2444"}


#: The value sets each measure's CQL names (OID → the CQL's name): what a rate needs loaded.
CQL_VALUESETS: dict[str, dict[str, str]] = {
    "cms2": {
        OID.ENCOUNTER_TO_SCREEN_FOR_DEPRESSION: "Encounter to Screen for Depression",
        OID.PHYSICAL_THERAPY_EVALUATION: "Physical Therapy Evaluation", OID.TELEPHONE_VISITS: "Telephone Visits",
        OID.BIPOLAR_DISORDER: "Bipolar Disorder", OID.MEDICAL_REASON: "Medical Reason",
        OID.REFERRAL_FOR_ADOLESCENT_DEPRESSION: "Referral for Adolescent Depression",
        OID.REFERRAL_FOR_ADULT_DEPRESSION: "Referral for Adult Depression",
        OID.ADOLESCENT_DEPRESSION_MEDICATIONS: "Adolescent Depression Medications",
        OID.ADULT_DEPRESSION_MEDICATIONS: "Adult Depression Medications",
        OID.FOLLOW_UP_FOR_ADOLESCENT_DEPRESSION: "Follow Up for Adolescent Depression",
        OID.FOLLOW_UP_FOR_ADULT_DEPRESSION: "Follow Up for Adult Depression",
    },
    "cms159": {
        OID.CONTACT_OR_OFFICE_VISIT: "Contact or Office Visit",
        OID.MAJOR_DEPRESSION_INCLUDING_REMISSION: "Major Depression Including Remission",
        OID.DYSTHYMIA: "Dysthymia", OID.PHQ_9_AND_PHQ_9M_TOOLS: "PHQ 9 and PHQ 9M Tools",
        OID.ENCOUNTER_INPATIENT: "Encounter Inpatient", OID.HOSPICE_ENCOUNTER: "Hospice Encounter",
        OID.HOSPICE_CARE_AMBULATORY: "Hospice Care Ambulatory", OID.HOSPICE_DIAGNOSIS: "Hospice Diagnosis",
        OID.PALLIATIVE_CARE_DIAGNOSIS: "Palliative Care Diagnosis",
        OID.PALLIATIVE_CARE_ENCOUNTER: "Palliative Care Encounter",
        OID.PALLIATIVE_CARE_INTERVENTION: "Palliative Care Intervention", OID.BIPOLAR_DISORDER: "Bipolar Disorder",
        OID.PERSONALITY_DISORDER_EMOTIONALLY_LABILE: "Personality Disorder Emotionally Labile",
        OID.SCHIZOPHRENIA_OR_PSYCHOTIC_DISORDER: "Schizophrenia or Psychotic Disorder",
        OID.PERVASIVE_DEVELOPMENTAL_DISORDER: "Pervasive Developmental Disorder",
    },
}  # fmt: skip
NOT_LOADED = "not loaded"


def valueset(valuesets: Mapping[str, ValueSet], oid: str) -> ValueSet:
    """The value set the CQL names by `oid`: filed under the OID (or its published spelling), or carrying it, or
    the former hand-made set; an empty set (matching nothing) when none is loaded."""
    spellings = (oid, AS_PUBLISHED.get(oid, oid))
    for name in spellings:
        if name in valuesets:
            return valuesets[name]
    for vs in valuesets.values():
        if vs.oid in spellings:
            return vs
    former = FORMER_NAMES.get(oid)
    if former is not None and former in valuesets:
        return valuesets[former]
    names = {o: n for sets in CQL_VALUESETS.values() for o, n in sets.items()}
    return ValueSet(oid, oid, names.get(oid, oid), "not-expanded", NOT_LOADED)


def not_loaded(measure: str, valuesets: Mapping[str, ValueSet]) -> list[str]:
    """The value sets the measure's CQL names that are not loaded at all (by OID or a former name): its rate
    would count nobody on their paths."""
    return [name for oid, name in CQL_VALUESETS.get(measure, {}).items()
            if valueset(valuesets, oid).source == NOT_LOADED]  # fmt: skip


def in_sets(t: Table, valuesets: Mapping[str, ValueSet], *oids: str) -> BooleanValue:
    """Whether a row's (system, code) is in any of the value sets named by OID."""
    return ibis.or_(*(in_valueset(t, valueset(valuesets, oid)) for oid in oids))


def is_code(t: Table, code: tuple[str, str]) -> BooleanValue:
    return (t.system == code[0]) & (t.code == code[1])


@dataclass(frozen=True)
class Period:
    """A measurement period: one calendar year."""

    year: int

    @property
    def start(self) -> date:
        return date(self.year, 1, 1)

    @property
    def end(self) -> date:
        return date(self.year, 12, 31)


def in_valueset(t: Table, vs: ValueSet) -> BooleanValue:
    """Whether a row's (system, code) is in the value set."""
    conditions: list[BooleanValue] = []
    by_system: dict[str, list[str]] = {}
    for system, code in vs.codes:
        by_system.setdefault(system, []).append(code)
    for system, codes in by_system.items():
        conditions.append((t.system == system) & t.code.isin(codes))
    for system, prefix in vs.prefixes:
        conditions.append((t.system == system) & t.code.startswith(prefix))
    return ibis.or_(*conditions) if conditions else ibis.literal(False)


def age_at(birth: Any, day: Any) -> Any:
    """Completed years on `day` (a birthday on that day counts)."""
    before_birthday = (day.month() < birth.month()) | (
        (day.month() == birth.month()) & (day.day() < birth.day())
    )
    return day.year() - birth.year() - ibis.ifelse(before_birthday, 1, 0)


def plus_year(day: Any) -> Any:
    """The same day a year later (29 February → 28 February, as CQL's `+ 12 months` does)."""
    leap_day = (day.month() == 2) & (day.day() == 29)
    return ibis.date(day.year() + 1, day.month(), ibis.ifelse(leap_day, 28, day.day()))


def ranked(t: Table, by: str, *, last: bool) -> Table:
    """Each `by` group's first (or last) row in the tie order (time, then issued, then id)."""
    keys = [t.effective_ts, t.issued_ts, t.observation_id]
    order = [ibis.desc(k) for k in keys] if last else [ibis.asc(k) for k in keys]
    numbered = t.mutate(_rank=ibis.row_number().over(group_by=t[by], order_by=order))
    return numbered.filter(numbered._rank == 0).drop("_rank")


def _population_of(age: Any) -> dict[str, Any]:
    """What every row of these patient-based measures carries: its age stratum, and that the patient is in the
    initial population and (the denominator equals it) the denominator."""
    return {"stratum": ibis.ifelse(age < 18, "12-17", "18+"), "initial_population": ibis.literal(True),
            "denominator": ibis.literal(True)}  # fmt: skip


def cms159(
    tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS
) -> Table:
    """CMS159 (Depression Remission at Twelve Months, QI-Core v0.3.000) and its response companion (CBE 1885:
    the last score at most half the index score, Tandem's [K] reading of "≥ 50 % reduction")."""
    patient, encounter, condition, observation = (tables[n] for n in ("patient", "encounter", "condition",
                                                                      "observation"))  # fmt: skip
    # "Denominator Identification Period": [start of MP - 14 months, start of MP - 2 months).
    dip_start, dip_end = date(period.year - 2, 11, 1), date(period.year - 1, 10, 31)
    # "Depression Diagnoses": major depression or dysthymia (SNOMED CT or ICD-10-CM, as the sets hold), confirmed
    # and active; its prevalenceInterval() runs from onset to abatement (open while none is recorded).
    diagnoses = condition.filter(
        in_sets(condition, valuesets, OID.MAJOR_DEPRESSION_INCLUDING_REMISSION, OID.DYSTHYMIA)
        & _confirmed_active(condition)
    ).select("patient_id", "onset_day", "onset_ts", "abatement_day")  # fmt: skip
    # "Depression Encounter": a finished contact or office visit ending in the DIP that overlaps the diagnosis (at
    # full precision: an onset given as a date only, on the visit's last day, is uncertain in CQL, so it does not;
    # no onset at all: the closed interval starts unbounded, so it does).
    visits = encounter.filter(in_sets(encounter, valuesets, OID.CONTACT_OR_OFFICE_VISIT)
                              & (encounter.status == "finished")
                              & encounter.end_day.between(dip_start, dip_end)).select(
        "encounter_id", "patient_id", "start_day", "end_day", "end_ts").distinct()  # fmt: skip
    depression_visits = visits.join(diagnoses, "patient_id").filter(
        (_.onset_day.isnull() | ibis.ifelse(_.onset_ts.isnull(), _.onset_day < _.end_day, _.onset_ts <= _.end_ts))
        & (_.abatement_day.isnull() | (_.abatement_day >= _.start_day))
    ).select("encounter_id", "patient_id", "start_day", "end_day").distinct()  # fmt: skip
    # PHQ-9/PHQ-9M totals with a counted status; the CQL reads `value as Integer`, so a valueQuantity is no score.
    assessments = observation.filter(in_sets(observation, valuesets, OID.PHQ_9_AND_PHQ_9M_TOOLS)
                                     & observation.status.isin(COUNTED) & observation.effective_day.notnull())  # fmt: skip
    assessments = assessments.mutate(value_int=ibis.ifelse(assessments.value_kind == "Integer",
                                                           assessments.value_int, ibis.null("int64")))  # fmt: skip
    assessments = assessments.select(
        "observation_id", "patient_id", "effective_ts", "effective_day", "issued_ts", "value_int"
    ).distinct(on="observation_id", keep="first")
    # "Depression Assessments Greater Than 9" and "Index Depression Assessment": the first one from 7 days before
    # a depression encounter's start to its end (days).
    elevated = assessments.filter(assessments.value_int > 9)
    candidates = elevated.join(depression_visits, "patient_id").filter(
        (_.effective_day >= _.start_day - ibis.interval(days=7)) & (_.effective_day <= _.end_day)
    ).select("observation_id", "patient_id", "effective_ts", "effective_day", "issued_ts", "value_int").distinct()  # fmt: skip
    index = ranked(candidates, "patient_id", last=False).select(
        "patient_id", index_day=_.effective_day, index_score=_.value_int)  # fmt: skip
    # "Initial Population": `AgeInYearsAt(start of "Index Depression Assessment".effective.toInterval()) >= 12`:
    # the birth date against a date and time, so on the 12th birthday the age is 11 or 12 (null) and does not count.
    population = index.join(patient, "patient_id").mutate(age=age_at(_.birth_date, _.index_day))
    birthday = (population.index_day.month() == population.birth_date.month()) & (
        population.index_day.day() == population.birth_date.day())  # fmt: skip
    population = population.filter((population.age > 12) | ((population.age == 12) & ~birthday))
    # "Measure Assessment Period": the index day + 12 months, ± 60 days.
    anniversary = plus_year(population.index_day)
    population = population.mutate(map_start=anniversary - ibis.interval(days=60),
                                   map_end=anniversary + ibis.interval(days=60))  # fmt: skip
    # "Numerator": the last assessment in the MAP (whatever its value) has a value below 5.
    in_map = assessments.join(population.select("patient_id", "map_start", "map_end"), "patient_id").filter(
        _.effective_day.between(_.map_start, _.map_end)).select(
        "observation_id", "patient_id", "effective_ts", "issued_ts", "effective_day", "value_int")  # fmt: skip
    last = ranked(in_map, "patient_id", last=True).select("patient_id", last_day=_.effective_day,
                                                           last_score=_.value_int)  # fmt: skip
    windows = population.select("patient_id", "map_end")
    excluded_by = _cms159_exclusions(tables, windows, dip_start, valuesets)
    result = population.left_join(last, "patient_id").drop("patient_id_right").left_join(
        excluded_by, "patient_id").drop("patient_id_right")  # fmt: skip
    excluded = result.exclusion.notnull()
    return result.select(
        "patient_id",
        "index_day",
        "index_score",
        "map_start",
        "map_end",
        "last_day",
        "last_score",
        "age",
        **_population_of(result.age),
        exclusion=result.exclusion,
        excluded=excluded,
        numerator=(~excluded) & result.last_score.notnull() & (result.last_score < 5),
        response=(~excluded) & result.last_score.notnull() & (result.last_score * 2 <= result.index_score),
    )


def _confirmed_active(condition: Table) -> BooleanValue:
    """CMS159 isConfirmedActiveDiagnosis(): isActive() and verification status confirmed."""
    return condition.clinical_status.isin(ACTIVE) & (condition.verification_status == "confirmed")


def _cms159_exclusions(tables: Mapping[str, Table], windows: Table, dip_start: date,
                       valuesets: Mapping[str, ValueSet]) -> Table:  # fmt: skip
    """The first reason each patient is excluded ("Denominator Exclusions"): "Patient Expired" by the MAP end;
    "Has Hospice Services" or "Has Palliative Care" from the DIP start to the MAP end (days); "Has Mental Health
    Disorder Diagnoses" with onset by the MAP end."""
    patient, condition, observation = tables["patient"], tables["condition"], tables["observation"]
    encounter, procedure, orders = tables["encounter"], tables["procedure"], tables["service_request"]
    dip = ibis.literal(dip_start)
    dead = (
        patient.join(windows, "patient_id")
        .filter(_.deceased_day.notnull() & (_.deceased_day <= _.map_end))
        .select("patient_id", reason=ibis.literal("expired"))
    )

    def overlapping(t: Table, first: str, last: str) -> BooleanValue:
        """[first, last] overlaps [DIP start, MAP end] in days (a missing end: still going, as a closed null
        boundary reads in CQL)."""
        return t[first].notnull() & (t[first] <= t.map_end) & (t[last].isnull() | (t[last] >= dip))

    def diagnosed(oid: str, reason: str) -> Table:
        """An active diagnosis's prevalence interval is closed: no onset starts it unbounded (it excludes)."""
        found = condition.filter(in_sets(condition, valuesets, oid) & _confirmed_active(condition)).join(
            windows, "patient_id")  # fmt: skip
        return found.filter((found.onset_day.isnull() | (found.onset_day <= found.map_end))
                            & (found.abatement_day.isnull() | (found.abatement_day >= dip))).select(
            "patient_id", reason=ibis.literal(reason))  # fmt: skip

    def visited(oid: str, statuses: BooleanValue, reason: str) -> Table:
        found = encounter.filter(in_sets(encounter, valuesets, oid) & statuses).join(windows, "patient_id")
        return found.filter(overlapping(found, "start_day", "end_day")).select(
            "patient_id", reason=ibis.literal(reason))  # fmt: skip

    def performed(oid: str, reason: str) -> Table:
        found = procedure.filter(in_sets(procedure, valuesets, oid) & ~procedure.status.fill_null("").isin(
            NOT_DONE)).join(windows, "patient_id")  # fmt: skip
        return found.filter(overlapping(found, "performed_day", "performed_end_day")).select(
            "patient_id", reason=ibis.literal(reason))  # fmt: skip

    def assessed(found: BooleanValue, reason: str) -> Table:
        rows = observation.filter(found & observation.status.isin(COUNTED)).join(windows, "patient_id")
        return rows.filter(overlapping(rows, "effective_day", "effective_day")).select(
            "patient_id", reason=ibis.literal(reason))  # fmt: skip

    # "Has Hospice Services in the Measure Assessment Period"
    inpatient = encounter.filter(in_sets(encounter, valuesets, OID.ENCOUNTER_INPATIENT)
                                 & (encounter.status == "finished") & (encounter.discharge_system == SCT)
                                 & encounter.discharge_code.isin(DISCHARGED_TO_HOSPICE)).join(windows, "patient_id")  # fmt: skip
    discharged = inpatient.filter(inpatient.end_day.between(dip, inpatient.map_end)).select(
        "patient_id", reason=ibis.literal("hospice care"))  # fmt: skip
    ordered = orders.filter(in_sets(orders, valuesets, OID.HOSPICE_CARE_AMBULATORY)
                            & orders.status.isin(("active", "completed")) & orders.intent.isin(ORDER_INTENTS)
                            & ~orders.do_not_perform.fill_null(False)).join(windows, "patient_id")  # fmt: skip
    ordered = ordered.filter(ordered.authored_day.between(dip, ordered.map_end)).select(
        "patient_id", reason=ibis.literal("hospice care"))  # fmt: skip
    hospice = [
        discharged,
        visited(OID.HOSPICE_ENCOUNTER, ~encounter.status.fill_null("").isin(("cancelled", "entered-in-error",
                                                                              "unknown")), "hospice care"),
        assessed(is_code(observation, HOSPICE_MDS) & (observation.value_system == YES[0])
                 & (observation.value_code == YES[1]), "hospice care"),
        ordered,
        performed(OID.HOSPICE_CARE_AMBULATORY, "hospice care"),
        diagnosed(OID.HOSPICE_DIAGNOSIS, "hospice care"),
    ]  # fmt: skip
    # "Has Palliative Care in the Measure Assessment Period"
    palliative = [
        assessed(is_code(observation, FACIT_PAL), "palliative care"),
        diagnosed(OID.PALLIATIVE_CARE_DIAGNOSIS, "palliative care"),
        visited(OID.PALLIATIVE_CARE_ENCOUNTER, encounter.status == "finished", "palliative care"),
        performed(OID.PALLIATIVE_CARE_INTERVENTION, "palliative care"),
    ]
    # "Has Mental Health Disorder Diagnoses": onset on or before the MAP end (even after the index).
    mental = condition.filter(_confirmed_active(condition) & in_sets(
        condition, valuesets, OID.BIPOLAR_DISORDER, OID.PERSONALITY_DISORDER_EMOTIONALLY_LABILE,
        OID.SCHIZOPHRENIA_OR_PSYCHOTIC_DISORDER, OID.PERVASIVE_DEVELOPMENTAL_DISORDER))  # fmt: skip
    # Without onset: the start of Interval[null, abatement] is the minimum date when an abatement date is recorded,
    # null when none is (QICoreCommon prevalenceInterval(), as fqm-execution 1.8.6 evaluates it).
    mental = mental.join(windows, "patient_id").filter(
        (_.onset_day <= _.map_end) | (_.onset_day.isnull() & _.abatement_day.notnull())).select(
        "patient_id", reason=ibis.literal("mental-health diagnosis"))  # fmt: skip
    reasons = ibis.union(dead, *hospice, *palliative, mental)
    return reasons.group_by("patient_id").aggregate(exclusion=reasons.reason.min())


#: CMS2's per-kind value sets: (screening code, referral, medication, follow-up procedure), adolescent and adult
#: kept apart as the CQL keeps them.
CMS2_KINDS = {
    "adolescent": (ADOLESCENT_SCREEN, OID.REFERRAL_FOR_ADOLESCENT_DEPRESSION, OID.ADOLESCENT_DEPRESSION_MEDICATIONS,
                   OID.FOLLOW_UP_FOR_ADOLESCENT_DEPRESSION),
    "adult": (ADULT_SCREEN, OID.REFERRAL_FOR_ADULT_DEPRESSION, OID.ADULT_DEPRESSION_MEDICATIONS,
              OID.FOLLOW_UP_FOR_ADULT_DEPRESSION),
}  # fmt: skip


def cms2(tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS) -> Table:
    """CMS2 (Screening for Depression and Follow-Up Plan, QI-Core v0.4.001)."""
    patient, encounter, condition, observation = (tables[n] for n in ("patient", "encounter", "condition",
                                                                      "observation"))  # fmt: skip
    # "Qualifying Encounter During Measurement Period": the three encounter sets, finished, within the period.
    visits = encounter.filter(in_sets(encounter, valuesets, OID.ENCOUNTER_TO_SCREEN_FOR_DEPRESSION,
                                      OID.PHYSICAL_THERAPY_EVALUATION, OID.TELEPHONE_VISITS)
                              & (encounter.status == "finished")
                              & encounter.start_day.between(period.start, period.end)
                              & encounter.end_day.between(period.start, period.end)).select(
        "encounter_id", "patient_id", "start_day", "end_day", "start_ts", "end_ts").distinct()  # fmt: skip
    people = patient.mutate(age=age_at(patient.birth_date, ibis.literal(period.start)))
    first_visit = visits.group_by("patient_id").aggregate(visit_day=visits.start_day.min())
    population = people.filter(people.age >= 12).join(first_visit, "patient_id").select("patient_id", "age",
                                                                                        "visit_day")  # fmt: skip
    # "History of Bipolar Diagnosis Before Qualifying Encounter" (problem list or health concern, any status): its
    # prevalenceInterval() starts at onset; for a Condition that is not active it is null without an abatement
    # date (QICoreCommon builds it by a query over the abatement), so a resolved diagnosis needs one to exclude.
    # Without onset the (closed) interval starts at the minimum date when it has an abatement date (before any
    # visit), and its start is null when it has neither.
    bipolar = condition.filter(in_sets(condition, valuesets, OID.BIPOLAR_DISORDER)
                               & condition.category.isin(("problem-list-item", "health-concern"))
                               & (condition.abatement_day.notnull()
                                  | (condition.onset_day.notnull()
                                     & condition.clinical_status.isin(ACTIVE)))).select("patient_id", "onset_day")  # fmt: skip
    excluded = (
        bipolar.join(visits, "patient_id")
        .filter(_.onset_day.isnull() | (_.onset_day < _.start_day))
        .select("patient_id")
        .distinct()
    )
    kinds = ibis.ifelse(is_code(observation, ADOLESCENT_SCREEN), "adolescent",
                        ibis.ifelse(is_code(observation, ADULT_SCREEN), "adult", None))  # fmt: skip
    screens = observation.mutate(kind=kinds).filter(_.kind.notnull())
    # A screening counts when it has a value of any kind ("value is not null"), final or corrected.
    done = screens.filter(screens.status.isin(CMS2_COUNTED) & screens.value_kind.notnull())
    # "Most Recent … Depression Screening": the last screening at most 14 days before (or on the day of) the start
    # of a qualifying visit; it counts with every such visit.
    paired = done.join(visits, "patient_id").filter(
        (_.effective_day >= _.start_day - ibis.interval(days=14)) & (_.effective_day <= _.start_day)
    )
    paired = paired.select("observation_id", "patient_id", "kind", "effective_ts", "issued_ts", "effective_day",
                           "value_system", "value_code", "encounter_id", "start_ts", "end_ts", "start_day",
                           "end_day")  # fmt: skip
    latest_id = ranked(paired.select("observation_id", "patient_id", "kind", "effective_ts", "issued_ts")
                        .distinct().mutate(group=_.patient_id.concat("|", _.kind)), "group", last=True)  # fmt: skip
    latest = paired.semi_join(latest_id.select("observation_id", "kind"), ["observation_id", "kind"])
    positive = (latest.value_system == SCREEN_POSITIVE[0]) & (latest.value_code == SCREEN_POSITIVE[1])
    followed = _cms2_follow_ups(tables, latest.filter(positive), period, valuesets)
    outcome = latest.left_join(followed, ["observation_id", "kind", "encounter_id"]).mutate(
        met=((_.value_system == SCREEN_NEGATIVE[0]) & (_.value_code == SCREEN_NEGATIVE[1]))
        | ((_.value_system == SCREEN_POSITIVE[0]) & (_.value_code == SCREEN_POSITIVE[1])
           & _.followed_up.notnull()))  # fmt: skip
    by_kind = outcome.group_by(["patient_id", "kind"]).aggregate(
        met=outcome.met.any(), result=outcome.value_code.max(), screen_day=outcome.effective_day.max()
    )
    with_age = by_kind.join(population, "patient_id")
    allowed = ((with_age.age <= 16) & (with_age.kind == "adolescent")) | (with_age.age == 17) | (
        (with_age.age >= 18) & (with_age.kind == "adult"))  # fmt: skip
    met = (
        with_age.filter(allowed)
        .group_by("patient_id")
        .aggregate(numerator_met=_.met.any(), screen_result=_.result.max(), screen_day=_.screen_day.max())
    )
    # "Medical or Patient Reason for Not Screening …": a cancelled screening of that kind issued on any day of a
    # qualifying visit, declined by the patient or for a medical reason; an exception only while no screening of
    # that kind ("Has … Depression Screening") exists.
    medical = valueset(valuesets, OID.MEDICAL_REASON)
    refusals = screens.filter(screens.status == "cancelled").mutate(
        system=_.reason_system, code=_.reason_code
    )
    refusals = refusals.filter(is_code(refusals, SCREEN_DECLINED) | in_valueset(refusals, medical))
    declined = refusals.join(visits, "patient_id").filter(_.issued_day.between(_.start_day, _.end_day)).select(
        "patient_id", "kind")  # fmt: skip
    recent = paired.select("patient_id", "kind").distinct()
    exception = declined.anti_join(recent, ["patient_id", "kind"]).select("patient_id").distinct().mutate(
        exception=ibis.literal(True))  # fmt: skip
    result = population.left_join(met, "patient_id").drop("patient_id_right").left_join(
        excluded.mutate(excluded=ibis.literal(True)), "patient_id").drop("patient_id_right").left_join(
        exception, "patient_id").drop("patient_id_right")  # fmt: skip
    is_excluded = result.excluded.fill_null(False)
    numerator = (~is_excluded) & result.numerator_met.fill_null(False)
    return result.select(
        "patient_id",
        "age",
        "screen_day",
        "screen_result",
        "visit_day",
        **_population_of(result.age),
        excluded=is_excluded,
        exclusion=ibis.ifelse(is_excluded, "bipolar disorder", None),
        numerator=numerator,
        exception=(~is_excluded) & (~numerator) & result.exception.fill_null(False),
    )


def _cms2_follow_ups(tables: Mapping[str, Table], positives: Table, period: Period,
                     valuesets: Mapping[str, ValueSet]) -> Table:  # fmt: skip
    """("Most Recent … Positive and Follow Up Provided") the (positive screening, kind, visit) triples with a
    follow-up of that kind's sets: a referral (active or completed) or an antidepressant order authored from the
    visit's last day to two days after it, or a completed follow-up procedure started during the visit (full
    precision); each within the period. An antidepressant also needs its medicationRequestPeriod() to overlap, and
    end after, a qualifying visit the screening preceded by at most 14 days ("overlaps after day of")."""
    referral, medication, procedure = (
        tables[n] for n in ("service_request", "medication_request", "procedure")
    )
    found: list[Table] = []
    for kind, (_screen, refer_oid, drug_oid, procedure_oid) in CMS2_KINDS.items():
        pairs = positives.filter(positives.kind == kind).select(
            "observation_id", "kind", "encounter_id", "patient_id", "start_ts", "end_ts", "start_day", "end_day")  # fmt: skip
        referred = referral.filter(in_sets(referral, valuesets, refer_oid)
                                   & referral.status.isin(("active", "completed")))  # fmt: skip
        found.append(pairs.join(referred.select("patient_id", "authored_day"), "patient_id").filter(
            _.authored_day.between(_.end_day, _.end_day + ibis.interval(days=2))
            & _.authored_day.between(period.start, period.end)).select("observation_id", "kind", "encounter_id"))  # fmt: skip
        drugs = medication.filter(in_sets(medication, valuesets, drug_oid)
                                  & medication.status.isin(("active", "completed"))
                                  & medication.intent.isin(ORDER_INTENTS)
                                  & medication.period_end_day.notnull()).select(
            "request_id", "patient_id", "authored_day", "period_start_day", "period_end_day")  # fmt: skip
        spanning = drugs.join(pairs.select("patient_id", visit_start=_.start_day, visit_end=_.end_day),
                              "patient_id").filter(
            (_.period_start_day <= _.visit_end) & (_.period_end_day >= _.visit_start)
            & (_.period_end_day > _.visit_end)).select("request_id").distinct()  # fmt: skip
        drugs = drugs.semi_join(spanning, "request_id")
        found.append(pairs.join(drugs.select("patient_id", "authored_day"), "patient_id").filter(
            _.authored_day.between(_.end_day, _.end_day + ibis.interval(days=2))
            & _.authored_day.between(period.start, period.end)).select("observation_id", "kind", "encounter_id"))  # fmt: skip
        done = procedure.filter(
            in_sets(procedure, valuesets, procedure_oid) & (procedure.status == "completed")
        )
        found.append(pairs.join(done.select("patient_id", "performed_ts", "performed_day"), "patient_id").filter(
            _.performed_ts.between(_.start_ts, _.end_ts) & _.performed_day.between(period.start, period.end)
        ).select("observation_id", "kind", "encounter_id"))  # fmt: skip
    return ibis.union(*found).distinct().mutate(followed_up=ibis.literal(True))

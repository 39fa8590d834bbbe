"""The measures as Ibis expressions: written once, run on DuckDB (one machine) or Spark (a cluster). Each measure
takes the flattened tables (`flatten.SCHEMAS`) and returns one row per patient of its initial population with the
population flags and the evidence behind them. Lazy: nothing here reads data.

Decided once, used everywhere (measures.md §8):
- Several scores at one time: the order is effective time, then `issued`, then the Observation id; "first" and
  "last" follow it (`TIE_ORDER`).
- Days are compared in the evaluation time zone (the flattening keeps each time's day there).
- Statuses: final, amended and corrected count (CMS2 v0.4.001: final and corrected), never preliminary,
  entered-in-error or cancelled (cancelled only for CMS2's exceptions).
- A Condition without `onset` neither indexes nor excludes (QI-Core's prevalence interval starts at onset;
  `recordedDate` is not used).
- A Patient marked deceased without a date is treated as expired (measures.md leaves the CQL's behaviour open).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
from ibis import _
from ibis.expr.types import BooleanValue, Table

from fhir_mappings.measures.valuesets import VALUESETS, ValueSet

COUNTED = ("final", "amended", "corrected")
CMS2_COUNTED = ("final", "corrected")  # CMS2FHIR v0.4.001
ORDER_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")


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
    dip_start, dip_end = date(period.year - 2, 11, 1), date(period.year - 1, 10, 31)
    diagnoses = condition.filter(
        (in_valueset(condition, valuesets["major_depression"]) | in_valueset(condition, valuesets["dysthymia"]))
        & (condition.clinical_status == "active") & (condition.verification_status == "confirmed")
        & condition.onset_day.notnull()
    ).select("patient_id", "onset_day")  # fmt: skip
    visits = encounter.filter(in_valueset(encounter, valuesets["office_visit"]) & (encounter.status == "finished")
                              & encounter.end_day.between(dip_start, dip_end)).select(
        "encounter_id", "patient_id", "start_day", "end_day").distinct()  # fmt: skip
    depression_visits = visits.join(diagnoses, "patient_id").filter(_.onset_day <= _.end_day).select(
        "encounter_id", "patient_id", "start_day", "end_day").distinct()  # fmt: skip
    phq = observation.filter(in_valueset(observation, valuesets["phq9_total"]) & observation.status.isin(COUNTED)
                             & observation.value_int.notnull() & observation.effective_day.notnull())  # fmt: skip
    phq = phq.select(
        "observation_id", "patient_id", "effective_ts", "effective_day", "issued_ts", "value_int"
    )
    phq = phq.distinct(on="observation_id", keep="first")
    elevated = phq.filter(phq.value_int > 9)
    candidates = elevated.join(depression_visits, "patient_id").filter(
        (_.effective_day >= _.start_day - ibis.interval(days=7)) & (_.effective_day <= _.end_day)
    ).select("observation_id", "patient_id", "effective_ts", "effective_day", "issued_ts", "value_int").distinct()  # fmt: skip
    index = ranked(candidates, "patient_id", last=False).select(
        "patient_id", index_day=_.effective_day, index_score=_.value_int)  # fmt: skip
    population = index.join(patient, "patient_id").mutate(age=age_at(_.birth_date, _.index_day))
    population = population.filter(population.age >= 12)
    anniversary = plus_year(population.index_day)
    population = population.mutate(map_start=anniversary - ibis.interval(days=60),
                                   map_end=anniversary + ibis.interval(days=60))  # fmt: skip
    in_map = phq.join(population.select("patient_id", "map_start", "map_end"), "patient_id").filter(
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


def _cms159_exclusions(tables: Mapping[str, Table], windows: Table, dip_start: date,
                       valuesets: Mapping[str, ValueSet]) -> Table:  # fmt: skip
    """The first reason each patient is excluded (death, hospice or palliative care from the DIP start to the MAP
    end, or a listed mental-health diagnosis with onset by the MAP end)."""
    patient, condition, observation = tables["patient"], tables["condition"], tables["observation"]
    dead = (
        patient.join(windows, "patient_id")
        .filter(_.deceased & (_.deceased_day.isnull() | (_.deceased_day <= _.map_end)))
        .select("patient_id", reason=ibis.literal("expired"))
    )
    cared = observation.join(windows, "patient_id").filter(
        _.effective_day.between(ibis.literal(dip_start), _.map_end)
        & ((in_valueset(observation, valuesets["hospice_observation"]) & (_.value_code == "373066001"))
           | in_valueset(observation, valuesets["palliative_observation"]))
    ).select("patient_id", reason=ibis.literal("hospice or palliative care"))  # fmt: skip
    active = (condition.clinical_status == "active") & (condition.verification_status == "confirmed")
    care_diagnosis = condition.filter(
        active & (in_valueset(condition, valuesets["palliative_diagnosis"])
                  | in_valueset(condition, valuesets["hospice_diagnosis"]))
    ).join(windows, "patient_id").filter(_.onset_day <= _.map_end).select(
        "patient_id", reason=ibis.literal("hospice or palliative care"))  # fmt: skip
    mental = condition.filter(active & ibis.or_(*(in_valueset(condition, valuesets[k]) for k in
                                                  ("bipolar", "personality_labile", "psychosis", "pdd"))))  # fmt: skip
    mental = mental.join(windows, "patient_id").filter(_.onset_day <= _.map_end).select(
        "patient_id", reason=ibis.literal("mental-health diagnosis"))  # fmt: skip
    reasons = ibis.union(dead, cared, care_diagnosis, mental)
    return reasons.group_by("patient_id").aggregate(exclusion=reasons.reason.min())


def cms2(tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS) -> Table:
    """CMS2 (Screening for Depression and Follow-Up Plan, QI-Core v0.4.001)."""
    patient, encounter, condition, observation = (tables[n] for n in ("patient", "encounter", "condition",
                                                                      "observation"))  # fmt: skip
    visits = encounter.filter(in_valueset(encounter, valuesets["cms2_encounter"]) & (encounter.status == "finished")
                              & encounter.start_day.between(period.start, period.end)
                              & encounter.end_day.between(period.start, period.end)).select(
        "encounter_id", "patient_id", "start_day", "end_day", "start_ts", "end_ts").distinct()  # fmt: skip
    people = patient.mutate(age=age_at(patient.birth_date, ibis.literal(period.start)))
    first_visit = visits.group_by("patient_id").aggregate(visit_day=visits.start_day.min())
    population = people.filter(people.age >= 12).join(first_visit, "patient_id").select("patient_id", "age",
                                                                                        "visit_day")  # fmt: skip
    bipolar = condition.filter(in_valueset(condition, valuesets["bipolar"])
                               & condition.category.isin(("problem-list-item", "health-concern"))
                               & condition.onset_day.notnull()).select("patient_id", "onset_day")  # fmt: skip
    excluded = (
        bipolar.join(visits, "patient_id").filter(_.onset_day < _.start_day).select("patient_id").distinct()
    )
    kinds = ibis.ifelse(in_valueset(observation, valuesets["cms2_adolescent_screen"]), "adolescent",
                        ibis.ifelse(in_valueset(observation, valuesets["cms2_adult_screen"]), "adult", None))  # fmt: skip
    screens = observation.mutate(kind=kinds).filter(_.kind.notnull())
    done = screens.filter(screens.status.isin(CMS2_COUNTED) & screens.value_code.notnull())
    # A screening counts for every qualifying visit it is at most 14 days before (or on the day of).
    paired = done.join(visits, "patient_id").filter(
        (_.effective_day >= _.start_day - ibis.interval(days=14)) & (_.effective_day <= _.start_day)
    )
    paired = paired.select("observation_id", "patient_id", "kind", "effective_ts", "issued_ts", "effective_day",
                           "value_code", "encounter_id", "start_ts", "end_ts", "end_day")  # fmt: skip
    latest_id = ranked(paired.select("observation_id", "patient_id", "kind", "effective_ts", "issued_ts")
                        .distinct().mutate(group=_.patient_id.concat("|", _.kind)), "group", last=True)  # fmt: skip
    latest = paired.semi_join(latest_id.select("observation_id"), "observation_id")
    followed = _cms2_follow_ups(tables, latest, period, valuesets)
    outcome = latest.left_join(followed, ["observation_id", "encounter_id"]).mutate(
        met=(_.value_code == "428171000124102")
        | ((_.value_code == "428181000124104") & _.followed_up.notnull()))  # fmt: skip
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
    reasons = [code for key in ("cms2_declined", "medical_reason") for _system, code in valuesets[key].codes]
    declined = screens.filter((screens.status == "cancelled") & screens.reason_code.isin(reasons)).join(
        visits, "patient_id").filter(_.issued_day == _.start_day).select("patient_id", "kind")  # fmt: skip
    recent = done.join(visits, "patient_id").filter(
        (_.effective_day >= _.start_day - ibis.interval(days=14)) & (_.effective_day <= _.start_day)
    ).select("patient_id", "kind").distinct()  # fmt: skip
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


def _cms2_follow_ups(tables: Mapping[str, Table], latest: Table, period: Period,
                     valuesets: Mapping[str, ValueSet]) -> Table:  # fmt: skip
    """(screening, encounter) pairs with a follow-up documented for that encounter: a referral or an antidepressant
    authored from the encounter's last day to two days after it, or a follow-up procedure during the encounter
    (full precision, as the CQL reads); each within the period."""
    referral, medication, procedure = (
        tables[n] for n in ("service_request", "medication_request", "procedure")
    )
    pairs = latest.select("observation_id", "encounter_id", "patient_id", "start_ts", "end_ts", "end_day")
    referred = referral.filter(in_valueset(referral, valuesets["cms2_referral"])
                               & referral.status.isin(("active", "completed")))  # fmt: skip
    referred = pairs.join(referred.select("patient_id", "authored_day"), "patient_id").filter(
        _.authored_day.between(_.end_day, _.end_day + ibis.interval(days=2))
        & _.authored_day.between(period.start, period.end)).select("observation_id", "encounter_id")  # fmt: skip
    prescribed = medication.filter(in_valueset(medication, valuesets["cms2_medication"])
                                   & medication.status.isin(("active", "completed"))
                                   & medication.intent.isin(ORDER_INTENTS))  # fmt: skip
    prescribed = pairs.join(prescribed.select("patient_id", "authored_day"), "patient_id").filter(
        _.authored_day.between(_.end_day, _.end_day + ibis.interval(days=2))
        & _.authored_day.between(period.start, period.end)).select("observation_id", "encounter_id")  # fmt: skip
    done = procedure.filter(in_valueset(procedure, valuesets["cms2_followup_procedure"])
                            & (procedure.status == "completed"))  # fmt: skip
    done = pairs.join(done.select("patient_id", "performed_ts", "performed_day"), "patient_id").filter(
        _.performed_ts.between(_.start_ts, _.end_ts) & _.performed_day.between(period.start, period.end)
    ).select("observation_id", "encounter_id")  # fmt: skip
    return ibis.union(referred, prescribed, done).distinct().mutate(followed_up=ibis.literal(True))

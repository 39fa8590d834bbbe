"""HEDIS-style (not certified) depression measures from their public descriptions: DSF-E (screening and follow-up),
DRR-E (follow-up PHQ-9, remission, response) and DMS-E (PHQ-9 monitoring per assessment period). Every window
NCQA's licensed text would fix is a parameter (`fhir_mappings/data/measures/hedis_style.json`). Ibis expressions,
lazy; the same tie rule, statuses and time zone as `logic.py`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import ibis
from ibis import _
from ibis.expr.types import Table

from fhir_mappings.measures.logic import COUNTED, Period, age_at, in_valueset, ranked, valueset
from fhir_mappings.measures.valuesets import OID, VALUESETS, ValueSet

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "measures" / "hedis_style.json"


@dataclass(frozen=True)
class Instrument:
    loinc: str
    name: str
    positive_at: int
    min_age: int
    max_age: int | None
    brief: bool


@dataclass(frozen=True)
class HedisParams:
    needs_visit_in_year: bool
    dsf_screen_from: str
    dsf_screen_to: str
    dsf_follow_up_days: int
    dsf_bipolar_lookback: str
    dsf_strata: tuple[tuple[int, int | None], ...]
    instruments: tuple[Instrument, ...]
    drr_intake_from: str
    drr_intake_to: str
    drr_follow_up: tuple[int, int]
    drr_strata: tuple[tuple[int, int | None], ...]
    dms_periods: tuple[tuple[str, str], ...]
    dms_strata: tuple[tuple[int, int | None], ...]
    pds_delivery_from: str
    pds_delivery_to: str
    pds_screen_days: tuple[int, int]
    pds_follow_up_days: int


def _strata(value: Any) -> tuple[tuple[int, int | None], ...]:
    return tuple((int(low), None if high is None else int(high)) for low, high in value)


def load_params(path: Path = DATA_FILE) -> HedisParams:
    data = json.loads(path.read_text(encoding="utf-8"))
    dsf, drr, dms, pds = data["dsf"], data["drr"], data["dms"], data["pds"]
    if dsf["bipolar_lookback"] not in ("any", "prior-year"):
        raise ValueError(f"{path.name}: dsf.bipolar_lookback is 'any' or 'prior-year'")
    return HedisParams(
        bool(data["eligibility"]["needs_visit_in_year"]), dsf["screen_from"], dsf["screen_to"],
        int(dsf["follow_up_days"]), dsf["bipolar_lookback"], _strata(dsf["strata"]),
        tuple(Instrument(i["loinc"], i["name"], int(i["positive_at"]), int(i["ages"][0]),
                         None if i["ages"][1] is None else int(i["ages"][1]), bool(i["brief"]))
              for i in dsf["instruments"]),
        drr["intake_from"], drr["intake_to"], (int(drr["follow_up_from_days"]), int(drr["follow_up_to_days"])),
        _strata(drr["strata"]), tuple((a, b) for a, b in dms["periods"]), _strata(dms["strata"]),
        pds["delivery_from"], pds["delivery_to"], (int(pds["screen_from_days"]), int(pds["screen_to_days"])),
        int(pds["follow_up_days"]),
    )  # fmt: skip


PARAMS = load_params()


def _day(year: int, month_day: str) -> date:
    month, day = (int(x) for x in month_day.split("-"))
    return date(year, month, day)


def _stratum(age: Any, bands: tuple[tuple[int, int | None], ...]) -> Any:
    expr: Any = ibis.null().cast("string")
    for low, high in reversed(bands):
        label = f"{low}+" if high is None else f"{low}-{high}"
        inside = (age >= low) if high is None else age.between(low, high)
        expr = ibis.ifelse(inside, label, expr)
    return expr


def _eligible(tables: Mapping[str, Table], period: Period, params: HedisParams) -> Table:
    """Patients 12 or older on 1 January, with a finished visit in the year where the parameter asks for one."""
    patient, encounter = tables["patient"], tables["encounter"]
    people = patient.mutate(age=age_at(patient.birth_date, ibis.literal(period.start))).filter(_.age >= 12)
    visits = encounter.filter(
        (encounter.status == "finished") & encounter.start_day.between(period.start, period.end)
    )
    first = visits.group_by("patient_id").aggregate(visit_day=visits.start_day.min())
    people = (people.join(first, "patient_id") if params.needs_visit_in_year
              else people.left_join(first, "patient_id").drop("patient_id_right"))  # fmt: skip
    return people.select("patient_id", "age", "deceased", "deceased_day", "visit_day")


def _died_or_hospice(tables: Mapping[str, Table], start: date, end: date,
                     valuesets: Mapping[str, ValueSet]) -> Table:  # fmt: skip
    patient, observation = tables["patient"], tables["observation"]
    dead = patient.filter(patient.deceased & (patient.deceased_day.isnull()
                                              | patient.deceased_day.between(start, end))).select("patient_id")  # fmt: skip
    hospice = observation.filter(in_valueset(observation, valuesets["hospice_observation"])
                                 & (observation.value_code == "373066001")
                                 & observation.effective_day.between(start, end)).select("patient_id")  # fmt: skip
    return ibis.union(dead, hospice).distinct()


def _mental_health(condition: Table, by: date, valuesets: Mapping[str, ValueSet]) -> Table:
    """Patients with bipolar disorder, an emotionally labile personality disorder, a psychotic disorder or a
    pervasive developmental disorder begun by `by` (DRR-E and DMS-E exclusions)."""
    listed = ibis.or_(*(in_valueset(condition, valuesets[k]) for k in ("bipolar", "personality_labile", "psychosis",
                                                                        "pdd")))  # fmt: skip
    return condition.filter(listed & condition.onset_day.notnull() & (condition.onset_day <= by)).select(
        "patient_id"
    )


def _counted_scores(observation: Table) -> Table:
    found = observation.filter(observation.status.isin(COUNTED) & observation.value_int.notnull()
                               & observation.effective_day.notnull())  # fmt: skip
    return found.select("observation_id", "patient_id", "system", "code", "effective_ts", "effective_day",
                        "issued_ts", "value_int").distinct(on="observation_id", keep="first")  # fmt: skip


def _followed_up(tables: Mapping[str, Table], window: Table, screens: Table,
                 valuesets: Mapping[str, ValueSet]) -> Table:  # fmt: skip
    """The units (a patient, or a delivery) of `window` (patient_id, unit, anchor_day, anchor_ts, anchor_brief,
    until) with a follow-up from the anchor to `until`: a behavioral-health visit, an outpatient visit while a
    behavioral-health diagnosis is active, an antidepressant dispensed (NCQA's reading; an order stands in only for a
    patient the EHR exports no dispensing for),
    or a negative full-length screen later the same day as a positive brief one. One column: `unit`."""
    condition, encounter, medication = tables["condition"], tables["encounter"], tables["medication_request"]
    bh_visits = encounter.filter((encounter.status == "finished")
                                 & in_valueset(encounter, valuesets["hedis_bh_encounter"]))  # fmt: skip
    visits = encounter.filter((encounter.status == "finished") & (in_valueset(encounter, valuesets["office_visit"])
                                                                  | in_valueset(encounter, valuesets["hedis_bh_encounter"])))  # fmt: skip
    diagnosed = condition.filter(in_valueset(condition, valuesets["mental_health_diagnosis"])
                                 & (condition.clinical_status == "active") & condition.onset_day.notnull()
                                 ).select("patient_id", "onset_day")  # fmt: skip
    by_bh = window.join(bh_visits.select("patient_id", "start_day"), "patient_id").filter(
        _.start_day.between(_.anchor_day, _.until)).select("unit")  # fmt: skip
    by_visit = window.join(visits.select("patient_id", "start_day"), "patient_id").filter(
        _.start_day.between(_.anchor_day, _.until)).join(diagnosed, "patient_id").filter(
        _.onset_day <= _.start_day).select("unit")  # fmt: skip
    antidepressants = valueset(valuesets, OID.ADULT_DEPRESSION_MEDICATIONS)  # the adolescent set is within it
    dispense = tables["medication_dispense"]
    dispensed = dispense.filter(in_valueset(dispense, antidepressants) & (dispense.status == "completed")).select(
        "patient_id", drug_day=_.handed_over_day)  # fmt: skip
    ordered = medication.filter(in_valueset(medication, antidepressants)
                                & medication.status.isin(("active", "completed"))).select(
        "patient_id", drug_day=_.authored_day).anti_join(dispense.select("patient_id"), "patient_id")  # fmt: skip
    by_drug = window.join(ibis.union(dispensed, ordered), "patient_id").filter(
        _.drug_day.between(_.anchor_day, _.until)).select("unit")  # fmt: skip
    negatives = screens.filter(~screens.positive & ~screens.brief).select(
        "patient_id", neg_day=_.effective_day, neg_ts=_.effective_ts)  # fmt: skip
    by_same_day = window.filter(window.anchor_brief).join(negatives, "patient_id").filter(
        (_.neg_day == _.anchor_day) & (_.neg_ts > _.anchor_ts)).select("unit")  # fmt: skip
    return ibis.union(by_bh, by_visit, by_drug, by_same_day).distinct().mutate(followed_up=ibis.literal(True))


def dsf(tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS,
        params: HedisParams = PARAMS) -> Table:  # fmt: skip
    """DSF-E: screened with an age-appropriate instrument from 1 January to 1 December; of those with a positive
    screen, followed up from the first positive to `follow_up_days` after it. Follow-up is a behavioral-health
    visit, an outpatient visit while a behavioral-health diagnosis is active, an antidepressant dispensed (an order
    stands in only where the EHR exports no dispensing for the patient), or a negative full-length screen later the same day as a positive
    brief one."""
    condition = tables["condition"]
    eligible = _eligible(tables, period, params)
    bipolar = condition.filter(in_valueset(condition, valuesets["bipolar"]) & condition.onset_day.notnull())
    last_year = date(period.year - 1, 12, 31)
    bipolar = bipolar.filter(bipolar.onset_day <= last_year) if params.dsf_bipolar_lookback == "any" else \
        bipolar.filter(bipolar.onset_day.between(date(period.year - 1, 1, 1), last_year))  # fmt: skip
    depression = condition.filter((in_valueset(condition, valuesets["major_depression"])
                                   | in_valueset(condition, valuesets["dysthymia"]))
                                  & condition.onset_day.between(date(period.year - 1, 1, 1), last_year))  # fmt: skip
    excluded = ibis.union(bipolar.select("patient_id"), depression.select("patient_id"),
                          _died_or_hospice(tables, period.start, period.end, valuesets)).distinct()  # fmt: skip
    screens = _screens(tables, eligible.select("patient_id", "age"), params)
    screens = screens.filter(screens.effective_day.between(_day(period.year, params.dsf_screen_from),
                                                           _day(period.year, params.dsf_screen_to)))  # fmt: skip
    screened = screens.select("patient_id").distinct().mutate(screened=ibis.literal(True))
    first = ranked(screens.filter(screens.positive), "patient_id", last=False).select(
        "patient_id", anchor_day=_.effective_day, anchor_ts=_.effective_ts, anchor_brief=_.brief)  # fmt: skip
    window = first.mutate(
        until=_.anchor_day + ibis.interval(days=params.dsf_follow_up_days), unit=_.patient_id
    )
    followed = _followed_up(tables, window, screens, valuesets).rename(patient_id="unit")
    result = eligible.left_join(screened, "patient_id").drop("patient_id_right").left_join(
        first.select("patient_id", "anchor_day"), "patient_id").drop("patient_id_right").left_join(
        followed, "patient_id").drop("patient_id_right").left_join(
        excluded.mutate(excluded=ibis.literal(True)), "patient_id").drop("patient_id_right")  # fmt: skip
    out = result.excluded.fill_null(False)
    return result.select(
        "patient_id", "age", "anchor_day", "visit_day",
        stratum=_stratum(result.age, params.dsf_strata),
        initial_population=ibis.literal(True), denominator=ibis.literal(True), excluded=out,
        screened=(~out) & result.screened.fill_null(False),
        positive=(~out) & result.anchor_day.notnull(),
        followed_up=(~out) & result.anchor_day.notnull() & result.followed_up.fill_null(False),
    )  # fmt: skip


def drr(tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS,
        params: HedisParams = PARAMS) -> Table:  # fmt: skip
    """DRR-E: from the first elevated PHQ-9 (> 9) in the intake period while a depression diagnosis is active
    (the index episode start, IESD), a follow-up PHQ-9 in the follow-up days; remission when the last there is
    below 5; response when it is at most half the IESD score."""
    condition, patient = tables["condition"], tables["patient"]
    intake_from, intake_to = (
        _day(period.year - 1, params.drr_intake_from),
        _day(period.year, params.drr_intake_to),
    )
    phq = _counted_scores(tables["observation"])
    phq = phq.filter(in_valueset(phq, valuesets["phq9_total"]))
    diagnosed = condition.filter((in_valueset(condition, valuesets["major_depression"])
                                  | in_valueset(condition, valuesets["dysthymia"]))
                                 & (condition.clinical_status == "active") & condition.onset_day.notnull()
                                 ).select("patient_id", "onset_day")  # fmt: skip
    elevated = phq.filter((phq.value_int > 9) & phq.effective_day.between(intake_from, intake_to)).join(
        diagnosed, "patient_id").filter(_.onset_day <= _.effective_day).select(
        "observation_id", "patient_id", "effective_ts", "effective_day", "issued_ts", "value_int").distinct()  # fmt: skip
    index = ranked(elevated, "patient_id", last=False).select("patient_id", iesd_day=_.effective_day,
                                                               iesd_score=_.value_int)  # fmt: skip
    low, high = params.drr_follow_up
    people = (
        index.join(patient, "patient_id").mutate(age=age_at(_.birth_date, _.iesd_day)).filter(_.age >= 12)
    )
    people = people.mutate(
        opens=_.iesd_day + ibis.interval(days=low), closes=_.iesd_day + ibis.interval(days=high)
    )
    later = phq.join(people.select("patient_id", "opens", "closes"), "patient_id").filter(
        _.effective_day.between(_.opens, _.closes)).select(
        "observation_id", "patient_id", "effective_ts", "issued_ts", "effective_day", "value_int")  # fmt: skip
    last = ranked(later, "patient_id", last=True).select("patient_id", last_day=_.effective_day,
                                                          last_score=_.value_int)  # fmt: skip
    mental = _mental_health(condition, period.end, valuesets)
    excluded = ibis.union(mental, _died_or_hospice(tables, intake_from, period.end, valuesets)).distinct()
    result = people.left_join(last, "patient_id").drop("patient_id_right").left_join(
        excluded.mutate(excluded=ibis.literal(True)), "patient_id").drop("patient_id_right")  # fmt: skip
    out = result.excluded.fill_null(False)
    measured = (~out) & result.last_score.notnull()
    return result.select(
        "patient_id", "age", "iesd_day", "iesd_score", "last_day", "last_score",
        stratum=_stratum(result.age, params.drr_strata),
        initial_population=ibis.literal(True), denominator=ibis.literal(True), excluded=out,
        followed=measured, remission=measured & (result.last_score < 5),
        response=measured & (result.last_score * 2 <= result.iesd_score),
    )  # fmt: skip


def dms(tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS,
        params: HedisParams = PARAMS) -> Table:  # fmt: skip
    """DMS-E as a registry process metric: one row per patient and assessment period in which they had a
    depression diagnosis and an office visit; monitored when a PHQ-9 total falls in the same period."""
    condition, encounter, patient = tables["condition"], tables["encounter"], tables["patient"]
    periods = ibis.memtable([{"period": f"{a}..{b}", "p_start": _day(period.year, a), "p_end": _day(period.year, b)}
                             for a, b in params.dms_periods])  # fmt: skip
    diagnosed = condition.filter((in_valueset(condition, valuesets["major_depression"])
                                  | in_valueset(condition, valuesets["dysthymia"]))
                                 & (condition.clinical_status == "active") & condition.onset_day.notnull()
                                 ).select("patient_id", "onset_day")  # fmt: skip
    visits = encounter.filter((encounter.status == "finished") & in_valueset(encounter, valuesets["office_visit"])
                              ).select("patient_id", "start_day").distinct()  # fmt: skip
    in_period = visits.cross_join(periods).filter(_.start_day.between(_.p_start, _.p_end)).join(
        diagnosed, "patient_id").filter(_.onset_day <= _.start_day).select("patient_id", "period", "p_start",
                                                                          "p_end").distinct()  # fmt: skip
    people = in_period.join(patient.select("patient_id", "birth_date"), "patient_id").mutate(
        age=age_at(_.birth_date, _.p_start)).filter(_.age >= 12)  # fmt: skip
    phq = _counted_scores(tables["observation"])
    phq = phq.filter(in_valueset(phq, valuesets["phq9_total"])).select("patient_id", "effective_day")
    monitored = people.join(phq, "patient_id").filter(_.effective_day.between(_.p_start, _.p_end)).select(
        "patient_id", "period").distinct().mutate(monitored=ibis.literal(True))  # fmt: skip
    mental = _mental_health(condition, period.end, valuesets)
    excluded = ibis.union(mental, _died_or_hospice(tables, period.start, period.end, valuesets)).distinct()
    result = people.left_join(monitored, ["patient_id", "period"]).drop("patient_id_right", "period_right").left_join(
        excluded.mutate(excluded=ibis.literal(True)), "patient_id").drop("patient_id_right")  # fmt: skip
    out = result.excluded.fill_null(False)
    return result.select(
        "patient_id", "period", "age", "p_start",
        stratum=_stratum(result.age, params.dms_strata),
        initial_population=ibis.literal(True), denominator=ibis.literal(True), excluded=out,
        monitored=(~out) & result.monitored.fill_null(False),
    )  # fmt: skip


def _screens(tables: Mapping[str, Table], people: Table, params: HedisParams) -> Table:
    """Age-appropriate instrument results (`people`: patient_id, age) with whether each is positive and brief."""
    instruments = ibis.memtable([{"code": i.loinc, "positive_at": i.positive_at, "min_age": i.min_age,
                                  "max_age": i.max_age if i.max_age is not None else 200, "brief": i.brief}
                                 for i in params.instruments])  # fmt: skip
    scores = _counted_scores(tables["observation"])
    scores = scores.filter(scores.system == "http://loinc.org")
    found = (
        scores.join(instruments, "code")
        .join(people, "patient_id")
        .filter(_.age.between(_.min_age, _.max_age))
    )
    return found.mutate(positive=_.value_int >= _.positive_at).select(
        "observation_id", "patient_id", "effective_ts", "effective_day", "issued_ts", "positive", "brief")  # fmt: skip


def pds(tables: Mapping[str, Table], period: Period, valuesets: Mapping[str, ValueSet] = VALUESETS,
        params: HedisParams = PARAMS) -> Table:  # fmt: skip
    """PDS-E: per delivery in the window, screened from `screen_days[0]` to `screen_days[1]` after it; of the
    deliveries with a positive screen then, followed up from the first positive to `follow_up_days` after it."""
    procedure, encounter, patient = tables["procedure"], tables["encounter"], tables["patient"]
    opens, closes = _day(period.year - 1, params.pds_delivery_from), _day(period.year, params.pds_delivery_to)
    births = ibis.union(
        procedure.filter(in_valueset(procedure, valuesets["delivery"]) & (procedure.status == "completed")).select(
            "patient_id", delivery_day=_.performed_day),
        encounter.filter(in_valueset(encounter, valuesets["delivery"]) & (encounter.status == "finished")).select(
            "patient_id", delivery_day=_.end_day.fill_null(_.start_day)),
    ).filter(_.delivery_day.between(opens, closes)).distinct()  # fmt: skip
    deliveries = births.join(patient.select("patient_id", "birth_date"), "patient_id").mutate(
        age=age_at(_.birth_date, _.delivery_day), unit=_.patient_id.concat("|", _.delivery_day.cast("string")))  # fmt: skip
    low, high = params.pds_screen_days
    screens = _screens(
        tables, deliveries.select("patient_id", "age").distinct(on="patient_id", keep="first"), params
    )
    in_window = deliveries.select("unit", "patient_id", "delivery_day").join(screens, "patient_id").filter(
        _.effective_day.between(_.delivery_day + ibis.interval(days=low), _.delivery_day + ibis.interval(days=high)))  # fmt: skip
    screened = in_window.select("unit").distinct().mutate(screened=ibis.literal(True))
    positives = in_window.filter(in_window.positive).mutate(group=_.unit)
    first = ranked(positives.select("observation_id", "unit", "patient_id", "effective_ts", "effective_day",
                                    "issued_ts", "brief", "group"), "group", last=False)  # fmt: skip
    window = first.select("unit", "patient_id", anchor_day=_.effective_day, anchor_ts=_.effective_ts,
                          anchor_brief=_.brief).mutate(until=_.anchor_day + ibis.interval(days=params.pds_follow_up_days))  # fmt: skip
    followed = _followed_up(tables, window, screens, valuesets)
    excluded = deliveries.select("unit", "patient_id").join(
        _died_or_hospice(tables, opens, period.end, valuesets), "patient_id").select("unit").distinct()  # fmt: skip
    result = deliveries.left_join(screened, "unit").drop("unit_right").left_join(
        window.select("unit", "anchor_day"), "unit").drop("unit_right").left_join(followed, "unit").drop(
        "unit_right").left_join(excluded.mutate(excluded=ibis.literal(True)), "unit").drop("unit_right")  # fmt: skip
    out = result.excluded.fill_null(False)
    return result.select(
        "patient_id", "unit", "delivery_day", "age", "anchor_day",
        stratum=ibis.literal("all"), initial_population=ibis.literal(True), denominator=ibis.literal(True),
        excluded=out, screened=(~out) & result.screened.fill_null(False),
        positive=(~out) & result.anchor_day.notnull(),
        followed_up=(~out) & result.anchor_day.notnull() & result.followed_up.fill_null(False),
    )  # fmt: skip

"""Summaries and MeasureReports: counts and the rate (numerator over denominator less exclusions and exceptions),
strata, months, registry groups, a rate over a sub-population (DSF-E's follow-up), patient-periods counted once
per patient in the lists; summary and subject-list MeasureReports and their Lists parse, dump and re-parse with the
R4B models."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fhir.resources.R4B.list import List as ListResource
from fhir.resources.R4B.measurereport import MeasureReport

from fhir_mappings.measures.logic import Period
from fhir_mappings.measures.report import MEASURES, measure_report, subject_list, summarise

ISS = "https://ehr.example.org/fhir"
ROWS = [
    {
        "patient_id": "a",
        "stratum": "18+",
        "denominator": True,
        "numerator": True,
        "visit_day": date(2026, 3, 2),
    },
    {
        "patient_id": "b",
        "stratum": "18+",
        "denominator": True,
        "excluded": True,
        "visit_day": date(2026, 3, 9),
    },
    {
        "patient_id": "c",
        "stratum": "12-17",
        "denominator": True,
        "exception": True,
        "visit_day": date(2026, 4, 1),
    },
    {"patient_id": "d", "stratum": "12-17", "denominator": True, "visit_day": date(2026, 4, 20)},
    {"patient_id": "e", "stratum": "18+", "denominator": True, "numerator": True, "visit_day": None},
]


def test_counts_rate_strata_months_and_groups() -> None:
    summary = summarise(MEASURES["cms2"], Period(2026), ROWS,
                        groups={"program": {"a": "CoCM", "d": "CoCM"}, "clinic": {"a": "Eastside"}})  # fmt: skip
    t = summary.total
    assert (t.initial_population, t.denominator, t.exclusions, t.exceptions, t.numerator) == (5, 5, 1, 1, 2)
    assert t.rate == round(2 / 3, 4)
    assert {k: c.numerator for k, c in summary.strata.items()} == {"12-17": 0, "18+": 2}
    assert {k: c.denominator for k, c in summary.by_month.items()} == {
        "2026-03": 2,
        "2026-04": 2,
    }  # e has no day
    assert {k: c.denominator for k, c in summary.by_group["program"].items()} == {
        "CoCM": 2,
        "not enrolled": 3,
    }
    assert summary.subjects["gap"] == ["d"] and summary.subjects["denominator-exception"] == ["c"]


def test_a_rate_over_a_sub_population_and_periods_listed_once() -> None:
    rows = [{"patient_id": "a", "denominator": True, "positive": True, "followed_up": True},
            {"patient_id": "b", "denominator": True, "positive": False},
            {"patient_id": "c", "denominator": True, "positive": True}]  # fmt: skip
    follow_up = summarise(MEASURES["dsf-follow-up"], Period(2026), rows)
    assert (follow_up.total.denominator, follow_up.total.numerator) == (2, 1)
    periods = [{"patient_id": "a", "denominator": True, "monitored": True, "p_start": date(2026, 1, 1)},
               {"patient_id": "a", "denominator": True, "monitored": True, "p_start": date(2026, 5, 1)}]  # fmt: skip
    monitoring = summarise(MEASURES["dms"], Period(2026), periods)
    assert monitoring.total.denominator == 2 and monitoring.subjects["numerator"] == ["a"]


def test_reports_and_lists_round_trip_through_the_r4b_models() -> None:
    summary = summarise(
        MEASURES["cms2"], Period(2026), ROWS, ["Encounter to Screen for Depression (partial)"]
    )
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    lists = {"numerator": "List/n"}
    for resource, model in ((measure_report(summary, ISS, now), MeasureReport),
                            (measure_report(summary, ISS, now, subject_lists=lists), MeasureReport),
                            (subject_list(summary, "numerator", ISS, now), ListResource)):  # fmt: skip
        parsed = model.model_validate(resource)
        again = model.model_validate_json(parsed.model_dump_json())
        assert again.model_dump(exclude_none=True) == parsed.model_dump(exclude_none=True)
    report = measure_report(summary, ISS, now)
    codes = [p["code"]["coding"][0]["code"] for p in report["group"][0]["population"]]
    assert codes == ["initial-population", "denominator", "denominator-exclusion", "denominator-exception",
                     "numerator"]  # fmt: skip
    assert report["group"][0]["measureScore"]["value"] == round(2 / 3, 4)
    assert report["extension"][0]["valueString"] == "eCQM"
    assert subject_list(summary, "numerator", ISS, now)["entry"][0]["item"]["identifier"] == {
        "system": ISS, "value": "a"}  # fmt: skip


def test_hedis_style_measures_never_say_hedis_rate() -> None:
    for measure in MEASURES.values():
        if measure.key.startswith(("dsf", "drr", "dms")):
            assert measure.kind == "HEDIS-style (not certified)"
        assert "HEDIS rate" not in measure.title + measure.note

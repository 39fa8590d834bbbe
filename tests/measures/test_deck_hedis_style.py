"""The HEDIS-style (not certified) measures' deck, from the public descriptions in measures.md §3–§5 with the
parameters in `hedis_style.json`: the screening window's last day, age-appropriate instruments, a positive brief
screen answered by a negative full-length one the same day, the 30-day follow-up boundary, the exclusions, the
DRR-E intake and follow-up days, DMS-E's assessment periods. One run per engine; DuckDB and Spark must agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.measures.hedis_style import dms, drr, dsf, pds
from fhir_mappings.measures.logic import Period
from fhir_mappings.measures.valuesets import VALUESETS, ValueSet
from smartapp.measures.columnar import ParquetTables
from smartapp.measures.engines import ENGINES, connect, tables, to_arrow

from .deck import CPT, condition, dispense, encounter, patient, prescription, procedure, score

PERIOD = Period(2026)
ADULT = "1980-01-01"
T = "T10:00:00-06:00"


def _dsf(
    pid: str, *rest: dict[str, Any], born: str = ADULT, visit: str | None = "2026-03-01"
) -> list[dict[str, Any]]:
    found = [patient(pid, born), *rest]
    if visit:
        found.append(encounter(f"{pid}-v", pid, visit + T))
    return found


DSF_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    "dsf-negative-phq9": (
        _dsf("dsf-negative-phq9", score("dsf-negative-phq9-s", "dsf-negative-phq9", "2026-03-01" + T, 4)),
        {"screened": True, "positive": False},
    ),  # fmt: skip
    "dsf-screen-on-1-december": (
        _dsf(
            "dsf-screen-on-1-december",
            score("dsf-screen-on-1-december-s", "dsf-screen-on-1-december", "2026-12-01" + T, 4),
        ),
        {"screened": True},
    ),
    "dsf-screen-on-2-december": (
        _dsf(
            "dsf-screen-on-2-december",
            score("dsf-screen-on-2-december-s", "dsf-screen-on-2-december", "2026-12-02" + T, 14),
        ),
        {"screened": False, "positive": False},
    ),
    "dsf-bh-visit-on-day-30": (
        _dsf(
            "dsf-bh-visit-on-day-30",
            score("dsf-bh-visit-on-day-30-s", "dsf-bh-visit-on-day-30", "2026-03-01" + T, 14),
            encounter(
                "dsf-bh-visit-on-day-30-f", "dsf-bh-visit-on-day-30", "2026-03-31" + T, code=(CPT, "90834")
            ),
        ),
        {"positive": True, "followed_up": True},
    ),
    "dsf-bh-visit-on-day-31": (
        _dsf(
            "dsf-bh-visit-on-day-31",
            score("dsf-bh-visit-on-day-31-s", "dsf-bh-visit-on-day-31", "2026-03-01" + T, 14),
            encounter(
                "dsf-bh-visit-on-day-31-f", "dsf-bh-visit-on-day-31", "2026-04-01" + T, code=(CPT, "90834")
            ),
        ),
        {"positive": True, "followed_up": False},
    ),
    "dsf-cocm-visit": (
        _dsf(
            "dsf-cocm-visit",
            score("dsf-cocm-visit-s", "dsf-cocm-visit", "2026-03-01" + T, 14),
            encounter("dsf-cocm-visit-f", "dsf-cocm-visit", "2026-03-12" + T, code=(CPT, "99492")),
        ),
        {"followed_up": True},
    ),  # fmt: skip
    "dsf-office-visit-with-diagnosis": (
        _dsf(
            "dsf-office-visit-with-diagnosis",
            score(
                "dsf-office-visit-with-diagnosis-s", "dsf-office-visit-with-diagnosis", "2026-03-01" + T, 14
            ),
            encounter(
                "dsf-office-visit-with-diagnosis-f", "dsf-office-visit-with-diagnosis", "2026-03-20" + T
            ),
            condition(
                "dsf-office-visit-with-diagnosis-c", "dsf-office-visit-with-diagnosis", "F41.1", "2026-03-20"
            ),
        ),
        {"followed_up": True},
    ),
    # PHQ-2 positive, then a negative PHQ-9 ten minutes later the same day: follow-up by criterion 5.
    "dsf-brief-then-full-same-day": (
        _dsf(
            "dsf-brief-then-full-same-day",
            score(
                "dsf-brief-then-full-same-day-a",
                "dsf-brief-then-full-same-day",
                "2026-03-01T10:00:00-06:00",
                4,
                code="55758-7",
            ),
            score(
                "dsf-brief-then-full-same-day-b",
                "dsf-brief-then-full-same-day",
                "2026-03-01T10:10:00-06:00",
                6,
            ),
        ),
        {"positive": True, "followed_up": True},
    ),
    "dsf-brief-then-full-next-day": (
        _dsf(
            "dsf-brief-then-full-next-day",
            score(
                "dsf-brief-then-full-next-day-a",
                "dsf-brief-then-full-next-day",
                "2026-03-01T10:00:00-06:00",
                4,
                code="55758-7",
            ),
            score(
                "dsf-brief-then-full-next-day-b",
                "dsf-brief-then-full-next-day",
                "2026-03-02T10:10:00-06:00",
                6,
            ),
        ),
        {"positive": True, "followed_up": False},
    ),
    # 17 on 1 January: BDI-II is for adults only, so it is no screen.
    "dsf-17-with-an-adult-instrument": (
        _dsf(
            "dsf-17-with-an-adult-instrument",
            score(
                "dsf-17-with-an-adult-instrument-s",
                "dsf-17-with-an-adult-instrument",
                "2026-03-01" + T,
                5,
                code="89209-1",
            ),
            born="2008-06-01",
        ),
        {"screened": False, "stratum": "12-17"},
    ),
    "dsf-bipolar": (
        _dsf(
            "dsf-bipolar",
            condition("dsf-bipolar-c", "dsf-bipolar", "F31.9", "2020-01-01"),
            score("dsf-bipolar-s", "dsf-bipolar", "2026-03-01" + T, 4),
        ),
        {"excluded": True, "screened": False},
    ),  # fmt: skip
    "dsf-depression-began-last-year": (
        _dsf(
            "dsf-depression-began-last-year",
            condition(
                "dsf-depression-began-last-year-c", "dsf-depression-began-last-year", "F32.1", "2025-03-01"
            ),
        ),
        {"excluded": True},
    ),
    "dsf-no-visit-this-year": (
        _dsf(
            "dsf-no-visit-this-year",
            score("dsf-no-visit-this-year-s", "dsf-no-visit-this-year", "2026-03-01" + T, 4),
            visit=None,
        ),
        None,
    ),
    # An antidepressant dispensed is follow-up (NCQA names dispensing); an order stands in only for a patient the
    # EHR exports no MedicationDispense for.
    "dsf-antidepressant-ordered-no-dispensing": (
        _dsf(
            "dsf-antidepressant-ordered-no-dispensing",
            score(
                "dsf-antidepressant-ordered-no-dispensing-s",
                "dsf-antidepressant-ordered-no-dispensing",
                "2026-03-01" + T,
                14,
            ),
            prescription(
                "dsf-antidepressant-ordered-no-dispensing-m",
                "dsf-antidepressant-ordered-no-dispensing",
                "2026-03-05",
            ),
        ),
        {"positive": True, "followed_up": True},
    ),  # fmt: skip
    "dsf-antidepressant-dispensed": (
        _dsf(
            "dsf-antidepressant-dispensed",
            score("dsf-antidepressant-dispensed-s", "dsf-antidepressant-dispensed", "2026-03-01" + T, 14),
            dispense("dsf-antidepressant-dispensed-d", "dsf-antidepressant-dispensed", "2026-03-06" + T),
        ),
        {"positive": True, "followed_up": True},
    ),  # fmt: skip
    "dsf-ordered-dispensed-after-the-window": (
        _dsf(
            "dsf-ordered-dispensed-after-the-window",
            score(
                "dsf-ordered-dispensed-after-the-window-s",
                "dsf-ordered-dispensed-after-the-window",
                "2026-03-01" + T,
                14,
            ),
            prescription(
                "dsf-ordered-dispensed-after-the-window-m",
                "dsf-ordered-dispensed-after-the-window",
                "2026-03-05",
            ),
            dispense(
                "dsf-ordered-dispensed-after-the-window-d",
                "dsf-ordered-dispensed-after-the-window",
                "2026-05-01" + T,
            ),
        ),
        {"positive": True, "followed_up": False},
    ),  # fmt: skip
    "dsf-age-70": (_dsf("dsf-age-70", born="1955-05-05"), {"stratum": "65+", "screened": False}),
}


def _drr(
    pid: str, index: tuple[str, int], *later: tuple[str, int], onset: str = "2025-01-01"
) -> list[dict[str, Any]]:
    return [patient(pid, ADULT), condition(f"{pid}-c", pid, "F33.1", onset), score(f"{pid}-i", pid, index[0] + T,
                                                                                  index[1]),
            *(score(f"{pid}-f{n}", pid, day + T, value) for n, (day, value) in enumerate(later))]  # fmt: skip


# Index 2025-06-01: follow-up days 120–240 are 2025-09-29 .. 2026-01-27.
DRR_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    "drr-remission": (
        _drr("drr-remission", ("2025-06-01", 15), ("2025-11-01", 4)),
        {"followed": True, "remission": True, "response": True},
    ),  # fmt: skip
    "drr-response-7-of-15": (
        _drr("drr-response-7-of-15", ("2025-06-01", 15), ("2025-11-01", 7)),
        {"remission": False, "response": True},
    ),  # fmt: skip
    "drr-8-of-15": (_drr("drr-8-of-15", ("2025-06-01", 15), ("2025-11-01", 8)), {"response": False}),
    "drr-day-119": (_drr("drr-day-119", ("2025-06-01", 15), ("2025-09-28", 3)), {"followed": False}),
    "drr-day-120": (_drr("drr-day-120", ("2025-06-01", 15), ("2025-09-29", 3)), {"followed": True}),
    "drr-day-240": (_drr("drr-day-240", ("2025-06-01", 15), ("2026-01-27", 3)), {"followed": True}),
    "drr-day-241": (_drr("drr-day-241", ("2025-06-01", 15), ("2026-01-28", 3)), {"followed": False}),
    "drr-before-intake": (_drr("drr-before-intake", ("2025-04-30", 15)), None),
    "drr-score-9": (_drr("drr-score-9", ("2025-06-01", 9)), None),
    "drr-diagnosis-after-the-score": (
        _drr("drr-diagnosis-after-the-score", ("2025-06-01", 15), onset="2025-07-01"),
        None,
    ),  # fmt: skip
}

DMS_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, bool]]] = {
    # Visits in periods 1 and 2; a PHQ-9 only in period 1.
    "dms-one-of-two": (
        [
            patient("dms-one-of-two", ADULT),
            condition("dms-one-of-two-c", "dms-one-of-two", "F32.1", "2025-01-01"),
            encounter("dms-one-of-two-v1", "dms-one-of-two", "2026-02-01" + T),
            encounter("dms-one-of-two-v2", "dms-one-of-two", "2026-06-01" + T),
            score("dms-one-of-two-s", "dms-one-of-two", "2026-04-30" + T, 8),
        ],
        {"01-01..04-30": True, "05-01..08-31": False},
    ),  # fmt: skip
}


DELIVERY = ValueSet("delivery", "test", "Deliveries (the deck's own code)", "complete", "test deck",
                    (("http://snomed.info/sct", "236973005"),))  # fmt: skip


def _pds(pid: str, delivered: str, *rest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        patient(pid, "1994-04-04"),
        procedure(f"{pid}-d{delivered}", pid, delivered + T, code="236973005"),
        *rest,
    ]


# Delivered 2026-03-01: screening days 7–84 are 2026-03-08 .. 2026-05-24.
PDS_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    "pds-screened-positive-followed": (
        _pds(
            "pds-screened-positive-followed",
            "2026-03-01",
            score(
                "pds-screened-positive-followed-s",
                "pds-screened-positive-followed",
                "2026-03-20" + T,
                12,
                code="99046-5",
            ),
            encounter(
                "pds-screened-positive-followed-v",
                "pds-screened-positive-followed",
                "2026-04-10" + T,
                code=(CPT, "90834"),
            ),
        ),
        {"screened": True, "positive": True, "followed_up": True},
    ),
    "pds-day-6": (
        _pds(
            "pds-day-6", "2026-03-01", score("pds-day-6-s", "pds-day-6", "2026-03-07" + T, 4, code="99046-5")
        ),
        {"screened": False},
    ),  # fmt: skip
    "pds-day-84": (
        _pds(
            "pds-day-84",
            "2026-03-01",
            score("pds-day-84-s", "pds-day-84", "2026-05-24" + T, 4, code="99046-5"),
        ),
        {"screened": True},
    ),  # fmt: skip
    "pds-day-85": (
        _pds(
            "pds-day-85",
            "2026-03-01",
            score("pds-day-85-s", "pds-day-85", "2026-05-25" + T, 4, code="99046-5"),
        ),
        {"screened": False},
    ),  # fmt: skip
    "pds-positive-not-followed": (
        _pds(
            "pds-positive-not-followed",
            "2026-03-01",
            score(
                "pds-positive-not-followed-s",
                "pds-positive-not-followed",
                "2026-03-20" + T,
                14,
                code="99046-5",
            ),
        ),
        {"positive": True, "followed_up": False},
    ),
    "pds-delivered-after-the-window": (_pds("pds-delivered-after-the-window", "2026-09-08"), None),
    "pds-two-births": (
        _pds(
            "pds-two-births",
            "2025-10-01",
            procedure("pds-two-births-d2", "pds-two-births", "2026-08-01" + T, code="236973005"),
        ),
        {},
    ),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("hedis-deck")
    with ParquetTables(found, ZoneInfo("America/Chicago")) as writer:
        for resources, _ in (
            *DSF_CASES.values(),
            *DRR_CASES.values(),
            *DMS_CASES.values(),
            *PDS_CASES.values(),
        ):
            writer.add(resources)
    return found


@pytest.fixture(scope="module", params=ENGINES)
def results(request: pytest.FixtureRequest, folder: Path) -> Iterator[dict[str, list[dict[str, Any]]]]:
    deck = tables(connect(request.param), folder)
    found = {name: to_arrow(measure(deck, PERIOD)).to_pylist() for name, measure in
             (("dsf", dsf), ("drr", drr), ("dms", dms))}  # fmt: skip
    found["pds"] = to_arrow(pds(deck, PERIOD, {**VALUESETS, "delivery": DELIVERY})).to_pylist()
    yield found


def _check(rows: list[dict[str, Any]], case: str, expected: dict[str, Any] | None) -> None:
    found = {r["patient_id"]: r for r in rows}
    if expected is None:
        assert case not in found, found.get(case)
        return
    assert case in found, f"{case} is not in the population"
    for key, value in expected.items():
        assert found[case][key] == value, (case, key, found[case])


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in DSF_CASES.items()])
def test_dsf_style(
    results: dict[str, list[dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["dsf"], case, expected)


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in DRR_CASES.items()])
def test_drr_style(
    results: dict[str, list[dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["drr"], case, expected)


def test_dms_style_counts_each_assessment_period(results: dict[str, list[dict[str, Any]]]) -> None:
    for case, (_, periods) in DMS_CASES.items():
        rows = {r["period"]: r["monitored"] for r in results["dms"] if r["patient_id"] == case}
        assert rows == periods


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in PDS_CASES.items()])
def test_pds_style(
    results: dict[str, list[dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["pds"], case, expected)


def test_pds_counts_each_delivery_and_ships_no_delivery_codes(
    results: dict[str, list[dict[str, Any]]],
) -> None:
    assert VALUESETS["delivery"].status == "not-expanded" and not VALUESETS["delivery"].codes
    assert len([r for r in results["pds"] if r["patient_id"] == "pds-two-births"]) == 2

"""The measure test deck, built from the specifications' text (measures.md §1, §2, §8): every window boundary, each
exclusion and exception, age on the boundary, several scores on a day, a negative after a positive, the evaluation
time zone. One patient per case; the deck is flattened to Parquet once and each measure runs once per engine, so
DuckDB and Spark answer the same cases and must agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.measures.logic import Period, cms2, cms159
from smartapp.measures.columnar import ParquetTables
from smartapp.measures.engines import ENGINES, connect, tables, to_arrow

from .deck import (
    SCT,
    condition,
    declined,
    encounter,
    patient,
    prescription,
    procedure,
    referral,
    score,
    screen,
)

ZONE = ZoneInfo("America/Chicago")
PERIOD = Period(2026)
ADULT = "1980-01-01"


def _cms159_case(pid: str, *, born: str = ADULT, visit: str = "2025-02-25T10:00:00-06:00", visit_code: str = "99213",
                 dx: str = "F32.9", onset: str | None = "2024-01-01", index: tuple[str, int] = (
                     "2025-02-20T10:00:00-06:00", 14), later: tuple[tuple[str, int], ...] = (),
                 extra: tuple[dict[str, Any], ...] = (), deceased: str | bool | None = None) -> list[dict[str, Any]]:  # fmt: skip
    resources = [patient(pid, born, deceased), encounter(f"{pid}-v", pid, visit, code=("http://www.ama-assn.org/go/cpt",
                 visit_code)), condition(f"{pid}-dx", pid, dx, onset), score(f"{pid}-i", pid, *index)]  # fmt: skip
    resources += [score(f"{pid}-f{n}", pid, when, value) for n, (when, value) in enumerate(later)]
    return resources + list(extra)


REMISSION = (("2026-02-19T10:00:00-06:00", 3),)
# Index 2025-02-20: the anniversary is 2026-02-20, the assessment window 2025-12-22 .. 2026-04-21.
CMS159_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    # pid: (resources, expected populations; None = not in the initial population)
    "c159-remission": (
        _cms159_case("c159-remission", later=REMISSION),
        {"numerator": True, "response": True},
    ),
    "c159-score-9-no-index": (
        _cms159_case("c159-score-9-no-index", index=("2025-02-20T10:00:00-06:00", 9), later=REMISSION),
        None,
    ),  # fmt: skip
    "c159-score-10-index": (
        _cms159_case("c159-score-10-index", index=("2025-02-20T10:00:00-06:00", 10), later=REMISSION),
        {"numerator": True},
    ),  # fmt: skip
    "c159-7-days-before": (_cms159_case("c159-7-days-before", index=("2025-02-18T08:00:00-06:00", 14)), {}),
    "c159-8-days-before": (_cms159_case("c159-8-days-before", index=("2025-02-17T08:00:00-06:00", 14)), None),
    # 23:30 -06:00 on 17 February is 18 February in UTC, but CQL reads days in the time's own offset (no offset
    # normalisation at day precision, cql-execution DateTime.sameOrBefore): 17 February, 8 days before the visit.
    "c159-time-zone": (_cms159_case("c159-time-zone", index=("2025-02-17T23:30:00-06:00", 14)), None),
    # 00:30 +09:00 on 18 February is still 17 February in Chicago (and in UTC), where the measure is evaluated; the
    # official engine reads it on 18 February, its own day: 7 days before the visit, so the index is found.
    "c159-own-offset-day": (_cms159_case("c159-own-offset-day", index=("2025-02-18T00:30:00+09:00", 14)), {}),
    "c159-visit-on-dip-end": (
        _cms159_case(
            "c159-visit-on-dip-end",
            visit="2025-10-31T10:00:00-05:00",
            index=("2025-10-30T10:00:00-05:00", 14),
        ),
        {},
    ),  # fmt: skip
    "c159-visit-after-dip": (
        _cms159_case(
            "c159-visit-after-dip", visit="2025-11-01T10:00:00-05:00", index=("2025-10-31T10:00:00-05:00", 14)
        ),
        None,
    ),  # fmt: skip
    "c159-f32a-only": (_cms159_case("c159-f32a-only", dx="F32.A"), None),
    "c159-cocm-contact-only": (_cms159_case("c159-cocm-contact-only", visit_code="99492"), None),
    # An active diagnosis without onset: QICoreCommon's prevalenceInterval() is closed and so unbounded below; it
    # overlaps the visit and indexes (fqm-execution 1.8.6 agrees; tests/measures/test_cql_paths.py).
    "c159-diagnosis-without-onset": (
        _cms159_case("c159-diagnosis-without-onset", onset=None),
        {"initial_population": True, "denominator": True},
    ),  # fmt: skip
    "c159-age-11-at-index": (_cms159_case("c159-age-11-at-index", born="2014-01-01"), None),
    "c159-teen": (
        _cms159_case("c159-teen", born="2010-06-01", later=REMISSION),
        {"stratum": "12-17", "numerator": True},
    ),  # fmt: skip
    "c159-map-day-minus-60": (
        _cms159_case("c159-map-day-minus-60", later=(("2025-12-22T09:00:00-06:00", 4),)),
        {"numerator": True},
    ),  # fmt: skip
    "c159-map-day-minus-61": (
        _cms159_case("c159-map-day-minus-61", later=(("2025-12-21T09:00:00-06:00", 4),)),
        {"numerator": False, "last_score": None},
    ),  # fmt: skip
    "c159-map-day-plus-60": (
        _cms159_case("c159-map-day-plus-60", later=(("2026-04-21T09:00:00-05:00", 4),)),
        {"numerator": True},
    ),  # fmt: skip
    "c159-map-day-plus-61": (
        _cms159_case("c159-map-day-plus-61", later=(("2026-04-22T09:00:00-05:00", 4),)),
        {"numerator": False},
    ),  # fmt: skip
    # The most recent score in the window decides: 3 then 6 is not remission (6 is still a 50 % response of 14).
    "c159-most-recent-decides": (
        _cms159_case(
            "c159-most-recent-decides",
            later=(("2026-01-10T09:00:00-06:00", 3), ("2026-03-10T09:00:00-06:00", 6)),
        ),
        {"numerator": False, "response": True},
    ),
    "c159-remission-needs-below-5": (
        _cms159_case("c159-remission-needs-below-5", later=(("2026-02-19T10:00:00-06:00", 5),)),
        {"numerator": False},
    ),
    "c159-response-7-of-15": (
        _cms159_case(
            "c159-response-7-of-15",
            index=("2025-02-20T10:00:00-06:00", 15),
            later=(("2026-02-19T10:00:00-06:00", 7),),
        ),
        {"response": True},
    ),  # fmt: skip
    "c159-response-8-of-15": (
        _cms159_case(
            "c159-response-8-of-15",
            index=("2025-02-20T10:00:00-06:00", 15),
            later=(("2026-02-19T10:00:00-06:00", 8),),
        ),
        {"response": False},
    ),  # fmt: skip
    # Two scores at the same moment: the later `issued` is the last (Tandem's tie rule).
    "c159-same-moment-tie": (
        _cms159_case(
            "c159-same-moment-tie",
            extra=(
                score(
                    "c159-same-moment-tie-a",
                    "c159-same-moment-tie",
                    "2026-02-19T10:00:00-06:00",
                    3,
                    issued="2026-02-19T10:05:00-06:00",
                ),
                score(
                    "c159-same-moment-tie-b",
                    "c159-same-moment-tie",
                    "2026-02-19T10:00:00-06:00",
                    12,
                    issued="2026-02-19T10:20:00-06:00",
                ),
            ),
        ),
        {"numerator": False, "last_score": 12},
    ),
    "c159-expired-in-window": (
        _cms159_case("c159-expired-in-window", later=REMISSION, deceased="2026-03-01"),
        {"excluded": True, "exclusion": "expired", "numerator": False},
    ),  # fmt: skip
    "c159-expired-after-window": (
        _cms159_case("c159-expired-after-window", later=REMISSION, deceased="2026-06-01"),
        {"excluded": False, "numerator": True},
    ),  # fmt: skip
    # "Patient Expired" compiles to `FHIRHelpers.ToValue(Patient.deceased) as DateTime` on or before the MAP end:
    # null for deceasedBoolean, so not expired (the deck had assumed the opposite before the ELM was read).
    "c159-deceased-without-date": (
        _cms159_case("c159-deceased-without-date", deceased=True),
        {"excluded": False, "exclusion": None},
    ),  # fmt: skip
    "c159-bipolar-after-index": (
        _cms159_case(
            "c159-bipolar-after-index",
            later=REMISSION,
            extra=(
                condition("c159-bipolar-after-index-b", "c159-bipolar-after-index", "F31.81", "2025-06-01"),
            ),
        ),
        {"excluded": True, "exclusion": "mental-health diagnosis"},
    ),
    "c159-palliative-care": (
        _cms159_case(
            "c159-palliative-care",
            extra=(condition("c159-palliative-care-z", "c159-palliative-care", "Z51.5", "2025-08-01"),),
        ),
        # The CQL keeps "Has Hospice Services" and "Has Palliative Care" apart; so does the reason shown.
        {"excluded": True, "exclusion": "palliative care"},
    ),
    # A window wholly before the period still counts (follow-up data is not filtered to the period).
    "c159-window-in-prior-year": (
        _cms159_case(
            "c159-window-in-prior-year",
            visit="2024-11-03T10:00:00-05:00",
            index=("2024-11-01T10:00:00-05:00", 16),
            later=(("2025-10-01T10:00:00-05:00", 2),),
        ),
        {"numerator": True},
    ),  # fmt: skip
}

VISIT = "2026-03-01T09:00:00-06:00"
VISIT_END = "2026-03-01T09:15:00-06:00"


def _cms2_case(
    pid: str, *rest: dict[str, Any], born: str = ADULT, status: str = "finished"
) -> list[dict[str, Any]]:
    return [
        patient(pid, born),
        encounter(f"{pid}-v", pid, VISIT, VISIT_END, (SCT, "10197000"), status),
        *rest,
    ]


CMS2_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any] | None]] = {
    "c2-negative": (
        _cms2_case("c2-negative", screen("c2-negative-s", "c2-negative", VISIT, False)),
        {"numerator": True},
    ),  # fmt: skip
    "c2-positive-no-follow-up": (
        _cms2_case(
            "c2-positive-no-follow-up",
            screen("c2-positive-no-follow-up-s", "c2-positive-no-follow-up", VISIT, True),
        ),
        {"numerator": False},
    ),
    "c2-referral-day-2": (
        _cms2_case(
            "c2-referral-day-2",
            screen("c2-referral-day-2-s", "c2-referral-day-2", VISIT, True),
            referral("c2-referral-day-2-r", "c2-referral-day-2", "2026-03-03"),
        ),
        {"numerator": True},
    ),  # fmt: skip
    "c2-referral-day-3": (
        _cms2_case(
            "c2-referral-day-3",
            screen("c2-referral-day-3-s", "c2-referral-day-3", VISIT, True),
            referral("c2-referral-day-3-r", "c2-referral-day-3", "2026-03-04"),
        ),
        {"numerator": False},
    ),  # fmt: skip
    "c2-antidepressant-same-day": (
        _cms2_case(
            "c2-antidepressant-same-day",
            screen("c2-antidepressant-same-day-s", "c2-antidepressant-same-day", VISIT, True),
            prescription(
                "c2-antidepressant-same-day-m", "c2-antidepressant-same-day", "2026-03-01", supply_days=30
            ),
        ),
        {"numerator": True},
    ),
    # CMS2 v0.4.001 "Follow Up Intervention for Positive Adult Depression Screening": the order's
    # medicationRequestPeriod() must overlap after the visit; with no supply and no bounds it is null (the deck
    # counted such an order before the CQL was read).
    "c2-antidepressant-without-supply": (
        _cms2_case(
            "c2-antidepressant-without-supply",
            screen("c2-antidepressant-without-supply-s", "c2-antidepressant-without-supply", VISIT, True),
            prescription(
                "c2-antidepressant-without-supply-m", "c2-antidepressant-without-supply", "2026-03-01"
            ),
        ),
        {"numerator": False},
    ),
    "c2-antidepressant-a-year-old": (
        _cms2_case(
            "c2-antidepressant-a-year-old",
            screen("c2-antidepressant-a-year-old-s", "c2-antidepressant-a-year-old", VISIT, True),
            prescription(
                "c2-antidepressant-a-year-old-m", "c2-antidepressant-a-year-old", "2025-03-01", supply_days=30
            ),
        ),
        {"numerator": False},
    ),
    "c2-procedure-during-visit": (
        _cms2_case(
            "c2-procedure-during-visit",
            screen("c2-procedure-during-visit-s", "c2-procedure-during-visit", VISIT, True),
            procedure(
                "c2-procedure-during-visit-p", "c2-procedure-during-visit", "2026-03-01T09:10:00-06:00"
            ),
        ),
        {"numerator": True},
    ),
    # "during the encounter" at full precision: a minute after its end is not follow-up under v0.4.001.
    "c2-procedure-a-minute-after": (
        _cms2_case(
            "c2-procedure-a-minute-after",
            screen("c2-procedure-a-minute-after-s", "c2-procedure-a-minute-after", VISIT, True),
            procedure(
                "c2-procedure-a-minute-after-p", "c2-procedure-a-minute-after", "2026-03-01T09:16:00-06:00"
            ),
        ),
        {"numerator": False},
    ),
    "c2-screen-14-days-before": (
        _cms2_case(
            "c2-screen-14-days-before",
            screen(
                "c2-screen-14-days-before-s", "c2-screen-14-days-before", "2026-02-15T09:00:00-06:00", False
            ),
        ),
        {"numerator": True},
    ),
    "c2-screen-15-days-before": (
        _cms2_case(
            "c2-screen-15-days-before",
            screen(
                "c2-screen-15-days-before-s", "c2-screen-15-days-before", "2026-02-14T09:00:00-06:00", False
            ),
        ),
        {"numerator": False},
    ),
    "c2-age-11-at-period-start": (_cms2_case("c2-age-11-at-period-start", born="2014-01-03"), None),
    "c2-16-with-the-adult-code": (
        _cms2_case(
            "c2-16-with-the-adult-code",
            screen("c2-16-with-the-adult-code-s", "c2-16-with-the-adult-code", VISIT, False),
            born="2009-06-01",
        ),
        {"numerator": False, "stratum": "12-17"},
    ),
    "c2-16-with-the-adolescent-code": (
        _cms2_case(
            "c2-16-with-the-adolescent-code",
            screen(
                "c2-16-with-the-adolescent-code-s",
                "c2-16-with-the-adolescent-code",
                VISIT,
                False,
                adult=False,
            ),
            born="2009-06-01",
        ),
        {"numerator": True},
    ),
    "c2-17-either-code": (
        _cms2_case(
            "c2-17-either-code",
            screen("c2-17-either-code-s", "c2-17-either-code", VISIT, False),
            born="2008-06-01",
        ),
        {"numerator": True},
    ),  # fmt: skip
    "c2-bipolar-on-problem-list": (
        _cms2_case(
            "c2-bipolar-on-problem-list",
            condition("c2-bipolar-on-problem-list-c", "c2-bipolar-on-problem-list", "F31.9", "2020-01-01"),
        ),
        {"excluded": True, "numerator": False},
    ),
    "c2-bipolar-in-remission": (
        _cms2_case(
            "c2-bipolar-in-remission",
            condition(
                "c2-bipolar-in-remission-c",
                "c2-bipolar-in-remission",
                "F31.71",
                "2020-01-01",
                status="remission",
            ),
        ),
        # Not active and no abatement date: QICoreCommon's prevalenceInterval() is null, so it never "starts before"
        # the visit (fqm-execution 1.8.6 agrees; with an abatement date it excludes: tests/measures/test_cql_paths.py).
        {"excluded": False},
    ),
    "c2-bipolar-encounter-diagnosis-only": (
        _cms2_case(
            "c2-bipolar-encounter-diagnosis-only",
            condition(
                "c2-bipolar-encounter-diagnosis-only-c",
                "c2-bipolar-encounter-diagnosis-only",
                "F31.9",
                "2020-01-01",
                category="encounter-diagnosis",
            ),
        ),
        {"excluded": False},
    ),
    "c2-positive-then-negative-same-day": (
        _cms2_case(
            "c2-positive-then-negative-same-day",
            screen(
                "c2-positive-then-negative-same-day-1",
                "c2-positive-then-negative-same-day",
                "2026-03-01T09:00:00-06:00",
                True,
            ),
            screen(
                "c2-positive-then-negative-same-day-2",
                "c2-positive-then-negative-same-day",
                "2026-03-01T09:10:00-06:00",
                False,
            ),
        ),
        {"numerator": True},
    ),
    "c2-declined": (
        _cms2_case("c2-declined", declined("c2-declined-d", "c2-declined", "2026-03-01T09:05:00-06:00")),
        {"numerator": False, "exception": True},
    ),  # fmt: skip
    # A refusal after a real screening a week earlier is not an exception.
    "c2-declined-after-a-screen": (
        _cms2_case(
            "c2-declined-after-a-screen",
            screen(
                "c2-declined-after-a-screen-s",
                "c2-declined-after-a-screen",
                "2026-02-22T09:00:00-06:00",
                True,
            ),
            declined(
                "c2-declined-after-a-screen-d", "c2-declined-after-a-screen", "2026-03-01T09:05:00-06:00"
            ),
        ),
        {"numerator": False, "exception": False},
    ),
    "c2-visit-not-finished": (_cms2_case("c2-visit-not-finished", status="in-progress"), None),
}


@pytest.fixture(scope="module")
def deck_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deck")
    with ParquetTables(folder, ZONE, batch_rows=7) as writer:  # small batches: several row groups per file
        for resources, _ in (*CMS159_CASES.values(), *CMS2_CASES.values()):
            writer.add(resources)
    return folder


@pytest.fixture(scope="module", params=ENGINES)
def results(
    request: pytest.FixtureRequest, deck_folder: Path
) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
    con = connect(request.param)
    deck = tables(con, deck_folder)
    yield {name: {row["patient_id"]: row for row in to_arrow(measure(deck, PERIOD)).to_pylist()}
           for name, measure in (("cms159", cms159), ("cms2", cms2))}  # fmt: skip


def _check(found: dict[str, dict[str, Any]], case: str, expected: dict[str, Any] | None) -> None:
    if expected is None:
        assert case not in found, found.get(case)
        return
    assert case in found, f"{case} is not in the initial population"
    row = found[case]
    for key, value in expected.items():
        assert row[key] == value, (case, key, row)


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in CMS159_CASES.items()])
def test_cms159(
    results: dict[str, dict[str, dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["cms159"], case, expected)


@pytest.mark.parametrize(("case", "expected"), [(k, v[1]) for k, v in CMS2_CASES.items()])
def test_cms2(
    results: dict[str, dict[str, dict[str, Any]]], case: str, expected: dict[str, Any] | None
) -> None:
    _check(results["cms2"], case, expected)


def test_no_other_patient_enters_either_measure(results: dict[str, dict[str, dict[str, Any]]]) -> None:
    assert set(results["cms159"]) <= set(CMS159_CASES) and set(results["cms2"]) <= set(CMS2_CASES)

"""Program outcomes from the registry, rule by rule: the 6- and 12-month windows, response (≥ 50 % drop) and
remission (< 5) on the last score in the window, windows not yet closed, the monthly PHQ-9 coverage, and the time
to response."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.measures.outcomes import Window, program_outcomes
from fhir_mappings.registry.resources import Enrolment
from fhir_mappings.screening.history import ScorePoint

ISS = "https://ehr.example.org/fhir"
START = date(2025, 6, 1)
TODAY = date(2026, 11, 25)


def _enrolment(pid: str, start: date = START, program: str = "cocm-depression") -> Enrolment:
    return Enrolment(f"cp-{pid}", ISS, pid, pid, program, "active-treatment", start)


def _points(*scores: tuple[int, int], series: str = "PHQ-9") -> list[ScorePoint]:
    """(days after enrolment, score)."""
    return [ScorePoint(series, datetime.combine(START + timedelta(days=d), datetime.min.time(), UTC), s, "Tandem", "x")
            for d, s in scores]  # fmt: skip


@pytest.mark.parametrize(
    ("scores", "measured", "response", "remission"),
    [
        (((0, 16), (183, 4)), 1, 1, 1),  # at 6 months: 4 is both
        (((0, 16), (183, 8)), 1, 1, 0),  # 8 is half of 16: a response, not remission
        (((0, 16), (183, 9)), 1, 0, 0),
        (((0, 16), (153, 4)), 1, 1, 1),  # 6 months is day 183; 30 days before it is the window's first day
        (((0, 16), (152, 4)), 0, 0, 0),  # a day earlier: not measured, a gap
        (((0, 16), (213, 4)), 1, 1, 1),  # the window's last day
        (((0, 16), (214, 4)), 0, 0, 0),
        (((0, 16), (170, 3), (190, 12)), 1, 0, 0),  # the last score in the window decides
    ],
)
def test_six_month_response_and_remission(scores: tuple[tuple[int, int], ...], measured: int, response: int,
                                          remission: int) -> None:  # fmt: skip
    found = program_outcomes([_enrolment("p1")], {PatientKey(ISS, "p1"): _points(*scores)}, TODAY, year=2026,
                             windows=(Window(6),), series=("PHQ-9",))  # fmt: skip
    outcome = found.outcomes[0]
    assert (outcome.eligible, outcome.measured, outcome.response, outcome.remission) == (1, measured, response,
                                                                                        remission)  # fmt: skip
    assert outcome.unmeasured == ([] if measured else [PatientKey(ISS, "p1")])


def test_a_window_not_yet_closed_and_a_patient_without_baseline_are_not_counted() -> None:
    recent = _enrolment("p2", TODAY - timedelta(days=100))
    no_baseline = _enrolment("p3")
    found = program_outcomes(
        [recent, no_baseline], {PatientKey(ISS, "p2"): _points((0, 15))}, TODAY, year=2026
    )
    assert all(o.eligible == 0 for o in found.outcomes)


def test_monthly_phq9_coverage_and_time_to_response() -> None:
    keys = {p: PatientKey(ISS, p) for p in ("a", "b")}
    scores = {keys["a"]: _points((0, 20), (240, 12), (260, 9)), keys["b"]: _points((0, 14))}
    found = program_outcomes([_enrolment("a"), _enrolment("b")], scores, date(2026, 3, 31), year=2026)
    # Day 240 after 2025-06-01 is 27 January 2026, day 260 is 16 February: one of two enrolled scored each month.
    assert found.monthly == [(date(2026, 1, 1), 2, 1), (date(2026, 2, 1), 2, 1), (date(2026, 3, 1), 2, 0)]
    assert found.responders == 1 and found.median_days_to_response == 260  # 9 is the first at most half of 20


def test_other_programs_and_a_caregivers_screens_do_not_count() -> None:
    caregiver = ScorePoint(
        "PHQ-9", datetime(2025, 12, 1, tzinfo=UTC), 2, "Tandem", "x", focus="RelatedPerson/m"
    )
    found = program_outcomes([_enrolment("p1")], {PatientKey(ISS, "p1"): [*_points((0, 16)), caregiver]}, TODAY,
                             year=2026, windows=(Window(6),), series=("PHQ-9",))  # fmt: skip
    assert found.outcomes[0].measured == 0


def test_smi_figures_are_over_the_patients_each_can_be_said_of() -> None:
    from fhir_mappings.measures.outcomes import smi_figures

    from ..fhir_mappings.test_smi_row import _rows

    figures = {f.label: (f.numerator, f.denominator) for f in smi_figures(_rows())}
    assert figures["On an antipsychotic: glucose or HbA1c in the last 12 months"] == (0, 0)  # nobody on one
    assert figures["Latest blood pressure below target"] == (1, 2)  # 118/70 yes, 150/95 no; one never read
    assert figures["Latest HbA1c below target"] == (1, 2)
    assert figures["Stably housed now"] == (1, 2)
    assert figures["WHO-5 meaningfully better since enrolment"] == (1, 1)
    assert figures["Latest mania screen (ASRM) positive"] == (1, 1)

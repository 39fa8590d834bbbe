"""The SMI page's parts that need no server: body charts (accessible names, target lines, escaping, nothing for no
data), compact symptom trends, and the EHR medical copy (trimmed to what the summary reads, antipsychotic orders
only, keyed by issuer and patient, another release's entry ignored)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.history import ScorePoint
from launch import errors
from launch.fhir import FHIRClient, StaticToken
from launch.store import EmbeddedStore
from launch.transport import HttpTransport, RetryPolicy
from smartapp.chart.trends import tick_step, trend_svg
from smartapp.smi.charts import measure_svg
from smartapp.smi.medical import EhrMedical, _hash_key, refresh_medical

from ..fhir_mappings.test_smi_medical import bp_panel, obs, order

ISS = "https://ehr.example.org/fhir"
DAY1, DAY2 = date(2026, 7, 1), date(2026, 11, 1)


def test_a_body_chart_names_its_values_and_target() -> None:
    svg = str(measure_svg("Weight", "kg", [("weight", [(DAY1, 82.0), (DAY2, 88.6)])], target=86.1,
                          target_label="below 86.1 kg"))  # fmt: skip
    assert 'role="img"' in svg and "first 82 kg on 2026-07-01, latest 88.6 kg on 2026-11-01" in svg
    assert "Target below 86.1 kg." in svg and 'stroke-dasharray="5 3"' in svg
    assert svg.count("<circle") == 2 and "<title>2026-11-01: weight 88.6 kg</title>" in svg


def test_a_body_chart_escapes_and_draws_nothing_without_data() -> None:
    assert str(measure_svg("Weight", "kg", [("weight", [])])) == ""
    svg = str(measure_svg("<b>", "kg", [("<i>", [(DAY1, 1.0)])]))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "<i>" not in svg


@pytest.mark.parametrize(("top", "step"), [(3, 1), (20, 5), (27, 5), (100, 20), (126, 20), (400, 100)])
def test_axis_steps_fit_every_scale(top: int, step: int) -> None:
    assert tick_step(top) == step


def test_a_compact_trend_is_half_as_wide_and_names_bands_in_titles() -> None:
    when = datetime(2026, 10, 1, tzinfo=UTC)
    points = [ScorePoint("WHO-5", when, 32, "Tandem", "who5"), ScorePoint("WHO-5", when.replace(month=11), 56,
                                                                          "Tandem", "who5")]  # fmt: skip
    wide, compact = str(trend_svg(points, "WHO-5")), str(trend_svg(points, "WHO-5", compact=True))
    assert 'width="680"' in wide and 'width="340"' in compact
    assert 'class="band"' in wide and 'class="band"' not in compact
    assert "<title>likely depression (0–28)</title>" in compact
    assert "WHO-5 trend: 2 scores" in compact


def test_the_medical_copy_keeps_only_what_the_summary_reads() -> None:
    copy = EhrMedical(EmbeddedStore())
    key = PatientKey(ISS, "p1")
    weight = obs(
        "29463-7", DAY2, 80, "kg", id="w1", subject={"reference": "Patient/p1"}, note=[{"text": "PHI"}]
    )
    heart_rate = obs("8867-4", DAY2, 70, "/min")
    record = copy.remember(key, [weight, bp_panel(DAY2, 120, 80), heart_rate],
                           [order("olanzapine 5 MG Oral Tablet", DAY1), order("lisinopril 10 MG", DAY1)])  # fmt: skip
    assert len(record.observations) == 2 and "note" not in record.observations[0]
    assert "subject" not in record.observations[0]  # the key names the patient; the copy holds no more
    assert [r["medicationCodeableConcept"]["text"] for r in record.requests] == [
        "olanzapine 5 MG Oral Tablet"
    ]
    again = copy.for_patient(key)
    assert again is not None and again.observations == record.observations
    assert copy.for_patient(PatientKey("https://other.example.org/fhir", "p1")) is None
    assert set(copy.for_issuer(ISS)) == {key}


def test_a_medical_copy_of_another_shape_is_ignored() -> None:
    store = EmbeddedStore()
    store.hash_set(_hash_key(ISS), "p1", '{"points": []}')
    assert EhrMedical(store).for_patient(PatientKey(ISS, "p1")) is None
    assert EhrMedical(store).for_issuer(ISS) == {}


def _ehr() -> FHIRClient:
    return FHIRClient(ISS, HttpTransport(retry=RetryPolicy(attempts=1), sleep=lambda _s: None),
                      StaticToken("system-token"))  # fmt: skip


def _bundle(*resources: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


@responses.activate
def test_a_refused_batch_is_counted_and_the_others_are_read() -> None:
    """Patients p1 and p2 in one search, p3 in the next; the EHR refuses the first batch's orders (403)."""
    weight = obs("29463-7", DAY2, 80, "kg", subject={"reference": "Patient/p3"})
    calls: list[str] = []

    def observations(request: Any) -> tuple[int, dict[str, str], str]:
        patients = parse_qs(urlsplit(request.url).query)["patient"][0]
        calls.append(f"Observation {patients}")
        return 200, {}, json.dumps(_bundle(weight) if patients == "p3" else _bundle())

    def orders(request: Any) -> tuple[int, dict[str, str], str]:
        patients = parse_qs(urlsplit(request.url).query)["patient"][0]
        calls.append(f"MedicationRequest {patients}")
        if patients == "p1,p2":
            return 403, {}, json.dumps({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "forbidden", "diagnostics": "scope"}]})  # fmt: skip
        return 200, {}, json.dumps(_bundle())

    responses.add_callback(responses.GET, f"{ISS}/Observation", callback=observations)
    responses.add_callback(responses.GET, f"{ISS}/MedicationRequest", callback=orders)
    copy = EhrMedical(EmbeddedStore())
    report = refresh_medical(_ehr(), copy, ISS, ["p1", "p2", "p3"], per_search=2)
    assert calls == ["Observation p1,p2", "MedicationRequest p1,p2", "Observation p3", "MedicationRequest p3"]
    assert (report.patients, report.updated, report.failed, report.searches) == (3, 1, 2, 4)
    assert copy.for_patient(PatientKey(ISS, "p1")) is None  # kept no half-read copy
    stored = copy.for_patient(PatientKey(ISS, "p3"))
    assert stored is not None and len(stored.observations) == 1


@responses.activate
def test_a_lost_token_ends_the_medical_refresh() -> None:
    responses.add(responses.GET, f"{ISS}/Observation", status=401, json={"resourceType": "OperationOutcome",
                                                                         "issue": []})  # fmt: skip
    with pytest.raises(errors.TandemError):
        refresh_medical(_ehr(), EhrMedical(EmbeddedStore()), ISS, ["p1"], per_search=50)

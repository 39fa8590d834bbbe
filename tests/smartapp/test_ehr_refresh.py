"""The EHR score cache and the per-patient refresh: what is kept, replaced and patched; failures of one patient,
of every patient, and of the token; bounded concurrency; one refresh per issuer at a time. The EHR is recorded
with `responses` (fault injection); the bulk path runs against the sandbox EHR in tests/integration."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.resources import Enrolment
from fhir_mappings.screening.history import ScorePoint, score_points
from launch import errors
from launch.fhir import FHIRClient, StaticToken
from launch.registrations import parse_registrations
from launch.store import EmbeddedStore
from launch.transport import HttpTransport, RetryPolicy
from smartapp.caseload.ehr_refresh import FAIL_FAST_AFTER, ScoreRefresh, last_refresh, state_key
from smartapp.caseload.ehr_scores import EhrScores, _hash_key
from smartapp.caseload.snapshot import CaseloadData
from smartapp.smi.medical import EhrMedical

ISS = "https://ehr.example.org/fhir"
OTHER = "https://other-ehr.example.org/fhir"
WHEN = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def _point(score: int, rid: str | None, day: int = 1) -> ScorePoint:
    return ScorePoint("PHQ-9", WHEN.replace(day=day), score, "EHR", "44261-6", None, rid)


def _observation(oid: str, patient: str, score: int, day: int = 1, status: str = "final") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": WHEN.replace(day=day).isoformat(),
            "valueInteger": score}  # fmt: skip


# --- the cache ------------------------------------------------------------------------------------


def test_a_full_read_replaces_and_an_incremental_one_patches_by_observation_id() -> None:
    scores = EhrScores(EmbeddedStore())
    key = PatientKey(ISS, "p1")
    scores.remember(key, [_point(18, "o1"), _point(15, "o2", 8), _point(12, None, 15)])
    scores.patch(key, [_point(14, "o2", 8), _point(9, "o4", 22)], {"o1"})
    got = {(p.resource_id, p.score) for p in scores.for_patient(key)}
    assert got == {
        ("o2", 14),
        ("o4", 9),
        (None, 12),
    }  # o1 removed, o2 replaced, o4 added, the id-less one kept
    scores.remember(key, [_point(7, "o9")])
    assert [(p.resource_id, p.score) for p in scores.for_patient(key)] == [("o9", 7)]


def test_only_ehr_points_are_cached_and_issuers_are_kept_apart() -> None:
    scores = EhrScores(EmbeddedStore())
    tandem = ScorePoint("PHQ-9", WHEN, 5, "Tandem", "44261-6")
    scores.remember(PatientKey(ISS, "p1"), [_point(18, "o1"), tandem])
    scores.remember(PatientKey(OTHER, "p1"), [_point(3, "x1")])
    assert [p.score for p in scores.for_patient(PatientKey(ISS, "p1"))] == [18]
    assert set(scores.for_issuer(OTHER)) == {PatientKey(OTHER, "p1")}


def test_entries_written_before_ids_were_kept_still_read_and_odd_ones_are_ignored() -> None:
    store = EmbeddedStore()
    old = {"read_at": WHEN.isoformat(), "points": [["PHQ-9", WHEN.isoformat(), 11, "44261-6", None]]}
    store.hash_set(_hash_key(ISS), "p1", json.dumps(old))
    store.hash_set(_hash_key(ISS), "p2", json.dumps({"points": [["PHQ-9"]]}))
    store.hash_set(_hash_key(ISS), "p3", "not json")
    found = EhrScores(store).for_issuer(ISS)
    assert list(found) == [PatientKey(ISS, "p1")]
    assert found[PatientKey(ISS, "p1")][0].score == 11 and found[PatientKey(ISS, "p1")][0].resource_id is None


def test_score_points_carry_the_observation_id() -> None:
    assert [p.resource_id for p in score_points([_observation("o7", "p1", 12)], "EHR")] == ["o7"]


# --- the per-patient refresh ----------------------------------------------------------------------


def _enrolment(n: int, phase: str = "active-treatment") -> Enrolment:
    return Enrolment(f"cp-{n}", ISS, f"p{n}", f"Patient {n}", "cocm-depression", phase, date(2026, 9, 1))


def _services(enrolments: list[Enrolment]) -> Any:
    store = EmbeddedStore()
    data = CaseloadData(enrolments=enrolments, contacts=[], tasks=[], scores={}, requests=0)
    return SimpleNamespace(
        store=store, ehr_scores=EhrScores(store), caseload=SimpleNamespace(load=lambda: data)
    )


def _refresh(services: Any, concurrency: int = 4, token: Any = None) -> ScoreRefresh:
    reg = next(iter(parse_registrations({"issuer": [{"iss": ISS, "client_id": "c", "vendor": "epic", "backend": {
        "client_id": "b", "key_id": "k", "concurrency": concurrency}}]})))  # fmt: skip
    client = FHIRClient(ISS, HttpTransport(retry=RetryPolicy(attempts=1), sleep=lambda _s: None),
                        token or StaticToken("system-token"))  # fmt: skip
    return ScoreRefresh(services, reg, client=client)


def _patient_of(request: Any) -> str:
    return parse_qs(urlsplit(request.url).query)["patient"][0]


def _bundle(*observations: dict[str, Any]) -> str:
    return json.dumps({"resourceType": "Bundle", "type": "searchset",
                       "entry": [{"resource": o} for o in observations]})  # fmt: skip


@responses.activate
def test_each_active_enrolled_patient_is_read_once_and_one_failure_keeps_that_patients_old_copy() -> None:
    services = _services([_enrolment(n) for n in range(1, 6)] + [_enrolment(9, "completed")])
    services.ehr_scores.remember(PatientKey(ISS, "p3"), [_point(20, "old")])

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        patient = _patient_of(request)
        if patient == "p3":
            return 500, {}, json.dumps({"resourceType": "OperationOutcome"})
        return (
            200,
            {},
            _bundle(_observation(f"{patient}-a", patient, 15), _observation(f"{patient}-b", patient, 8, 20)),
        )

    responses.add_callback(responses.GET, f"{ISS}/Observation", callback=answer)
    report = _refresh(services).run()
    assert report is not None and report.method == "per patient"
    assert (report.enrolled, report.patients_updated, report.failed, report.scores) == (5, 4, 1, 8)
    assert sorted(_patient_of(c.request) for c in responses.calls) == ["p1", "p2", "p3", "p4", "p5"]  # not p9
    assert all(c.request.headers["Authorization"] == "Bearer system-token" for c in responses.calls)
    assert [p.resource_id for p in services.ehr_scores.for_patient(PatientKey(ISS, "p3"))] == ["old"]
    assert [p.score for p in services.ehr_scores.for_patient(PatientKey(ISS, "p1"))] == [15, 8]
    assert last_refresh(services, ISS)["patients_updated"] == 4  # type: ignore[index]


@responses.activate
def test_when_every_read_fails_the_refresh_stops_early_and_says_why() -> None:
    services = _services([_enrolment(n) for n in range(1, 41)])
    responses.get(
        f"{ISS}/Observation", status=403, headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    )
    with pytest.raises(errors.FHIRForbidden):
        _refresh(services, concurrency=2).run()
    assert FAIL_FAST_AFTER <= len(responses.calls) < 40


@responses.activate
def test_no_token_stops_the_refresh_at_once() -> None:
    class NoToken:
        def token(self) -> str | None:
            raise errors.TokenError("the EHR refused the client assertion")

        def invalidate(self) -> None: ...

    services = _services([_enrolment(n) for n in range(1, 6)])
    with pytest.raises(errors.TokenError):
        _refresh(services, token=NoToken()).run()
    assert not responses.calls
    assert services.store.get(state_key(ISS) + ":running") is None  # released on failure too


@responses.activate
def test_reads_in_flight_never_exceed_the_registered_concurrency() -> None:
    services = _services([_enrolment(n) for n in range(1, 13)])
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return 200, {}, _bundle()

    responses.add_callback(responses.GET, f"{ISS}/Observation", callback=answer)
    report = _refresh(services, concurrency=3).run()
    assert report is not None and report.patients_updated == 12
    assert 2 <= peak[0] <= 3


@responses.activate
def test_one_refresh_per_issuer_at_a_time() -> None:
    services = _services([_enrolment(1)])
    refresh = _refresh(services)
    services.store.set(state_key(ISS) + ":running", "1", 60)  # another worker's refresh
    assert refresh.run() is None and not responses.calls
    services.store.delete(state_key(ISS) + ":running")
    responses.get(f"{ISS}/Observation", body=_bundle())
    assert refresh.run() is not None
    assert services.store.get(state_key(ISS) + ":running") is None  # released when done


@responses.activate
def test_the_medical_read_of_smi_patients_follows_the_scores_and_its_failure_keeps_them() -> None:
    """p1 is in the SMI program: after its score search comes one medical Observation search naming it and one
    MedicationRequest search; when the EHR refuses them, the scores already read are kept and reported."""
    services = _services([replace(_enrolment(1), program="cocm-smi"), _enrolment(2)])
    services.ehr_medical = EhrMedical(services.store)

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        if "85354-9" in query["code"][0]:  # the medical search, not the score search
            return 500, {}, json.dumps({"resourceType": "OperationOutcome"})
        return 200, {}, _bundle(_observation(f"{_patient_of(request)}-a", _patient_of(request), 15))

    responses.add_callback(responses.GET, f"{ISS}/Observation", callback=answer)
    report = _refresh(services).run()
    assert report is not None and report.patients_updated == 2
    assert (report.medical_patients, report.medical_updated, report.medical_failed) == (1, 0, 1)
    assert "medical data of 1 could not be read" in report.summary()
    medical_calls = [c for c in responses.calls if "85354-9" in c.request.url]
    assert len(medical_calls) == 1 and _patient_of(medical_calls[0].request) == "p1"  # only the SMI patient

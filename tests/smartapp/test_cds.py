"""The CDS Hooks service through Flask's test client, with a real Redis and the EHR's JWK Set served on
127.0.0.1: JWT authentication (every attack answered with a bare 401), prefetch present / missing / null /
empty / OperationOutcome / paginated, the cards for each case, JSON hygiene, feedback, and the hand-over."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from fhir_mappings.screening.resources import Submission
from fhir_mappings.screening.scoring import parse_answers, score
from fhir_mappings.screening.writeback import WritebackPlan
from smartapp import clock, create_app
from smartapp.config import Settings

from ..cds_client import CdsTestClient, patient_view_body, searchset, serve_jwks, unsigned
from ..conftest import APP_BASE

EHR = "https://ehr.cds.test/fhir"
OTHER_EHR = "https://other.cds.test/fhir"
SERVICE = "tandem-patient-view"
DISCOVERY = f"{APP_BASE}/cds-services"
SERVICE_URL = f"{DISCOVERY}/{SERVICE}"
FEEDBACK_URL = f"{SERVICE_URL}/feedback"
TODAY = clock.today()


@pytest.fixture
def cds(
    tmp_path: Path, environ: dict[str, str], redis_store: Any
) -> Iterator[tuple[FlaskClient, CdsTestClient, Flask]]:
    holder: dict[str, CdsTestClient] = {}
    with serve_jwks(lambda: holder["client"]) as jwks_base:
        holder["client"] = CdsTestClient(EHR, f"{jwks_base}/jwks", f"{jwks_base}/other")
        registrations = tmp_path / "cds-registrations.toml"
        registrations.write_text(f"""
[[issuer]]
iss = "{EHR}"
client_id = "tandem"
[issuer.cds]
jwks_urls = ["{jwks_base}/jwks"]

[[issuer]]
iss = "{OTHER_EHR}"
client_id = "tandem"
""", encoding="utf-8")  # fmt: skip
        env = {**environ, "TANDEM_REGISTRATIONS": str(registrations)}
        app = create_app(Settings.from_env(env), environ=env)
        yield app.test_client(), holder["client"], app


@pytest.fixture
def fhir(rsps: responses.RequestsMock) -> responses.RequestsMock:
    """The EHR's FHIR server as recorded payloads; the JWK Set server on 127.0.0.1 stays real."""
    rsps.add_passthru("http://127.0.0.1")
    return rsps


def call(client: FlaskClient, token: str, body: Any, url: str = SERVICE_URL) -> Any:
    return client.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, base_url=APP_BASE)


def patient(pid: str = "pt-1", born: str = "1980-04-02") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": born, "gender": "female"}


def phq9(score: int, days_ago: int, pid: str = "pt-1", oid: str = "o1") -> dict[str, Any]:
    when = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "effectiveDateTime": when, "valueInteger": score}  # fmt: skip


DEPRESSION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/pt-1"},
              "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
              "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]}}  # fmt: skip


def full_prefetch(**overrides: Any) -> dict[str, Any]:
    prefetch: dict[str, Any] = {"patient": patient(), "scores": searchset(phq9(16, 40)),
                                "conditions": searchset(DEPRESSION)}  # fmt: skip
    prefetch.update(overrides)
    return {k: v for k, v in prefetch.items() if v != "omit"}


# --- authentication -------------------------------------------------------------------------------------


def test_discovery_lists_the_patient_view_service_with_its_prefetch(cds: Any) -> None:
    client, ehr, _ = cds
    answer = client.get(
        "/cds-services", headers={"Authorization": f"Bearer {ehr.sign(DISCOVERY)}"}, base_url=APP_BASE
    )
    assert answer.status_code == 200
    (service,) = answer.get_json()["services"]
    assert service["id"] == SERVICE and service["hook"] == "patient-view" and service["description"]
    assert set(service["prefetch"]) == {"patient", "scores", "conditions"}
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "44261-6" in service["prefetch"]["scores"] and "_sort=-date" in service["prefetch"]["scores"]


def _attacks(ehr: CdsTestClient) -> dict[str, str]:
    now = int(time.time())
    import base64

    hs_key = base64.urlsafe_b64encode(json.dumps(ehr.es384.as_dict(private=False)).encode()).decode()
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import OctKey

    hmac = jose_jwt.encode({"alg": "HS256", "typ": "JWT", "kid": "es-1"},
                           {"iss": EHR, "aud": SERVICE_URL, "exp": now + 300, "iat": now, "jti": "hs"},
                           OctKey.import_key(hs_key), algorithms=["HS256"])  # fmt: skip
    return {
        "alg none": unsigned(SERVICE_URL, EHR),
        "HS256 signed with the public key": hmac,
        "aud of the discovery endpoint": ehr.sign(DISCOVERY),
        "aud of another service": ehr.sign(f"{DISCOVERY}/other-service"),
        "aud of another host": ehr.sign(SERVICE_URL.replace("tandem.test", "evil.test")),
        "expired": ehr.sign(SERVICE_URL, claims={"exp": now - 120, "iat": now - 420}),
        "issued in the future": ehr.sign(SERVICE_URL, claims={"iat": now + 600, "exp": now + 900}),
        "lives longer than an hour": ehr.sign(SERVICE_URL, claims={"exp": now + 7200}),
        "not valid yet": ehr.sign(SERVICE_URL, claims={"nbf": now + 600}),
        "no jti": ehr.sign(SERVICE_URL, claims={"jti": None}),
        "no exp": ehr.sign(SERVICE_URL, claims={"exp": None}),
        "iss not on the allow-list": ehr.sign(SERVICE_URL, claims={"iss": "https://evil.example.org/fhir"}),
        "iss of a registered EHR without a CDS client": ehr.sign(SERVICE_URL, claims={"iss": OTHER_EHR}),
        "jku not on the allow-list": ehr.sign(
            SERVICE_URL, header={"jku": ehr.other_jwks_url}, key=ehr.stranger
        ),
        "kid not in the JWK Set": ehr.sign(SERVICE_URL, key=ehr.stranger),
        "signed by another key under a published kid": ehr.sign(
            SERVICE_URL, key=ehr.stranger, header={"kid": "es-1"}
        ),
        "typ not JWT": ehr.sign(SERVICE_URL, header={"typ": "JOSE+JSON"}),
        "not a JWT": "not-a-jwt",
    }


ATTACKS = [
    "alg none", "HS256 signed with the public key", "aud of the discovery endpoint", "aud of another service",
    "aud of another host", "expired", "issued in the future", "lives longer than an hour", "not valid yet", "no jti",
    "no exp", "iss not on the allow-list", "iss of a registered EHR without a CDS client", "jku not on the allow-list",
    "kid not in the JWK Set", "signed by another key under a published kid", "typ not JWT", "not a JWT",
]  # fmt: skip


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_bad_jwt_gets_a_bare_401(cds: Any, attack: str, caplog: pytest.LogCaptureFixture) -> None:
    client, ehr, _ = cds
    token = _attacks(ehr)[attack]
    answer = call(client, token, patient_view_body(prefetch=full_prefetch()))
    assert answer.status_code == 401, attack
    assert answer.get_data() == b""  # bare: no reason given to the caller
    assert token not in caplog.text  # never logged


def test_no_authorization_header_is_refused_everywhere(cds: Any) -> None:
    client, _, _ = cds
    assert client.get("/cds-services", base_url=APP_BASE).status_code == 401
    assert client.post(SERVICE_URL, json=patient_view_body(), base_url=APP_BASE).status_code == 401
    assert client.post(FEEDBACK_URL, json={"feedback": []}, base_url=APP_BASE).status_code == 401


@pytest.mark.parametrize("alg", ["ES384", "RS384", "RS256"])
def test_asymmetric_algorithms_are_accepted(cds: Any, alg: str) -> None:
    client, ehr, _ = cds
    assert (
        call(client, ehr.sign(SERVICE_URL, alg=alg), patient_view_body(prefetch=full_prefetch())).status_code
        == 200
    )


def test_a_jwt_without_jku_uses_the_registered_jwk_set_and_an_aud_list_with_a_trailing_slash(
    cds: Any,
) -> None:
    client, ehr, _ = cds
    token = ehr.sign(
        SERVICE_URL, header={"jku": None}, claims={"aud": ["https://x.test/", SERVICE_URL + "/"]}
    )
    assert call(client, token, patient_view_body(prefetch=full_prefetch())).status_code == 200


def test_a_replayed_jwt_is_refused_by_the_redis_jti_cache(cds: Any, redis_url: str) -> None:
    client, ehr, _ = cds
    token = ehr.sign(SERVICE_URL)
    body = patient_view_body(prefetch=full_prefetch())
    assert call(client, token, body).status_code == 200
    assert call(client, token, body).status_code == 401
    import redis

    keys = redis.Redis.from_url(redis_url).keys("tandem:cds:jti:*")
    assert keys and all(
        0 < redis.Redis.from_url(redis_url).ttl(k) <= 300 + 60 for k in keys
    )  # kept until exp


# --- prefetch ---------------------------------------------------------------------------------------------


def test_prefetch_present_needs_no_fhir_request(cds: Any, fhir: responses.RequestsMock) -> None:
    client, ehr, _ = cds
    answer = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch()))
    assert answer.status_code == 200
    assert [c["summary"] for c in answer.get_json()["cards"]] == ["Screening due: PHQ-9"]
    assert not [c for c in fhir.calls if c.request.url and c.request.url.startswith(EHR)]


@pytest.mark.parametrize("missing", ["patient", "scores", "conditions"])
def test_prefetch_missing_without_fhir_access_is_412(cds: Any, missing: str) -> None:
    client, ehr, _ = cds
    answer = call(
        client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch(**{missing: "omit"}))
    )
    assert answer.status_code == 412
    assert answer.get_json()["resourceType"] == "OperationOutcome"


def test_no_prefetch_at_all_without_fhir_access_is_412(cds: Any) -> None:
    client, ehr, _ = cds
    assert call(client, ehr.sign(SERVICE_URL), patient_view_body()).status_code == 412


def test_prefetch_as_operation_outcome_counts_as_missing(cds: Any) -> None:
    client, ehr, _ = cds
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "too-costly"}]}
    assert (
        call(
            client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch(scores=outcome))
        ).status_code
        == 412
    )


def test_missing_prefetch_is_fetched_with_the_calls_token(cds: Any, fhir: responses.RequestsMock) -> None:
    client, ehr, _ = cds
    fhir.get(f"{EHR}/Patient/pt-1", json=patient())
    fhir.get(f"{EHR}/Observation", json=searchset(phq9(16, 40)))
    fhir.get(f"{EHR}/Condition", json=searchset(DEPRESSION))
    body = patient_view_body(fhir_server=EHR, token="ehr-token-abc")
    answer = call(client, ehr.sign(SERVICE_URL), body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert [c["summary"] for c in answer.get_json()["cards"]] == ["Screening due: PHQ-9"]
    sent = [c.request for c in fhir.calls if c.request.url and c.request.url.startswith(EHR)]
    assert len(sent) == 3 and all(r.headers["Authorization"] == "Bearer ehr-token-abc" for r in sent)
    observation_query = parse_qs(urlsplit(next(r.url for r in sent if "/Observation" in str(r.url))).query)
    assert observation_query["patient"] == ["pt-1"] and observation_query["_sort"] == ["-date"]


def test_the_fhir_server_refusing_the_fallback_is_412(cds: Any, fhir: responses.RequestsMock) -> None:
    client, ehr, _ = cds
    fhir.get(f"{EHR}/Observation", status=403, json={"resourceType": "OperationOutcome", "issue": []})
    body = patient_view_body(prefetch=full_prefetch(scores="omit"), fhir_server=EHR, token="t")
    assert call(client, ehr.sign(SERVICE_URL), body).status_code == 412


def test_prefetch_null_patient_means_no_such_patient_and_no_cards(cds: Any) -> None:
    client, ehr, _ = cds
    answer = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch(patient=None)))
    assert answer.status_code == 200 and answer.get_json() == {"cards": []}


def test_prefetch_empty_bundles_mean_no_scores_and_no_conditions(cds: Any) -> None:
    client, ehr, _ = cds
    body = patient_view_body(prefetch=full_prefetch(scores=searchset(), conditions=searchset()))
    answer = call(client, ehr.sign(SERVICE_URL), body)
    # An adult with no PHQ-9 on record: the yearly depression screen is due (info: not enrolled).
    (card,) = answer.get_json()["cards"]
    assert card["summary"] == "Screening due: PHQ-9" and card["indicator"] == "info"
    assert "No PHQ-9" in card["detail"] or "year" in card["detail"]


def test_a_recent_phq9_and_no_condition_means_nothing_due(cds: Any) -> None:
    client, ehr, _ = cds
    body = patient_view_body(prefetch=full_prefetch(scores=searchset(phq9(4, 20)), conditions=searchset()))
    assert call(client, ehr.sign(SERVICE_URL), body).get_json() == {"cards": []}


def test_a_paginated_prefetch_is_completed_from_the_fhir_server(
    cds: Any, fhir: responses.RequestsMock
) -> None:
    client, ehr, _ = cds
    fhir.get(f"{EHR}/Observation", json=searchset(phq9(18, 30, oid="o2")))
    first_page = searchset(phq9(4, 400, oid="o1"), next_url=f"{EHR}/Observation?patient=pt-1&page=2")
    body = patient_view_body(
        prefetch=full_prefetch(scores=first_page, conditions=searchset()), fhir_server=EHR, token="t"
    )
    (card,) = call(client, ehr.sign(SERVICE_URL), body).get_json()["cards"]
    assert "Last PHQ-9 (18)" in card["detail"]  # the second page's score was read


def test_another_patients_prefetch_is_never_used(cds: Any) -> None:
    client, ehr, _ = cds
    body = patient_view_body(prefetch=full_prefetch(patient=patient("pt-2")))
    assert call(client, ehr.sign(SERVICE_URL), body).status_code == 412  # treated as an error, and no token
    scores = searchset(phq9(16, 40, pid="pt-2"))
    body = patient_view_body(prefetch=full_prefetch(scores=scores, conditions=searchset()))
    (card,) = call(client, ehr.sign(SERVICE_URL), body).get_json()["cards"]
    assert "16" not in card["detail"]  # pt-2's score was dropped: pt-1 has none on record


def test_a_fhir_server_other_than_the_callers_ehr_is_refused(cds: Any) -> None:
    client, ehr, _ = cds
    body = patient_view_body(prefetch=full_prefetch(), fhir_server=OTHER_EHR, token="t")
    answer = call(client, ehr.sign(SERVICE_URL), body)
    assert answer.status_code == 400 and "fhirServer" in answer.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("body", [
    [], {"hook": "order-select"}, {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/p"}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Device/d", "patientId": "pt-1"}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/p", "patientId": "../x"}},
])  # fmt: skip
def test_a_malformed_request_is_400_with_an_operation_outcome(cds: Any, body: Any) -> None:
    client, ehr, _ = cds
    answer = call(client, ehr.sign(SERVICE_URL), body)
    assert answer.status_code == 400 and answer.get_json()["resourceType"] == "OperationOutcome"


# --- cards ------------------------------------------------------------------------------------------------


def _no_empty_values(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(
            v not in (None, "", [], {}) and _no_empty_values(v) for v in value.values()
        )
    if isinstance(value, list):
        return bool(value) and all(_no_empty_values(v) for v in value)
    return value is not None and value != ""


def _record_positive_item9(app: Flask, pid: str = "pt-1") -> None:
    svc = app.extensions["tandem"]
    phq = svc.catalogue.get("phq9")
    answers, _ = parse_answers(phq, {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"})
    submission = Submission(uuid.uuid4().hex, phq, answers, score(phq, answers), pid,
                            datetime.now(UTC).replace(microsecond=0), iss=EHR)  # fmt: skip
    svc.screenings.record(
        submission, iss=EHR, vendor="generic", sex=None, plan=WritebackPlan((), "registry only")
    )


def test_an_unacknowledged_safety_alert_comes_first_and_critical(cds: Any) -> None:
    client, ehr, app = cds
    _record_positive_item9(app)
    cards = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch())).get_json()[
        "cards"
    ]
    assert [c["indicator"] for c in cards] == ["critical", "info"]
    assert cards[0]["summary"].startswith("Open safety follow-up")
    assert "PHQ-9 question 9" in cards[0]["detail"]
    # Another EHR's patient with the same id sees no alert (patients are (issuer, id)).
    _record_positive_item9(app, pid="pt-9")
    other = patient_view_body(
        "pt-9", prefetch={"patient": patient("pt-9"), "scores": searchset(), "conditions": searchset()}
    )
    assert call(client, ehr.sign(SERVICE_URL), other).get_json()["cards"][0]["indicator"] == "critical"


def test_cards_follow_the_json_rules_and_carry_only_an_opaque_key(cds: Any) -> None:
    client, ehr, app = cds
    _record_positive_item9(app)
    cards = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch())).get_json()[
        "cards"
    ]
    for card in cards:
        assert _no_empty_values(card)
        assert len(card["summary"]) < 140 and card["source"]["label"] == "Tandem registry"
        assert all(r["display"] and r["code"] for r in card["overrideReasons"])
        assert "suggestions" not in card  # so no selectionBehavior is needed
        (link,) = card["links"]
        assert link["type"] == "smart" and isinstance(link["appContext"], str)
        url = urlsplit(link["url"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{APP_BASE}/launch"
        assert parse_qs(url.query) == {"cdsCard": [card["uuid"]]}
        assert json.loads(link["appContext"]) == {"cdsCard": card["uuid"]}
        assert "pt-1" not in json.dumps(link)  # no PHI in the link


def test_a_patient_in_the_portal_gets_only_their_questionnaire(cds: Any) -> None:
    client, ehr, app = cds
    _record_positive_item9(app)
    body = patient_view_body(prefetch=full_prefetch(), user="Patient/pt-1")
    (card,) = call(client, ehr.sign(SERVICE_URL), body).get_json()["cards"]
    assert card["summary"] == "A questionnaire is ready for you: PHQ-9" and card["indicator"] == "info"
    # Someone else's chart in a portal: nothing at all.
    body = patient_view_body(prefetch=full_prefetch(), user="Patient/pt-2")
    assert call(client, ehr.sign(SERVICE_URL), body).get_json() == {"cards": []}


def test_an_infants_caregiver_epds_is_due_at_the_two_month_visit(cds: Any) -> None:
    client, ehr, _ = cds
    born = (TODAY - timedelta(days=62)).isoformat()
    body = patient_view_body("baby-1", prefetch={"patient": patient("baby-1", born), "scores": searchset(),
                                                 "conditions": searchset()})  # fmt: skip
    cards = call(client, ehr.sign(SERVICE_URL), body).get_json()["cards"]
    (due,) = [c for c in cards if c["summary"].startswith("Screening due")]
    assert "caregiver's EPDS" in due["summary"] and "2-month" in due["detail"].lower().replace(" ", "-")
    assert due["links"][0]["label"] == "Open the visit screens in Tandem"


def test_the_card_key_opens_its_page_only_for_the_same_ehr_and_patient(cds: Any) -> None:
    client, ehr, app = cds
    (card,) = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch())).get_json()[
        "cards"
    ]
    service = app.extensions["tandem_cds"]
    assert service.card_target(card["uuid"], EHR, "pt-1")["instrument"] == "phq9"
    assert service.card_target(card["uuid"], EHR, "pt-2") is None
    assert service.card_target(card["uuid"], OTHER_EHR, "pt-1") is None
    assert service.card_target("not-a-uuid", EHR, "pt-1") is None


# --- feedback ---------------------------------------------------------------------------------------------


def test_feedback_is_recorded_once_per_card_outcome_and_time(
    cds: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, ehr, app = cds
    (card,) = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch())).get_json()[
        "cards"
    ]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-25T15:04:05Z",
            "overrideReason": {"reason": {"system": "x", "code": "done-elsewhere"},
                               "userComment": "Jane Doe was screened at the walk-in clinic"}}  # fmt: skip
    for _ in range(2):  # the same card reported twice
        assert call(client, ehr.sign(FEEDBACK_URL), {"feedback": [item]}, FEEDBACK_URL).status_code == 200
    accepted = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-25T15:05:00Z"}
    assert call(client, ehr.sign(FEEDBACK_URL), {"feedback": [accepted]}, FEEDBACK_URL).status_code == 200
    summary = app.extensions["tandem_cds"].feedback_summary()
    assert summary == {"screening-due": {"overridden:done-elsewhere": 1, "accepted": 1}}
    assert "Jane Doe" not in caplog.text  # the user's comment is kept, never logged


def test_feedback_needs_the_feedback_endpoints_audience_and_valid_items(cds: Any) -> None:
    client, ehr, _ = cds
    item = {
        "card": "5f0a3c2e-6b1d-4c1e-9a7e-0b6a8d7c1f10",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-25T15:04:05Z",
    }
    assert call(client, ehr.sign(SERVICE_URL), {"feedback": [item]}, FEEDBACK_URL).status_code == 401
    for bad in (
        {**item, "outcome": "ignored"},
        {**item, "card": "x"},
        {**item, "outcomeTimestamp": "yesterday"},
    ):
        assert call(client, ehr.sign(FEEDBACK_URL), {"feedback": [bad]}, FEEDBACK_URL).status_code == 400


# Issue 26 §2: feedback was accepted for any uuid and stored without bound. Only cards Tandem issued to the calling
# EHR are accepted; CDS Hooks 2.0.1 ("Feedback") names no status for an unknown card and allows any 4xx: 404 with
# an OperationOutcome, and nothing of that call is stored.
def _issued_card(client: FlaskClient, ehr: CdsTestClient) -> str:
    (card,) = call(client, ehr.sign(SERVICE_URL), patient_view_body(prefetch=full_prefetch())).get_json()[
        "cards"
    ]
    return str(card["uuid"])


def _feedback(card: str, at: str = "2026-11-25T15:04:05Z") -> dict[str, Any]:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": at}


@pytest.mark.parametrize(("cards", "status", "stored"), [
    (["issued"], 200, 1),  # a card Tandem issued to this EHR
    (["unknown"], 404, 0),  # a uuid Tandem never issued
    (["other-ehr"], 404, 0),  # a card Tandem issued to another EHR
    (["issued", "unknown"], 404, 0),  # one unknown card: nothing of the call is stored
])  # fmt: skip
def test_feedback_only_for_cards_tandem_issued_to_that_ehr(
    cds: Any, cards: list[str], status: int, stored: int
) -> None:
    client, ehr, app = cds
    issued = _issued_card(client, ehr)
    other = str(uuid.uuid4())
    app.extensions["tandem"].store.set(
        f"cds:issued:{other}", json.dumps({"kind": "safety", "iss": OTHER_EHR}), 60
    )
    uuids = {"issued": issued, "unknown": str(uuid.uuid4()), "other-ehr": other}
    body = {"feedback": [_feedback(uuids[c]) for c in cards]}
    answer = call(client, ehr.sign(FEEDBACK_URL), body, FEEDBACK_URL)
    assert answer.status_code == status
    if status == 404:
        assert answer.get_json()["resourceType"] == "OperationOutcome"
    summary = app.extensions["tandem_cds"].feedback_summary()
    assert sum(sum(counts.values()) for counts in summary.values()) == stored


def test_feedback_storage_is_bounded_per_ehr_and_expires(
    cds: Any, redis_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from smartapp.cds.service import FEEDBACK_TTL_SECONDS

    client, ehr, app = cds
    card = _issued_card(client, ehr)
    service = app.extensions["tandem_cds"]
    service.feedback_cap = 2
    times = ["2026-11-25T15:04:05Z", "2026-11-25T15:05:05Z", "2026-11-25T15:06:05Z"]
    for at in times:
        assert (
            call(
                client, ehr.sign(FEEDBACK_URL), {"feedback": [_feedback(card, at)]}, FEEDBACK_URL
            ).status_code
            == 200
        )
    assert service.feedback_summary() == {"screening-due": {"overridden": 2}}  # the third was not stored
    assert "the most Tandem keeps" in caplog.text
    raw = redis_store._redis  # the records themselves expire
    keys = [k for k in raw.scan_iter(f"{redis_store.prefix}cds:feedback:*") if ":feedback-" not in str(k)]
    assert len(keys) == 2 and all(0 < raw.ttl(k) <= FEEDBACK_TTL_SECONDS for k in keys)
    raw.delete(keys[0])  # one record expired: room for new feedback again
    assert (
        call(
            client, ehr.sign(FEEDBACK_URL), {"feedback": [_feedback(card, times[2])]}, FEEDBACK_URL
        ).status_code
        == 200
    )
    assert service.feedback_summary() == {"screening-due": {"overridden": 2}}

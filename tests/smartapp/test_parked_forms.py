"""A form posted after its launch ended (issue 26 §1): every launch form carries a server-signed binding; with a
valid one the post is parked — encrypted at rest, bound to issuer, patient and user — and a forged, expired or
mismatched one gets today's "session ended" page with nothing kept."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import redis
import responses
from flask import Flask
from joserfc.jwk import RSAKey

from launch.store import RedisStore
from smartapp.parking.service import TASK_PENDING, ParkedForm, ParkedForms
from smartapp.request_context import FORM_BINDING_FIELD, HIDDEN_FORM_FIELDS, read_form_binding

from ..conftest import Actions, make_ehr, post_from
from ..ehr import RecordedEHR
from ..forms import form_in

PHQ9_ITEM9_POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}
HOUR = 3600


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


def _screening_form(actions: Actions, epic: RecordedEHR) -> dict[str, str]:
    actions.launch(epic)
    return form_in(actions.get("screen/phq9").get_data(as_text=True), "/screen/phq9").hidden


def _end(actions: Actions) -> None:
    assert actions.submit("", action="/end").status_code == 303


def _payload(binding: str) -> dict[str, Any]:
    payload = binding.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _with_payload(binding: str, **changes: Any) -> str:
    """The binding with its payload changed and its signature kept (a forgery)."""
    data = {**_payload(binding), **changes}
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{payload}.{binding.split('.')[1]}"


def _redis(app: Flask) -> redis.Redis:
    """Redis itself (not Tandem's store): what is at rest, byte for byte."""
    store = app.extensions["tandem"].store
    assert isinstance(store, RedisStore)
    return redis.Redis.from_url(store.url)


def _parked(app: Flask) -> list[str]:
    return [k.decode() for k in _redis(app).keys("tandem:parked:*")]


def test_every_launch_form_carries_the_binding_of_its_launch(actions: Actions, epic: RecordedEHR) -> None:
    hidden = _screening_form(actions, epic)
    data = _payload(hidden[FORM_BINDING_FIELD])
    # Source: issue 26 §1 — issuer, patient when known, the user's fhirUser, the launch, the form's page, issued-at.
    assert data["iss"] == epic.shape.iss and data["lid"] == actions.launch_id and data["pat"]
    assert data["usr"] and data["page"] == "chart.screen" and data["iat"] > 0
    page = actions.get().get_data(as_text=True)
    assert FORM_BINDING_FIELD in form_in(page, "/end").hidden


#: (what is wrong with the binding, how it is made from the page's). Source: issue 26 §1 point 3 — a forged,
#: expired or mismatched binding is refused and nothing is parked.
REFUSED = [
    ("missing", lambda b, launch: None),
    ("malformed", lambda b, launch: "not-a-binding"),
    ("signature of another secret", lambda b, launch: b.split(".")[0] + "." + "0" * 64),
    ("another patient", lambda b, launch: _with_payload(b, pat="someone-else")),
    ("another issuer", lambda b, launch: _with_payload(b, iss="https://other-ehr.example/fhir")),
    ("another user", lambda b, launch: _with_payload(b, usr="Practitioner/intruder")),
    ("issued long ago", lambda b, launch: _with_payload(b, iat=_payload(b)["iat"] - 13 * HOUR)),
]


@pytest.mark.parametrize(("case", "make"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_forged_or_expired_binding_gets_the_session_ended_page_and_nothing_is_kept(
    app: Flask, actions: Actions, epic: RecordedEHR, case: str, make: Any
) -> None:
    hidden = _screening_form(actions, epic)
    _end(actions)
    binding = make(hidden[FORM_BINDING_FIELD], actions.launch_id)
    data = {k: v for k, v in hidden.items() if k != FORM_BINDING_FIELD} | PHQ9_ITEM9_POSITIVE
    if binding is not None:
        data[FORM_BINDING_FIELD] = binding
    answer = actions.post("screen/phq9", data, page="screen/phq9")
    assert answer.status_code == 401 and "kept" not in answer.get_data(as_text=True)
    assert _parked(app) == []


def test_a_binding_of_another_launch_is_refused(app: Flask, client: Any, epic: RecordedEHR) -> None:
    first, second = Actions(client), Actions(client)
    hidden = _screening_form(first, epic)
    second.launch(epic)
    _end(first)
    _end(second)
    answer = second.post("screen/phq9", {**hidden, **PHQ9_ITEM9_POSITIVE}, page="screen/phq9")
    assert answer.status_code == 401 and _parked(app) == []


def test_a_binding_expires_after_the_configured_hours(
    app: Flask, actions: Actions, epic: RecordedEHR
) -> None:
    binding = _screening_form(actions, epic)[FORM_BINDING_FIELD]
    issued = _payload(binding)["iat"]
    with app.test_request_context():
        assert read_form_binding(
            binding, actions.launch_id, max_age_seconds=12 * HOUR, now=issued + 11 * HOUR
        )
        assert (
            read_form_binding(binding, actions.launch_id, max_age_seconds=12 * HOUR, now=issued + 13 * HOUR)
            is None
        )
        assert (
            read_form_binding(binding, actions.launch_id, max_age_seconds=12 * HOUR, now=issued - HOUR)
            is None
        )
        assert read_form_binding(binding, "x" * 32, max_age_seconds=12 * HOUR, now=issued) is None


def test_a_phq9_posted_after_the_launch_ended_shows_its_alert_and_is_kept_encrypted(
    app: Flask, actions: Actions, epic: RecordedEHR
) -> None:
    hidden = _screening_form(actions, epic)
    _end(actions)
    answer = actions.post("screen/phq9", {**hidden, **PHQ9_ITEM9_POSITIVE}, page="screen/phq9")
    html = answer.get_data(as_text=True)
    # Source: issue 26 §1 — score at once, the safety alert, who will see it, and the answers kept.
    assert answer.status_code == 202
    assert "Safety alert" in html and "Safety follow-ups" in html and "session had ended" in html
    assert "kept, encrypted" in html
    svc = app.extensions["tandem"]
    assert svc.screenings.pending() == []  # not recorded yet: it waits for the next launch
    patient = _payload(hidden[FORM_BINDING_FIELD])["pat"]
    keys = _parked(app)
    assert keys and not any(patient in k for k in keys)  # no PHI in key names
    for key in keys:
        if _redis(app).type(key) != b"string":  # a set (an index) holds only random ids
            continue
        raw = _redis(app).get(key)
        assert raw is not None
        assert patient.encode() not in raw and b"LA6569-3" not in raw and b"phq9-9" not in raw
    # No registry in this tier: the safety Task is pending, retried by the worker, and never expires unnoticed.
    (item,) = ParkedForms.of(svc).pending_safety()
    assert item.task == TASK_PENDING and item.submission_id == hidden["submission_id"]


def test_parked_forms_are_visible_to_their_issuer_patient_or_user_only(app: Flask) -> None:
    svc = app.extensions["tandem"]
    parked = ParkedForms.of(svc)
    item = ParkedForm(id=parked.new_id(), endpoint="caseload.log_contact", args={"careplan_id": "cp-1"},
                      fields=[("minutes", "20")], iss="https://ehr-a.example/fhir", patient="p-1",
                      user="Practitioner/u-1", launch_id="L" * 32, parked_at="2026-12-07T10:00:00+00:00")  # fmt: skip
    parked.save(item)
    # Source: issue 26 §1 — bound to (issuer, patient) plus the user: the same ids of another EHR see nothing.
    assert [i.id for i in parked.visible("https://ehr-a.example/fhir", "p-1", None)] == [item.id]
    assert [i.id for i in parked.visible("https://ehr-a.example/fhir", None, "Practitioner/u-1")] == [item.id]
    assert parked.visible("https://ehr-b.example/fhir", "p-1", "Practitioner/u-1") == []
    assert parked.visible("https://ehr-a.example/fhir", "p-2", "Practitioner/u-2") == []
    # Another secret cannot read it (a key from the app secret).
    other = ParkedForms(svc.store, "another-secret-0123456789abcdefghijkl", None, svc.catalogue)
    assert other.load(item.id) is None
    parked.discard(item)
    assert parked.visible("https://ehr-a.example/fhir", "p-1", "Practitioner/u-1") == []


def test_the_next_chart_launch_shows_the_notice_and_reopens_the_screening_prefilled(
    app: Flask, client: Any, epic: RecordedEHR
) -> None:
    first = Actions(client)
    hidden = _screening_form(first, epic)
    _end(first)
    assert first.post("screen/phq9", {**hidden, **PHQ9_ITEM9_POSITIVE}, page="screen/phq9").status_code == 202
    again = Actions(client)
    again.launch(epic)
    chart = again.get().get_data(as_text=True)
    assert "You have 1 unsaved form from" in chart and "safety alert raised" in chart
    item_id = chart.split(f'href="/app/{again.launch_id}/parked/')[1].split('"')[0]
    reopened = again.get(f"parked/{item_id}").get_data(as_text=True)
    assert all(f'name="{k}" value="{v}" checked' in reopened for k, v in PHQ9_ITEM9_POSITIVE.items())
    form = form_in(reopened, "/screen/phq9", page=again.path(f"parked/{item_id}"))
    assert form.hidden["submission_id"] == hidden["submission_id"]  # confirming it never doubles it
    saved = post_from(client, again.path(f"parked/{item_id}"), again.path("screen/phq9"), form.hidden)
    assert saved.status_code == 303
    svc = app.extensions["tandem"]
    assert svc.screenings.load(hidden["submission_id"]) is not None
    assert "unsaved form" not in again.get().get_data(as_text=True)


def test_a_parked_form_is_discarded_only_explicitly(app: Flask, client: Any, epic: RecordedEHR) -> None:
    first = Actions(client)
    hidden = _screening_form(first, epic)
    _end(first)
    negative = {f"phq9-{n}": "LA6568-5" for n in range(1, 10)}
    parked = first.post("screen/phq9", {**hidden, **negative}, page="screen/phq9")
    assert parked.status_code == 202 and "Safety alert" not in parked.get_data(as_text=True)
    again = Actions(client)
    again.launch(epic)
    chart = again.get().get_data(as_text=True)
    assert "You have 1 unsaved form from" in chart
    item_id = chart.split(f'href="/app/{again.launch_id}/parked/')[1].split('"')[0]
    assert f"tandem:parked:{item_id}" in _parked(app)
    discarded = again.submit("", action=f"/parked/{item_id}/discard")
    assert discarded.status_code == 303
    assert "unsaved form" not in again.get().get_data(as_text=True)
    assert f"tandem:parked:{item_id}" not in _parked(app)
    assert app.extensions["tandem"].screenings.load(hidden["submission_id"]) is None  # discarded: never saved


def test_the_same_form_posted_twice_after_the_launch_ended_is_kept_once(
    app: Flask, client: Any, epic: RecordedEHR
) -> None:
    first = Actions(client)
    hidden = _screening_form(first, epic)
    _end(first)
    for answers in (PHQ9_ITEM9_POSITIVE, PHQ9_ITEM9_POSITIVE, {**PHQ9_ITEM9_POSITIVE, "phq9-1": "LA6569-3"}):
        assert first.post("screen/phq9", {**hidden, **answers}, page="screen/phq9").status_code == 202
    again = Actions(client)
    again.launch(epic)
    chart = again.get().get_data(as_text=True)
    assert (
        "You have 1 unsaved form from" in chart
    )  # a double click, then a changed answer: one item, the latest
    item_id = chart.split(f'href="/app/{again.launch_id}/parked/')[1].split('"')[0]
    assert 'name="phq9-1" value="LA6569-3" checked' in again.get(f"parked/{item_id}").get_data(as_text=True)


def test_discarding_a_positive_screening_whose_task_is_pending_keeps_the_task_queued(
    app: Flask, client: Any, epic: RecordedEHR
) -> None:
    first = Actions(client)
    hidden = _screening_form(first, epic)
    _end(first)
    assert first.post("screen/phq9", {**hidden, **PHQ9_ITEM9_POSITIVE}, page="screen/phq9").status_code == 202
    again = Actions(client)
    again.launch(epic)
    chart = again.get().get_data(as_text=True)
    item_id = chart.split(f'href="/app/{again.launch_id}/parked/')[1].split('"')[0]
    assert again.submit("", action=f"/parked/{item_id}/discard").status_code == 303
    assert "unsaved form" not in again.get().get_data(as_text=True)  # no longer offered
    # Source: issue 26 §1 — a parked screening with a safety flag is never silently dropped.
    (pending,) = ParkedForms.of(app.extensions["tandem"]).pending_safety()
    assert pending.id == item_id and pending.discarded and pending.task == TASK_PENDING


def test_a_chart_launch_never_offers_a_form_typed_for_another_patient(
    app: Flask, client: Any, epic: RecordedEHR
) -> None:
    actions = Actions(client)
    binding = _payload(_screening_form(actions, epic)[FORM_BINDING_FIELD])
    parked = ParkedForms.of(app.extensions["tandem"])
    # The same user's gestation form for another child: reopened here it would be saved for this patient.
    other = ParkedForm(id=parked.new_id(), endpoint="chart.record_gestation", args={}, fields=[("weeks", "31")],
                       iss=binding["iss"], patient="another-child", user=binding["usr"], launch_id="L" * 32,
                       parked_at="2026-12-07T10:00:00+00:00")  # fmt: skip
    parked.save(other)
    chart = actions.get().get_data(as_text=True)
    assert "unsaved form" not in chart
    assert actions.get(f"parked/{other.id}").status_code == 404


def test_a_form_whose_launch_ends_while_it_is_saved_is_kept(
    app: Flask, client: Any, epic: RecordedEHR
) -> None:
    actions = Actions(client)
    hidden = _screening_form(actions, epic)
    fields = {name: hidden[name] for name in HIDDEN_FORM_FIELDS}  # every form's hidden fields
    sessions = app.extensions["tandem"].sessions
    session = sessions.load(actions.launch_id)
    # The token expired and the EHR issued no refresh token: the launch ends while the form is saved (the
    # gestation form reads the child's Patient first).
    sessions.save(
        session.__class__(**{**session.__dict__, "expires_at": time.time() - 5, "refresh_token": None})
    )
    answer = actions.post("gestation", {**fields, "weeks": "31", "days": "2"})
    assert answer.status_code == 202 and "session had ended" in answer.get_data(as_text=True)
    again = Actions(client)
    again.launch(epic)
    chart = again.get().get_data(as_text=True)
    assert "You have 1 unsaved form from" in chart and "Gestational age at birth" in chart


# --- review of the merged change: a form saved before its launch ended is never kept a second time ----------


def test_a_form_saved_before_the_launch_ended_and_sent_again_is_not_kept(
    app: Flask, actions: Actions, epic: RecordedEHR
) -> None:
    # Source: issue 26 §1 — "a replayed id returns the first result, never a second record": Back, then resubmit,
    # after the launch has ended must not park a copy of a screening already saved.
    hidden = _screening_form(actions, epic)
    saved = actions.post("screen/phq9", {**hidden, **PHQ9_ITEM9_POSITIVE}, page="screen/phq9")
    assert saved.status_code == 303
    _end(actions)
    again = actions.post("screen/phq9", {**hidden, **PHQ9_ITEM9_POSITIVE}, page="screen/phq9")
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and "already saved" in html and "was kept" not in html
    assert _parked(app) == []


def test_an_invalid_answer_never_hides_the_safety_item_of_a_parked_screening(app: Flask) -> None:
    # Source: issue 26 §2 — "a blank never hides a positive result or a safety flag": an answer that does not
    # parse is a blank to the engine, and item 9 answered positive still raises its alert and Task.
    from smartapp.parking.service import result_of, submission_of

    catalogue = app.extensions["tandem"].catalogue
    fields = [(k, "not-an-answer" if k == "phq9-1" else v) for k, v in PHQ9_ITEM9_POSITIVE.items()]
    item = ParkedForm(id="x", endpoint="chart.screen", args={"key": "phq9"}, fields=fields,
                      iss="https://ehr.test/fhir", patient="p1", user="Practitioner/1", launch_id="l" * 32,
                      parked_at="2026-12-07T10:00:00+00:00", instrument="phq9", submission_id="a" * 32)  # fmt: skip
    result = result_of(item, catalogue)
    assert result is not None and result.safety
    submission = submission_of(item, catalogue)
    assert submission is not None and submission.result.safety


def test_a_patient_portal_launch_without_a_patient_in_context_binds_the_patient_user(app: Flask) -> None:
    # Source: issue 26 §1 — the binding is bound to (issuer, patient): a portal launch whose EHR names the patient
    # only as the user (fhirUser Patient/…) still binds that patient, so a kept questionnaire reaches the care team.
    from launch.context import LaunchContext
    from launch.sessions import LaunchSession
    from smartapp.request_context import mint_form_binding

    context = LaunchContext(patient=None, fhir_user="https://ehr.test/fhir/Patient/p7")
    session = LaunchSession(id="s" * 32, binding="b", iss="https://ehr.test/fhir", access_token="t",
                            expires_at=time.time() + 300, refresh_token=None, scope="launch/patient",
                            context=context)  # fmt: skip
    with app.test_request_context("/app/" + "s" * 32 + "/me/"):
        from flask import g

        g.launch = session
        binding = mint_form_binding()
    assert binding is not None and _payload(binding)["pat"] == "p7"


def test_what_the_chart_page_read_is_kept_encrypted_for_the_launchs_forms(
    app: Flask, actions: Actions, epic: RecordedEHR
) -> None:
    # The names a kept safety follow-up shows (the patient's, the user's) are kept for the launch's forms, and
    # never in clear at rest nor in a key name.
    _screening_form(actions, epic)
    raw = _redis(app)
    keys = raw.keys("tandem:launch-names:*")
    assert len(keys) == 1 and actions.launch_id.encode() not in keys[0]
    names = ParkedForms.of(app.extensions["tandem"]).names_of(actions.launch_id)
    assert names.get("name")
    assert names["name"].encode() not in (raw.get(keys[0]) or b"")

"""Single-use form ids (smartapp/form_once.py; issue 26 §1: "Back, then submit again, makes duplicates"): a replayed
form is answered with its first result and creates nothing; a POST that failed does not spend its id; concurrent
copies of one form save once. On both stores: Redis (every deployment) and the embedded one (`tandem demo`).
The route inventory: every POST of a launch and of the questionnaire links is guarded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from flask import Flask, redirect, request
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from launch.store import EmbeddedStore, KeyValueStore, RedisStore
from smartapp import form_once
from smartapp.errors import FormExpired, FormInProgress

from ..conftest import APP_BASE, Actions, full_launch, make_ehr, post_from
from ..ehr import RecordedEHR
from ..forms import form_in
from .test_access import PORTAL, app_routes, fill

LAUNCH = "L" * 32


@pytest.fixture(params=["redis", "embedded"])
def store(request: pytest.FixtureRequest) -> Iterator[KeyValueStore]:
    if request.param == "redis":
        yield request.getfixturevalue("redis_store")
    else:
        yield EmbeddedStore()


class Records:
    """What the host app's one form saves: a list of notes; a note "bad" comes back with a problem (422)."""

    def __init__(self) -> None:
        self.saved: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hold = False


def host(store: KeyValueStore, records: Records) -> Flask:
    """A Flask app with one launch form guarded by form_once, on the store under test."""
    app = Flask(__name__)
    app.secret_key = "test-secret"  # noqa: S105 - Flask's session, for the replay's flash
    app.extensions["tandem"] = SimpleNamespace(store=store, secret_key="form-secret")

    @app.get("/app/<launch_id>/form")
    def page(launch_id: str) -> str:
        return f"<form method=post>{form_once.once_field()}</form>"

    @app.post("/app/<launch_id>/form")
    def save(launch_id: str) -> Any:
        note = request.form.get("note", "")
        if note == "bad":
            return "problem", 422
        if note == "boom":
            raise RuntimeError("the view failed")
        if records.hold:
            records.entered.set()
            records.release.wait(10)
        records.saved.append(note)
        return redirect(f"/app/{launch_id}/saved/{len(records.saved)}", code=303)

    @app.errorhandler(FormExpired)
    def expired(error: FormExpired) -> tuple[str, int]:
        return "expired", 403

    @app.errorhandler(FormInProgress)
    def in_progress(error: FormInProgress) -> tuple[str, int]:
        return "in progress", 409

    form_once.register(app)
    return app


def minted(client: FlaskClient) -> dict[str, str]:
    return form_in(client.get(f"/app/{LAUNCH}/form").get_data(as_text=True), "/form", page="/form").hidden


def test_a_replayed_form_gets_its_first_result_and_saves_nothing(store: KeyValueStore) -> None:
    records = Records()
    client = host(store, records).test_client()
    fields = minted(client)
    first = client.post(f"/app/{LAUNCH}/form", data={**fields, "note": "37 minutes"})
    again = client.post(f"/app/{LAUNCH}/form", data={**fields, "note": "17 more minutes"})
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert records.saved == ["37 minutes"]
    other = client.post(f"/app/{LAUNCH}/form", data={**minted(client), "note": "a new form"})
    assert other.status_code == 303 and records.saved == ["37 minutes", "a new form"]  # a fresh form saves


@pytest.mark.parametrize("failure", ["bad", "boom"])  # a form with problems (422); a view that raised (500)
def test_a_failed_post_does_not_spend_its_id(store: KeyValueStore, failure: str) -> None:
    records = Records()
    app = host(store, records)
    app.testing = (
        False  # an unhandled error answers 500 (teardown frees the id) instead of raising in the test
    )
    client = app.test_client()
    fields = minted(client)
    assert client.post(f"/app/{LAUNCH}/form", data={**fields, "note": failure}).status_code in (422, 500)
    fixed = client.post(f"/app/{LAUNCH}/form", data={**fields, "note": "corrected"})
    assert fixed.status_code == 303 and records.saved == ["corrected"]


@pytest.mark.parametrize(
    "field",
    [None, "", "0" * 32 + "." + "0" * 32, "not-an-id"],  # missing, empty, forged signature, garbage
)
def test_a_post_without_a_minted_id_is_refused_and_saves_nothing(
    store: KeyValueStore, field: str | None
) -> None:
    records = Records()
    client = host(store, records).test_client()
    data = {"note": "x"} if field is None else {"note": "x", form_once.FIELD: field}
    assert client.post(f"/app/{LAUNCH}/form", data=data).status_code == 403
    assert records.saved == []


def test_an_id_is_bound_to_its_launch(store: KeyValueStore) -> None:
    records = Records()
    client = host(store, records).test_client()
    fields = minted(client)
    assert client.post(f"/app/{'M' * 32}/form", data={**fields, "note": "x"}).status_code == 403
    assert records.saved == []


def test_concurrent_copies_of_one_form_save_once(store: KeyValueStore) -> None:
    """A double click: the second POST arrives while the first is saving; it waits and gets the first's result."""
    records = Records()
    records.hold = True
    app = host(store, records)
    fields = minted(app.test_client())
    answers: dict[str, Any] = {}

    def post(name: str) -> None:
        answers[name] = app.test_client().post(f"/app/{LAUNCH}/form", data={**fields, "note": name})

    first = threading.Thread(target=post, args=("first",))
    first.start()
    assert records.entered.wait(10)  # the first POST holds the claim, inside its view
    second = threading.Thread(target=post, args=("second",))
    second.start()
    second.join(0.3)  # the second is waiting for the first, not saving
    assert records.saved == []
    records.release.set()
    first.join(10)
    second.join(10)
    assert records.saved == ["first"]
    assert answers["second"].status_code == 303
    assert answers["second"].headers["Location"] == answers["first"].headers["Location"]


def test_a_copy_that_waits_too_long_is_told_the_form_is_still_being_saved(
    store: KeyValueStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records()
    records.hold = True
    app = host(store, records)
    monkeypatch.setattr(form_once, "WAIT_SECONDS", 0.0)
    fields = minted(app.test_client())
    first = threading.Thread(target=lambda: app.test_client().post(f"/app/{LAUNCH}/form",
                                                                   data={**fields, "note": "first"}))  # fmt: skip
    first.start()
    assert records.entered.wait(10)
    late = app.test_client().post(f"/app/{LAUNCH}/form", data={**fields, "note": "second"})
    records.release.set()
    first.join(10)
    assert late.status_code == 409 and records.saved == ["first"]


# --- the route inventory -----------------------------------------------------------------------------------


@pytest.fixture
def epic(rsps: Any, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


def test_every_post_route_is_guarded(app: Flask) -> None:
    """Every POST inside a launch, and the questionnaire links' POSTs, claim a single-use id."""
    posts = [r for r in app.url_map.iter_rules() if "POST" in (r.methods or set())]
    launch_posts = [r for r in posts if "launch_id" in r.arguments]
    assert len(launch_posts) >= 25  # the inventory is not empty by accident
    for rule in launch_posts:
        assert form_once.guarded(app, rule.endpoint, "POST"), rule.rule
    link_posts = [r for r in posts if r.rule.startswith("/r/")]
    assert {r.endpoint for r in link_posts} == set(form_once.LINK_ENDPOINTS)
    for rule in link_posts:
        assert form_once.guarded(app, rule.endpoint, "POST"), rule.rule


def test_every_launch_post_refuses_a_form_without_its_single_use_id(
    app: Flask, client: FlaskClient, epic: RecordedEHR
) -> None:
    """With a valid CSRF token, a POST whose form has no minted id (a hand-made or pre-upgrade form) saves nothing."""
    launch_id = full_launch(client, epic)
    page = client.get(f"/app/{launch_id}/", base_url=APP_BASE).get_data(as_text=True)
    csrf = form_in(page, "/end").hidden["csrf_token"]
    posts = [path for method, path in app_routes(app) if method == "POST" and not path.startswith(PORTAL)]
    calls_before = len(epic.fhir_calls)
    for path in posts:
        answer = post_from(client, f"/app/{launch_id}/", fill(path, launch_id), {"csrf_token": csrf})
        assert answer.status_code == 403, (path, answer.status_code)
        assert "This form has expired" in answer.get_data(as_text=True)
    assert len(epic.fhir_calls) == calls_before  # refused before anything was read


def test_every_launch_form_carries_a_fresh_single_use_id(actions: Actions, epic: RecordedEHR) -> None:
    actions.launch(epic)
    first = form_in(actions.get().get_data(as_text=True), "/end").hidden[form_once.FIELD]
    second = form_in(actions.get().get_data(as_text=True), "/end").hidden[form_once.FIELD]
    assert first and second and first != second


def test_the_store_keeps_no_form_content(redis_store: RedisStore) -> None:
    """What the store keeps per form: a hash of the scope and the id's random part; never a launch id or answers."""
    records = Records()
    client = host(redis_store, records).test_client()
    fields = minted(client)
    client.post(f"/app/{LAUNCH}/form", data={**fields, "note": "a private note"})
    raw = redis.Redis.from_url(redis_store.url, decode_responses=True)
    keys = [k for k in raw.keys("tandem:form-once:*")]
    assert len(keys) == 1 and LAUNCH not in keys[0]
    assert "private" not in str(raw.get(keys[0]))
    raw.close()

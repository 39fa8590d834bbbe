"""Issue 26 §4: 40 concurrent date-of-birth guesses beat the questionnaire link's 5-try limit (the counter was read
and rewritten without a lock). The try is now counted atomically before the date is compared: 5 means 5, on Redis
and on the embedded in-process store, through the store and through the app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask import Flask

from fhir_mappings.common.identity import PatientKey
from launch.store import EmbeddedStore, KeyValueStore, RedisStore
from smartapp.selfreport.links import MAX_ATTEMPTS, QuestionnaireLinks
from tests.forms import form_in

ISS = "https://ehr.test/fhir"
BORN = date(1980, 2, 3)
WRONG = date(1981, 2, 3)
GUESSES = 40


class CountingLinks(QuestionnaireLinks):
    """The real link store, counting how many dates of birth it compared (each comparison computes one HMAC)."""

    compared = 0
    _lock = threading.Lock()

    def _dob_mac(self, born: date, token: str) -> str:
        with CountingLinks._lock:
            CountingLinks.compared += 1
        return super()._dob_mac(born, token)


def _concurrently(action: Callable[[], Any], times: int = GUESSES) -> list[Any]:
    barrier = threading.Barrier(times)
    results: list[Any] = [None] * times

    def run(index: int) -> None:
        barrier.wait()
        results[index] = action()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture(params=["redis", "embedded"])
def store(request: pytest.FixtureRequest) -> KeyValueStore:
    # Links work on both stores (launch/store.py): the count must be atomic on each.
    if request.param == "redis":
        return RedisStore(request.getfixturevalue("redis_url"), prefix=f"tandem-test-{id(request)}:")
    return EmbeddedStore()


def test_forty_concurrent_wrong_guesses_evaluate_at_most_five_and_void_the_link(store: KeyValueStore) -> None:
    links = CountingLinks(store, "secret")
    token, _ = links.create(PatientKey(ISS, "p1"), "phq9", BORN, None, 7)
    CountingLinks.compared = 0
    results = _concurrently(lambda: links.confirm(token, WRONG))
    assert results == [None] * GUESSES
    assert CountingLinks.compared <= MAX_ATTEMPTS  # 5 means 5
    assert links.get(token) is None and links.attempts_left(token) == 0  # void
    assert links.confirm(token, BORN) is None  # the right date after the void is refused


@pytest.mark.parametrize(("wrong_first", "then_right"), [
    (0, True),  # right at once
    (MAX_ATTEMPTS - 1, True),  # the last try still works
    (MAX_ATTEMPTS, False),  # five wrong dates: the link is void (the care manager sends another)
])  # fmt: skip
def test_wrong_dates_before_the_right_one(store: KeyValueStore, wrong_first: int, then_right: bool) -> None:
    links = QuestionnaireLinks(store, "secret")
    token, _ = links.create(PatientKey(ISS, "p1"), "phq9", BORN, None, 7)
    for n in range(wrong_first):
        assert links.confirm(token, WRONG) is None
        assert links.attempts_left(token) == max(0, MAX_ATTEMPTS - n - 1)
    secret = links.confirm(token, BORN)
    assert (secret is not None) == then_right
    if secret is not None:
        assert links.visit(token, secret) is not None and links.visit(token, "another browser") is None
        assert links.attempts_left(token) == MAX_ATTEMPTS - wrong_first  # the right date gave its try back


def _opened(app: Flask, token: str) -> tuple[Any, dict[str, str]]:
    """A browser (test client) that opened the link's date-of-birth page, and that form's hidden fields."""
    client = app.test_client()
    page = client.get(f"/r/{token}", base_url="https://tandem.test")
    assert page.status_code == 200
    return client, form_in(page.get_data(as_text=True), f"/r/{token}", page=f"/r/{token}").hidden


def test_forty_concurrent_guesses_through_the_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    services = app.extensions["tandem"]
    links = QuestionnaireLinks(services.store, services.secret_key)
    token, _ = links.create(PatientKey(ISS, "p1"), "phq9", BORN, None, 7)
    monkeypatch.setattr("smartapp.selfreport.link_views.QuestionnaireLinks", CountingLinks)
    CountingLinks.compared = 0
    wrong = {"day": str(WRONG.day), "month": str(WRONG.month), "year": str(WRONG.year)}

    # Each guesser opens the page first, as a browser would (every form carries its own single-use id).
    opened = [_opened(app, token) for _ in range(GUESSES)]
    turn = iter(range(GUESSES))
    turn_lock = threading.Lock()

    def guess() -> int:
        with turn_lock:
            client, hidden = opened[next(turn)]
        return client.post(
            f"/r/{token}", data={**hidden, **wrong}, base_url="https://tandem.test"
        ).status_code

    statuses = _concurrently(guess)
    assert CountingLinks.compared <= MAX_ATTEMPTS
    assert statuses.count(422) <= MAX_ATTEMPTS - 1 and set(statuses) <= {422, 410}
    right = {"day": str(BORN.day), "month": str(BORN.month), "year": str(BORN.year)}
    client, hidden = opened[0]
    assert (
        client.post(f"/r/{token}", data={**hidden, **right}, base_url="https://tandem.test").status_code
        == 410
    )


def test_the_remembered_result_of_a_link_form_holds_no_token(app: Flask) -> None:
    # Redis keeps only a link token's hash (smartapp/selfreport/links.py); the single-use form id's remembered
    # result (the redirect after the date of birth, /r/<token>/start) must not keep the live token in clear.
    import redis as redis_client

    from launch.store import RedisStore

    services = app.extensions["tandem"]
    assert isinstance(services.store, RedisStore)
    token, _ = QuestionnaireLinks(services.store, services.secret_key).create(
        PatientKey(ISS, "p2"), "phq9", BORN, None, 7
    )
    client, hidden = _opened(app, token)
    right = {"day": str(BORN.day), "month": str(BORN.month), "year": str(BORN.year)}
    answer = client.post(f"/r/{token}", data={**hidden, **right}, base_url="https://tandem.test")
    assert answer.status_code == 303 and token in answer.headers["Location"]
    raw = redis_client.Redis.from_url(services.store.url)
    values = [raw.get(k) or b"" for k in raw.keys("*") if raw.type(k) == b"string"]
    assert not [v for v in values if token.encode() in v]
    # A replay of that form still lands on the visit's page, with the token put back from the address.
    replay = client.post(f"/r/{token}", data={**hidden, **right}, base_url="https://tandem.test")
    assert replay.status_code == 303 and replay.headers["Location"].endswith(f"/r/{token}/start")

"""Every form is protected by Flask-WTF's CSRFProtect, with one CSRF secret per launch (a path-scoped,
partitioned cookie), so side-by-side launches never disturb each other and a token works for its launch only."""

from __future__ import annotations

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey

from ..conftest import APP_BASE, Actions, make_ehr, post_from
from ..ehr import RecordedEHR
from ..forms import form_in

PHQ9_ITEM9_POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}


@pytest.fixture
def epic(rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    return make_ehr("epic", rsps, ehr_signing_key)


def test_the_pages_own_form_ends_the_session(actions: Actions, epic: RecordedEHR) -> None:
    actions.launch(epic)
    ended = actions.submit("", action="/end")
    assert ended.status_code == 303 and ended.headers["Location"].endswith("/ended")
    assert actions.get().status_code == 401


@pytest.mark.parametrize(
    ("token", "referer", "reason"),
    [
        (None, "page", "The CSRF token is missing."),
        ("0" * 64, "page", "The CSRF token is invalid."),
        ("page", None, "The referrer header is missing."),
        ("page", "https://evil.example/form", "The referrer does not match the host."),
    ],
)
def test_a_forged_or_broken_form_is_refused_and_the_launch_lives_on(
    actions: Actions, epic: RecordedEHR, token: str | None, referer: str | None, reason: str
) -> None:
    actions.launch(epic)
    page = actions.get().get_data(as_text=True)
    data = (
        {}
        if token is None
        else {"csrf_token": form_in(page, "/end").hidden["csrf_token"] if token == "page" else token}
    )
    headers = (
        {} if referer is None else {"Referer": APP_BASE + actions.path() if referer == "page" else referer}
    )
    refused = actions.client.post(actions.path("end"), data=data, headers=headers, base_url=APP_BASE)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "This form has expired" in html and reason in html
    assert actions.get().status_code == 200


def test_a_token_works_for_its_own_launch_only(client: FlaskClient, epic: RecordedEHR) -> None:
    first, second = Actions(client), Actions(client)
    first.launch(epic)
    second.launch(epic)
    token_of_first = form_in(first.get().get_data(as_text=True), "/end").hidden["csrf_token"]
    assert second.get().status_code == 200  # the second launch has its own CSRF secret now
    refused = second.post("end", {"csrf_token": token_of_first})
    assert refused.status_code == 403
    assert "The CSRF tokens do not match." in refused.get_data(as_text=True)
    assert second.submit("", action="/end").status_code == 303  # its own token still works
    assert first.submit("", action="/end").status_code == 303


def test_each_launch_keeps_its_csrf_secret_in_its_own_partitioned_cookie(
    client: FlaskClient, epic: RecordedEHR
) -> None:
    first, second = Actions(client), Actions(client)
    first.launch(epic)
    second.launch(epic)
    for actions in (first, second):
        cookies = actions.get().headers.getlist("Set-Cookie")
        (form_cookie,) = [c for c in cookies if c.startswith("tandem_form=")]
        assert f"Path=/app/{actions.launch_id}/;" in form_cookie
        for attribute in ("HttpOnly", "Secure", "SameSite=None", "Partitioned"):
            assert attribute in form_cookie
        assert not [c for c in actions.get().headers.getlist("Set-Cookie") if c.startswith("tandem_form=")]
    # Outside a launch nothing sets a session cookie.
    assert not client.get("/", base_url=APP_BASE).headers.getlist("Set-Cookie")


def test_a_screening_whose_token_is_refused_comes_back_with_its_answers_and_saves_on_save_again(
    app: Flask, actions: Actions, epic: RecordedEHR
) -> None:
    actions.launch(epic)
    form = form_in(actions.get("screen/phq9").get_data(as_text=True), "/screen/phq9")
    stale = {**form.hidden, "csrf_token": "stale", **PHQ9_ITEM9_POSITIVE}
    kept = actions.post("screen/phq9", stale, page="screen/phq9")
    html = kept.get_data(as_text=True)
    assert kept.status_code == 403 and "your PHQ-9 answers are kept below" in html and "act on it now" in html
    assert all(f'name="{k}" value="{v}"' in html for k, v in PHQ9_ITEM9_POSITIVE.items())
    assert app.extensions["tandem"].screenings.pending() == []  # nothing was saved from the refused post

    again = form_in(html, "/screen/phq9", page=actions.path("screen/phq9"))
    assert (
        again.hidden["csrf_token"] != "stale"
        and again.hidden["submission_id"] == form.hidden["submission_id"]
    )
    saved = post_from(actions.client, actions.path("screen/phq9"), actions.path("screen/phq9"), again.hidden)
    assert saved.status_code == 303
    result = actions.client.get(saved.headers["Location"], base_url=APP_BASE).get_data(as_text=True)
    assert "Safety alert" in result

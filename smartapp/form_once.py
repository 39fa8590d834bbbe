"""Single-use form ids: no form is ever saved twice (Back + resubmit, a double click, the same form in two tabs).

Every rendered form carries a fresh id (`form_fields()` adds it to every launch form; the questionnaire-link forms
call `once_field()`), signed and bound to where it was rendered: the launch, or the questionnaire link (and, once
the date of birth is confirmed, the link's visit). One `before_request` hook guards every POST route of a launch
and of the questionnaire links; it claims the id atomically in the store before the view runs:

- the first POST claims it (`pending`) and runs; when its answer is a redirect (Post/Redirect/Get: success), the
  redirect target is remembered for `RESULT_SECONDS`, and the id is spent;
- a POST whose processing failed (a form that comes back with problems, a refused write, the store down) releases
  the id: the person corrects the form and sends it again;
- a replay of a spent id (Back + resubmit, two tabs) is redirected to the first result and creates nothing;
- a concurrent replay (double click) waits for the first to finish and is given its result; if the first fails,
  the replay runs in its place; if the first takes longer than `WAIT_SECONDS`, the replay is refused with a page
  that says so (never a second record).

Ids are signed, not stored, when a page is drawn: rendering a page writes nothing, and a page still renders when
the store is down. Works on Redis and on the embedded in-process store (`KeyValueStore.set(only_if_absent=True)`
is atomic on both).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import Any

from flask import Flask, Response, flash, g, redirect, request
from markupsafe import Markup

from launch.errors import StoreUnavailable, TandemError
from smartapp import errors as app_errors

log = logging.getLogger(__name__)

#: The hidden field every form carries.
FIELD = "form_once"
#: How long a claimed id may stay `pending` (a POST that died without releasing it frees it after this).
PENDING_SECONDS = 120
#: How long the first result of a form is remembered: a launch lives 12 hours.
RESULT_SECONDS = 12 * 3600
#: How long a concurrent replay waits for the first POST of the same form.
WAIT_SECONDS = 20.0
_POLL_SECONDS = 0.05
_PENDING = "pending"
_DONE = "done:"
_VALUE = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})$")
#: Endpoints of the questionnaire links (no launch): bound to the link, or to the link's confirmed visit.
LINK_ENDPOINTS = {"selflink.open_link": "link", "selflink.answer": "visit"}
#: The visit cookie of a questionnaire link (selfreport.link_views.VISIT_COOKIE; named here to keep imports one-way).
VISIT_COOKIE = "tandem_link_visit"
#: Flashed when a replayed form is redirected to its first result.
ALREADY_SAVED = "This form was already sent; it was saved once, and here is the result."


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _secret() -> str:
    from smartapp.request_context import services

    return services().secret_key


def _store() -> Any:
    from smartapp.request_context import services

    return services().store


def scope_for_request() -> str | None:
    """What this request's forms are bound to: the launch in the address, the questionnaire link (its date-of-birth
    form) or the link's confirmed visit (its questionnaire); None for a request that has no forms."""
    args = request.view_args or {}
    if "launch_id" in args:
        return f"launch:{args['launch_id']}"
    kind = LINK_ENDPOINTS.get(request.endpoint or "")
    token = str(args.get("token", ""))
    if kind == "link" and token:
        return f"link:{_fingerprint(token)}"
    if kind == "visit" and token:
        visit = request.cookies.get(VISIT_COOKIE) or getattr(g, "link_visit", None) or ""
        return f"visit:{_fingerprint(token)}:{_fingerprint(visit)}" if visit else None
    return None


def _sign(scope: str, value: str) -> str:
    message = "\x1f".join(("form-once", scope, value)).encode()
    return hmac.new(_secret().encode(), message, hashlib.sha256).hexdigest()[:32]


def mint(scope: str) -> str:
    """A fresh single-use id for one rendered form, signed for `scope`."""
    value = secrets.token_hex(16)
    return f"{value}.{_sign(scope, value)}"


def verified(scope: str, field: str | None) -> str | None:
    """The id's value when `field` is an id minted for `scope`; None otherwise."""
    match = _VALUE.match(field or "")
    if match is None or not hmac.compare_digest(_sign(scope, match.group(1)), match.group(2)):
        return None
    return match.group(1)


def once_field() -> Markup:
    """The hidden field of a fresh single-use id for a form on this page (empty where a page has no forms)."""
    scope = scope_for_request()
    if scope is None:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, mint(scope))


def _key(scope: str, value: str) -> str:
    return f"form-once:{_fingerprint(scope)}:{value}"


def guarded(app: Flask, endpoint: str | None, method: str) -> bool:
    """Whether a POST to `endpoint` is guarded: every POST of a launch and of the questionnaire links (the CDS
    service's calls come from the EHR, not a form, and sign-in's forms belong to the EHR's authorization)."""
    if method != "POST" or endpoint is None:
        return False
    if endpoint in LINK_ENDPOINTS:
        return True
    rule = next((r for r in app.url_map.iter_rules(endpoint)), None)
    return rule is not None and "launch_id" in rule.arguments


def _replay(location: str) -> Response:
    if request.view_args and "launch_id" in request.view_args:
        flash(ALREADY_SAVED)
    return redirect(_with_token(location), code=303)  # type: ignore[return-value]


#: Stands for a questionnaire link's token in a remembered result: the store keeps only the token's hash.
_LINK_MARK = "{link-token}"


def _without_token(location: str) -> str:
    token = str((request.view_args or {}).get("token", ""))
    return location.replace(token, _LINK_MARK) if token else location


def _with_token(location: str) -> str:
    token = str((request.view_args or {}).get("token", ""))
    return location.replace(_LINK_MARK, token) if token else location


def already_saved() -> bool:
    """Whether this POST's form id has already been spent on a saved result (a form sent again, e.g. after its
    launch ended): such a form is never kept to be saved a second time. False when the id is not valid, not yet
    used, or the store does not answer."""
    scope = scope_for_request()
    value = verified(scope, request.form.get(FIELD)) if scope is not None else None
    if value is None:
        return False
    try:
        state = _store().get(_key(str(scope), value))
    except TandemError:
        return False
    return state is not None and state.startswith(_DONE)


def claim() -> Response | None:
    """before_request: claim this POST's form id, or answer a replay with the first result."""
    from flask import current_app

    if not guarded(current_app, request.endpoint, request.method):
        return None
    scope = scope_for_request()
    value = verified(scope, request.form.get(FIELD)) if scope is not None else None
    if value is None:
        raise app_errors.FormExpired("the form's single-use id is missing, or was not issued for this page")
    key = _key(str(scope), value)
    store = _store()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if store.set(key, _PENDING, PENDING_SECONDS, only_if_absent=True):
            g.form_once = key
            return None
        state = store.get(key)
        if state is not None and state.startswith(_DONE):
            log.info("form replayed: answered with its first result")
            return _replay(state[len(_DONE) :])
        if state is not None and time.monotonic() >= deadline:
            raise app_errors.FormInProgress("the same form is still being saved by an earlier request")
        if state is not None:
            time.sleep(_POLL_SECONDS)  # the first POST is running: wait for its result (or its failure)


def saved_without_redirect(location: str) -> None:
    """A view whose success is a page shown once (a secret, like a new questionnaire link), not a redirect: the
    form is spent all the same, and a replay goes to `location` (never a second record, never the secret again)."""
    g.form_once_result = location


def settle(response: Response) -> Response:
    """after_request: a redirect is the form's result (remembered for replays); anything else frees the id."""
    key = g.pop("form_once", None)
    if key is None:
        return response
    shown_once = g.pop("form_once_result", None)
    location = response.headers.get("Location", "")
    result = None
    if shown_once is not None and response.status_code == 200:
        result = shown_once
    elif 300 <= response.status_code < 400 and location:
        result = _local(location)
    try:
        if result is not None:
            _store().set(key, _DONE + _without_token(result), RESULT_SECONDS)
        else:
            _store().delete(key)
    except StoreUnavailable:
        log.warning("form result not remembered: the store did not answer")
    return response


def _local(location: str) -> str:
    """The redirect target as a path on Tandem (a replay never leaves Tandem)."""
    from urllib.parse import urlsplit

    if location.startswith("/") and not location.startswith("//"):
        return location
    parts = urlsplit(location)
    if parts.netloc and parts.netloc != request.host:
        return "/"
    return (
        (parts.path or "/")
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def release(_error: BaseException | None) -> None:
    """teardown_request: a POST that ended without an answer (an unhandled error) frees its id."""
    key = g.pop("form_once", None)
    if key is None:
        return
    try:
        _store().delete(key)
    except TandemError:
        log.warning("form id not released: the store did not answer (it frees itself)")


def register(app: Flask) -> None:
    """After the launch loader and CSRFProtect: a foreign or forged POST is refused before any id is claimed."""
    app.before_request(claim)
    app.after_request(settle)
    app.teardown_request(release)
    app.jinja_env.globals["once_field"] = once_field

"""Flask glue shared by the blueprints: services, the browser cookie, CSRF, the current launch."""

from __future__ import annotations

import hashlib
import hmac
from typing import cast

from flask import Response, current_app, g, request

from launch import errors
from launch.sessions import LaunchSession, new_browser_id

from .services import Services

BROWSER_COOKIE = "tandem_browser"


def services() -> Services:
    return cast(Services, current_app.extensions["tandem"])


def browser_id() -> str | None:
    return request.cookies.get(BROWSER_COOKIE) or None


def browser_id_for_response() -> str:
    """The browser id of this request, or a new one that `set_browser_cookie` will send."""
    existing = browser_id()
    if existing:
        return existing
    if "new_browser_id" not in g:
        g.new_browser_id = new_browser_id()
    return cast(str, g.new_browser_id)


def set_browser_cookie(response: Response) -> Response:
    """EHRs embed Tandem in iframes with third-party cookies blocked: a partitioned, SameSite=None cookie."""
    value = g.get("new_browser_id")
    if value:
        response.set_cookie(
            BROWSER_COOKIE,
            value,
            max_age=services().settings.session_ttl,
            path="/",
            secure=True,
            httponly=True,
            samesite="None",
            partitioned=True,
        )
    return response


def csrf_token(session: LaunchSession) -> str:
    message = f"csrf:{session.id}:{session.browser}".encode()
    return hmac.new(services().secret_key.encode(), message, hashlib.sha256).hexdigest()


def check_csrf(session: LaunchSession) -> None:
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent, csrf_token(session)):
        raise errors.CSRFError("the form's CSRF token is missing or wrong")


def current_launch(launch_id: str) -> LaunchSession:
    """The launch session named in the URL, only for the browser that started it."""
    session = services().sessions.get(launch_id, browser_id())
    g.launch = session
    return session

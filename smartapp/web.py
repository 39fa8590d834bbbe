"""Flask glue shared by the blueprints: services, the launch cookies, CSRF, the current launch."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, cast

from flask import Response, current_app, g, request

from fhir_mappings.patient import display_name
from fhir_mappings.registry import Member
from launch import errors
from launch.fhir import FHIRClient
from launch.sessions import LaunchSession

from .services import Services

#: Per launch, scoped to the launch's path /app/<id>/.
SESSION_COOKIE = "tandem_session"
#: Per pending authorization, scoped to /callback and named after the state.
AUTH_COOKIE_PREFIX = "tandem_auth_"


def services() -> Services:
    return cast(Services, current_app.extensions["tandem"])


def auth_cookie_name(state: str) -> str:
    return AUTH_COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


def set_secret_cookie(response: Response, name: str, value: str, *, path: str, max_age: int) -> None:
    """EHRs embed Tandem in iframes with third-party cookies blocked: partitioned, SameSite=None, Secure."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=True, httponly=True, samesite="None", partitioned=True
    )


def session_path(launch_id: str) -> str:
    return f"/app/{launch_id}/"


def csrf_token(session: LaunchSession) -> str:
    message = f"csrf:{session.id}:{session.binding}".encode()
    return hmac.new(services().secret_key.encode(), message, hashlib.sha256).hexdigest()


def check_csrf(session: LaunchSession) -> None:
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent, csrf_token(session)):
        raise errors.CSRFError("the form's CSRF token is missing or wrong")


def current_launch(launch_id: str) -> LaunchSession:
    """The launch session named in the URL, only for the browser that started it."""
    session = services().sessions.get(launch_id, request.cookies.get(SESSION_COOKIE))
    g.launch = session
    return session


def current_user(session: LaunchSession, ehr: FHIRClient) -> Member | None:
    """The signed-in user from `fhirUser` (a relative reference), with a name when the EHR lets us read it."""
    reference = session.context.fhir_user
    if not reference or not session.context.fhir_user_type:
        return None
    relative = f"{session.context.fhir_user_type}/{reference.rstrip('/').split('/')[-1]}"
    try:
        name = display_name(ehr.read_reference(reference))
    except (errors.FHIRForbidden, errors.FHIRNotFound, errors.UnsafeURL, errors.FHIRBadRequest):
        name = None  # the user's own resource is not always readable; the reference still identifies them
    return Member(relative, name)


def header_context(session: LaunchSession, ehr: FHIRClient) -> dict[str, Any]:
    """What every page of a launch shows in its header: the user, the EHR, the CSRF token for its forms."""
    reg = services().registrations.get(session.iss)
    user = current_user(session, ehr)
    return {
        "launch": session,
        "ehr_name": reg.label if reg else session.iss,
        "user": user,
        "user_reference": session.context.fhir_user,
        "user_name": user.display if user else None,
        "csrf_token": csrf_token(session),
    }

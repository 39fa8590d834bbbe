"""SMART App Launch endpoints: /launch, /callback, and the app's public keys."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from launch.errors import TandemError
from launch.sessions import LaunchSession
from smartapp.access import PORTAL_TYPES
from smartapp.cds.service import CARD_KEY
from smartapp.cds.views import cds_service
from smartapp.request_context import (
    SESSION_COOKIE,
    auth_cookie_name,
    public_base,
    services,
    session_path,
    set_secret_cookie,
)

bp = Blueprint("signin", __name__, template_folder="templates")


def redirect_uri() -> str:
    return public_base() + url_for("signin.callback")


@bp.get("/launch")
def launch() -> Response:
    """EHR launch (`iss` + `launch`) or standalone launch (`iss` only): `begin_launch`, then the redirect."""
    svc = services()
    card = request.args.get("cdsCard")
    started = svc.launch_flow.begin_launch(
        request.args,
        redirect_uri=redirect_uri(),
        query_length=len(request.query_string),
        # A CDS card's opaque key (an EHR that drops appContext still opens the card's page); kept only if valid.
        app_state=card if card and CARD_KEY.match(card) else None,
    )
    if started.authorize.use_post:
        response = Response(render_template("authorize_post.html", authorize=started.authorize))
    else:
        response = redirect(started.authorize.url, code=302)  # type: ignore[assignment]
    # Named after the state, so simultaneous launches in one browser never overwrite each other's binding.
    set_secret_cookie(response, auth_cookie_name(started.state), started.binding_secret, path="/callback",
                      max_age=svc.sessions.pending_ttl)  # fmt: skip
    return response


@bp.get("/callback")
def callback() -> Response:
    """`complete_launch` with the cookie named after the state, then the chart of the new launch."""
    svc = services()
    pending_cookie = auth_cookie_name(request.args.get("state", ""))
    completed = svc.launch_flow.complete_launch(request.args, request.cookies.get(pending_cookie))
    session = completed.session
    response: Response = redirect(first_page(session, completed.app_state), code=303)  # type: ignore[assignment]
    set_secret_cookie(response, SESSION_COOKIE, completed.secret, path=session_path(session.id),
                      max_age=svc.sessions.session_ttl)  # fmt: skip
    response.delete_cookie(pending_cookie, path="/callback", secure=True, httponly=True, samesite="None",
                           partitioned=True)  # fmt: skip
    return response


def card_key(session: LaunchSession, app_state: str | None) -> str | None:
    """The CDS card the launch came from: `appContext` from the token response where the EHR passes it (a JSON
    string), else the opaque key in the launch URL (Oracle Health drops appContext)."""
    app_context = session.context.extras.get("appContext")
    if isinstance(app_context, str):
        try:
            parsed = json.loads(app_context)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("cdsCard"), str):
            return str(parsed["cdsCard"])
    return app_state


def first_page(session: LaunchSession, app_state: str | None) -> str:
    """The chart, or the page of the CDS card the launch came from, for the patient the EHR launched with."""
    if session.context.fhir_user_type in PORTAL_TYPES:  # the patient portal: the patient's own questionnaires
        return url_for("selfreport.home", launch_id=session.id)
    home = url_for("chart.home", launch_id=session.id)
    card = card_key(session, app_state)
    if card is None:
        return home
    try:
        target = cds_service().card_target(card, session.iss, session.context.patient)
    except TandemError:
        return home  # the card's page is a convenience; the chart always opens
    if target is None:
        return home
    action = target.get("action")
    if action == "safety":
        return url_for("safety.queue", launch_id=session.id)
    if action == "screen" and target.get("instrument"):
        return url_for("chart.screen", launch_id=session.id, key=target["instrument"])
    if action == "patient" and target.get("careplan"):
        return url_for("caseload.enrolment_page", launch_id=session.id, careplan_id=target["careplan"])
    return home


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(services().keys.public_jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response

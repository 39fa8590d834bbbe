"""SMART App Launch endpoints: /launch, /callback, and the app's public keys."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from smartapp.request_context import (
    SESSION_COOKIE,
    auth_cookie_name,
    services,
    session_path,
    set_secret_cookie,
)

bp = Blueprint("signin", __name__, template_folder="templates")


def redirect_uri() -> str:
    base = services().settings.base_url
    return f"{base.rstrip('/')}/callback" if base else url_for("signin.callback", _external=True)


@bp.get("/launch")
def launch() -> Response:
    """EHR launch (`iss` + `launch`) or standalone launch (`iss` only): `begin_launch`, then the redirect."""
    svc = services()
    started = svc.launch_flow.begin_launch(
        request.args, redirect_uri=redirect_uri(), query_length=len(request.query_string)
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
    response: Response = redirect(url_for("chart.home", launch_id=session.id), code=303)  # type: ignore[assignment]
    set_secret_cookie(response, SESSION_COOKIE, completed.secret, path=session_path(session.id),
                      max_age=svc.sessions.session_ttl)  # fmt: skip
    response.delete_cookie(pending_cookie, path="/callback", secure=True, httponly=True, samesite="None",
                           partitioned=True)  # fmt: skip
    return response


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(services().keys.public_jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response

"""SMART App Launch endpoints: /launch, /callback, and the app's public keys."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from launch import errors
from launch.context import parse_launch_context
from launch.oauth import build_authorize_request, fhir_user_from_claims, new_code_verifier, new_state
from launch.sessions import PendingAuthorization, fingerprint, new_secret
from launch.transport import is_registration_problem
from smartapp.request_context import (
    SESSION_COOKIE,
    auth_cookie_name,
    services,
    session_path,
    set_secret_cookie,
)

log = logging.getLogger(__name__)
bp = Blueprint("launch", __name__, template_folder="templates")

_MAX_PARAM = 8192
#: The longest /launch query Tandem accepts: what fits in gunicorn's largest request line (8190 bytes) with the
#: method, path and protocol (docker/Dockerfile sets that limit).
MAX_LAUNCH_QUERY = 8100


def redirect_uri() -> str:
    base = services().settings.base_url
    return f"{base.rstrip('/')}/callback" if base else url_for("launch.callback", _external=True)


@bp.get("/launch")
def launch() -> Response:
    """EHR launch (`iss` + `launch`) or standalone launch (`iss` only)."""
    iss = request.args.get("iss", "").strip()
    launch_token = request.args.get("launch", "").strip() or None
    if not iss:
        raise errors.InvalidLaunchRequest("the launch request has no iss parameter")
    if (
        len(request.query_string) > MAX_LAUNCH_QUERY
        or len(iss) > _MAX_PARAM
        or (launch_token and len(launch_token) > _MAX_PARAM)
    ):
        raise errors.InvalidLaunchRequest("the launch request parameters are too long")
    svc = services()
    reg = svc.registrations.get(iss)
    if reg is None:
        log.warning("launch refused: issuer is not registered")
        raise errors.UnknownIssuer(
            "the EHR that launched Tandem is not in this deployment's registration file"
        )
    config = svc.discovery.smart_configuration(reg.iss)
    if config.code_challenge_methods_supported and not config.supports_s256:
        raise errors.DiscoveryError("the EHR's authorization server does not support PKCE with S256")

    binding = new_secret()
    state, verifier = new_state(), new_code_verifier()
    callback = redirect_uri()
    svc.sessions.save_pending(
        state,
        PendingAuthorization(
            binding=fingerprint(binding),
            iss=reg.iss,
            code_verifier=verifier,
            redirect_uri=callback,
            launch=launch_token,
            created_at=time.time(),
        ),
    )
    authorize = build_authorize_request(
        reg, config, redirect_uri=callback, state=state, code_verifier=verifier, launch=launch_token
    )
    log.info("launch: %s launch at %s", "EHR" if launch_token else "standalone", reg.label)
    if authorize.use_post:
        response = Response(render_template("authorize_post.html", authorize=authorize))
    else:
        response = redirect(authorize.url, code=302)  # type: ignore[assignment]
    # Named after the state, so simultaneous launches in one browser never overwrite each other's binding.
    set_secret_cookie(
        response, auth_cookie_name(state), binding, path="/callback", max_age=svc.sessions.pending_ttl
    )
    return response


@bp.get("/callback")
def callback() -> Response:
    svc = services()
    state = request.args.get("state", "")
    pending = svc.sessions.take_pending(state, request.cookies.get(auth_cookie_name(state)))
    error = request.args.get("error")
    if error:
        description = request.args.get("error_description", "")[:300]
        log.warning("authorization refused by the EHR: error=%s", error[:64])
        if is_registration_problem(error, description):
            raise errors.RegistrationProblem(
                f"the EHR answered {error[:64]}" + (f": {description}" if description else ""),
                oauth_error=error,
            )
        raise errors.AuthorizationDenied(
            f"the EHR answered {error[:64]}" + (f": {description}" if description else ""), oauth_error=error
        )
    code = request.args.get("code")
    if not code:
        raise errors.InvalidLaunchRequest("the EHR's answer has no authorization code")
    reg = svc.registrations.get(pending.iss)
    if reg is None:
        raise errors.UnknownIssuer("the EHR for this launch is no longer registered")
    config = svc.discovery.smart_configuration(reg.iss)
    tokens = svc.oauth.exchange_code(
        reg, config, code=code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier
    )
    fhir_user = None
    if tokens.id_token:
        claims = svc.oauth.validate_id_token(reg, config, tokens.id_token)
        fhir_user = fhir_user_from_claims(claims)
    context = parse_launch_context(tokens.raw, fhir_user=fhir_user)
    if not pending.launch and not context.patient:
        log.info("standalone launch finished without a patient in context")
    secret = new_secret()
    session = svc.sessions.create(secret=secret, iss=reg.iss, tokens=tokens, context=context)
    log.info("launch session started at %s (scopes granted: %d)", reg.label, len(tokens.scope.split()))
    response: Response = redirect(url_for("chart.home", launch_id=session.id), code=303)  # type: ignore[assignment]
    set_secret_cookie(
        response, SESSION_COOKIE, secret, path=session_path(session.id), max_age=svc.sessions.session_ttl
    )
    response.delete_cookie(auth_cookie_name(state), path="/callback", secure=True, httponly=True, samesite="None",
                           partitioned=True)  # fmt: skip
    return response


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(services().keys.public_jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response

"""Pages outside any launch: the landing page, the session-ended page, and health probes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, render_template

from launch import errors
from smartapp.request_context import services

log = logging.getLogger(__name__)
bp = Blueprint("site", __name__)


@bp.get("/")
def index() -> str:
    return render_template("index.html", registrations=list(services().registrations))


@bp.get("/ended")
def ended() -> str:
    return render_template("ended.html")


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve launches: Redis (or the embedded store) answers and the registry store answers."""
    svc = services()
    checks: dict[str, str] = {}
    checks["store"] = "ok" if svc.store.ping() else "unreachable"
    if svc.registry is None:
        checks["registry"] = "not configured"
    else:
        try:
            svc.registry.capabilities()
            checks["registry"] = "ok"
        except errors.TandemError as error:
            checks["registry"] = f"unreachable: {error.message}"
    ready = checks["store"] == "ok" and checks["registry"] in ("ok", "not configured")
    if svc.settings.production and checks["registry"] != "ok":
        ready = False
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503

"""Tandem's Flask app: the app factory, blueprints and error pages."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from launch import errors
from smartapp.config import Settings
from smartapp.services import Services, build_services

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    services: Services | None = None,
) -> Flask:
    """Build the app; raises ConfigurationError (naming the setting) when the configuration is bad."""
    environ = os.environ if environ is None else environ
    if services is None:
        settings = settings or Settings.from_env(environ)
        services = build_services(settings, environ)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=services.secret_key, MAX_CONTENT_LENGTH=2 * 1024 * 1024)
    app.extensions["tandem"] = services

    from smartapp import site
    from smartapp.caseload import views as caseload
    from smartapp.chart import views as chart
    from smartapp.request_context import register_launch_loader
    from smartapp.safety import views as safety
    from smartapp.signin import views as signin

    for blueprint in (site.bp, signin.bp, chart.bp, caseload.bp, safety.bp):
        app.register_blueprint(blueprint)
    register_launch_loader(app)

    @app.errorhandler(errors.TandemError)
    def tandem_error(error: errors.TandemError) -> tuple[str, int]:
        log.warning("%s on %s: %s", type(error).__name__, request.endpoint, error.message)
        if isinstance(error, errors.StoreUnavailable) and request.endpoint == "chart.screen" and request.form:
            return screening_kept(error), error.status_code
        return render_template("error.html", error=error), error.status_code

    def screening_kept(error: errors.StoreUnavailable) -> str:
        """Redis is down while a screening is saved: the answers come back in the form, nothing is lost."""
        instrument = services.catalogue.get((request.view_args or {}).get("key", ""))
        if instrument is None:
            return render_template("error.html", error=error)
        return render_template("screen_kept.html", error=error, instrument=instrument, selected=request.form,
                               launch_id=(request.view_args or {}).get("launch_id"))  # fmt: skip

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        status = error.code or 500
        page = errors.TandemError(error.description or "")
        page.title = error.name
        page.advice = "Check the address, or launch Tandem again from the EHR."
        page.status_code = status
        return render_template("error.html", error=page), status

    frame_ancestors = " ".join(["'self'", *services.registrations.frame_ancestors()])

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Framed only by Tandem itself and the EHR origins the deployment registers (no X-Frame-Options: it
        # cannot list several origins, and EHRs embed Tandem in iframes).
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            f"base-uri 'none'; frame-ancestors {frame_ancestors}",
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Launch ids travel in paths: never leak them to another site.
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith(("/app/", "/callback", "/launch")):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app

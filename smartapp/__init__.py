"""Tandem's Flask app: the app factory, blueprints and error pages."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from launch.errors import SessionExpired, StoreUnavailable, TandemError
from smartapp.config import Settings
from smartapp.error_pages import ErrorPage, page_for
from smartapp.errors import FormExpired
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
    app.config.update(
        SECRET_KEY=services.secret_key,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        # Flask's session holds only Flask-WTF's CSRF secret, one cookie per launch (LaunchFormSession).
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="None",
        SESSION_COOKIE_PARTITIONED=True,
        # A form's token lives as long as its launch: a screening filled in slowly is not refused for age.
        WTF_CSRF_TIME_LIMIT=None,
        TANDEM_TIME_ZONE=services.settings.time_zone,
    )
    from fhir_mappings.common.dates import age_range_text
    from smartapp.clock import day_element, nowrap_parts, time_element

    app.jinja_env.filters["local_time"] = time_element
    app.jinja_env.filters["local_day"] = day_element
    app.jinja_env.filters["nowrap_parts"] = nowrap_parts
    from smartapp.screening.service import said_once

    app.jinja_env.globals["said_once"] = said_once
    app.jinja_env.filters["age_range"] = age_range_text

    app.extensions["tandem"] = services
    from smartapp.serving import install_log_redaction

    # Flask logs an unhandled exception as "Exception on <path>": a link's token never reaches a log, whichever
    # server runs the app (gunicorn and the dev server add their request loggers to the same filter).
    install_log_redaction()

    from smartapp import form_once, site
    from smartapp.caseload import views as caseload
    from smartapp.cds import views as cds
    from smartapp.chart import views as chart
    from smartapp.healthysteps import views as healthysteps
    from smartapp.measures import views as measures
    from smartapp.parking import views as parking
    from smartapp.request_context import (
        LaunchFormSession,
        entered_fields,
        form_fields,
        register_launch_loader,
    )
    from smartapp.safety import views as safety
    from smartapp.selfreport import link_views as selflink
    from smartapp.selfreport import views as selfreport
    from smartapp.signin import views as signin
    from smartapp.smi import views as smi

    for blueprint in (
        site.bp,
        signin.bp,
        chart.bp,
        caseload.bp,
        healthysteps.bp,
        safety.bp,
        smi.bp,
        measures.bp,
        cds.bp,
        selfreport.bp,
        selflink.care_bp,
        selflink.bp,
        parking.bp,
        parking.portal_bp,
    ):
        app.register_blueprint(blueprint)
    app.session_interface = LaunchFormSession()
    app.jinja_env.globals["form_fields"] = form_fields
    register_launch_loader(app)
    # After the launch loader: an ended session says so before a form's token is judged.
    # CDS Hooks calls carry the EHR's signed JWT, never a browser session: no CSRF token to check.
    csrf = CSRFProtect(app)
    csrf.exempt(cds.bp)
    # A questionnaire link has no launch session: its forms are bound to the visit's SameSite=Strict cookie instead.
    csrf.exempt(selflink.bp)
    # After CSRFProtect: every POST of a launch or a questionnaire link claims its form's single-use id.
    form_once.register(app)

    @app.errorhandler(TandemError)
    def tandem_error(error: TandemError) -> tuple[str, int]:
        log.warning("%s on %s: %s", type(error).__name__, request.endpoint, error.message)
        if isinstance(error, SessionExpired) and request.method == "POST":
            # The launch ended while its form was being saved (its token expired, no refresh): kept, not lost.
            from smartapp.parking.views import park_ended_post

            parked = park_ended_post(str((request.view_args or {}).get("launch_id", "")))
            if parked is not None:
                return parked.get_data(as_text=True), parked.status_code
        page = page_for(error)
        if (
            isinstance(error, StoreUnavailable | FormExpired)
            and request.endpoint in ("chart.screen", "caseload.measure")
            and request.form
        ):
            return screening_kept(error, page), page.status
        return render_template("error.html", error=error, page=page), page.status

    def screening_kept(error: TandemError, page: ErrorPage) -> str:
        """A screening that could not be saved (Redis down, or its form's token refused) comes back in the form,
        answers and all: nothing a clinician entered is lost."""
        instrument = services.catalogue.get((request.view_args or {}).get("key", ""))
        if instrument is None:
            return render_template("error.html", error=error, page=page)
        answers = entered_fields()
        return render_template("screen_kept.html", error=error, page=page, instrument=instrument,
                               store_down=isinstance(error, StoreUnavailable), selected=answers,
                               launch_id=(request.view_args or {}).get("launch_id"))  # fmt: skip

    @app.errorhandler(CSRFError)
    def form_expired(error: CSRFError) -> tuple[str, int]:
        return tandem_error(FormExpired(f"the form was refused: {error.description}"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        page = ErrorPage(
            error.code or 500, error.name, "Check the address, or launch Tandem again from the EHR."
        )
        return render_template("error.html", error=None, detail=error.description, page=page), page.status

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
        # Launch ids travel in paths: never leak them to another site. Same-origin requests keep the Referer,
        # which Flask-WTF checks on HTTPS form posts.
        response.headers["Referrer-Policy"] = "same-origin"
        # A questionnaire link's token is its path: those pages send no Referer at all.
        if request.path.startswith("/r/"):
            response.headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith(("/app/", "/callback", "/launch")):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app

"""WSGI entry point for gunicorn: `gunicorn smartapp.wsgi:app`. A bad configuration stops the worker at start-up."""

from __future__ import annotations

import logging
import os

from smartapp.config import Settings
from smartapp.services import publish_questionnaires
from smartapp.serving import install_log_redaction

from . import create_app

_settings = Settings.from_env()
logging.basicConfig(
    level=_settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
# gunicorn's access and error logs (any --access-logformat) never show a link token or a launch secret.
install_log_redaction()
app = create_app(_settings, environ=os.environ)
publish_questionnaires(app.extensions["tandem"])

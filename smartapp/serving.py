"""Serving helpers shared by `tandem serve` and the sandbox demo, and the log redaction gunicorn shares: no
questionnaire-link token (`/r/<token>`) and no launch secret in a query string ever reaches a log."""

from __future__ import annotations

import logging
import re
from typing import Any

from werkzeug.serving import WSGIRequestHandler

#: A questionnaire link's token is the path segment after `/r/` (the link works for whoever holds it), plain or
#: percent-encoded inside a query string (`?next=%2Fr%2F<token>`).
_LINK_TOKEN = re.compile(r"(/r/|%2Fr%2F)[^/?#&\s\"'%]+", re.IGNORECASE)
#: Query parameters that carry launch secrets or one-time codes (an access-log format with %(r)s or %(q)s).
_SECRET_PARAMS = re.compile(
    r"(?<![A-Za-z0-9_])(launch|code|state|cdsCard|token|access_token|id_token|refresh_token)=[^&\s\"']+",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with link tokens and launch secrets replaced by `[redacted]`."""
    text = _LINK_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """A logging filter that redacts link tokens and launch secrets from a record's message and arguments: on
    gunicorn's access and error loggers (whatever --access-logformat a site chooses: %(r)s, %(U)s, %(q)s and
    %(f)s, the Referer, are all covered) and on the werkzeug dev server's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(
            record.args, dict
        ):  # gunicorn's atoms: changed in place, so its dict class still answers
            for key, value in list(record.args.items()):  # "-" for a header the request did not send
                record.args[key] = _redact_value(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_value(value) for value in record.args)
        return True


#: The loggers request lines reach: gunicorn's (glogging) and werkzeug's dev server.
REQUEST_LOGGERS = ("gunicorn.access", "gunicorn.error", "werkzeug")
#: Tandem's own loggers and Flask's app logger: an unhandled exception is logged as "Exception on <path>".
APP_LOGGERS = ("smartapp", "launch", "fhir_mappings")


def install_log_redaction() -> None:
    """Add the redacting filter to every logger that writes request lines (idempotent)."""
    for name in (*REQUEST_LOGGERS, *APP_LOGGERS):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


class PathOnlyLogHandler(WSGIRequestHandler):
    """Access log lines without query strings (/launch and /callback carry launch tokens and codes) and without
    questionnaire-link tokens, also on the lines werkzeug writes for a malformed request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.path = self.path.split("?", 1)[0]
        super().log_request(code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(type, "%s", redact(message % args if args else message))

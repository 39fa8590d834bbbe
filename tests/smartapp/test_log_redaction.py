"""Issue 26 §4: a questionnaire link's token appeared in access logs (`GET /r/<token>`), on the dev server and
under gunicorn. Redacted everywhere now: the werkzeug request handler, and a logging filter on gunicorn's access and
error loggers (whatever access-log format a site configures: %(r)s, %(U)s, %(q)s and the Referer %(f)s)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from smartapp.serving import PathOnlyLogHandler, RedactTokens, redact

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("line", "expected"), [
    # the link's path (smartapp/selfreport/link_views.py: /r/<token> and /r/<token>/q)
    ("GET /r/abcDEF_-123 HTTP/1.1", "GET /r/[redacted] HTTP/1.1"),
    ("POST /r/abcDEF_-123/q HTTP/1.1", "POST /r/[redacted]/q HTTP/1.1"),
    # in a Referer (gunicorn's %(f)s) and percent-encoded in a query string (%(q)s)
    ("https://tandem.example.org/r/abc123/q", "https://tandem.example.org/r/[redacted]/q"),
    ("next=%2Fr%2Fabc123%2Fq", "next=%2Fr%2F[redacted]%2Fq"),
    # launch secrets in a query string (%(r)s logs the whole request line): SMART launch and callback parameters,
    # the CDS card key (reference/cds_hooks.md §7)
    ("GET /launch?iss=https://ehr/fhir&launch=xyz HTTP/1.1", "GET /launch?iss=https://ehr/fhir&launch=[redacted] HTTP/1.1"),
    ("GET /callback?code=c1&state=s1 HTTP/1.1", "GET /callback?code=[redacted]&state=[redacted] HTTP/1.1"),
    ("GET /launch?cdsCard=5f0a HTTP/1.1", "GET /launch?cdsCard=[redacted] HTTP/1.1"),
    # what is not a secret is left alone
    ("GET /app/abc/worklist HTTP/1.1", "GET /app/abc/worklist HTTP/1.1"),
    ("GET /cds-services HTTP/1.1", "GET /cds-services HTTP/1.1"),
])  # fmt: skip
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_the_filter_redacts_gunicorn_style_dict_arguments_in_place() -> None:
    class Atoms(
        dict[str, str]
    ):  # gunicorn's SafeAtoms: a dict subclass that answers "-" for a missing header
        def __getitem__(self, key: str) -> str:
            return super().get(key, "-")

    atoms = Atoms({"r": "GET /r/tok1 HTTP/1.1", "U": "/r/tok1", "f": "https://t/r/tok1/q"})
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(U)s %(f)s %({x}i)s",
                               (atoms,), None)  # fmt: skip
    assert RedactTokens().filter(record)
    assert "tok1" not in record.getMessage() and record.getMessage().endswith(" -")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests_with_a_token(base: str, token: str) -> None:
    requests.get(f"{base}/r/{token}", timeout=10)
    requests.get(
        f"{base}/r/{token}/q?next=%2Fr%2F{token}", headers={"Referer": f"{base}/r/{token}"}, timeout=10
    )
    requests.get(f"{base}/launch?iss=https://ehr.test/fhir&launch={token}", timeout=10)
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10) as raw:
        raw.sendall(f"BROKEN /r/{token}\r\n\r\n".encode())  # a malformed request line is logged as sent
        raw.recv(1024)


@pytest.fixture
def dev_server(app: Flask) -> Iterator[str]:
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=PathOnlyLogHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


def test_the_dev_server_log_has_no_link_token(dev_server: str, caplog: pytest.LogCaptureFixture) -> None:
    token = secrets.token_urlsafe(32)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        _requests_with_a_token(dev_server, token)
    assert "/r/[redacted]" in caplog.text and "BROKEN" in caplog.text  # the requests were logged
    assert token not in caplog.text


def _dockerfile_format() -> str:
    text = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    start = text.index('"--access-logformat", "') + len('"--access-logformat", "')
    return text[start : text.index('", \\', start)].replace('\\"', '"')


@pytest.mark.parametrize("access_format", [
    "DOCKERFILE",  # the image's own format (docker/Dockerfile)
    '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s %(q)s',  # a site's own format with the request line, query and Referer
])  # fmt: skip
def test_gunicorns_logs_have_no_link_token(access_format: str, tmp_path: Path) -> None:
    access_format = _dockerfile_format() if access_format == "DOCKERFILE" else access_format
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}  # development defaults
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - our own server, fixed arguments
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--access-logfile", "-", "--error-logfile", "-", "--access-logformat", access_format,
             "smartapp.wsgi:app"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):  # the worker imports the app first
                try:
                    if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            token = secrets.token_urlsafe(32)
            _requests_with_a_token(base, token)
        finally:
            process.terminate()
            process.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert "/healthz" in text and "/r/[redacted]" in text, text[-2000:]
    assert token not in text


def test_a_link_page_sends_no_referer(client: Any) -> None:
    # The token is the page's path: with "same-origin" every asset the page loads would carry it in a Referer
    # (which a site's access-log format may record). Link pages send none.
    token = secrets.token_urlsafe(32)
    answer = client.get(f"/r/{token}", base_url="https://tandem.test")
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/healthz", base_url="https://tandem.test").headers["Referrer-Policy"] == "same-origin"


def test_flasks_own_exception_log_has_no_link_token(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    # Flask logs an unhandled exception through the app's logger as "Exception on /r/<token> [POST]": that
    # logger gets the same filter as the request loggers (review of issue 26 §4).
    token = secrets.token_urlsafe(32)
    with caplog.at_level(logging.ERROR, logger=app.logger.name):
        app.logger.error(f"Exception on /r/{token}/q [POST]")  # as Flask's log_exception formats it
    assert caplog.records and all(token not in r.getMessage() for r in caplog.records)

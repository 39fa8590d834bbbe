"""Running the sandbox's servers: local FHIR servers (sekmet-fhir) as child processes, WSGI apps in threads."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from smartapp.serving import PathOnlyLogHandler

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


class FhirServer:
    """A sekmet-fhir R4 server on loopback: SQLite in `workdir`, workflow simulator off, bound to 127.0.0.1."""

    def __init__(self, workdir: Path, port: int | None = None, *, smart_clients: list[dict[str, Any]] | None = None,
                 token_lifetime: int = 300) -> None:  # fmt: skip
        self.workdir = workdir
        self.port = port or free_port()
        self.smart_clients = smart_clients or []
        self.token_lifetime = token_lifetime
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/auth/token"

    def settings(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"types": ["none"]}
        if self.smart_clients:
            auth = {"types": ["smart"], "smart_clients": self.smart_clients, "token_lifetime": self.token_lifetime,
                    "enforce_scopes": True}  # fmt: skip
        return {
            "base_url": self.base_url,
            "host": "127.0.0.1",  # never 0.0.0.0
            "port": self.port,
            "data_dir": str(self.workdir / "data"),
            "simulator": {"enabled": False},  # it would act on Task, ServiceRequest and others
            "validation": {"inbound": "off"},
            "log_inbound": False,
            "server_auth": auth,
            "own_private_key_path": str(self.workdir / "keys" / "sekmet_private.pem"),
        }

    def start(self) -> FhirServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "settings.json"  # YAML is a superset of JSON
        config.write_text(json.dumps(self.settings(), indent=2), encoding="utf-8")
        with (self.workdir / "server.log").open("ab") as log_file:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                [sys.executable, "-m", "sekmet.cli", "serve", "--config", str(config)],
                cwd=self.workdir, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        wait_until_up(f"{self.base_url}/metadata", process=self.process)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


class ThreadedApp:
    """A WSGI app served on loopback from a background thread."""

    def __init__(
        self, app: Any, port: int | None = None, host: str = "127.0.0.1", *, quiet: bool = False
    ) -> None:
        self.host = host
        self.port = port or free_port()
        handler = _SilentHandler if quiet else PathOnlyLogHandler
        self.server: BaseWSGIServer = make_server(
            host, self.port, app, threaded=True, request_handler=handler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> ThreadedApp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _SilentHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _die_with_parent() -> None:
    """Child processes end when the demo ends, even if it is killed (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except OSError:
        pass


def load_cohort(fhir_base: str, bundles: Any, session: requests.Session | None = None) -> int:
    """PUT every resource (transactions of update-as-create): idempotent, so loading twice is harmless."""
    http = session or requests.Session()
    count = 0
    for bundle in bundles:
        response = http.post(fhir_base, json=bundle, timeout=120,
                             headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})  # fmt: skip
        if response.status_code >= 400:
            raise RuntimeError(
                f"loading the cohort failed: HTTP {response.status_code}: {response.text[:300]}"
            )
        count += len(bundle["entry"])
    return count

"""Running the sandbox's servers: local FHIR servers (sekmet-fhir, and Tandem's HAPI FHIR JPA server) as child
processes, WSGI apps in threads."""

from __future__ import annotations

import json
import logging
import os
import shutil
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


def wait_until_up(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None, *,
                  request_timeout: float = 2.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=request_timeout).status_code < 500:
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


ROOT = Path(__file__).resolve().parent.parent
HAPI_SCRIPT = ROOT / "scripts" / "hapi.sh"


class HapiUnavailable(RuntimeError):
    """The HAPI FHIR registry server's jar could not be found or built (no JDK, no Maven Central, a failed build)."""


def hapi_jar() -> Path:
    """The runnable jar of hapi/: the file TANDEM_HAPI_JAR names, else `scripts/hapi.sh path` (which builds it into
    a cache once: a first build downloads HAPI FHIR from Maven Central)."""
    named = os.environ.get("TANDEM_HAPI_JAR")
    if named:
        if not Path(named).is_file():
            raise HapiUnavailable(f"TANDEM_HAPI_JAR names {named}, which is not a file")
        return Path(named)
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [str(HAPI_SCRIPT), "path"], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HapiUnavailable(f"scripts/hapi.sh path did not finish: {exc}") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        said = result.stderr.strip().splitlines()
        # hapi.sh's own words (what failed, where the log is), then the end of Maven's output.
        detail = "\n".join([line for line in said if line.startswith("hapi.sh:")] + said[-8:])
        raise HapiUnavailable(f"scripts/hapi.sh could not build the HAPI FHIR registry server:\n{detail}")
    return Path(lines[-1])


class HapiServer:
    """Tandem's HAPI FHIR JPA server (hapi/, R4) on loopback: H2 in `workdir`, log in workdir/server.log.

    HAPI's storage defaults stand (referential integrity on write and on delete, client ids that are not all
    digits). It has no authentication, so `token_url` is None. The jar is `jar`, else `hapi_jar()`."""

    START_TIMEOUT = 120.0
    # Small heap, serial GC and the C1 compiler only: it starts faster on a shared 2-core machine.
    JVM_OPTIONS = ("-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")

    def __init__(self, workdir: Path, port: int | None = None, *, jar: Path | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.jar = jar
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def token_url(self) -> None:
        return None

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def command(self, jar: Path) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise HapiUnavailable("no java on PATH: scripts/hapi.sh build installs a JDK 17")
        workdir = self.workdir.resolve()
        return [
            java, *self.JVM_OPTIONS, "-jar", str(jar),
            "--server.address=127.0.0.1",  # never 0.0.0.0
            f"--server.port={self.port}",
            f"--server.tomcat.basedir={workdir / 'tomcat'}",
            f"--spring.datasource.url=jdbc:h2:file:{workdir / 'h2' / 'registry'}",
        ]  # fmt: skip

    def start(self) -> HapiServer:
        """Start the server and wait until it answers."""
        return self.launch().wait_until_ready()

    def launch(self) -> HapiServer:
        """Start the JVM without waiting: the server boots (20-50 s) while the caller does other work."""
        jar = self.jar or hapi_jar()
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:  # the child keeps its own descriptor
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                self.command(jar), cwd=self.workdir, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        return self

    def wait_until_ready(self) -> HapiServer:
        """Wait until /fhir/metadata answers (START_TIMEOUT); a server that does not come up is stopped."""
        if self.process is None:
            raise RuntimeError("the HAPI FHIR registry server was not launched")
        try:
            # The first CapabilityStatement takes HAPI seconds to build: a short request timeout would abandon it
            # and ask again, each time from the start.
            wait_until_up(f"{self.base_url}/metadata", timeout=self.START_TIMEOUT, process=self.process,
                          request_timeout=30.0)  # fmt: skip
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(
                f"the HAPI FHIR registry server did not start ({exc}); see {self.log_path}"
            ) from exc
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # Spring closes H2 and the JPA store cleanly
        try:
            self.process.wait(timeout=30)
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

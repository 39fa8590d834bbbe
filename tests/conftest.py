"""Shared fixtures: a real redis-server, Tandem's keys and registrations, the app, and recorded EHRs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import responses
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from launch.keys import KeyRing, generate_key_set, write_key_set
from launch.store import RedisStore
from smartapp import create_app
from smartapp.config import Settings

from .ehr import EPIC, GENERIC, ORACLE, VENDORS, RecordedEHR
from .forms import form_in

APP_BASE = "https://tandem.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on loopback for the whole run. The README's test command installs it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run the README's test command (it installs it)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    client.close()
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    yield store


HAPI_SERVER = pytest.StashKey[Any]()


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only the tests that will run count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When a test that will run uses `hapi_server`: find (or build, once: a few minutes on a fresh machine) Tandem's
    HAPI FHIR server jar and launch the server now, so it boots while the first tests run and neither the build
    nor the boot counts against one test's timeout."""
    if config.option.collectonly or not any("hapi_server" in getattr(i, "fixturenames", ()) for i in items):
        return
    from sandbox.processes import HapiServer, HapiUnavailable, hapi_jar

    try:
        workdir = Path(tempfile.mkdtemp(prefix="tandem-hapi-"))
        config.stash[HAPI_SERVER] = HapiServer(workdir, jar=hapi_jar()).launch()
    except (HapiUnavailable, OSError) as exc:
        config.stash[HAPI_SERVER] = exc


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    server = session.config.stash.get(HAPI_SERVER, None)
    if server is not None and not isinstance(server, Exception):
        server.stop()
        if exitstatus == 0:  # after a failure its folder (server.log, the H2 database) stays for a look
            shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def hapi_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Tandem's own HAPI FHIR JPA server (hapi/, R4, H2, HAPI's storage defaults: referential integrity on) on
    loopback for the whole run: a `sandbox.processes.HapiServer` (base_url, port, workdir, no token_url).
    Without a jar (no JDK, no Maven Central for the first build) it fails, in CI too: it never skips."""
    from sandbox.processes import HapiServer

    launched = request.config.stash.get(HAPI_SERVER, None)
    if isinstance(launched, Exception):
        pytest.fail(f"Tandem's HAPI FHIR registry server is not available: {launched}", pytrace=False)
    # Launched at collection, or (requested through getfixturevalue) started here and stopped after the run.
    server = launched or HapiServer(tmp_path_factory.mktemp("hapi"))
    try:
        if launched:
            server.wait_until_ready()
        else:
            server.start()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"Tandem's HAPI FHIR registry server is not available: {exc}", pytrace=False)
    yield server
    if not launched:
        server.stop()


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "tandem-keys.json"
    write_key_set(path, generate_key_set())
    return path


@pytest.fixture(scope="session")
def key_ring(key_file: Path) -> KeyRing:
    return KeyRing.load(key_file)


@pytest.fixture(scope="session")
def ehr_signing_key() -> RSAKey:
    return RSAKey.generate_key(2048)


def registration_toml(key_ring: KeyRing) -> str:
    rs384 = next(kid for kid in sorted(key_ring.kids) if "rs384" in kid)
    return f"""
[[issuer]]
iss = "{EPIC.iss}"
name = "Epic (test)"
client_id = "{EPIC.client_id}"
vendor = "epic"
auth = "public"

[[issuer]]
iss = "{ORACLE.iss}"
name = "Oracle Health (test)"
client_id = "{ORACLE.client_id}"
vendor = "oracle"
auth = "private_key_jwt"
key_id = "{rs384}"

[[issuer]]
iss = "{GENERIC.iss}"
name = "SMART sample server"
client_id = "{GENERIC.client_id}"
auth = "client_secret_basic"
client_secret_env = "TANDEM_SECRET_GENERIC"
# Legacy discovery names no issuer; this server's id_tokens carry its bare origin.
id_token_issuers = ["{GENERIC.id_token_issuer}"]
"""


@pytest.fixture
def registrations_file(tmp_path: Path, key_ring: KeyRing) -> Path:
    path = tmp_path / "registrations.toml"
    path.write_text(registration_toml(key_ring), encoding="utf-8")
    return path


@pytest.fixture
def environ(registrations_file: Path, key_file: Path, redis_url: str) -> dict[str, str]:
    return {
        "TANDEM_REDIS_URL": redis_url,
        "TANDEM_REGISTRATIONS": str(registrations_file),
        "TANDEM_KEYS_FILE": str(key_file),
        "TANDEM_BASE_URL": APP_BASE,
        "TANDEM_SECRET_KEY": "test-secret-key-0123456789abcdefghijkl",
        "TANDEM_SECRET_GENERIC": "generic-client-secret",
    }


@pytest.fixture
def app(environ: dict[str, str], redis_store: RedisStore) -> Flask:
    settings = Settings.from_env(environ)
    return create_app(settings, environ=environ)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(params=sorted(VENDORS))
def ehr(request: pytest.FixtureRequest, rsps: responses.RequestsMock, ehr_signing_key: RSAKey) -> RecordedEHR:
    """Each launch test runs against Epic-, Oracle- and generic-shaped servers."""
    return RecordedEHR(VENDORS[request.param], rsps, ehr_signing_key)


def make_ehr(vendor: str, rsps: responses.RequestsMock, key: RSAKey) -> RecordedEHR:
    return RecordedEHR(VENDORS[vendor], rsps, key)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def start_launch(client: FlaskClient, ehr: RecordedEHR, launch: str | None = "launch-abc") -> dict[str, str]:
    """GET /launch; returns the authorize request's parameters."""
    params = {"iss": ehr.shape.iss}
    if launch:
        params["launch"] = launch
    response = client.get("/launch", query_string=params, base_url=APP_BASE)
    assert response.status_code == 302, response.get_data(as_text=True)
    return query(response.headers["Location"])


def finish_launch(client: FlaskClient, state: str, code: str = "auth-code-1") -> str:
    """GET /callback; returns the launch id from the redirect to the chart."""
    response = client.get("/callback", query_string={"state": state, "code": code}, base_url=APP_BASE)
    assert response.status_code == 303, response.get_data(as_text=True)
    path = urlsplit(response.headers["Location"]).path
    assert path.startswith("/app/")
    return path.split("/")[2]


def full_launch(client: FlaskClient, ehr: RecordedEHR, launch: str | None = "launch-abc") -> str:
    return finish_launch(client, start_launch(client, ehr, launch)["state"])


def post_from(client: FlaskClient, page: str, target: str, data: dict[str, str]) -> TestResponse:
    """POST `data` to `target` as a form on `page` would: over HTTPS, with the page as Referer."""
    return client.post(target, data=data, base_url=APP_BASE, headers={"Referer": APP_BASE + page})


def submit(client: FlaskClient, page: str, data: dict[str, str] | None = None, *,
           action: str | None = None) -> TestResponse:  # fmt: skip
    """Open `page`, fill its form (the one posting to `action`, by default back to the page) with `data` beside
    the form's own hidden fields (CSRF token, minted ids), and submit it."""
    shown = client.get(page, base_url=APP_BASE)
    assert shown.status_code == 200, (page, shown.status_code)
    form = form_in(shown.get_data(as_text=True), action or page.rstrip("/"), page=page)
    return post_from(client, page, form.action or page, {**form.hidden, **(data or {})})


class Actions:
    """flaskr's AuthActions for Tandem: launch from an EHR, then use the launch's pages and forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.launch_id = ""

    def launch(self, ehr: RecordedEHR, launch: str | None = "launch-abc") -> str:
        self.launch_id = full_launch(self.client, ehr, launch)
        return self.launch_id

    def path(self, page: str = "") -> str:
        return f"/app/{self.launch_id}/{page.lstrip('/')}"

    def get(self, page: str = "") -> TestResponse:
        return self.client.get(self.path(page), base_url=APP_BASE)

    def submit(
        self, page: str, data: dict[str, str] | None = None, *, action: str | None = None
    ) -> TestResponse:
        return submit(self.client, self.path(page), data, action=action)

    def post(self, target: str, data: dict[str, str], *, page: str = "") -> TestResponse:
        """A hand-made POST (a forged or stale form) from one of this launch's pages."""
        return post_from(self.client, self.path(page), self.path(target), data)


@pytest.fixture
def actions(client: FlaskClient) -> Actions:
    return Actions(client)


@pytest.fixture(scope="session")
def world(redis_url: str) -> Iterator[Any]:
    """The whole sandbox on loopback: two sekmet-fhir servers, the sandbox EHR and Tandem, over HTTP."""
    from sandbox.world import SandboxWorld

    with SandboxWorld(size=24, seed=11, redis_url=redis_url) as started:
        yield started


@pytest.fixture
def tandem(world: Any) -> Any:
    """The services of the Tandem app running in the sandbox world."""
    return world.tandem_app.extensions["tandem"]

"""The write-back fault run over HTTP with the real servers: scripted screenings while redis-server is stopped and
restarted, the registry store is stopped and restarted, and the EHR answers 500 or loses its answers; then, with
no page opened, a real `tandem worker` process drains everything. Used by the integration test (a few
screenings) and by `benchmarks/fault_drain.py` (100, printing the counts)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import requests

from sandbox.processes import free_port
from sandbox.world import SandboxWorld

from ..forms import form_in
from .conftest import Browser, launch_id_of, launch_url

POSITIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6569-3"}
NEGATIVE = {f"phq9-{n}": "LA6570-1" for n in range(1, 9)} | {"phq9-9": "LA6568-5"}
#: Adults and adults with SMI of the size-12 cohort (PHQ-9 is for patients from 18 y; pt-0002, -0006, -0008 are not).
PATIENTS = ["pt-0001", "pt-0003", "pt-0004", "pt-0005", "pt-0007", "pt-0009", "pt-0010", "pt-0011", "pt-0012"]
MODES = ("generic", "epic", "oracle")
PHASES = ("normal", "registry down", "EHR 500", "EHR answer lost", "redis down")


class RedisServer:
    """A redis-server of its own with an append-only file, so a stop and a restart keep its data."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def _hidden(html: str) -> dict[str, str]:
    """The hidden fields of a PHQ-9 form (as first shown, or kept after a refused save)."""
    return form_in(html, "/screen/phq9", page="/screen/phq9").hidden


def _all(base: str, resource_type: str) -> list[dict[str, Any]]:
    """Every resource of a type, straight from a sekmet server (no auth), following next links."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{base}/{resource_type}?_count=200"
    while url:
        bundle = requests.get(url, timeout=30, headers={"Accept": "application/fhir+json"}).json()
        found += [e["resource"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
    return found


def _identifiers(resource: dict[str, Any]) -> list[str]:
    value = resource.get("identifier")
    items = value if isinstance(value, list) else [value]
    return [str(i.get("value")) for i in items if isinstance(i, dict)]


def run(count: int = 100, *, drain_timeout: float = 300.0, log: Any = None) -> dict[str, Any]:
    """Run the scripted screenings through every fault; return the counts."""
    say = log or (lambda _text: None)
    workdir = Path(tempfile.mkdtemp(prefix="tandem-faults-"))
    redis_server = RedisServer(workdir).start()
    world = SandboxWorld(size=12, seed=3, redis_url=redis_server.url, workdir=workdir / "world",
                         extra_env={"TANDEM_HTTP_TIMEOUT": "1", "TANDEM_RETRY_SECONDS": "2"})  # fmt: skip
    worker: subprocess.Popen[bytes] | None = None
    try:
        world.start()
        sandbox = world.sandbox_app.extensions["sandbox"]["config"]
        sandbox.lost_answer_seconds = 2.0
        tandem = world.tandem_app.extensions["tandem"]
        # One chart launch per (EHR mode, patient), opened before the faults: launching needs Redis.
        launches: list[tuple[Browser, str, str, str]] = []
        for index, patient in enumerate(PATIENTS):
            mode = MODES[index % len(MODES)]
            browser = Browser()
            launch_id = launch_id_of(browser.follow(launch_url(world, mode, patient=patient)))
            launches.append((browser, launch_id, mode, patient))

        submitted: dict[str, dict[str, Any]] = {}
        kept_while_redis_down: list[tuple[Browser, str, dict[str, str]]] = []
        forms: list[tuple[Browser, str, str, dict[str, str]]] = []
        first_down = count
        answered_503 = 0
        per_phase = max(1, count // len(PHASES))
        for number in range(count):
            phase = PHASES[min(number // per_phase, len(PHASES) - 1)]
            if number % per_phase == 0 or number == 0:
                say(f"phase: {phase}")
                if phase == "registry down":
                    world.registry.stop()
                elif phase == "EHR 500":
                    world.registry.start()
                    sandbox.write_fault = "500"
                elif phase == "EHR answer lost":
                    sandbox.write_fault = "lost"
                elif phase == "redis down":
                    sandbox.write_fault = None
            browser, launch_id, mode, patient = launches[number % len(launches)]
            if phase == "redis down" and number % per_phase == 0:
                # Forms the clinicians opened before the outage, one per screening still to come.
                first_down = number
                forms = [(b, lid, mode_of, _hidden(b.get(f"{world.tandem_url}/app/{lid}/screen/phq9").text))
                         for b, lid, mode_of, _ in (launches[k % len(launches)] for k in range(count - number))]  # fmt: skip
                redis_server.stop()
            answers = POSITIVE if number % 4 == 0 else NEGATIVE
            if phase == "redis down":
                form_browser, form_launch, form_mode, hidden = forms[number - first_down]
                posted = form_browser.post(f"{world.tandem_url}/app/{form_launch}/screen/phq9",
                                           data={**hidden, **answers}, allow_redirects=False)  # fmt: skip
                if posted.status_code == 503 and "answers are kept" in posted.text:
                    answered_503 += 1
                    # "Save again" re-posts the kept form: the answers and ids, with a fresh CSRF token.
                    kept_while_redis_down.append((form_browser, form_launch, _hidden(posted.text)))
                submitted[hidden["submission_id"]] = {"mode": form_mode, "positive": answers is POSITIVE,
                                                      "phase": phase}  # fmt: skip
                continue
            hidden = _hidden(browser.get(f"{world.tandem_url}/app/{launch_id}/screen/phq9").text)
            posted = browser.post(f"{world.tandem_url}/app/{launch_id}/screen/phq9", data={**hidden, **answers},
                                  allow_redirects=False)  # fmt: skip
            if posted.status_code != 303:
                raise AssertionError(f"screening {number} ({phase}): HTTP {posted.status_code}")
            submitted[hidden["submission_id"]] = {
                "mode": mode,
                "positive": answers is POSITIVE,
                "phase": phase,
            }

        # Redis is back; each clinician whose save was refused presses "Save again" on the kept form.
        redis_server.start()
        for browser, launch_id, data in kept_while_redis_down:
            again = browser.post(
                f"{world.tandem_url}/app/{launch_id}/screen/phq9", data=data, allow_redirects=False
            )
            if again.status_code != 303:
                raise AssertionError(f"save again after the outage: HTTP {again.status_code}")
        submitted = {sid: info for sid, info in submitted.items() if sid}

        # No page is opened from here on: a real worker process drains what is left.
        pending_before = len([r for r in tandem.screenings.pending() if not r.complete])
        env = {**os.environ, **world.environ, "TANDEM_LOG_LEVEL": "WARNING"}
        worker_log = (workdir / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "smartapp.cli", "worker"], env=env,  # noqa: S603
                                  stdout=worker_log, stderr=subprocess.STDOUT)  # fmt: skip
        worker_log.close()
        started = time.monotonic()
        while time.monotonic() - started < drain_timeout:
            records = [tandem.screenings.load(sid) for sid in submitted]
            if all(r is not None and r.complete for r in records):
                break
            time.sleep(1)
        drained_in = time.monotonic() - started

        records = {sid: tandem.screenings.load(sid) for sid in submitted}
        registry_base = world.registry.base_url
        token = tandem.registry.auth.token()
        registry_qrs: dict[str, int] = {}
        url: str | None = f"{registry_base}/QuestionnaireResponse?_count=200"
        while url:
            bundle = requests.get(url, timeout=30, headers={"Authorization": f"Bearer {token}",
                                                            "Accept": "application/fhir+json"}).json()  # fmt: skip
            for entry in bundle.get("entry", []):
                for value in _identifiers(entry["resource"]):
                    registry_qrs[value] = registry_qrs.get(value, 0) + 1
            url = next(
                (link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None
            )
        registry_tasks = {
            t.id for t in tandem.caseload.load(use_cache=False).tasks if t.kind == "safety-follow-up"
        }
        # Every part Tandem writes to the EHR carries its identifier: the submission id, `#note`, `#total`, `#item9`.
        ehr_copies: dict[str, int] = {}
        for resource_type in ("QuestionnaireResponse", "DocumentReference", "Observation"):
            for resource in _all(world.ehr.base_url, resource_type):
                for value in _identifiers(resource):
                    if value.split("#", 1)[0] in submitted:
                        ehr_copies[value] = ehr_copies.get(value, 0) + 1
        statuses: dict[str, int] = {}
        for record in records.values():
            key = "missing" if record is None else f"EHR {record.ehr.status}"
            statuses[key] = statuses.get(key, 0) + 1

        def main_part(sid: str) -> str:
            return f"{sid}#note" if submitted[sid]["mode"] != "generic" else sid

        # Lost: not recorded, or said to be saved in the EHR while the EHR does not have it.
        lost = sum(1 for sid, r in records.items()
                   if r is None or (r.ehr.status == "saved" and not ehr_copies.get(main_part(sid))))  # fmt: skip
        # Structured write-backs (generic mode) whose response is in the EHR (or unconfirmed) but whose total is not.
        missing_totals = sum(
            1 for sid, r in records.items()
            if r is not None and submitted[sid]["mode"] == "generic" and r.ehr.status in ("saved", "unconfirmed")
            and not ehr_copies.get(f"{sid}#total")
        )  # fmt: skip
        duplicated = sum(max(0, n - 1) for n in ehr_copies.values())
        positives = [sid for sid, info in submitted.items() if info["positive"]]
        return {
            "lost": lost,
            "duplicated": duplicated,
            "unconfirmed": statuses.get("EHR unconfirmed", 0),
            "time to drain (s)": round(drained_in, 1),
            "total Observations missing (structured write-backs)": missing_totals,
            "screenings submitted": count,
            "recorded (Redis)": sum(1 for r in records.values() if r is not None),
            "answered 503 with answers kept (Redis down), saved again": answered_503,
            "pending when the last page was answered": pending_before,
            "drained by the worker in s": round(drained_in, 1),
            "in the registry store exactly once": sum(1 for sid in submitted if registry_qrs.get(sid) == 1),
            "registry duplicates": sum(max(0, registry_qrs.get(sid, 0) - 1) for sid in submitted),
            "EHR write-backs written exactly once": sum(
                1 for sid in submitted if ehr_copies.get(main_part(sid)) == 1
            ),
            "EHR duplicates": duplicated,
            "EHR statuses": statuses,
            "unconfirmed and in the EHR once": sum(
                1
                for sid, r in records.items()
                if r and r.ehr.status == "unconfirmed" and ehr_copies.get(main_part(sid)) == 1
            ),  # fmt: skip
            "unconfirmed listed as pending": sum(
                1 for r in tandem.screenings.pending() if r.ehr.status == "unconfirmed" and r.id in submitted
            ),  # fmt: skip
            "positive item 9": len(positives),
            "safety Tasks in the registry": sum(
                1 for sid in positives if f"tandem-{sid}-safety" in registry_tasks
            ),
        }
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        world.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

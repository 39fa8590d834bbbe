"""`tandem demo`'s console (issue 28): the URLs and real problems only, as the README says; not a line per request
(749 access lines in 20 minutes) and not the demo's own alarming noise (embedded store, throwaway keys, the seeded
safety screenings). The real command, in its own process, used through a real launch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from sandbox.processes import free_port
from smartapp.cli import DEMO_NOISE

from .conftest import Browser

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_prints_the_urls_and_real_problems_only() -> None:
    port, sandbox_port = free_port(), free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}, "PYTHONPATH": str(ROOT)}
    demo = subprocess.Popen(  # noqa: S603 - fixed arguments
        [sys.executable, "-m", "smartapp.cli", "demo", "--size", "12", "--port", str(port),
         "--sandbox-port", str(sandbox_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out: list[str] = []
    ready = threading.Event()

    def read_stdout() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            out.append(line)
            if "Press Ctrl-C" in line:
                ready.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not ready.is_set() and demo.poll() is None and time.monotonic() < deadline:
            ready.wait(0.5)
        assert ready.is_set(), "".join(out)
        # A care manager's launch and worklist (a dozen requests through the sandbox and Tandem)…
        browser = Browser()
        worklist = browser.follow(
            f"http://127.0.0.1:{sandbox_port}/launch-app?mode=generic&practitioner=pr-cm-1&target=worklist"
        )
        assert worklist.status_code == 200 and "/worklist" in worklist.url
        # …and a real problem: a sign-in that comes back to another browser than the one that started it.
        assert requests.get(f"http://localhost:{port}/callback?code=x&state=y", timeout=30).status_code == 400
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            _, err = demo.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            demo.kill()
            _, err = demo.communicate()
        reader.join(10)
    console = "".join(out) + err
    assert demo.returncode == 0, console
    assert f"http://127.0.0.1:{sandbox_port}/" in console and f"http://localhost:{port}/" in console
    assert re.search(r'"(GET|POST) /|HTTP/1\.[01]"', console) is None, console  # no access lines
    for _, noise in DEMO_NOISE:
        assert noise not in console, console
    assert "StateMismatch" in err  # real problems still reach the console

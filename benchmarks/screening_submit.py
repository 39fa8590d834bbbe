"""Benchmark: requests and time per screening submit (registry transaction + EHR write-back) against the sandbox.

    python3 benchmarks/screening_submit.py [--submits 20] [--size 20]

Starts the sandbox world on loopback (two sekmet-fhir servers, the sandbox EHR, Tandem), launches once per vendor
mode, then submits PHQ-9s through Tandem over HTTP and prints, per mode: HTTP requests Tandem sends per submit (to
the EHR and to the registry store) and the submit's wall time (mean, median, 95th percentile).
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time

import requests

from sandbox.world import SandboxWorld

ANSWERS = {f"phq9-{n}": "LA6569-3" for n in range(1, 9)} | {"phq9-9": "LA6568-5"}


class Browser(requests.Session):
    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        for cookie in self.cookies:
            cookie.secure = False  # browsers send Secure cookies to http://localhost
        return super().prepare_request(request)


def launch(world: SandboxWorld, mode: str) -> tuple[Browser, str]:
    browser = Browser()
    url = f"{world.sandbox_url}/launch-app?mode={mode}&practitioner=pr-pcp-1&patient=pt-0001&target=chart"
    response = browser.get(url, allow_redirects=False)
    for _ in range(8):  # follow by hand so every hop goes through prepare_request (cookies) as in a browser
        if response.status_code not in (301, 302, 303):
            break
        location = response.headers["Location"]
        if location.startswith("/"):
            location = re.sub(r"^(https?://[^/]+).*$", r"\1", response.url) + location
        response = browser.get(location, allow_redirects=False)
    match = re.search(r"/app/([^/]+)/", response.url)
    if response.status_code != 200 or not match:
        raise SystemExit(f"launch failed in {mode} mode: HTTP {response.status_code}")
    return browser, match.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=20)
    parser.add_argument("--size", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level="ERROR")
    out = sys.stdout.write
    with SandboxWorld(size=args.size) as world:
        services = world.tandem_app.extensions["tandem"]
        out(f"{'mode':<9}{'write-back':<12}{'submits':>8}{'EHR req':>9}{'registry req':>14}"
            f"{'mean ms':>9}{'p50 ms':>8}{'p95 ms':>8}\n")  # fmt: skip
        for mode in ("generic", "epic", "oracle"):
            browser, launch_id = launch(world, mode)
            base = f"{world.tandem_url}/app/{launch_id}"
            timings, ehr_requests, registry_requests, kinds = [], 0, 0, set()
            for _ in range(args.submits):
                form = browser.get(f"{base}/screen/phq9").text
                hidden = dict(
                    re.findall(r'name="(csrf_token|submission_id|submission_sig)" value="([^"]+)"', form)
                )
                ehr_before, registry_before = (
                    services.transport.counter.total,
                    services.registry.counter.total,
                )
                started = time.perf_counter()
                answer = browser.post(
                    f"{base}/screen/phq9", data={**hidden, **ANSWERS}, allow_redirects=False
                )
                timings.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 303:
                    raise SystemExit(f"submit failed in {mode} mode: HTTP {answer.status_code}")
                ehr_requests += services.transport.counter.total - ehr_before
                registry_requests += services.registry.counter.total - registry_before
                kinds.add(services.screenings.load(hidden["submission_id"]).plan_kind)
            timings.sort()
            p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
            out(f"{mode:<9}{'/'.join(sorted(kinds)):<12}{args.submits:>8}{ehr_requests / args.submits:>9.1f}"
                f"{registry_requests / args.submits:>14.1f}{statistics.mean(timings):>9.1f}"
                f"{statistics.median(timings):>8.1f}{p95:>8.1f}\n")  # fmt: skip
        out("EHR requests: the creates of the write-back (QuestionnaireResponse + 2 Observations, or 1 note); "
            "the CapabilityStatement is read once per issuer and cached. Registry: one transaction.\n")  # fmt: skip


if __name__ == "__main__":
    main()

"""When EHR score refreshes run: as RQ jobs the worker's sweeper queues every TANDEM_EHR_REFRESH_MINUTES per issuer
(one queueing per period across any number of workers), or — on the embedded default with no Redis — in one
background thread of the process. `tandem ehr-scores refresh` runs one now."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from launch import errors
from smartapp.caseload.ehr_refresh import LOCK_SECONDS, ScoreRefresh, refreshable, state_key

if TYPE_CHECKING:
    from rq import Queue

    from smartapp.services import Services

log = logging.getLogger(__name__)

REFRESH_QUEUE = "tandem-ehr-refresh"


def refresh_queue(services: Services) -> Queue:
    from rq import Queue

    from smartapp.screening.writebacks import RQWritebacks

    if not isinstance(services.writebacks, RQWritebacks):
        raise errors.ConfigurationError("the job queue needs TANDEM_REDIS_URL")
    return Queue(REFRESH_QUEUE, connection=services.writebacks.connection)


def run_refresh_job(iss: str, full: bool = False) -> str:
    """The RQ job: refresh one issuer's EHR scores."""
    from smartapp.worker import job_services

    services = job_services()
    reg = services.registrations.get(iss)
    if reg is None or reg.backend is None:
        return "not registered for backend services"
    report = ScoreRefresh(services, reg).run(full=full)
    return report.summary() if report else "already running"


def schedule_refreshes(services: Services, *, force: bool = False) -> int:
    """Queue a refresh of every issuer whose period is over; returns how many were queued."""
    minutes = services.settings.ehr_refresh_minutes
    if minutes <= 0 and not force:
        return 0
    queued = 0
    queue = None
    for reg in refreshable(services):
        if not force and not services.store.set(
            state_key(reg.iss) + ":queued", "1", minutes * 60, only_if_absent=True
        ):
            continue
        queue = queue or refresh_queue(services)
        job_id = "ehr-refresh-" + hashlib.sha256(reg.iss.encode()).hexdigest()[:16]
        queue.enqueue(run_refresh_job, reg.iss, job_id=job_id, job_timeout=LOCK_SECONDS, result_ttl=86400,
                      failure_ttl=7 * 86400)  # fmt: skip
        queued += 1
    return queued


class ThreadRefresher:
    """The embedded default (no Redis): every period, refresh each issuer in this thread. The first run waits one
    period (a fresh process has its chart opens; the demo refreshes once itself after seeding)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if (
            self._thread is None
            and self.services.settings.ehr_refresh_minutes > 0
            and refreshable(self.services)
        ):
            self._thread = threading.Thread(target=self._loop, name="tandem-ehr-refresh", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.services.settings.ehr_refresh_minutes * 60)
            for reg in refreshable(self.services):
                try:
                    ScoreRefresh(self.services, reg).run()
                except errors.TandemError as error:
                    log.warning("EHR score refresh of %s failed: %s", reg.label, error.message)
                except Exception:  # noqa: BLE001 - the thread must survive any one failure
                    log.exception("EHR score refresh failed")

"""`tandem worker`: RQ's worker (with its scheduler for delayed retries) on Tandem's Redis, for two queues —
write-backs first, then EHR score refreshes — and a sweeper that queues pending write-backs whose wait is over and
the score refreshes that are due."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from launch import errors

if TYPE_CHECKING:
    from rq import Queue

    from smartapp.services import Services

log = logging.getLogger(__name__)

#: How often the sweeper looks for due work (also catches any job that could not be queued, e.g. while Redis
#: was down).
SWEEP_SECONDS = 15.0

_worker_services: Services | None = None


def job_services() -> Services:
    """The services of the worker process, for RQ jobs (module-level functions RQ imports by name)."""
    if _worker_services is None:
        raise RuntimeError("the worker's services are not set up (run `tandem worker`)")
    return _worker_services


def queues(services: Services) -> list[Queue]:
    from smartapp.caseload.refresh_jobs import refresh_queue
    from smartapp.screening.writebacks import RQWritebacks

    if not isinstance(services.writebacks, RQWritebacks):
        raise errors.ConfigurationError(
            "`tandem worker` needs TANDEM_REDIS_URL (the job queues live in Redis)"
        )
    return [services.writebacks.queue, refresh_queue(services)]


def sweep_once(services: Services) -> None:
    from smartapp.caseload.refresh_jobs import schedule_refreshes
    from smartapp.screening.writebacks import sweep

    count = sweep(services)
    if count:
        log.info("queued %d pending write-back(s)", count)
    from smartapp.parking.service import ParkedForms

    tasks = ParkedForms.of(services).retry_safety_tasks()
    if tasks:
        log.info("wrote %d parked screening(s)' safety Task", tasks)
    refreshes = schedule_refreshes(services)
    if refreshes:
        log.info("queued %d EHR score refresh(es)", refreshes)


def run_worker(services: Services, *, burst: bool = False) -> None:
    """Work both queues until stopped (or, with burst, until they are empty)."""
    global _worker_services
    from rq import Worker

    work = queues(services)
    _worker_services = services
    stop = threading.Event()

    def sweeper() -> None:
        while True:
            try:
                sweep_once(services)
            except errors.TandemError as error:
                log.warning("sweep failed: %s", type(error).__name__)
            if stop.wait(SWEEP_SECONDS):
                return

    if burst:
        sweep_once(services)
    else:
        threading.Thread(target=sweeper, name="tandem-sweeper", daemon=True).start()
    try:
        Worker(work, connection=work[0].connection).work(with_scheduler=True, burst=burst,
                                                         logging_level="WARNING")  # fmt: skip
    finally:
        stop.set()


def work_burst(services: Services) -> int:
    """Run every queued job now, in this process (RQ's SimpleWorker, no fork): for `tandem worker --burst` checks
    and for tests, which then see the jobs' effects. Returns how many jobs ran."""
    global _worker_services
    from rq import SimpleWorker

    work = queues(services)
    _worker_services = services

    def finished() -> int:
        return sum(q.finished_job_registry.count + q.failed_job_registry.count for q in work)

    before = finished()
    SimpleWorker(work, connection=work[0].connection).work(burst=True, logging_level="WARNING")
    return finished() - before

"""Write-backs drain by themselves: a job per screening on a real queue (RQ on Tandem's Redis, run by
`tandem worker`), or — on the embedded default with no Redis — the same job code in a background thread.

- Registry writes need no user token (backend services): retried with backoff until they succeed.
- EHR writes need the user's token: retried while the launch that recorded them (or a later launch of the same
  patient) has a session; otherwise they wait for the next launch, visible on the pending page and the worklist.
- One attempt at a time per screening (ScreeningService.run holds a Redis lock), so two workers, two tabs, or a
  page and the worker never write the same record twice. Pages only enqueue; a GET never writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from launch import errors
from launch.scopes import allows
from smartapp.screening.service import FAILED, PENDING, ScreeningRecord

if TYPE_CHECKING:
    from smartapp.services import Services

log = logging.getLogger(__name__)

QUEUE_NAME = "tandem-writebacks"


class WritebackQueue(Protocol):
    def schedule(self, records: Iterable[ScreeningRecord], *, launch_id: str | None = None, now: bool = False,
                 force: bool = False) -> None: ...  # fmt: skip


def _waiting(record: ScreeningRecord) -> bool:
    """Whether the worker has anything to try: a failed (refused) write waits for a person, not for a job."""
    return not record.complete and any(t.status == PENDING for t in (record.registry, record.ehr))


def _due_in(record: ScreeningRecord, clock: float) -> float:
    waits = [t.next_attempt_at - clock for t in (record.registry, record.ehr) if t.status == PENDING]
    return max(0.0, min(waits)) if waits else 0.0


def drain(services: Services, record_id: str, *, launch_id: str | None = None, force: bool = False
          ) -> ScreeningRecord | None:  # fmt: skip
    """The job: write what is pending for one screening. Returns the record as it is now."""
    record = services.screenings.load(record_id)
    if record is None or record.complete:
        return record
    ehr = None
    wants_ehr = record.ehr.status == PENDING or (force and record.ehr.status == FAILED)
    for candidate in dict.fromkeys(i for i in (launch_id, record.launch_id) if i):
        session = services.sessions.load(candidate) if wants_ehr else None
        if session and may_write(session.iss, session.context.patient, session.scope, record):
            ehr = services.ehr_client(session)
            break
    return services.screenings.run(record, ehr, force=force)


def may_write(iss: str, patient: str | None, scope: str, record: ScreeningRecord) -> bool:
    """Whether a launch's token may write this record to the EHR: a chart launch of its patient, or a launch
    without a patient (the worklist) whose user-level scopes allow every create the plan makes."""
    if iss != record.iss:
        return False
    if patient is not None:
        return patient == record.patient_id
    granted = scope.split()
    return bool(record.plan_types) and all(allows(granted, "user", t, "c") for t in record.plan_types)


def pending_due(services: Services) -> list[ScreeningRecord]:
    clock = services.screenings.clock()
    return [r for r in services.screenings.pending() if _waiting(r) and _due_in(r, clock) <= 0]


# --- RQ ---------------------------------------------------------------------------------------------------


def run_job(record_id: str, launch_id: str | None = None, force: bool = False) -> str:
    """The RQ job (module-level so RQ can import it): drain one screening and queue the next attempt."""
    from smartapp.worker import job_services

    services = job_services()
    record = drain(services, record_id, launch_id=launch_id, force=force)
    if record is None:
        return "gone"
    if _waiting(record):
        services.writebacks.schedule([record], launch_id=launch_id)
    return record.registry.status + "/" + record.ehr.status


class RQWritebacks:
    """Jobs on RQ (with its scheduler for the delayed retries)."""

    def __init__(self, redis_url: str, clock: Any = time.time) -> None:
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.queue = Queue(QUEUE_NAME, connection=self.connection)
        self.clock = clock

    def schedule(self, records: Iterable[ScreeningRecord], *, launch_id: str | None = None, now: bool = False,
                 force: bool = False) -> None:  # fmt: skip
        from redis import RedisError

        try:
            for record in records:
                if not (_waiting(record) or (force and not record.complete)):
                    continue  # re-queueing a refused write with nothing pending would loop in the worker
                args = (record.id, launch_id or record.launch_id, force)
                delay = 0.0 if now or force else _due_in(record, self.clock())
                # One job id per screening: queueing it again replaces the job, never adds a second writer.
                job_id = f"writeback-{record.id}"
                if delay <= 0:
                    self.queue.enqueue(run_job, *args, job_id=job_id, result_ttl=600, failure_ttl=86400)
                else:
                    self.queue.enqueue_in(timedelta(seconds=delay), run_job, *args, job_id=job_id,
                                          result_ttl=600, failure_ttl=86400)  # fmt: skip
        except RedisError as error:
            # The record is saved (or the page says it is not): the worker's sweeper queues it later.
            raise errors.StoreUnavailable(f"the job queue did not answer ({type(error).__name__})") from None


def sweep(services: Services) -> int:
    """Queue every pending write-back whose wait is over; returns how many."""
    due = pending_due(services)
    services.writebacks.schedule(due)
    return len(due)


# --- embedded ---------------------------------------------------------------------------------------------


class ThreadWritebacks:
    """The embedded default (no Redis): the same job code in one background thread of the process."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.services: Services | None = None
        self._wake = threading.Event()
        self._asked: dict[str, tuple[str | None, bool]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, services: Services) -> None:
        self.services = services
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tandem-writebacks", daemon=True)
            self._thread.start()

    def schedule(self, records: Iterable[ScreeningRecord], *, launch_id: str | None = None, now: bool = False,
                 force: bool = False) -> None:  # fmt: skip
        with self._lock:
            for record in records:
                if _waiting(record) or (force and not record.complete):
                    self._asked[record.id] = (launch_id or record.launch_id, force)
        if now or force:
            self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.drain_once()
            except Exception:  # noqa: BLE001 - the thread must survive any one failure
                log.exception("background write-back drain failed")

    def drain_once(self) -> int:
        services = self.services
        if services is None:
            return 0
        with self._lock:
            asked, self._asked = self._asked, {}
        done = 0
        for record in pending_due(services):
            launch_id, force = asked.pop(record.id, (record.launch_id, False))
            drain(services, record.id, launch_id=launch_id, force=force)
            done += 1
        for record_id, (launch_id, force) in asked.items():  # forced retries of failed ones
            if force:
                drain(services, record_id, launch_id=launch_id, force=True)
                done += 1
        from smartapp.parking.service import ParkedForms  # a parked screening's safety Task, still pending

        done += ParkedForms.of(services).retry_safety_tasks()
        return done

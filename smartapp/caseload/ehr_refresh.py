"""The worker's refresh of enrolled patients' EHR scores, with SMART Backend Services (no user, no launch).

Two ways, chosen by the issuer's registration:
- a Group in the EHR (`backend.group_id`): a Bulk Data `$export` of the Group's score Observations, `_since` the
  last export's transaction time (a full export at least every `full_export_hours`, which also drops scores the
  EHR deleted); resumable, since the status URL is kept until the files are read;
- otherwise one search per enrolled patient with bounded concurrency (Epic requires a `patient` parameter on
  Observation searches), each replacing that patient's copy.
Only enrolled patients' scores are kept: the rest of an export is read and dropped. One refresh per issuer at a time.
Then the vitals, labs and antipsychotic orders of patients in programs that track medical outcomes (SMI) are read
by searches naming many patients at once (`smartapp/smi/medical.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fhir_mappings.common.access import objs, reference_id
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.programs import program_or_default
from fhir_mappings.screening.history import SCORE_CODE_PARAM, score_points
from launch import errors
from launch.backend import BackendServicesAuth
from launch.bulk import BulkExport
from launch.fhir import FHIRClient
from launch.registrations import Registration
from launch.scopes import Vendor, spell_scopes
from launch.transport import HttpTransport
from smartapp.smi.medical import refresh_medical

if TYPE_CHECKING:
    from smartapp.services import Services

log = logging.getLogger(__name__)

STATE_TTL = 90 * 24 * 3600
LOCK_SECONDS = 2 * 3600
#: Per-patient reads stop early when the first this many all fail: the cause is not one patient.
FAIL_FAST_AFTER = 10


@dataclass
class RefreshReport:
    iss: str
    method: str  # "bulk export" or "per patient"
    enrolled: int
    patients_updated: int = 0
    scores: int = 0
    failed: int = 0
    #: Enrolled patients the EHR's Group does not list (their scores come only from chart opens).
    not_in_group: int = 0
    full: bool = True
    requests: int = 0
    seconds: float = 0.0
    #: Of those, the time the EHR took to build the export (bulk only).
    export_seconds: float = 0.0
    finished_at: str = ""
    #: Patients of programs that track medical outcomes (SMI) whose vitals, labs and orders were read, of how many.
    medical_updated: int = 0
    medical_patients: int = 0
    medical_failed: int = 0
    medical_searches: int = 0

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None) -> RefreshReport | None:
        """A stored report; None when absent or written by a release with other fields."""
        if not stored or not set(stored) <= set(cls.__dataclass_fields__):
            return None
        try:
            return cls(**stored)
        except TypeError:
            return None

    def summary(self) -> str:
        parts = [f"{self.method}{' (full)' if self.method == 'bulk export' and self.full else ''}",
                 f"{self.patients_updated} of {self.enrolled} enrolled patients updated", f"{self.scores} scores",
                 f"{self.requests} EHR requests", f"{self.seconds:.1f} s"]  # fmt: skip
        if self.method == "bulk export":
            parts[-1] += f" ({self.export_seconds:.1f} s for the EHR to build the export)"
        if self.failed:
            parts.append(f"{self.failed} could not be read")
        if self.not_in_group:
            parts.append(f"{self.not_in_group} not in the EHR's Group")
        if self.medical_patients:
            parts.append(f"medical data of {self.medical_updated} of {self.medical_patients} SMI patients "
                         f"({self.medical_searches} searches)")  # fmt: skip
        if self.medical_failed:
            parts.append(f"medical data of {self.medical_failed} could not be read")
        return ", ".join(parts)


def state_key(iss: str) -> str:
    """The Redis key of an issuer's refresh state (its lock and period marker are this plus a suffix)."""
    return f"ehr-refresh:v1:{hashlib.sha256(iss.encode()).hexdigest()[:24]}"


def backend_client(
    services: Services, reg: Registration, transport: HttpTransport | None = None
) -> FHIRClient:
    """The EHR's FHIR API with a backend services token of the issuer's registration."""
    if reg.backend is None:
        raise errors.ConfigurationError(f"{reg.label}: no [issuer.backend] registration for backend services")
    config = services.discovery.smart_configuration(reg.iss)
    transport = transport or HttpTransport(timeout=services.settings.http_timeout)
    auth = BackendServicesAuth(
        transport, token_url=reg.backend.token_url or config.token_endpoint, client_id=reg.backend.client_id,
        signing_key=services.keys.get(reg.backend.key_id),
        scopes=spell_scopes(reg.backend.scopes, config.capabilities),
    )  # fmt: skip
    return FHIRClient(reg.iss, transport, auth, name="EHR")


def _patient_of(observation: dict[str, Any]) -> str | None:
    return reference_id(observation.get("subject"), "Patient")


class ScoreRefresh:
    """One issuer's refresh. `client` defaults to a backend services client for the registration."""

    def __init__(self, services: Services, reg: Registration, *, client: FHIRClient | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        if reg.backend is None:
            raise errors.ConfigurationError(
                f"{reg.label}: no [issuer.backend] registration for backend services"
            )
        self.services = services
        self.reg = reg
        self.backend = reg.backend
        self.client = client or backend_client(services, reg)
        self.sleep = sleep
        self.store = services.store
        self.scores = services.ehr_scores

    # --- state ------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        raw = self.store.get(state_key(self.reg.iss))
        try:
            state = json.loads(raw) if raw else {}
        except ValueError:
            state = {}
        return state if isinstance(state, dict) else {}

    def _save(self, state: dict[str, Any]) -> None:
        self.store.set(state_key(self.reg.iss), json.dumps(state), STATE_TTL)

    # --- run --------------------------------------------------------------------------------------

    def run(self, *, full: bool = False) -> RefreshReport | None:
        """Refresh now; None when another refresh of this issuer is running."""
        lock = state_key(self.reg.iss) + ":running"
        if not self.store.set(lock, "1", LOCK_SECONDS, only_if_absent=True):
            log.info("a score refresh of %s is already running", self.reg.label)
            return None
        started = time.perf_counter()
        try:
            caseload = self.services.caseload.load().for_issuer(self.reg.iss)
            enrolled = sorted({e.patient_id for e in caseload.enrolments if e.active})
            if self.backend.group_id:
                report = self._bulk(set(enrolled), force_full=full)
            else:
                report = self._per_patient(enrolled)
            medical = sorted({e.patient_id for e in caseload.enrolments
                              if e.active and program_or_default(e.program).tracks_medical})  # fmt: skip
            if medical:
                report.medical_patients = len(medical)
                try:
                    read = refresh_medical(self.client, self.services.ehr_medical, self.reg.iss, medical,
                                           per_search=self.backend.patients_per_search)  # fmt: skip
                except errors.TandemError as error:  # the scores just read are still kept and reported
                    log.warning("EHR medical refresh of %s failed: %s", self.reg.label, type(error).__name__)
                    report.medical_failed = len(medical)
                else:
                    report.medical_updated, report.medical_failed = read.updated, read.failed
                    report.medical_searches = read.searches
            report.requests = self.client.counter.total
            report.seconds = round(time.perf_counter() - started, 2)
            report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
            state = self.state()
            state["last"] = asdict(report)
            self._save(state)
            log.info("EHR score refresh of %s: %s", self.reg.label, report.summary())
            return report
        finally:
            self.store.delete(lock)

    def _per_patient(self, patients: list[str]) -> RefreshReport:
        report = RefreshReport(self.reg.iss, "per patient", len(patients))
        now = datetime.now(UTC)

        def read(patient_id: str) -> list[dict[str, Any]]:
            return self.client.search_all("Observation", {"patient": patient_id, "code": SCORE_CODE_PARAM,
                                                          "_count": "200"}, max_pages=10)  # fmt: skip

        pending = iter(patients)
        last_error: errors.TandemError | None = None
        with ThreadPoolExecutor(
            max_workers=self.backend.concurrency, thread_name_prefix="ehr-refresh"
        ) as pool:
            running: dict[Future[list[dict[str, Any]]], str] = {}

            def submit_next() -> None:
                patient_id = next(pending, None)
                if patient_id is not None:
                    running[pool.submit(read, patient_id)] = patient_id

            for _ in range(self.backend.concurrency):
                submit_next()
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    patient_id = running.pop(future)
                    try:
                        observations = future.result()
                    except errors.TokenError:
                        raise  # no token at all: no patient can be read
                    except errors.TandemError as error:
                        report.failed += 1
                        last_error = error
                        log.warning("EHR score refresh: one patient's scores could not be read (%s)",
                                    type(error).__name__)  # fmt: skip
                    else:
                        points = score_points(observations, "EHR")
                        self.scores.remember(PatientKey(self.reg.iss, patient_id), points, read_at=now)
                        report.patients_updated += 1
                        report.scores += len(points)
                    if report.failed >= FAIL_FAST_AFTER and report.patients_updated == 0 and last_error:
                        raise last_error
                    submit_next()
        return report

    def _bulk(self, enrolled: set[str], *, force_full: bool) -> RefreshReport:
        assert self.backend.group_id is not None  # noqa: S101 - chosen by the caller
        state = self.state()
        bulk = BulkExport(self.client, sleep=self.sleep)
        status_url = state.get("status_url")
        if status_url:  # an export this worker started and did not finish reading: pick it up again
            full = bool(state.get("status_full"))
            log.info("resuming the bulk export of %s", self.reg.label)
        else:
            since = state.get("since")
            full_at = state.get("full_at")
            stale = not full_at or datetime.fromisoformat(full_at) < datetime.now(UTC) - timedelta(
                hours=self.backend.full_export_hours)  # fmt: skip
            # A patient enrolled since the last full export has older scores `_since` would never bring.
            known = {k.patient_id for k in self.scores.for_issuer(self.reg.iss)} | set(
                state.get("not_in_group") or []
            )
            newly_enrolled = bool(enrolled - known)
            # Epic's Group export has no `_since` (../shared/reference/ehr-integration.md §2): always full there.
            full = force_full or not since or stale or newly_enrolled or self.reg.vendor is Vendor.EPIC
            status_url = bulk.kick_off_group(
                self.backend.group_id, types=["Observation"],
                # Commas inside one query of _typeFilter are escaped (the parameter itself is comma-separated).
                type_filters=[f"Observation?code={quote(SCORE_CODE_PARAM, safe='')}"],
                since=None if full else since,
            )  # fmt: skip
            state.update(status_url=status_url, status_full=full)
            self._save(state)
        waiting = time.perf_counter()
        try:
            manifest = bulk.wait(
                status_url, on_progress=lambda p: log.info("bulk export: %s", p or "in progress")
            )
        except errors.FHIRNotFound:
            # The server forgot the export (expired, restarted): start again next time.
            state.pop("status_url", None)
            self._save(state)
            raise
        report = RefreshReport(self.reg.iss, "bulk export", len(enrolled), full=full,
                               export_seconds=round(time.perf_counter() - waiting, 2))  # fmt: skip
        members = self._group_members() if full else enrolled
        by_patient: dict[str, list[dict[str, Any]]] = {}
        for observation in bulk.resources(manifest, "Observation"):
            patient_id = _patient_of(observation)
            if patient_id in enrolled:
                by_patient.setdefault(patient_id, []).append(observation)
        read_at = datetime.now(UTC)
        targets = (enrolled & members) if full else set(by_patient)
        for patient_id in sorted(targets):
            observations = by_patient.get(patient_id, [])
            points = score_points(observations, "EHR")
            key = PatientKey(self.reg.iss, patient_id)
            if full:
                self.scores.remember(key, points, read_at=read_at)
            else:
                kept = {p.resource_id for p in points}
                removed = {str(o.get("id")) for o in observations if o.get("id") and o.get("id") not in kept}
                self.scores.patch(key, points, removed, read_at=read_at)
            report.patients_updated += 1
            report.scores += len(points)
        if full:
            report.not_in_group = len(enrolled - members)
            state["not_in_group"] = sorted(enrolled - members)
        state.pop("status_url", None)
        state.pop("status_full", None)
        state["since"] = manifest.transaction_time
        if full:
            state["full_at"] = read_at.isoformat()
        self._save(state)
        try:
            bulk.cancel(status_url)  # tells the server the files may go
        except errors.TandemError as error:
            log.info("bulk export: the server did not take the completion DELETE (%s)", type(error).__name__)
        return report

    def _group_members(self) -> set[str]:
        assert self.backend.group_id is not None  # noqa: S101
        group = self.client.read("Group", self.backend.group_id)
        return {pid for member in objs(group.get("member")) if (pid := reference_id(member.get("entity"), "Patient"))
                and not member.get("inactive")}  # fmt: skip


def last_refresh(services: Services, iss: str) -> dict[str, Any] | None:
    """The last finished refresh of this issuer (for the worklist's "EHR scores as of" and IT details)."""
    raw = services.store.get(state_key(iss))
    try:
        last = json.loads(raw).get("last") if raw else None
    except (ValueError, AttributeError):
        return None
    return last if isinstance(last, dict) else None


def refreshable(services: Services, only_iss: str | None = None) -> Iterable[Registration]:
    return [r for r in services.registrations if r.backend is not None and only_iss in (None, r.iss)]

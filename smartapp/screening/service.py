"""Submitted screenings and their write-backs: recorded first, then written, retried until done.

A screening is saved in the key-value store before anything is sent anywhere, so a failed write never loses it.
Each target (the registry store, the EHR) has its own status; transient failures wait and are retried with
backoff, permanent ones are shown as failed and can be retried by hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from fhir_mappings.common.caregivers import Caregiver, caregiver_from_record, caregiver_record, related_person
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient_summary import PatientLabel, kept_label
from fhir_mappings.screening.instruments import CATALOGUE, Answer, Catalogue
from fhir_mappings.screening.resources import (
    Submission,
    caregiver_screen,
    clinical_note,
    questionnaire,
    questionnaire_response,
    registry_transaction,
    resource_id,
    screening_observations,
)
from fhir_mappings.screening.scoring import ScoreResult, parse_answers, score
from fhir_mappings.screening.writeback import WritebackPlan
from launch import errors
from launch.fhir import FHIRClient
from launch.store import KeyValueStore
from smartapp.caseload.service import invalidate_registry_cache
from smartapp.outgoing import validated
from smartapp.screening.refusals import refusal_words, technical_detail, waiting_words

log = logging.getLogger(__name__)

PENDING_INDEX = "writebacks:pending"
RECORD_TTL = 90 * 24 * 3600
MAX_BACKOFF_SECONDS = 3600
TRANSIENT = (errors.FHIRTransportError, errors.FHIRServerError, errors.FHIRRateLimited, errors.FHIRUnauthorized,
             errors.SessionExpired, errors.TokenError)  # fmt: skip

SAVED, PENDING, FAILED, SKIPPED = "saved", "pending", "failed", "not sent"
#: The EHR may hold the resource from an attempt whose answer was lost, and the server offers no way to check:
#: shown to a person ("check the chart") instead of being re-created blindly.
UNCONFIRMED = "unconfirmed"
#: Bumped when a record's shape changes; records of other versions still load (unknown fields are ignored).
RECORD_SCHEMA = 2
#: The `instrument` of a record that carries a case review's consult note instead of a screening.
NOTE_RECORD = "consult-note"
#: One attempt at a time per screening: two workers, two tabs, or a page and the worker never write it twice.
LOCK_SECONDS = 120
#: Marks a safety Task already in the registry (`<prefix><task id>`), written when a form posted after its launch
#: ended was parked: the screening's own registry write then leaves it as it is.
PARKED_TASK_WRITTEN = "parked:task-written:"
#: How long a server's refusal of conditional create (for one resource type) is remembered.
CONDITIONAL_REFUSAL_TTL = 24 * 3600


@dataclass
class Target:
    status: str = PENDING
    detail: str = ""
    resources: list[str] = field(default_factory=list)
    attempts: int = 0
    next_attempt_at: float = 0.0
    #: The last attempt sent a create whose answer was lost (a timeout): it may be stored.
    ambiguous: bool = False
    #: Parts already written (identifier value → reference), so a retry never writes them again.
    written: dict[str, str] = field(default_factory=dict)
    #: Parts whose create was sent without a definite answer (identifier value → when it was first sent, ISO UTC),
    #: saved before the create goes out: the next attempt looks for them first, even after a crash.
    in_flight: dict[str, str] = field(default_factory=dict)
    #: Parts the EHR may hold but Tandem cannot check (identifier values): never sent again.
    unconfirmed: list[str] = field(default_factory=list)
    #: The server's own words about the last refusal or failure: for IT, shown only under "Details for IT".
    technical: str = ""


def said_once(*parts: str | None) -> str:
    """Sentences joined once each: a skipped write-back's detail is the plan's reason, said once (issue 28)."""
    return " ".join(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


@dataclass
class ScreeningRecord:
    id: str
    iss: str
    vendor: str
    patient_id: str
    instrument: str
    answers: dict[str, str]  # linkId → answer code
    authored: str
    author: str | None
    encounter_id: str | None
    sex: str | None
    plan_kind: str
    plan_types: list[str]
    plan_reason: str
    #: The EHR declares conditionalCreate for what Tandem writes there: a lost answer may be replayed at once.
    ehr_conditional_create: bool = False
    registry: Target = field(default_factory=Target)
    ehr: Target = field(default_factory=Target)
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    acknowledged_by_name: str | None = None
    #: The launch whose user token may write it to the EHR (the worker uses it while it is valid).
    launch_id: str | None = None
    schema: int = RECORD_SCHEMA
    #: A follow-up measurement from the registry: how it was taken, and the enrolment it belongs to.
    mode: str | None = None
    careplan_id: str | None = None
    #: A caregiver's screen recorded on the child (dyadic care): the caregiver as recorded when it was entered.
    caregiver: dict[str, Any] | None = None
    #: The child's age in months when screened (corrected for prematurity where the instrument says), for
    #: per-age-form cutoffs (SWYC Milestones).
    age_months: int | None = None
    #: When `age_months` was corrected for prematurity: the gestational age at birth (`31+2 weeks`) and the
    #: chronological age in months, so the result says which age form was read and why.
    gestation: str | None = None
    chronological_months: int | None = None
    #: The patient (or a parent) answered it themself (portal or questionnaire link).
    self_reported: bool = False
    #: How a self-reported screening came in ("portal" or "link"), for the EHR note's "Answered by …".
    answered_via: str | None = None
    #: The registration allowed a caregiver's item-level answers on the child's EHR chart when it was entered.
    caregiver_item_level: bool = False
    #: Who the patient is and who entered it, as the submitting launch knew them (kept on the safety Task).
    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_mrn: str | None = None
    author_name: str | None = None
    #: A case review's consult note (the DocumentReference as built when the review was recorded): the record is
    #: then that note's write-back, through the same attempts, lock and queue as a screening's (`instrument` is
    #: NOTE_RECORD; the recommendations themselves are in the registry already).
    note: dict[str, Any] | None = None

    @property
    def patient_label(self) -> PatientLabel | None:
        return kept_label(self.patient_name, self.patient_birth_date, self.patient_mrn)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ScreeningRecord:
        """Tolerant: a field another release added is ignored, one it lacks gets its default."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        target_fields = {f.name for f in fields(Target)}
        data = {k: v for k, v in data.items() if k in known}
        for name in ("registry", "ehr"):
            data[name] = Target(**{k: v for k, v in (data.get(name) or {}).items() if k in target_fields})
        return cls(**data)

    def submission(self, catalogue: Catalogue = CATALOGUE) -> Submission:
        """The submission as recorded, read with the catalogue's wording (the scores never depend on it)."""
        instrument = catalogue.get(self.instrument)
        if instrument is None:  # pragma: no cover - records are written from known instruments only
            raise errors.TandemError(f"unknown instrument {self.instrument}")
        answers: dict[str, Answer]
        answers, _ = parse_answers(instrument, self.answers)
        result = score(instrument, answers, sex=self.sex, age_months=self.age_months)
        caregiver = self.caregiver_of_record
        return Submission(self.id, instrument, answers, result, self.patient_id,
                          datetime.fromisoformat(self.authored), self.author, self.encounter_id, iss=self.iss,
                          mode=self.mode, focus=caregiver.reference if caregiver else None,
                          focus_label=caregiver.label if caregiver else None,
                          ehr_focus=caregiver.ehr_reference if caregiver else None,
                          self_reported=self.self_reported, answered_via=self.answered_via,
                          caregiver_item_level=self.caregiver_item_level, patient_label=self.patient_label,
                          author_name=self.author_name)  # fmt: skip

    @property
    def caregiver_of_record(self) -> Caregiver | None:
        return caregiver_from_record(self.caregiver, self.key) if self.caregiver else None

    @property
    def about(self) -> str | None:
        """Whose screen a caregiver's is ('Caregiver's screen — Mother (Ana Diaz)'); None for the patient's own."""
        caregiver = self.caregiver_of_record
        return caregiver_screen(caregiver.label) if caregiver else None

    @cached_property
    def result(self) -> ScoreResult:
        """Scored once per loaded record (the answers of a record never change)."""
        if self.note is not None:
            return ScoreResult(NOTE_RECORD, None, None, None, "Case review note")
        return self.submission().result

    @property
    def key(self) -> PatientKey:
        return PatientKey(self.iss, self.patient_id)

    @property
    def complete(self) -> bool:
        """Nothing left for Tandem to do (an unconfirmed EHR write waits for a person, not for a retry)."""
        return self.registry.status in (SAVED, SKIPPED) and self.ehr.status in (SAVED, SKIPPED, UNCONFIRMED)

    @property
    def needs_acknowledgement(self) -> bool:
        return self.result.has_safety_flag and self.acknowledged_at is None


def end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=0, microsecond=0)


class Unconfirmed(errors.TandemError):
    """An earlier attempt may have written it, and the server gives no way to check."""


def _ignored_parameter(bundle: dict[str, Any], name: str) -> bool:
    """Whether the server says (self link, or an OperationOutcome) that it ignored a search parameter."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "self":
            return f"{name}=" not in str(link.get("url", ""))
    return False


class ScreeningService:
    def __init__(self, store: KeyValueStore, registry: FHIRClient | None, catalogue: Catalogue = CATALOGUE, *,
                 clock: Any = time.time, retry_seconds: int = 30) -> None:  # fmt: skip
        self.store = store
        self.catalogue = catalogue
        self.registry = registry
        self.clock = clock
        self.retry_seconds = retry_seconds

    # --- records ----------------------------------------------------------------------------------

    def save(self, record: ScreeningRecord) -> None:
        self.store.set(f"screening:{record.id}", record.to_json(), RECORD_TTL)
        self._index(record)

    def _index(self, record: ScreeningRecord) -> None:
        # The patient's screenings; a consult note is listed only while it is pending.
        if record.note is None:
            self.store.add_to_set(f"screenings:{record.iss}|{record.patient_id}", record.id)
        # An unconfirmed EHR write stays listed until a person has checked the chart.
        if record.complete and record.ehr.status != UNCONFIRMED:
            self.store.remove_from_set(PENDING_INDEX, record.id)
        else:
            self.store.add_to_set(PENDING_INDEX, record.id)

    def load(self, record_id: str) -> ScreeningRecord | None:
        raw = self.store.get(f"screening:{record_id}")
        if not raw:
            return None
        try:
            return ScreeningRecord.from_json(raw)
        except (ValueError, TypeError, KeyError):
            log.error("a screening record could not be read (schema mismatch); it is kept for inspection")
            return None

    def for_patient(self, iss: str, patient_id: str) -> list[ScreeningRecord]:
        records = [self.load(i) for i in self.store.set_members(f"screenings:{iss}|{patient_id}")]
        return sorted((r for r in records if r), key=lambda r: r.authored, reverse=True)

    def pending(self) -> list[ScreeningRecord]:
        records = [self.load(i) for i in self.store.set_members(PENDING_INDEX)]
        return sorted((r for r in records if r), key=lambda r: r.authored)

    def record(self, submission: Submission, *, iss: str, vendor: str, sex: str | None, plan: WritebackPlan,
               ehr_conditional_create: bool = False, launch_id: str | None = None,
               careplan_id: str | None = None, caregiver: Caregiver | None = None,
               age_months: int | None = None, gestation: str | None = None,
               chronological_months: int | None = None) -> ScreeningRecord:  # fmt: skip
        """Save the screening before any write; a resubmitted form (same submission id) returns the first one."""
        existing = self.load(submission.submission_id)
        if existing is not None:
            return existing
        label = submission.patient_label
        record = ScreeningRecord(
            id=submission.submission_id,
            iss=iss,
            vendor=vendor,
            patient_id=submission.patient_id,
            instrument=submission.instrument.key,
            answers={link_id: answer.code for link_id, answer in submission.answers.items()},
            authored=submission.authored.isoformat(),
            author=submission.author,
            encounter_id=submission.encounter_id,
            sex=sex,
            plan_kind=plan.kind,
            plan_types=list(plan.ehr_types),
            plan_reason=plan.reason,
            ehr_conditional_create=ehr_conditional_create,
            launch_id=launch_id,
            mode=submission.mode,
            careplan_id=careplan_id,
            caregiver=caregiver_record(caregiver) if caregiver else None,
            age_months=age_months,
            gestation=gestation,
            chronological_months=chronological_months,
            self_reported=submission.self_reported,
            answered_via=submission.answered_via,
            caregiver_item_level=submission.caregiver_item_level,
            patient_name=label.name if label else None,
            patient_birth_date=label.birth_date.isoformat() if label and label.birth_date else None,
            patient_mrn=label.mrn if label else None,
            author_name=submission.author_name,
        )
        if not plan.ehr_types:
            record.ehr = Target(status=SKIPPED, detail=plan.reason)
        if self.registry is None:
            record.registry = Target(
                status=FAILED, detail="No registry store is configured (TANDEM_REGISTRY_URL)."
            )
        if not self.store.set(f"screening:{record.id}", record.to_json(), RECORD_TTL, only_if_absent=True):
            return self.load(record.id) or record  # a concurrent post of the same form saved it first
        self._index(record)
        if record.result.has_safety_flag:
            log.warning("screening recorded with a safety flag (%s)", submission.instrument.name)
        return record

    def record_note(self, note: dict[str, Any], *, iss: str, vendor: str, patient_id: str, plan: WritebackPlan,
                    ehr_conditional_create: bool, launch_id: str | None, careplan_id: str | None,
                    author: str | None) -> ScreeningRecord:  # fmt: skip
        """Save a case review's consult note for the EHR before any write (one record per note identifier: a
        recorded review posted again returns the first)."""
        identifier = note["identifier"][0] if isinstance(note["identifier"], list) else note["identifier"]
        record_id = hashlib.sha256(
            f"{iss}|{identifier['system']}|{identifier['value']}".encode()
        ).hexdigest()[:32]
        existing = self.load(record_id)
        if existing is not None:
            return existing
        record = ScreeningRecord(
            id=record_id, iss=iss, vendor=vendor, patient_id=patient_id, instrument=NOTE_RECORD, answers={},
            authored=datetime.now(UTC).replace(microsecond=0).isoformat(), author=author,
            encounter_id=None, sex=None, plan_kind=plan.kind, plan_types=list(plan.ehr_types),
            plan_reason=plan.reason, ehr_conditional_create=ehr_conditional_create, launch_id=launch_id,
            careplan_id=careplan_id, note=note,
            registry=Target(status=SKIPPED, detail="The recommendations are saved in the Tandem registry."),
        )  # fmt: skip
        if not plan.ehr_types:
            record.ehr = Target(status=SKIPPED, detail=plan.reason)
        if not self.store.set(f"screening:{record.id}", record.to_json(), RECORD_TTL, only_if_absent=True):
            return self.load(record.id) or record
        self._index(record)
        return record

    def acknowledge(
        self, record: ScreeningRecord, user: str | None, name: str | None = None
    ) -> ScreeningRecord:
        record.acknowledged_at = datetime.now(UTC).isoformat()
        record.acknowledged_by = user
        record.acknowledged_by_name = name
        self.save(record)
        return record

    # --- writing ----------------------------------------------------------------------------------

    def run(self, record: ScreeningRecord, ehr: FHIRClient | None, *, force: bool = False) -> ScreeningRecord:
        """Write whatever is pending (and due, unless forced), under the screening's lock: when another request
        or worker holds it, nothing is sent and the stored record is returned. Never raises for a failed write:
        the record says."""
        lock = f"lock:screening:{record.id}"
        token = secrets.token_hex(8)
        if not self.store.set(lock, token, LOCK_SECONDS, only_if_absent=True):
            return self.load(record.id) or record
        try:
            record = self.load(record.id) or record  # what the last holder of the lock left
            self._run(record, ehr, force=force)
            self.save(record)
        finally:
            if self.store.get(lock) == token:
                self.store.delete(lock)
        return record

    def _run(self, record: ScreeningRecord, ehr: FHIRClient | None, *, force: bool) -> None:
        now = self.clock()
        if record.registry.status == PENDING or (
            force and record.registry.status == FAILED and self.registry
        ):
            if force or record.registry.next_attempt_at <= now:
                self._attempt(record, record.registry, lambda: self._write_registry(record))
        if record.ehr.status == PENDING or (force and record.ehr.status == FAILED):
            if ehr is None:
                record.ehr.detail = (
                    "Waiting for the next launch from the EHR (the write needs the user's session)."
                )
            elif force or record.ehr.next_attempt_at <= now:
                self._attempt(record, record.ehr, lambda: self._write_ehr(record, ehr))

    def mark_checked(
        self, record: ScreeningRecord, user: str | None, name: str | None = None
    ) -> ScreeningRecord:
        """A person checked the chart for an unconfirmed write-back and found it there; or read why the EHR
        refused one and leaves it in Tandem only (it then leaves the write-backs page)."""
        if record.ehr.status == UNCONFIRMED:
            record.ehr.status, record.ehr.detail = (
                SAVED,
                f"Checked in the chart by {name or user or 'the user'}.",
            )
            self.save(record)
        elif record.ehr.status == FAILED:
            record.ehr.status = SKIPPED
            record.ehr.detail = (
                f"{record.ehr.detail} Kept in Tandem only: checked by {name or user or 'the user'}."
            )
            self.save(record)
        return record

    def _attempt(self, record: ScreeningRecord, target: Target, write: Any) -> None:
        target.attempts += 1
        is_ehr = target is record.ehr
        try:
            target.resources = write()
            target.status, target.detail, target.ambiguous, target.technical = SAVED, "", False, ""
        except Unconfirmed as error:
            target.status, target.detail = UNCONFIRMED, error.message
            target.ambiguous = bool(target.in_flight)
            log.warning(
                "write-back unconfirmed after attempt %d: the server cannot be searched", target.attempts
            )
        except TRANSIENT as error:
            target.ambiguous = bool(target.in_flight)
            wait = min(self.retry_seconds * 2 ** (target.attempts - 1), MAX_BACKOFF_SECONDS)
            target.status, target.next_attempt_at = PENDING, self.clock() + wait
            target.detail = f"{waiting_words(error, is_ehr)} Tandem will retry in {wait // 60 or 1} min."
            target.technical = technical_detail(error)
            log.warning("write-back deferred after attempt %d: %s", target.attempts, type(error).__name__)
        except errors.TandemError as error:
            target.ambiguous = bool(target.in_flight)
            target.status = FAILED
            if is_ehr:
                target.detail = refusal_words(error, record.plan_types)
            else:
                target.detail = (
                    "The registry did not accept it; it is kept in Tandem. Ask IT to look at the details."
                )
            target.technical = technical_detail(error)
            log.warning("write-back failed: %s", type(error).__name__)

    def _write_registry(self, record: ScreeningRecord) -> list[str]:
        if self.registry is None:
            raise errors.ConfigurationError("no registry store is configured")
        self.publish_questionnaires()
        submission = record.submission(self.catalogue)
        caregiver = record.caregiver_of_record
        bundle = registry_transaction(submission, end_of_day(submission.authored),
                                      related_person(caregiver) if caregiver else None)  # fmt: skip
        task_id = resource_id(record.id, "safety")
        if record.result.has_safety_flag and self.store.get(f"{PARKED_TASK_WRITTEN}{task_id}"):
            # Written already (a form posted after its launch ended writes it at once): never overwrite it, a
            # person may have closed it since.
            bundle["entry"] = [e for e in bundle["entry"] if e["fullUrl"] != f"Task/{task_id}"]
        for entry in bundle["entry"]:
            validated(entry["resource"])
        validated(bundle)
        self.registry.transaction(bundle)
        invalidate_registry_cache(self.store, [record.key])  # the screening's resources are its patient's
        return [entry["request"]["url"] for entry in bundle["entry"]]

    def _existing(self, ehr: FHIRClient, resource_type: str, identifier: dict[str, str], patient: str,
                  since: str | None, *, condition_protects: bool) -> str | None:  # fmt: skip
        """Whether an earlier attempt (whose answer was lost) already created it. Only a definite answer counts:
        a search by identifier the server did not ignore, or every resource of the type stored since the first
        attempt (`_lastUpdated`, all pages). Anything less (a server that ignores the parameters, or that this
        launch may not search) raises Unconfirmed, unless a conditional create the server honours protects the
        next create (then None)."""
        wanted = (identifier["system"], identifier["value"])

        def ours(resources: list[Any]) -> str | None:
            for resource in resources:
                if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
                    continue
                found = resource.get("identifier")
                ids = found if isinstance(found, list) else [found]
                if any(isinstance(i, dict) and (i.get("system"), i.get("value")) == wanted for i in ids):
                    return f"{resource_type}/{resource.get('id')}"
            return None

        def entries(bundle: dict[str, Any]) -> list[Any]:
            return [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)]

        searches: list[tuple[dict[str, str], str]] = [
            (
                {"identifier": f"{identifier['system']}|{identifier['value']}", "patient": patient},
                "identifier",
            )
        ]
        if since:
            # Ten minutes' margin: the EHR's clock may differ from Tandem's.
            first_sent = datetime.fromisoformat(since) - timedelta(minutes=10)
            searches.append(({"patient": patient, "_lastUpdated": f"ge{first_sent.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                              "_count": "100"}, "_lastUpdated"))  # fmt: skip
        for params, decisive in searches:
            try:
                bundle = ehr.search(resource_type, params)
            except (
                errors.FHIRBadRequest,
                errors.FHIRForbidden,
                errors.FHIRNotFound,
                errors.FHIRUnprocessable,
            ):
                continue  # this server (or this launch's scopes) cannot answer that search: try the next way
            found = ours(entries(bundle))
            if found:
                return found
            if _ignored_parameter(bundle, decisive):
                continue
            if decisive == "_lastUpdated" and any(
                isinstance(link, dict) and link.get("relation") == "next" for link in bundle.get("link") or []
            ):
                found = ours(ehr.search_all(resource_type, params, max_pages=50))
                if found:
                    return found
            return None  # a definite "not there"
        if condition_protects:
            return None  # If-None-Exist on the next create finds it, if it is there
        raise Unconfirmed("The EHR did not confirm this write and Tandem cannot look it up there: check the patient's "
                          "chart before entering it again.")  # fmt: skip

    def _create_once(self, ehr: FHIRClient, resource: dict[str, Any], target: Target, patient: str,
                     conditional: bool, checkpoint: Any = None) -> str:  # fmt: skip
        """Create one part unless it is already there. `checkpoint()` saves the record: called before the create
        goes out, so a crash or a lost answer leaves a trace the next attempt looks for."""
        resource = {k: v for k, v in resource.items() if k != "id"}  # the EHR assigns its own ids
        identifier = (
            resource["identifier"][0] if isinstance(resource["identifier"], list) else resource["identifier"]
        )
        value = identifier["value"]
        if value in target.written:
            return target.written[value]
        if value in target.unconfirmed:
            raise Unconfirmed("The EHR did not confirm this write and Tandem cannot look it up there: check the "
                              "patient's chart before entering it again.")  # fmt: skip
        # A server that refused the condition for this type once is not asked again (remembered per server).
        refused = f"conditional-refused:{hashlib.sha256(ehr.base_url.encode()).hexdigest()[:24]}:{resource['resourceType']}"
        condition_honoured = conditional and not self.store.get(refused)
        if value in target.in_flight or (target.ambiguous and not target.in_flight):
            # The last create of this part may be stored (its answer was lost): look before writing again.
            try:
                found = self._existing(ehr, resource["resourceType"], identifier, patient,
                                       target.in_flight.get(value), condition_protects=condition_honoured)  # fmt: skip
            except Unconfirmed:
                target.unconfirmed.append(value)
                target.in_flight.pop(value, None)
                raise
            if found:
                target.written[value] = found
                target.in_flight.pop(value, None)
                return found
        validated(resource)
        target.in_flight.setdefault(value, datetime.now(UTC).isoformat())
        if checkpoint is not None:
            checkpoint()
        try:
            if self.store.get(refused):
                created = ehr.create(resource)
            else:
                try:
                    created = ehr.create(
                        resource,
                        if_none_exist=f"identifier={identifier['system']}|{value}",
                        retry_safe=conditional,
                    )
                except errors.FHIRBadRequest:
                    # Servers that cannot search this type by identifier refuse the condition (seen: sekmet-fhir on
                    # QuestionnaireResponse): nothing of ours is there (an earlier lost answer was looked for above).
                    log.info(
                        "conditional create refused; creating %s without the condition",
                        resource["resourceType"],
                    )
                    self.store.set(refused, "1", CONDITIONAL_REFUSAL_TTL)
                    created = ehr.create(resource)
        except errors.FHIRError as error:
            status = error.http_status
            if status is not None and 400 <= status < 500 and status != 408:
                target.in_flight.pop(value, None)  # refused before anything was stored
            raise
        reference = f"{resource['resourceType']}/{created.get('id', '?')}"
        target.written[value] = reference
        target.in_flight.pop(value, None)
        return reference

    def _write_ehr(self, record: ScreeningRecord, ehr: FHIRClient) -> list[str]:
        target, conditional = record.ehr, record.ehr_conditional_create

        def checkpoint() -> None:
            self.store.set(f"screening:{record.id}", record.to_json(), RECORD_TTL)

        def create(resource: dict[str, Any]) -> str:
            return self._create_once(ehr, resource, target, record.patient_id, conditional, checkpoint)

        if record.note is not None:
            return [create(record.note)]
        # A caregiver's screen names the caregiver by the EHR's own RelatedPerson; the plan sent only a note (which
        # says whose screen it is) when the EHR holds no such RelatedPerson.
        submission = record.submission(self.catalogue).for_ehr()

        if record.plan_types == ["DocumentReference"]:
            return [create(clinical_note(submission))]
        unconfirmed: Unconfirmed | None = None
        response = questionnaire_response(submission)
        try:
            reference: str | None = create(response)
        except Unconfirmed as error:
            # The scores still go: a total never waits on a response Tandem cannot check.
            unconfirmed, reference = error, None
        written = [reference] if reference else []
        for observation in screening_observations(submission, reference):
            if reference is None:
                observation["derivedFrom"] = [
                    {"type": "QuestionnaireResponse", "identifier": response["identifier"]}
                ]
            try:
                written.append(create(observation))
            except Unconfirmed as error:
                unconfirmed = error
        if unconfirmed is not None:
            raise unconfirmed
        return written

    # --- questionnaires ---------------------------------------------------------------------------

    def publish_questionnaires(self) -> None:
        """Each instrument's Questionnaire in the registry store, once per version (canonical URL + version)."""
        if self.registry is None:
            return
        for instrument in self.catalogue:
            marker = f"questionnaire-published:{self.registry.base_url}:{instrument.canonical}"
            if self.store.get(marker):
                continue
            resource = validated(questionnaire(instrument))
            try:
                self.registry.create(
                    resource, if_none_exist=f"url={instrument.url}&version={instrument.version}"
                )
            except errors.FHIRBadRequest:
                # Stores without Questionnaire search parameters (sekmet-fhir) refuse the condition:
                # update-as-create with the deterministic id is just as duplicate-free.
                self.registry.update(resource)
            self.store.set(marker, "1", 7 * 24 * 3600)

"""Parked forms: what a person typed into a form whose launch had ended, kept encrypted at rest in Tandem's store
(Fernet, with a key derived from the app secret) and bound to its issuer, patient and user, until the next launch
that may see it reopens or discards it. Key names carry no PHI (the indexes are keyed by an HMAC of the issuer and
the patient or user). A parked screening with a safety flag has its same-day safety Task written to the registry
store at once with backend services (the same Task, same id, a normal submit writes), or retried by the worker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.common.patient_summary import PatientLabel, kept_label
from fhir_mappings.registry.resources import enrolment_from
from fhir_mappings.screening.instruments import Catalogue
from fhir_mappings.screening.resources import Submission, safety_task
from fhir_mappings.screening.scoring import ScoreResult, parse_answers, score
from launch import errors
from launch.fhir import FHIRClient
from launch.store import KeyValueStore
from smartapp.caseload.service import invalidate_registry_cache
from smartapp.outgoing import validated
from smartapp.screening.service import PARKED_TASK_WRITTEN, RECORD_TTL, end_of_day

if TYPE_CHECKING:
    from smartapp.services import Services

log = logging.getLogger(__name__)

#: Parked screenings whose safety Task has not reached the registry store yet (the worker retries them).
SAFETY_PENDING = "parked:safety-pending"
TASK_SAVED, TASK_PENDING = "saved", "pending"


@dataclass
class ParkedForm:
    id: str
    #: The Flask endpoint the form posted to, and the address's arguments other than the launch id.
    endpoint: str
    args: dict[str, str]
    #: What was typed, as posted (name, value) pairs, without the CSRF token and the binding.
    fields: list[tuple[str, str]]
    iss: str
    patient: str | None
    user: str | None
    launch_id: str
    parked_at: str
    #: A screening: its instrument, submission id (kept: confirming it never doubles it) and safety lines.
    instrument: str | None = None
    submission_id: str | None = None
    safety: list[str] = field(default_factory=list)
    #: The safety Task in the registry store: "saved", "pending" (retried), or None (no safety flag).
    task: str | None = None
    caregiver: str | None = None
    #: Discarded by a person while its safety Task was still pending: no longer offered, kept for the Task only.
    discarded: bool = False
    #: Answered by the patient (or a parent) in the portal: offered again to the same answerer only.
    self_reported: bool = False
    #: An HMAC of the post (see `ParkedForms.fingerprint_of`): the same post twice parks one item.
    fingerprint: str | None = None
    #: Who the patient is and who typed it, as the launch's pages knew them (`remember_names`): a safety
    #: follow-up raised from a kept screening names both, like one raised from a live launch.
    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_mrn: str | None = None
    user_name: str | None = None

    @property
    def patient_label(self) -> PatientLabel | None:
        return kept_label(self.patient_name, self.patient_birth_date, self.patient_mrn)

    @property
    def values(self) -> dict[str, str]:
        return dict(self.fields)

    @property
    def screening(self) -> bool:
        return self.instrument is not None

    @property
    def key(self) -> PatientKey | None:
        return PatientKey(self.iss, self.patient) if self.patient else None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ParkedForm:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        item = cls(**{k: v for k, v in data.items() if k in known})
        item.fields = [(str(k), str(v)) for k, v in item.fields]
        return item


#: A screening form's fields that are not answers (the chart's, the care manager's and the portal's).
NOT_ANSWERS = ("submission_id", "submission_sig", "mode", "caregiver", "step", "go")


def result_of(item: ParkedForm, catalogue: Catalogue) -> ScoreResult | None:
    """A parked screening's result with the normal scoring engine (without the patient's sex and age, which need
    the EHR: the safety items never depend on them); None when it is not a screening. Answers that do not
    parse are left out (blanks to the engine), so an answered safety item always counts."""
    instrument = catalogue.get(item.instrument or "")
    if instrument is None:
        return None
    # An invalid answer (kept as typed, for the next launch to correct) never hides a safety item that was
    # answered: the answers that parse are scored, and their safety flags stand.
    answers, _problems = parse_answers(instrument, {k: v for k, v in item.fields if k not in NOT_ANSWERS})
    return score(instrument, answers)


def submission_of(item: ParkedForm, catalogue: Catalogue) -> Submission | None:
    """The parked screening as a submission (for its safety Task), of the answers that parse; None without a
    patient."""
    instrument = catalogue.get(item.instrument or "")
    if instrument is None or not item.patient or not item.submission_id:
        return None
    answers, _problems = parse_answers(instrument, {k: v for k, v in item.fields if k not in NOT_ANSWERS})
    return Submission(submission_id=item.submission_id, instrument=instrument, answers=answers,
                      result=score(instrument, answers), patient_id=item.patient,
                      authored=datetime.fromisoformat(item.parked_at), author=item.user, encounter_id=None,
                      iss=item.iss, focus_label="Caregiver" if item.caregiver else None,
                      self_reported=item.self_reported, patient_label=item.patient_label,
                      author_name=item.user_name)  # fmt: skip


class ParkedForms:
    def __init__(self, store: KeyValueStore, secret_key: str, registry: FHIRClient | None, catalogue: Catalogue,
                 *, days: int = 14, clock: Any = time.time) -> None:  # fmt: skip
        self.store = store
        self.registry = registry
        self.catalogue = catalogue
        self.ttl = days * 24 * 3600
        self.clock = clock
        self._secret = secret_key.encode()
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tandem parked forms v1").derive(
            self._secret
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    @classmethod
    def of(cls, services: Services) -> ParkedForms:
        return cls(services.store, services.secret_key, services.registry, services.catalogue,
                   days=services.settings.parked_days)  # fmt: skip

    # --- keys (no PHI in a key name) ----------------------------------------------------------------------

    def _hashed(self, *parts: str) -> str:
        return hmac.new(self._secret, "\x1f".join(("parked", *parts)).encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    def _patient_index(self, iss: str, patient: str) -> str:
        return f"parked:patient:{self._hashed('patient', iss, patient)}"

    def _user_index(self, iss: str, user: str) -> str:
        return f"parked:user:{self._hashed('user', iss, user)}"

    # --- storing ------------------------------------------------------------------------------------------

    def new_id(self) -> str:
        return secrets.token_hex(16)

    def save(self, item: ParkedForm) -> None:
        # A safety flag whose Task is not in the registry yet is never dropped silently: kept like a screening.
        ttl = RECORD_TTL if item.task == TASK_PENDING else self.ttl
        self.store.set(f"parked:{item.id}", self._fernet.encrypt(item.to_json().encode()).decode(), ttl)
        if item.discarded:
            self._unindex(item)
        else:
            if item.patient and not item.self_reported:  # a patient's own answers: their own next visit only
                self.store.add_to_set(self._patient_index(item.iss, item.patient), item.id)
            if item.user:
                self.store.add_to_set(self._user_index(item.iss, item.user), item.id)
        if item.submission_id:
            self.store.set(f"parked:submission:{item.submission_id}", item.id, ttl)
        if item.fingerprint:
            self.store.set(f"parked:posted:{item.fingerprint}", item.id, ttl)
        if item.task == TASK_PENDING:
            self.store.add_to_set(SAFETY_PENDING, item.id)
        else:
            self.store.remove_from_set(SAFETY_PENDING, item.id)

    def load(self, item_id: str) -> ParkedForm | None:
        raw = self.store.get(f"parked:{item_id}")
        if not raw:
            return None
        try:
            return ParkedForm.from_json(self._fernet.decrypt(raw.encode()).decode())
        except (InvalidToken, ValueError, TypeError, KeyError):
            log.error(
                "a parked form could not be read (another secret key, or damaged); it is left to expire"
            )
            return None

    # --- who the launch's pages named (for a form kept after the launch ended) -----------------------------

    def remember_names(self, launch_id: str, label: PatientLabel | None, user_name: str | None,
                       ttl: int) -> None:  # fmt: skip
        """What a launch's chart page read (the patient's name, birth date and MRN; the user's name), kept
        encrypted for as long as its forms' bindings live, so a form posted after the launch ended still names
        both on the safety follow-up it raises."""
        data = {"name": label.name if label else None, "born": label.birth_date.isoformat() if label and
                label.birth_date else None, "mrn": label.mrn if label else None, "user": user_name}  # fmt: skip
        if not any(data.values()):
            return
        blob = self._fernet.encrypt(json.dumps(data).encode()).decode()
        self.store.set(f"launch-names:{self._hashed('names', launch_id)}", blob, ttl)

    def names_of(self, launch_id: str) -> dict[str, str | None]:
        raw = self.store.get(f"launch-names:{self._hashed('names', launch_id)}")
        if not raw:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(raw.encode()).decode())
        except (InvalidToken, ValueError, TypeError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}

    def by_submission(self, submission_id: str) -> ParkedForm | None:
        item_id = self.store.get(f"parked:submission:{submission_id}")
        return self.load(item_id) if item_id else None

    def visible(self, iss: str, patient: str | None, user: str | None) -> list[ParkedForm]:
        """What a launch may see: the parked forms of its patient (a chart launch) and its user's own."""
        indexes = []
        if patient:
            indexes.append(self._patient_index(iss, patient))
        if user:
            indexes.append(self._user_index(iss, user))
        found: dict[str, ParkedForm] = {}
        for index in indexes:
            for item_id in self.store.set_members(index):
                item = self.load(item_id)
                if item is None:
                    self.store.remove_from_set(index, item_id)  # expired
                elif item.iss == iss and not item.discarded:
                    found[item.id] = item
        return sorted(found.values(), key=lambda i: i.parked_at)

    def _unindex(self, item: ParkedForm) -> None:
        if item.patient:
            self.store.remove_from_set(self._patient_index(item.iss, item.patient), item.id)
        if item.user:
            self.store.remove_from_set(self._user_index(item.iss, item.user), item.id)

    def discard(self, item: ParkedForm) -> None:
        """No longer offered to anyone. A safety Task not in the registry yet is still written: the item is kept
        for that alone (the worker's sweep retries it, the safety follow-ups list shows it) and then removed."""
        if item.task == TASK_PENDING:
            item.discarded = True
            self.save(item)
            return
        self._unindex(item)
        self.store.delete(f"parked:{item.id}")
        self.store.remove_from_set(SAFETY_PENDING, item.id)
        if item.submission_id:
            self.store.delete(f"parked:submission:{item.submission_id}")
        if item.fingerprint:
            self.store.delete(f"parked:posted:{item.fingerprint}")

    def posted_before(self, fingerprint: str) -> ParkedForm | None:
        """The item a post with this fingerprint parked already (a double click, a browser's resend)."""
        item_id = self.store.get(f"parked:posted:{fingerprint}")
        item = self.load(item_id) if item_id else None
        return item if item is not None and not item.discarded else None

    def fingerprint_of(
        self, binding: str, endpoint: str, args: dict[str, str], posted: list[tuple[str, str]]
    ) -> str:
        """An HMAC of what was posted (its binding, address and fields): no PHI, one item per identical post."""
        text = json.dumps([binding, endpoint, sorted(args.items()), sorted(posted)])
        return self._hashed("posted", text)

    # --- the safety Task --------------------------------------------------------------------------------

    def write_safety_task(self, item: ParkedForm) -> ParkedForm:
        """The same-day safety Task of a parked positive screening, written with backend services: the same
        Task (same id, an update-as-create) a normal submit writes, so it is never doubled."""
        result = result_of(item, self.catalogue)
        if result is None or not result.safety:
            item.task = None
            return item
        item.safety = [flag.message for flag in result.safety]
        if not item.patient:
            self._resolve_patient(item)
        submission = submission_of(item, self.catalogue)
        task = safety_task(submission, end_of_day(submission.authored)) if submission else None
        if submission is None or task is None or self.registry is None:
            item.task = TASK_PENDING  # never dropped: retried by the worker's sweep
            return item
        # Written alone, before the screening's QuestionnaireResponse exists in the registry: it names none (a
        # store with referential integrity would refuse it). A Task already there (the screening was saved, and
        # its follow-up perhaps closed) is never overwritten.
        parked_task = {k: v for k, v in task.items() if k != "focus"}
        try:
            try:
                self.registry.read("Task", task["id"])
                exists = True
            except errors.FHIRNotFound:
                exists = False
            if not exists:
                name = submission.patient_label.name if submission.patient_label else None
                self.registry.update(validated({
                    **parked_task, "for": PatientKey(item.iss, submission.patient_id).reference(name)
                }))  # fmt: skip
        except errors.TandemError as error:
            log.warning("a parked screening's safety Task could not be written yet: %s", type(error).__name__)
            item.task = TASK_PENDING
            return item
        item.task = TASK_SAVED
        # The safety follow-ups list shows it at once (the Task is the patient's: the worklist reads them back).
        invalidate_registry_cache(self.store, [PatientKey(item.iss, submission.patient_id)])
        self.store.set(f"{PARKED_TASK_WRITTEN}{task['id']}", "1", RECORD_TTL)
        return item

    def _resolve_patient(self, item: ParkedForm) -> None:
        """The patient of an enrolment named in the form's address (the registry was away when it was parked)."""
        careplan_id = item.args.get("careplan_id")
        if not careplan_id or self.registry is None:
            return
        try:
            enrolment = enrolment_from(self.registry.read("CarePlan", careplan_id))
        except errors.TandemError:
            return
        if enrolment is not None and enrolment.iss == item.iss:
            item.patient = enrolment.patient_id

    def pending_safety(self) -> list[ParkedForm]:
        items = [self.load(i) for i in self.store.set_members(SAFETY_PENDING)]
        return [i for i in items if i is not None]

    def retry_safety_tasks(self) -> int:
        """The worker's sweep: write the safety Tasks still pending; returns how many reached the registry."""
        done = 0
        for item in self.pending_safety():
            item = self.write_safety_task(item)
            done += item.task != TASK_PENDING
            if item.discarded and item.task != TASK_PENDING:
                self.discard(item)  # a person discarded it already: the Task was all that was kept for
            else:
                self.save(item)
        return done


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()

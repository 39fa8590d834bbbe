"""The registry's caseload resources held by id, so a load can be patched instead of redone.

A snapshot is filled page by page (each page becomes domain objects at once; raw FHIR is never held), knows the
registry server's time it is current to, and is brought up to date by searching what changed since then
(`_lastUpdated=ge…`, overlapping by a few seconds, de-duplicated by id).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from fhir_mappings.common.identity import PatientKey, legacy_patient_id, patient_key
from fhir_mappings.common.patient_summary import PatientLabel
from fhir_mappings.registry.resources import (
    Contact,
    Enrolment,
    Member,
    SafetyStep,
    TierMove,
    WorkTask,
    contact_from,
    enrolment_from,
    work_task_from,
)
from fhir_mappings.screening.history import ScorePoint, merge_history, score_points
from fhir_mappings.smi.social import SOCIAL, Answer, Answered, answers_from

#: Bumped whenever the stored form changes, so a deploy never reads an older release's snapshot.
SNAPSHOT_SCHEMA = 9


@dataclass
class CaseloadData:
    enrolments: list[Enrolment]
    contacts: list[Contact]
    tasks: list[WorkTask]
    scores: dict[PatientKey, list[ScorePoint]]
    requests: int  # how many FHIR requests loading it cost (0 when it came from the cache)
    #: Resources written before issuers were recorded: shown to nobody until `tandem registry migrate-issuer`.
    unassigned: int = 0
    #: Social-status answers (SMI) recorded in the registry, oldest first.
    social: dict[PatientKey, list[Answered]] = field(default_factory=dict)

    def for_issuer(self, iss: str) -> CaseloadData:
        """Only this EHR's patients: what every page of a launch from `iss` may show."""
        enrolments = [e for e in self.enrolments if e.iss == iss]
        plans = {e.id for e in enrolments}
        return CaseloadData(
            enrolments=enrolments,
            contacts=[c for c in self.contacts if c.careplan_id in plans],
            tasks=[t for t in self.tasks if t.iss == iss],
            scores={k: v for k, v in self.scores.items() if k.iss == iss},
            requests=self.requests,
            unassigned=self.unassigned,
            social={k: v for k, v in self.social.items() if k.iss == iss},
        )

    def with_ehr_scores(self, ehr: Mapping[PatientKey, list[ScorePoint]]) -> CaseloadData:
        """Each patient's registry scores merged with the EHR's (one screening in both counts once)."""
        if not ehr:
            return self
        scores = dict(self.scores)
        for key, points in ehr.items():
            if points:
                scores[key] = merge_history(points, scores.get(key, []))
        return replace(self, scores=scores)

    def enrolments_of(self, key: PatientKey) -> list[Enrolment]:
        """One patient's enrolments, the active and latest first."""
        return sorted((e for e in self.enrolments if e.key == key),
                      key=lambda e: (e.active, e.start), reverse=True)  # fmt: skip

    def for_patient(self, key: PatientKey) -> CaseloadData:
        mine = self.for_issuer(key.iss)
        enrolments = [e for e in mine.enrolments if e.patient_id == key.patient_id]
        plans = {e.id for e in enrolments}
        return CaseloadData(
            enrolments=enrolments,
            contacts=[c for c in mine.contacts if c.careplan_id in plans],
            tasks=[t for t in mine.tasks if t.patient_id == key.patient_id],
            scores={k: v for k, v in mine.scores.items() if k == key},
            requests=self.requests,
            unassigned=self.unassigned,
            social={k: v for k, v in mine.social.items() if k == key},
        )


@dataclass
class Snapshot:
    enrolments: dict[str, Enrolment] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    tasks: dict[str, WorkTask] = field(default_factory=dict)
    #: Observation id → the patient and the score it records.
    scores: dict[str, tuple[PatientKey, ScorePoint]] = field(default_factory=dict)
    #: Observation id → the patient and the social answer it records.
    social: dict[str, tuple[PatientKey, Answered]] = field(default_factory=dict)
    #: Observation ids written before issuers were recorded.
    legacy_scores: set[str] = field(default_factory=set)
    #: The registry server's time this snapshot is current to (its Bundle.meta.lastUpdated), minus an overlap.
    since: str | None = None
    #: How many rows `apply` changed (a resource read again as it was held changes none): a sync that changed
    #: none leaves the stored snapshot as it is.
    changed: int = field(default=0, compare=False)

    def apply(self, resource_type: str, resources: Iterable[Any]) -> int:
        """Take in one page of `resource_type` (new or changed resources replace what their id held)."""
        count = 0
        for resource in resources:
            if not isinstance(resource, Mapping) or not isinstance(resource.get("id"), str):
                continue
            count += 1
            rid = resource["id"]
            changed = False
            if resource_type == "CarePlan":
                enrolment = enrolment_from(resource)
                changed = _put(self.enrolments, rid, enrolment)
            elif resource_type == "Task":
                changed = _put(self.contacts, rid, contact_from(resource))
                changed = _put(self.tasks, rid, work_task_from(resource)) or changed
            elif resource_type == "Observation":
                key = patient_key(resource.get("subject"))
                points = score_points([resource], "Tandem")
                changed = _put(self.scores, rid, (key, points[0]) if key is not None and points else None)
                answers = answers_from([resource], key) if key is not None else []
                changed = (
                    _put(self.social, rid, (key, answers[0]) if key is not None and answers else None)
                    or changed
                )
                legacy = key is None and legacy_patient_id(resource.get("subject")) is not None
                if legacy != (rid in self.legacy_scores):
                    changed = True
                    if legacy:
                        self.legacy_scores.add(rid)
                    else:
                        self.legacy_scores.discard(rid)
            self.changed += changed
        return count

    @property
    def unassigned(self) -> int:
        return (
            sum(1 for e in self.enrolments.values() if not e.iss)
            + sum(1 for t in self.tasks.values() if not t.iss)
            + len(self.legacy_scores)
        )

    def data(self, requests: int) -> CaseloadData:
        scores: dict[PatientKey, list[ScorePoint]] = {}
        for key, point in self.scores.values():
            scores.setdefault(key, []).append(point)
        for points in scores.values():
            points.sort(key=lambda p: p.when)
        social: dict[PatientKey, list[Answered]] = {}
        for key, answered in self.social.values():
            social.setdefault(key, []).append(answered)
        for answers in social.values():
            answers.sort(key=lambda a: a.day)
        return CaseloadData(
            list(self.enrolments.values()),
            list(self.contacts.values()),
            list(self.tasks.values()),
            scores,
            requests,
            self.unassigned,
            social,
        )

    # --- the stored form: plain JSON, field by field (no deep copies, nothing executable) -------------

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SNAPSHOT_SCHEMA,
            "since": self.since,
            **{name: list(rows) for name, rows in self._sections()},
            "legacy_scores": sorted(self.legacy_scores),
        }

    def dumps(self) -> str:
        """The stored form as JSON text, encoded one section at a time (the peak holds one section's rows)."""
        parts = [f'{{"schema":{SNAPSHOT_SCHEMA},"since":{json.dumps(self.since)}']
        for name, rows in self._sections():
            parts.append(f',"{name}":{json.dumps(list(rows), separators=(",", ":"))}')
        parts.append(f',"legacy_scores":{json.dumps(sorted(self.legacy_scores))}}}')
        return "".join(parts)

    def _sections(self) -> Iterator[tuple[str, Iterator[Any]]]:
        yield "enrolments", (_enrolment_json(e) for e in self.enrolments.values())
        yield "contacts", (_contact_json(c) for c in self.contacts.values())
        yield "tasks", (_task_json(t) for t in self.tasks.values())
        yield (
            "scores",
            (
                [
                    oid,
                    k.iss,
                    k.patient_id,
                    p.instrument,
                    p.when.isoformat(),
                    p.score,
                    p.code,
                    p.submission,
                    p.focus,
                    p.patient_reported,
                ]
                for oid, (k, p) in self.scores.items()
            ),
        )
        yield "social", ([oid, k.iss, k.patient_id, a.domain, a.answer.code, a.day.isoformat()]
                         for oid, (k, a) in self.social.items())  # fmt: skip

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Snapshot:
        """Raises ValueError/KeyError/TypeError on another release's shape (the caller reloads)."""
        if payload.get("schema") != SNAPSHOT_SCHEMA:
            raise ValueError("snapshot of another schema")
        snapshot = cls(since=payload.get("since"))
        for e in payload["enrolments"]:
            snapshot.enrolments[e["id"]] = _enrolment_from_json(e)
        for c in payload["contacts"]:
            snapshot.contacts[c["id"]] = _contact_from_json(c)
        for t in payload["tasks"]:
            snapshot.tasks[t["id"]] = _task_from_json(t)
        for oid, iss, pid, instrument, when, score, code, submission, focus, reported in payload["scores"]:
            point = ScorePoint(instrument, datetime.fromisoformat(when), score, "Tandem", code, submission, oid,
                               focus, bool(reported))  # fmt: skip
            snapshot.scores[oid] = (PatientKey(iss, pid), point)
        for oid, iss, pid, domain_key, answer_code, day in payload["social"]:
            domain = SOCIAL.domain(domain_key)
            answer: Answer | None = domain.answer(answer_code) if domain else None
            if answer is not None:  # an answer the current social file no longer knows is dropped
                snapshot.social[oid] = (
                    PatientKey(iss, pid),
                    Answered(domain_key, answer, date.fromisoformat(day)),
                )
        snapshot.legacy_scores = set(payload.get("legacy_scores", []))
        return snapshot


def _put(table: dict[str, Any], rid: str, value: Any) -> bool:
    """Hold `value` under `rid` (None: drop it); whether that changed what the table held."""
    if value is None:
        return table.pop(rid, None) is not None
    if table.get(rid) == value:
        return False
    table[rid] = value
    return True


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _member_json(member: Member | None) -> list[str | None] | None:
    return [member.reference, member.display] if member else None


def _member_from_json(value: Any) -> Member | None:
    return Member(value[0], value[1]) if value else None


def _enrolment_json(e: Enrolment) -> dict[str, Any]:
    return {
        "id": e.id, "iss": e.iss, "patient_id": e.patient_id, "patient_name": e.patient_name,
        "program": e.program, "phase": e.phase, "start": e.start.isoformat(), "end": _iso(e.end),
        "team": {role: _member_json(m) for role, m in e.team.items()}, "consent_given": e.consent_given,
        "consent_date": _iso(e.consent_date), "consent_method": e.consent_method,
        "flagged_for_review": e.flagged_for_review, "version": e.version, "birth_date": _iso(e.birth_date),
        "mrn": e.mrn, "tiers": [[m.tier, m.start.isoformat(), m.reason, _member_json(m.decided_by), list(m.basis),
                                 m.note] for m in e.tiers],
    }  # fmt: skip


def _enrolment_from_json(e: Mapping[str, Any]) -> Enrolment:
    team = {role: m for role, m in ((r, _member_from_json(v)) for r, v in e["team"].items()) if m}
    return Enrolment(
        e["id"], e["iss"], e["patient_id"], e["patient_name"], e["program"], e["phase"],
        date.fromisoformat(e["start"]), _day(e["end"]), team, e["consent_given"], _day(e["consent_date"]),
        e["consent_method"], e["flagged_for_review"], e["version"], _day(e["birth_date"]), e["mrn"],
        tuple(TierMove(m[0], date.fromisoformat(m[1]), m[2], _member_from_json(m[3]), tuple(m[4]), m[5])
              for m in e["tiers"]),
    )  # fmt: skip


def _contact_json(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id, "careplan_id": c.careplan_id, "when": c.when.isoformat(), "minutes": c.minutes,
        "contact_type": c.contact_type, "role": c.role, "owner": _member_json(c.owner), "note": c.note,
        "present": c.present,
    }  # fmt: skip


def _contact_from_json(c: Mapping[str, Any]) -> Contact:
    return Contact(c["id"], c["careplan_id"], date.fromisoformat(c["when"]), c["minutes"], c["contact_type"],
                   c["role"], _member_from_json(c["owner"]), c["note"], c["present"])  # fmt: skip


_TASK_FIELDS = ("id", "kind", "status", "patient_id", "careplan_id", "description", "recommendations", "version",
                "iss", "outcome", "outcome_note", "closed_by")  # fmt: skip
_TASK_DATES = ("due", "authored", "completed")


def _task_json(t: WorkTask) -> dict[str, Any]:
    label = t.patient
    return {**{name: getattr(t, name) for name in _TASK_FIELDS},
            **{name: _iso(getattr(t, name)) for name in _TASK_DATES},
            "patient": [label.name, _iso(label.birth_date), label.mrn] if label else None,
            "requester": _member_json(t.requester),
            "authored_at": t.authored_at.isoformat() if t.authored_at else None,
            "steps": [[s.id, s.kind, s.note, s.at.isoformat() if s.at else None, _member_json(s.by)]
                      for s in t.steps]}  # fmt: skip


def _task_from_json(t: Mapping[str, Any]) -> WorkTask:
    values: dict[str, Any] = {name: t[name] for name in _TASK_FIELDS}
    values.update({name: _day(t[name]) for name in _TASK_DATES})
    label = t["patient"]
    values["patient"] = PatientLabel(label[0], _day(label[1]), label[2]) if label else None
    values["requester"] = _member_from_json(t["requester"])
    values["authored_at"] = datetime.fromisoformat(t["authored_at"]) if t["authored_at"] else None
    # Safety steps (issue 28); a row another release wrote without them has none.
    values["steps"] = tuple(SafetyStep(str(s[0]), str(s[1]), s[2], datetime.fromisoformat(s[3]) if s[3] else None,
                                       _member_from_json(s[4])) for s in t.get("steps") or [])  # fmt: skip
    return WorkTask(**values)


def snapshot_from_json(payload: Any) -> Snapshot | None:
    """The stored snapshot, or None when it is not one this release wrote whole (another release's shape, or a
    damaged value): the caller then reloads from the registry, never a 500. Total over any JSON: every field of
    every row is checked against its type, so nothing odd reaches a page."""
    if not isinstance(payload, Mapping):
        return None
    try:
        snapshot = Snapshot.from_json(payload)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None
    rows: list[Any] = [*snapshot.enrolments.values(), *snapshot.contacts.values(), *snapshot.tasks.values()]
    for key, item in [*snapshot.scores.values(), *snapshot.social.values()]:
        rows += [key, item]
    if not (
        (snapshot.since is None or isinstance(snapshot.since, str))
        and all(isinstance(oid, str) for oid in snapshot.legacy_scores)
        and all(_conforms(row, type(row)) for row in rows)
        and all(
            isinstance(rid, str)
            for table in (
                snapshot.enrolments,
                snapshot.contacts,
                snapshot.tasks,
                snapshot.scores,
                snapshot.social,
            )
            for rid in table
        )  # fmt: skip
    ):
        return None
    return snapshot


@functools.cache
def _field_hints(cls: type) -> tuple[tuple[str, Any], ...]:
    """A dataclass's fields and their resolved type hints (resolved once per class: resolving is costly)."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _conforms(value: Any, hint: Any) -> bool:
    """`value` is of the annotated type `hint` (the shapes the snapshot's dataclasses use)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _conforms(k, key_hint) and _conforms(v, value_hint) for k, v in value.items()
        )
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(item, args[0]) for item in value)
        return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args, strict=True))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, hint):
            return False
        return all(_conforms(getattr(value, name), field_hint) for name, field_hint in _field_hints(hint))
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is date:
        return isinstance(value, date)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not know is not a reason to refuse

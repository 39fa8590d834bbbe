"""EHR scores of registry patients, kept so the worklist never reads the EHR per patient.

Two writers fill it: every chart open of an enrolled patient copies the scores it already read from the EHR, and
the worker's refresh (backend services: per-patient searches or a Bulk Data export) reads them for every enrolled
patient. One hash per issuer, one field per patient; a full read replaces the patient's copy, an incremental one
(`_since`) patches it by Observation id. The worklist merges them with the registry's own scores (one screening
written to both counts once). Kept for EHR_SCORES_TTL after the last write.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.screening.history import ScorePoint
from launch.store import KeyValueStore
from smartapp.caseload.ready_marks import mark_dirty

log = logging.getLogger(__name__)

EHR_SCORES_TTL = 90 * 24 * 3600
EHR_SCORES_SCHEMA = 1


def _hash_key(iss: str) -> str:
    return f"ehr-scores:v{EHR_SCORES_SCHEMA}:{hashlib.sha256(iss.encode()).hexdigest()[:24]}"


class EhrScores:
    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def remember(
        self, key: PatientKey, points: Iterable[ScorePoint], *, read_at: datetime | None = None
    ) -> None:
        """The EHR's scores for this patient as just read (all of them: this replaces the earlier copy)."""
        self._write(key, [p for p in points if p.source == "EHR"], read_at)

    def patch(self, key: PatientKey, changed: Iterable[ScorePoint], removed_ids: Iterable[str], *,
              read_at: datetime | None = None) -> None:  # fmt: skip
        """What changed in the EHR since the last read: changed points replace theirs (same Observation id),
        removed ids (entered in error, no longer a score) go."""
        changed = [p for p in changed if p.source == "EHR"]
        gone = set(removed_ids) | {p.resource_id for p in changed if p.resource_id}
        kept = [p for p in self.for_patient(key) if p.resource_id is None or p.resource_id not in gone]
        self._write(key, [*kept, *changed], read_at)

    def _write(self, key: PatientKey, points: list[ScorePoint], read_at: datetime | None) -> None:
        stored = {
            "read_at": (read_at or datetime.now(UTC)).isoformat(),
            "points": [
                [p.instrument, p.when.isoformat(), p.score, p.code, p.submission, p.resource_id, p.focus]
                for p in points
            ],  # fmt: skip
        }
        self.store.hash_set(_hash_key(key.iss), key.patient_id, json.dumps(stored), EHR_SCORES_TTL)
        mark_dirty(self.store, key)  # the worklist rebuilds this patient's rows

    def for_issuer(self, iss: str) -> dict[PatientKey, list[ScorePoint]]:
        found: dict[PatientKey, list[ScorePoint]] = {}
        for patient_id, raw in self.store.hash_all(_hash_key(iss)).items():
            points = _points(raw)
            if points is not None:
                found[PatientKey(iss, patient_id)] = points
        return found

    def for_patients(self, keys: list[PatientKey]) -> dict[PatientKey, list[ScorePoint]]:
        """These patients' EHR scores: one store read per issuer (a worklist page's patients)."""
        found: dict[PatientKey, list[ScorePoint]] = {}
        for iss in dict.fromkeys(k.iss for k in keys):
            mine = [k for k in keys if k.iss == iss]
            raws = self.store.hash_get_many(_hash_key(iss), [k.patient_id for k in mine])
            found.update({k: _points(raw) or [] for k, raw in zip(mine, raws, strict=True)})
        return found

    def for_patient(self, key: PatientKey) -> list[ScorePoint]:
        return _points(self.store.hash_get(_hash_key(key.iss), key.patient_id)) or []


def _points(raw: str | None) -> list[ScorePoint] | None:
    if raw is None:
        return None
    try:
        # Entries written before Observation ids (or caregiver focus) were kept have five (or six) fields.
        return [ScorePoint(item[0], datetime.fromisoformat(item[1]), item[2], "EHR", item[3], item[4],
                           item[5] if len(item) > 5 else None, item[6] if len(item) > 6 else None)
                for item in json.loads(raw)["points"]]  # fmt: skip
    except (ValueError, TypeError, KeyError, IndexError):
        log.warning("ignored a cached EHR score entry of another shape")
        return None

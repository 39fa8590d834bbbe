"""EHR scores of registry patients, kept so the worklist never reads the EHR per patient.

Every chart open of an enrolled patient copies the scores it already read from the EHR here (one hash per
issuer, one field per patient, replaced whole at each read); the worklist merges them with the registry's own
scores (one screening written to both counts once). Kept for EHR_SCORES_TTL after the last write.
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
        stored = {
            "read_at": (read_at or datetime.now(UTC)).isoformat(),
            "points": [
                [p.instrument, p.when.isoformat(), p.score, p.code, p.submission]
                for p in points
                if p.source == "EHR"
            ],  # fmt: skip
        }
        self.store.hash_set(_hash_key(key.iss), key.patient_id, json.dumps(stored), EHR_SCORES_TTL)

    def for_issuer(self, iss: str) -> dict[PatientKey, list[ScorePoint]]:
        found: dict[PatientKey, list[ScorePoint]] = {}
        for patient_id, raw in self.store.hash_all(_hash_key(iss)).items():
            points = _points(raw)
            if points is not None:
                found[PatientKey(iss, patient_id)] = points
        return found

    def for_patient(self, key: PatientKey) -> list[ScorePoint]:
        return _points(self.store.hash_get(_hash_key(key.iss), key.patient_id)) or []


def _points(raw: str | None) -> list[ScorePoint] | None:
    if raw is None:
        return None
    try:
        return [ScorePoint(i, datetime.fromisoformat(w), s, "EHR", c, sub)
                for i, w, s, c, sub in json.loads(raw)["points"]]  # fmt: skip
    except (ValueError, TypeError, KeyError):
        log.warning("ignored a cached EHR score entry of another shape")
        return None

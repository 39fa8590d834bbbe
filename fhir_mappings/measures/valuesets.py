"""The measures' value sets as data (`fhir_mappings/data/measures/valuesets.json`), with how complete each is:
only what measures.md confirms ships; a site loads the VSAC expansions (UMLS licence) from its own file of the
same shape, which replaces the sets it names. Checked at start-up."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "measures" / "valuesets.json"
STATUSES = ("complete", "partial", "not-expanded")


class ValueSetError(ValueError):
    """A value-set file that cannot be used, with the reason."""


@dataclass(frozen=True)
class ValueSet:
    key: str
    oid: str
    title: str
    status: str
    source: str
    codes: tuple[tuple[str, str], ...] = ()
    #: (system, code prefix): every code under it (ICD-10-CM F31 covers F31.0…F31.9).
    prefixes: tuple[tuple[str, str], ...] = ()

    def contains(self, system: str | None, code: str | None) -> bool:
        return (system, code) in self.codes or any(
            system == s and (code or "").startswith(p) for s, p in self.prefixes
        )


def _read(data: Mapping[str, Any], name: str) -> dict[str, ValueSet]:
    found = {}
    for key, raw in data.get("valuesets", {}).items():
        try:
            vs = ValueSet(key, str(raw["oid"]), str(raw["title"]), str(raw["status"]), str(raw.get("source", "")),
                          tuple((str(s), str(c)) for s, c in raw.get("codes", [])),
                          tuple((str(s), str(p)) for s, p in raw.get("prefixes", [])))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueSetError(f"{name}: value set {key}: missing or malformed {exc}") from None
        if vs.status not in STATUSES:
            raise ValueSetError(f"{name}: value set {key}: status must be one of {', '.join(STATUSES)}")
        found[key] = vs
    return found


def load_valuesets(site_file: Path | None = None, path: Path = DATA_FILE) -> dict[str, ValueSet]:
    """The shipped value sets, with a site's expansions replacing the ones it names (unknown names refused)."""
    shipped = _read(json.loads(path.read_text(encoding="utf-8")), path.name)
    if site_file is None:
        return shipped
    try:
        site = _read(json.loads(site_file.read_text(encoding="utf-8")), site_file.name)
    except (OSError, ValueError) as exc:
        raise ValueSetError(f"{site_file}: {exc}") from None
    unknown = sorted(set(site) - set(shipped))
    if unknown:
        raise ValueSetError(f"{site_file.name}: unknown value set(s) {', '.join(unknown)}")
    return {**shipped, **site}


VALUESETS = load_valuesets()


# The value sets CMS2 (v0.4.001) and CMS159 (v0.3.000) name in their CQL, by OID (the logic looks them up by these).
class OID:
    """The CQL's value-set OIDs (http://cts.nlm.nih.gov/fhir/ValueSet/<OID>)."""

    # CMS2FHIRPCSDepressionScreenAndFollowUp 0.4.001
    ADOLESCENT_DEPRESSION_MEDICATIONS = "2.16.840.1.113883.3.526.3.1567"
    ADULT_DEPRESSION_MEDICATIONS = "2.16.840.1.113883.3.526.3.1566"
    BIPOLAR_DISORDER = "2.16.840.1.113883.3.67.1.101.1.128"
    ENCOUNTER_TO_SCREEN_FOR_DEPRESSION = "2.16.840.1.113883.3.600.1916"
    FOLLOW_UP_FOR_ADOLESCENT_DEPRESSION = "2.16.840.1.113883.3.526.3.1569"
    FOLLOW_UP_FOR_ADULT_DEPRESSION = "2.16.840.1.113883.3.526.3.1568"
    MEDICAL_REASON = "2.16.840.1.113883.3.526.3.1007"
    PHYSICAL_THERAPY_EVALUATION = "2.16.840.1.113883.3.526.3.1022"
    REFERRAL_FOR_ADOLESCENT_DEPRESSION = "2.16.840.1.113883.3.526.3.1570"
    REFERRAL_FOR_ADULT_DEPRESSION = "2.16.840.1.113883.3.526.3.1571"
    TELEPHONE_VISITS = "2.16.840.1.113883.3.464.1003.101.12.1080"
    # CMS159FHIRDepressionRemissionatTwelveMonths 0.3.000
    CONTACT_OR_OFFICE_VISIT = "2.16.840.1.113762.1.4.1080.5"
    DYSTHYMIA = "2.16.840.1.113883.3.67.1.101.1.254"
    ENCOUNTER_INPATIENT = "2.16.840.1.113883.3.666.5.307"
    HOSPICE_CARE_AMBULATORY = "2.16.840.1.113883.3.526.3.1584"
    HOSPICE_DIAGNOSIS = "2.16.840.1.113883.3.464.1003.1165"
    HOSPICE_ENCOUNTER = "2.16.840.1.113883.3.464.1003.1003"
    # The CQL's canonical URL reads 2.16.840.113883… (a typo kept by MADiE); the VSAC OID is 2.16.840.1.113883….
    MAJOR_DEPRESSION_INCLUDING_REMISSION = "2.16.840.1.113883.3.67.1.101.3.2444"
    PALLIATIVE_CARE_DIAGNOSIS = "2.16.840.1.113883.3.464.1003.1167"
    PALLIATIVE_CARE_ENCOUNTER = "2.16.840.1.113883.3.464.1003.101.12.1090"
    PALLIATIVE_CARE_INTERVENTION = "2.16.840.1.113883.3.464.1003.198.12.1135"
    PERSONALITY_DISORDER_EMOTIONALLY_LABILE = "2.16.840.1.113883.3.67.1.101.1.246"
    PERVASIVE_DEVELOPMENTAL_DISORDER = "2.16.840.1.113883.3.464.1003.105.12.1152"
    PHQ_9_AND_PHQ_9M_TOOLS = "2.16.840.1.113883.3.67.1.101.1.263"
    SCHIZOPHRENIA_OR_PSYCHOTIC_DISORDER = "2.16.840.1.113883.3.464.1003.105.12.1104"

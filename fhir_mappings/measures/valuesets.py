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

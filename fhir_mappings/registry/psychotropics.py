"""Current psychotropic medications for the psychiatric case review, from the EHR's active MedicationRequests and
MedicationStatements. Which medications count is data (`fhir_mappings/data/review/psychotropics.json`: WHO ATC
classes N05/N06 and mood stabilisers, matched by ingredient name; RxNorm codes a site confirms). Pure and total:
an unreadable resource is skipped, never an exception."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fhir_mappings.common.access import codes, obj, objs, text
from fhir_mappings.common.dates import parse_date

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "review" / "psychotropics.json"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
#: Statuses of a medication the patient takes now (MedicationRequest: active, on hold; MedicationStatement: active).
CURRENT = {"MedicationRequest": ("active", "on-hold"), "MedicationStatement": ("active",)}


@dataclass(frozen=True)
class PsychotropicClass:
    key: str
    label: str
    ingredients: tuple[str, ...]


@dataclass(frozen=True)
class Psychotropics:
    classes: tuple[PsychotropicClass, ...]
    rxnorm: tuple[str, ...]


@dataclass(frozen=True)
class Medication:
    """One current psychotropic: the name as the EHR records it, its class, how it is taken, since when."""

    name: str
    group: str
    dosage: str | None
    since: date | None
    #: "ordered" (a MedicationRequest) or "reported" (a MedicationStatement: the patient or a clinician says so).
    source: str


def load_psychotropics(path: Path = DATA_FILE) -> Psychotropics:
    data = json.loads(path.read_text(encoding="utf-8"))
    classes = tuple(
        PsychotropicClass(str(c["key"]), str(c["label"]), tuple(str(i).lower() for i in c["ingredients"]))
        for c in data["classes"]
    )
    return Psychotropics(classes, tuple(str(code) for code in data.get("rxnorm", ())))


PSYCHOTROPICS = load_psychotropics()


def _words(concept: Any) -> str:
    concept = obj(concept)
    return " ".join(filter(None, [text(concept.get("text")), *(text(c.get("display"))
                                                               for c in objs(concept.get("coding")))]))  # fmt: skip


def _group(words: str, concept: Any, config: Psychotropics) -> str | None:
    lowered = words.lower()
    for group in config.classes:
        if any(re.search(rf"\b{re.escape(i)}\b", lowered) for i in group.ingredients):
            return group.label
    if set(codes(concept, RXNORM)) & set(config.rxnorm):
        return "Psychotropic"
    return None


def current_psychotropics(
    resources: Iterable[Any], config: Psychotropics = PSYCHOTROPICS
) -> list[Medication]:
    """The current psychotropic medications among MedicationRequests and MedicationStatements, one per name (an
    order wins over a statement of the same name), by class then name."""
    found: dict[str, Medication] = {}
    for resource in (obj(r) for r in resources):
        kind = text(resource.get("resourceType")) or ""
        if resource.get("status") not in CURRENT.get(kind, ()):
            continue
        concept = resource.get("medicationCodeableConcept")
        words = _words(concept) or text(obj(resource.get("medicationReference")).get("display")) or ""
        group = _group(words, concept, config)
        if group is None:
            continue
        name = text(obj(concept).get("text")) or words
        if kind == "MedicationRequest":
            dosage = next((text(d.get("text")) for d in objs(resource.get("dosageInstruction")) if text(d.get("text"))),
                          None)  # fmt: skip
            since = parse_date(resource.get("authoredOn"))
        else:
            dosage = next(
                (text(d.get("text")) for d in objs(resource.get("dosage")) if text(d.get("text"))), None
            )
            since = (
                parse_date(obj(resource.get("effectivePeriod")).get("start"))
                or parse_date(resource.get("effectiveDateTime"))
                or parse_date(resource.get("dateAsserted"))
            )
        medication = Medication(
            name, group, dosage, since, "ordered" if kind == "MedicationRequest" else "reported"
        )
        known = found.get(name.lower())
        if known is None or (known.source == "reported" and medication.source == "ordered"):
            found[name.lower()] = medication
    order = [c.label for c in config.classes] + ["Psychotropic"]
    return sorted(found.values(), key=lambda m: (order.index(m.group), m.name.lower()))

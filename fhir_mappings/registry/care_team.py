"""Who an enrolment's care-team pickers offer for each role: the EHR's practitioners sorted by the roles they hold
(PractitionerRole.code and .specialty, and Practitioner.qualification), by rules kept as data
(`fhir_mappings/data/careteam/roles.json`: no role code is confirmed, so the rules are words a site can extend).
Pure and total: unreadable resources are skipped, never an exception."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_mappings.common.access import obj, objs, reference_id, text
from fhir_mappings.common.patient import display_name, qualification_text

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "careteam" / "roles.json"
UNNAMED = "Unnamed practitioner"


@dataclass(frozen=True)
class RoleRule:
    words: tuple[str, ...]
    codes: frozenset[str]  # "system|code"

    def matches(self, texts: Iterable[str], codings: Iterable[str]) -> bool:
        lowered = [t.lower() for t in texts]
        return any(w in t for w in self.words for t in lowered) or any(c in self.codes for c in codings)


@dataclass(frozen=True)
class Person:
    """A practitioner as a picker shows them: the name and what they do, never the id (the option's value)."""

    reference: str
    name: str
    role_text: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Picker:
    """One care-team field's choices. `by_role` False: nobody in the EHR is known to hold the role, so every
    practitioner is offered (the page says so) rather than an empty list."""

    role: str
    people: tuple[Person, ...]
    by_role: bool

    def offers(self, reference: str | None) -> bool:
        return reference is not None and any(p.reference == reference for p in self.people)


@lru_cache(maxsize=4)
def load_rules(path: Path = DATA_FILE) -> dict[str, RoleRule]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        role: RoleRule(tuple(str(w).lower() for w in rule.get("words", [])), frozenset(rule.get("codes", [])))
        for role, rule in data["roles"].items()
    }


def _concept_texts(concept: Any) -> list[str]:
    concept = obj(concept)
    found = [t for t in [text(concept.get("text"))] if t]
    found += [t for t in (text(c.get("display")) for c in objs(concept.get("coding"))) if t]
    return found


def _concept_codes(concept: Any) -> list[str]:
    return [
        f"{text(c.get('system')) or ''}|{text(c.get('code'))}"
        for c in objs(obj(concept).get("coding"))
        if text(c.get("code"))
    ]


def roles_of(texts: Iterable[str], codings: Iterable[str], rules: Mapping[str, RoleRule]) -> frozenset[str]:
    """The Tandem roles (care-team role keys) these role texts and codings name."""
    texts, codings = list(texts), list(codings)
    return frozenset(role for role, rule in rules.items() if rule.matches(texts, codings))


def care_team_people(practitioners: Iterable[Any], practitioner_roles: Iterable[Any] = (),
                     rules: Mapping[str, RoleRule] | None = None) -> list[Person]:  # fmt: skip
    """Every active practitioner with the roles they hold, sorted by name. A PractitionerRole that is inactive
    or names no Practitioner is ignored; a practitioner with no role information holds no role."""
    rules = load_rules() if rules is None else rules
    role_texts: dict[str, list[str]] = {}
    role_codes: dict[str, list[str]] = {}
    for resource in practitioner_roles:
        resource = obj(resource)
        if resource.get("resourceType") != "PractitionerRole" or resource.get("active") is False:
            continue
        pid = reference_id(resource.get("practitioner"), "Practitioner")
        if pid is None:
            continue
        for concept in [*objs(resource.get("code")), *objs(resource.get("specialty"))]:
            role_texts.setdefault(pid, []).extend(_concept_texts(concept))
            role_codes.setdefault(pid, []).extend(_concept_codes(concept))
    people = []
    for resource in practitioners:
        resource = obj(resource)
        pid = text(resource.get("id"))
        if resource.get("resourceType") != "Practitioner" or pid is None or resource.get("active") is False:
            continue
        texts = list(role_texts.get(pid, []))
        codes = list(role_codes.get(pid, []))
        for qualification in objs(resource.get("qualification")):
            texts += _concept_texts(qualification.get("code"))
            codes += _concept_codes(qualification.get("code"))
        shown = qualification_text(resource) or next(iter(role_texts.get(pid, [])), "")
        people.append(Person(f"Practitioner/{pid}", display_name(resource) or UNNAMED, shown,
                             roles_of(texts, codes, rules)))  # fmt: skip
    return sorted(people, key=lambda p: (p.name.lower(), p.reference))


def pickers(people: Iterable[Person], roles: Iterable[str]) -> dict[str, Picker]:
    """Each role's choices: the practitioners holding it, else (nobody known to hold it) everyone."""
    people = list(people)
    found = {}
    for role in roles:
        holding = tuple(p for p in people if role in p.roles)
        found[role] = Picker(role, holding or tuple(people), bool(holding))
    return found


def default_member(picker: Picker, candidates: Iterable[str | None]) -> str | None:
    """The first candidate (the patient's PCP, the launching user, the site's default consultant) who holds the
    picker's role; never someone merely listed because nobody holds it (the PCP is not defaulted into another
    role)."""
    if not picker.by_role:
        return None
    return next((c for c in candidates if c is not None and picker.offers(c)), None)

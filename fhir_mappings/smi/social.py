"""Social status for people with serious mental illness: the PRAPARE questions (housing, employment, justice
involvement, social connection) answered at enrolment and on a cadence, kept as Observations in the registry
store, and the outcomes computed over time — now against the baseline at enrolment. Questions, answers and
which answers meet each outcome are data (`fhir_mappings/data/smi/social.json`). Pure and total."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_mappings.common.access import code, obj
from fhir_mappings.common.dates import parse_date
from fhir_mappings.common.identity import PatientKey, patient_key

LOINC = "http://loinc.org"
DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "smi" / "social.json"
SOCIAL_HISTORY = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "social-history",
}
#: A change of an outcome since the baseline, in the words a worklist row says it ("lost" is not a word a care
#: manager reads as "worse since enrolment").
CHANGE_WORDS = {"gained": "better since enrolment", "lost": "worse since enrolment"}
#: An answer at or shortly before enrolment counts as the baseline.
BASELINE_DAYS_BEFORE = 30


class SocialConfigError(ValueError):
    """A social status file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Answer:
    code: str
    label: str
    good: bool | None  # meets the outcome; None: no verdict (declined)
    #: The answer in plain words on a worklist row ("jail stay in the past year"); the label where the file has none.
    row: str = ""


@dataclass(frozen=True)
class Domain:
    key: str
    label: str
    loinc: str
    question: str
    outcome: str
    answers: tuple[Answer, ...]

    def answer(self, answer_code: str | None) -> Answer | None:
        return next((a for a in self.answers if a.code == answer_code), None)


@dataclass(frozen=True)
class SocialConfig:
    answer_system: str
    every_days: int
    domains: tuple[Domain, ...]

    def domain(self, key: str) -> Domain | None:
        return next((d for d in self.domains if d.key == key), None)

    @property
    def search_codes(self) -> str:
        """The `code` search parameter for the registry's social answers."""
        return ",".join(f"{LOINC}|{d.loinc}" for d in self.domains)


def load_social(path: Path = DATA_FILE) -> SocialConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config = SocialConfig(data["answer_system"], int(data["every_days"]), tuple(
            Domain(d["key"], d["label"], d["loinc"], d["question"], d["outcome"],
                   tuple(Answer(a["code"], a["label"], a["good"], str(a.get("row") or a["label"]).strip())
                  for a in d["answers"]))
            for d in data["domains"]))  # fmt: skip
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise SocialConfigError(f"{path.name}: missing or malformed {exc}") from None
    keys = [d.key for d in config.domains]
    if len(set(keys)) != len(keys) or any(not d.answers for d in config.domains):
        raise SocialConfigError(f"{path.name}: domains need unique keys and their answers")
    if any(a.good not in (True, False, None) for d in config.domains for a in d.answers):
        raise SocialConfigError(f"{path.name}: an answer's 'good' is true, false or null")
    return config


SOCIAL = load_social()


@dataclass(frozen=True)
class Answered:
    domain: str
    answer: Answer
    day: date


@dataclass(frozen=True)
class DomainStatus:
    domain: Domain
    latest: Answered | None
    baseline: Answered | None

    @property
    def met_now(self) -> bool | None:
        return self.latest.answer.good if self.latest else None

    @property
    def met_at_baseline(self) -> bool | None:
        return self.baseline.answer.good if self.baseline else None

    @property
    def row_text(self) -> str:
        """The latest answer in plain words with its change since enrolment, for a worklist row (empty: none)."""
        if self.latest is None:
            return ""
        change = CHANGE_WORDS.get(self.change or "")
        words = self.latest.answer.row or self.latest.answer.label
        return f"{words}, {change}" if change else words

    @property
    def change(self) -> str | None:
        """ "gained" (met now, not at baseline), "lost", "kept", "still not met"; None without both verdicts."""
        now, then = self.met_now, self.met_at_baseline
        if now is None or then is None or self.latest == self.baseline:
            return None
        return {(True, False): "gained", (False, True): "lost", (True, True): "kept"}.get(
            (now, then), "still not met"
        )


def observation_id(key: PatientKey, domain: str, day: date) -> str:
    """One answer per patient, question and day (answering again that day corrects it)."""
    seed = f"{key.iss}\n{key.patient_id}\n{domain}\n{day.isoformat()}"
    return "social-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def social_observation(key: PatientKey, domain: Domain, answer: Answer, day: date, recorded: datetime,
                       performer: str | None, config: SocialConfig = SOCIAL) -> dict[str, Any]:  # fmt: skip
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(key, domain.key, day),
        "status": "final",
        "category": [{"coding": [SOCIAL_HISTORY]}],
        "code": {"coding": [{"system": LOINC, "code": domain.loinc}], "text": domain.question},
        "subject": key.reference(),
        "effectiveDateTime": day.isoformat(),
        "issued": recorded.isoformat(),
        "valueCodeableConcept": {
            "coding": [{"system": config.answer_system, "code": answer.code, "display": answer.label}],
            "text": answer.label,
        },  # fmt: skip
    }
    if performer:
        observation["performer"] = [{"reference": performer}]
    return observation


def answers_from(
    observations: Iterable[Any], key: PatientKey, config: SocialConfig = SOCIAL
) -> list[Answered]:
    """The patient's answers among registry Observations (another patient's, or an unknown answer, is skipped)."""
    by_loinc = {d.loinc: d for d in config.domains}
    found = []
    for observation in (obj(o) for o in observations):
        if observation.get("status") not in ("final", "amended", "corrected"):
            continue
        if patient_key(observation.get("subject")) != key:
            continue
        domain = by_loinc.get(code(observation.get("code"), LOINC) or "")
        day = parse_date(observation.get("effectiveDateTime"))
        if domain is None or day is None:
            continue
        answer = domain.answer(code(observation.get("valueCodeableConcept"), config.answer_system))
        if answer is not None:
            found.append(Answered(domain.key, answer, day))
    return sorted(found, key=lambda a: a.day)


def statuses(
    answered: Iterable[Answered], enrolled: date | None, config: SocialConfig = SOCIAL
) -> list[DomainStatus]:
    """Per domain: the latest answer and the baseline (the last answer from 30 days before enrolment up to
    enrolment, else the first after it)."""
    answered = sorted(answered, key=lambda a: a.day)
    result = []
    for domain in config.domains:
        mine = [a for a in answered if a.domain == domain.key]
        baseline = None
        if mine and enrolled is not None:
            before = [a for a in mine if enrolled - timedelta(days=BASELINE_DAYS_BEFORE) <= a.day <= enrolled]
            after = [a for a in mine if a.day > enrolled]
            baseline = before[-1] if before else (after[0] if after else None)
        elif mine:
            baseline = mine[0]
        result.append(DomainStatus(domain, mine[-1] if mine else None, baseline))
    return result


def next_due(answered: Iterable[Answered], never_asked: date, config: SocialConfig = SOCIAL) -> date:
    """When the social questions are next due: the cadence after the last day they were asked, else `never_asked`."""
    last = max((a.day for a in answered), default=None)
    return last + timedelta(days=config.every_days) if last else never_asked


def due(answered: Iterable[Answered], today: date, config: SocialConfig = SOCIAL) -> bool:
    """Whether the social questions are due (never asked, or not within the cadence)."""
    return today >= next_due(answered, today, config)


def flags(found: Iterable[DomainStatus]) -> list[str]:
    """Row flags: housing lost or unhoused now, a jail stay reported, isolation."""
    out = []
    for status in found:
        if status.met_now is False and status.domain.key in ("housing", "justice", "connection"):
            out.append(f"social-{status.domain.key}")
    return out


@dataclass(frozen=True)
class SocialEntry:
    day: date
    answers: tuple[tuple[Domain, Answer], ...]


def parse_form(form: Mapping[str, str], today: date, enrolled: date,
               config: SocialConfig = SOCIAL) -> tuple[SocialEntry | None, str | None]:  # fmt: skip
    """The social-status form (`social_day`, `social-<domain>` answer codes; a blank answer: not asked) → an
    entry, or the problem to show. The day may be up to BASELINE_DAYS_BEFORE before enrolment, never later
    than today."""
    try:
        day = date.fromisoformat((form.get("social_day") or today.isoformat()).strip())
    except ValueError:
        return None, "Enter the day the questions were asked as a date (YYYY-MM-DD)."
    if day > today:
        return None, "The day the questions were asked cannot be in the future."
    if day < enrolled - timedelta(days=BASELINE_DAYS_BEFORE):
        return None, (f"Answers count for this enrolment from {BASELINE_DAYS_BEFORE} days before it began "
                      f"({(enrolled - timedelta(days=BASELINE_DAYS_BEFORE)).isoformat()}).")  # fmt: skip
    answers = []
    for domain in config.domains:
        value = (form.get(f"social-{domain.key}") or "").strip()
        if not value:
            continue
        answer = domain.answer(value)
        if answer is None:
            return None, f"{domain.label}: {value!r} is not one of its answers."
        answers.append((domain, answer))
    if not answers:
        return None, "Choose at least one answer."
    return SocialEntry(day, tuple(answers)), None

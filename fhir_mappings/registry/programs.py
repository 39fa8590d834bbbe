"""Program definitions: one validated file per program in `fhir_mappings/data/programs/`. A definition names who is
eligible, the measures and their cadence, the outcome rules, the worklist flags and columns, the billing model,
the care team and who works it. Enrolment, the worklist, case review, billing and the chart's "due" list read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhir_mappings.common.conditions import ConditionRow
from fhir_mappings.common.dates import age_bounds
from fhir_mappings.screening.due import DueItem
from fhir_mappings.screening.history import ScorePoint, own
from fhir_mappings.screening.instruments import CATALOGUE

DATA_FOLDER = Path(__file__).resolve().parent.parent / "data" / "programs"
FLAGS = ("safety", "not-improving", "no-contact", "overdue", "review", "new", "mania", "medical", "social",
         "first-review-overdue")  # fmt: skip
BILLING_MODELS = ("cocm", "bhi")
#: Program files of other models in the same folder, read by their own module (not Collaborative Care rows).
OTHER_MODELS = ("healthysteps",)
ROLES = ("pcp", "care-manager", "psychiatric-consultant")
COLUMNS = ("patient", "pcp", "care_manager", "consultant", "program", "enrolled", "weeks", "last_contact", "contacts",
           "follow_up_due", "measure_due", "phq9_first", "phq9_latest", "phq9_change", "gad7_first", "gad7_latest", "gad7_change", "flags",
           "last_review", "status", "minutes", "billing",
           # The whole-person row (programs with `whole_person`: SMI): symptoms, body and life.
           "symptoms", "medical", "social", "bp", "bmi", "weight_change", "hba1c", "ldl", "smoking", "housing",
           "employment", "justice", "connection")  # fmt: skip
#: The whole-person columns: each needs the program to track what it shows.
WHOLE_PERSON_COLUMNS = {"symptoms": "symptoms", "medical": "medical", "bp": "medical", "bmi": "medical",
                        "weight_change": "medical", "hba1c": "medical", "ldl": "medical", "smoking": "medical",
                        "social": "social", "housing": "social", "employment": "social", "justice": "social",
                        "connection": "social"}  # fmt: skip
KEYS = frozenset({"key", "title", "model", "order", "eligibility", "measures", "outcome", "flags", "worklist_columns",
                  "billing", "care_team_roles", "worked_by", "case_review", "consent_required", "_comment", "follow_up",
                  "whole_person", "default_columns", "first_review"})  # fmt: skip


class ProgramError(ValueError):
    """A program file that cannot be used: named, with the reason."""


@dataclass(frozen=True)
class Measure:
    series: str
    instrument: str
    every_days: int
    teen_instrument: str | None = None
    only_with_condition: str | None = None

    def instrument_for(self, age_years: int | None) -> str:
        teen = self.teen_instrument and age_years is not None and 12 <= age_years < 18
        return self.teen_instrument if teen and self.teen_instrument else self.instrument


@dataclass(frozen=True)
class Outcome:
    series: str
    response_drop_pct: int
    remission_below: int
    not_improving_after_weeks: int
    #: The baseline is the score closest to the enrolment day within this window (else the first after it).
    baseline_days_before_enrolment: int
    baseline_days_after_enrolment: int


@dataclass(frozen=True)
class FollowUp:
    """The contact cadence: the first follow-up after enrolment, then every N days by phase."""

    first_within_days: int
    every_days_active: int
    every_days_relapse_prevention: int

    def every_days(self, phase: str) -> int:
        return self.every_days_relapse_prevention if phase == "relapse-prevention" else self.every_days_active


@dataclass(frozen=True)
class SuggestRule:
    series: str | None = None
    at_least: int | None = None
    above_series: str | None = None
    condition: str | None = None
    without_condition: str | None = None
    without_series: str | None = None


@dataclass(frozen=True)
class Diagnoses:
    """Eligibility by diagnosis: ICD-10-CM code prefixes and SNOMED CT codes (data in the program file)."""

    icd10cm_prefixes: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()

    def match(self, condition: ConditionRow) -> bool:
        code = condition.code or ""
        return condition.active and (code in self.snomed or (not code.isdigit() and code.startswith(
            self.icd10cm_prefixes)))  # fmt: skip


@dataclass(frozen=True)
class WholePerson:
    """What an SMI-style row tracks beside its outcome series: the symptom series it shows (latest and change),
    the score series whose positive result is a mania flag, and whether medical and social outcomes are kept."""

    symptoms: tuple[str, ...]
    mania_series: str | None
    medical: bool
    social: bool


@dataclass(frozen=True)
class Program:
    key: str
    title: str
    model: str
    order: int
    #: Ages (completed months) of the patients the program is for; the upper bound None: no upper limit.
    ages_months: tuple[int, int | None]
    conditions: tuple[str, ...]
    default: bool
    cautions: tuple[tuple[str, str], ...]
    suggest_when: tuple[SuggestRule, ...]
    measures: tuple[Measure, ...]
    outcome: Outcome
    follow_up: FollowUp
    flags: tuple[str, ...]
    worklist_columns: tuple[str, ...]
    billing: str
    care_team_roles: tuple[str, ...]
    worked_by: tuple[str, ...]
    case_review: bool
    consent_required: bool
    #: Eligibility by diagnosis (SMI); None: the program is suggested by its scores and condition groups.
    diagnoses: Diagnoses | None = None
    #: Symptoms, body and life on one row (SMI); None: the outcome series alone.
    whole_person: WholePerson | None = None
    #: The columns a user who chose none sees when the worklist shows only this program.
    default_columns: tuple[str, ...] = ()
    #: When the first psychiatric case review is due, in weeks after enrolment (the file's `first_review`): a
    #: patient never reviewed is "new" until then, "first review overdue" after. None: no case review schedule
    #: (a patient is "new" until the first follow-up contact is due).
    first_review_weeks: int | None = None

    @property
    def new_for_days(self) -> int:
        """How long an enrolled patient never reviewed counts as new to the caseload."""
        return 7 * self.first_review_weeks if self.first_review_weeks else self.follow_up.first_within_days

    @property
    def tracks_medical(self) -> bool:
        return self.whole_person is not None and self.whole_person.medical

    @property
    def tracks_social(self) -> bool:
        return self.whole_person is not None and self.whole_person.social

    def eligible_by_diagnosis(self, conditions: Iterable[ConditionRow]) -> bool:
        return self.diagnoses is not None and any(self.diagnoses.match(c) for c in conditions)

    def fits_age(self, months: int | None) -> bool:
        """Whether the program is for a patient of this age (an unknown age does not rule it out)."""
        low, high = self.ages_months
        return months is None or (low <= months and (high is None or months <= high))

    def suggested_by(self, latest: Mapping[str, ScorePoint], active_conditions: set[str]) -> bool:
        return any(_rule_holds(rule, latest, active_conditions) for rule in self.suggest_when)

    def cautions_for(self, active_conditions: set[str]) -> list[str]:
        return [text for condition, text in self.cautions if condition in active_conditions]


def _rule_holds(rule: SuggestRule, latest: Mapping[str, ScorePoint], active: set[str]) -> bool:
    if rule.series is not None:
        point = latest.get(rule.series)
        if point is None or (rule.at_least is not None and point.score < rule.at_least):
            return False
        other = latest.get(rule.above_series) if rule.above_series else None
        if other is not None and other.score >= point.score:
            return False
    if rule.condition is not None and rule.condition not in active:
        return False
    if rule.without_condition is not None and rule.without_condition in active:
        return False
    return not (rule.without_series is not None and rule.without_series in latest)


def _program(data: Mapping[str, Any], key: str) -> Program:
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ProgramError(f"unknown field(s): {', '.join(unknown)}")
    if data.get("key") != key:
        raise ProgramError(f"key {data.get('key')!r} does not match the file name")
    series = set(CATALOGUE.history_codings())
    measures = tuple(Measure(m["series"], m["instrument"], int(m["every_days"]), m.get("teen_instrument"),
                             m.get("only_with_condition")) for m in data["measures"])  # fmt: skip
    for measure in measures:
        for instrument in filter(None, (measure.instrument, measure.teen_instrument)):
            if CATALOGUE.get(instrument) is None:
                raise ProgramError(f"measure names an unknown instrument {instrument!r}")
        if measure.series not in series or measure.every_days < 1:
            raise ProgramError(f"measure {measure.series!r}: not a score series, or no cadence")
    outcome = Outcome(**data["outcome"])
    if outcome.series not in series:
        raise ProgramError(
            f"outcome series {outcome.series!r} is not a score series ({', '.join(sorted(series))})"
        )
    follow_up = FollowUp(**{k: int(v) for k, v in data["follow_up"].items() if k != "_comment"})
    if (
        min(follow_up.first_within_days, follow_up.every_days_active, follow_up.every_days_relapse_prevention)
        < 1
    ):
        raise ProgramError("follow_up: every cadence must be at least one day")
    flags = tuple(data["flags"])
    if set(flags) - set(FLAGS):
        raise ProgramError(f"unknown flag(s): {', '.join(sorted(set(flags) - set(FLAGS)))}")
    columns = tuple(data["worklist_columns"])
    if set(columns) - set(COLUMNS):
        raise ProgramError(f"unknown worklist column(s): {', '.join(sorted(set(columns) - set(COLUMNS)))}")
    whole_person = _whole_person(data.get("whole_person"), series)
    tracked = {"symptoms"} | ({"medical"} if whole_person and whole_person.medical else set()) | (
        {"social"} if whole_person and whole_person.social else set())  # fmt: skip
    untracked = [c for c in columns if c in WHOLE_PERSON_COLUMNS and (whole_person is None
                                                                      or WHOLE_PERSON_COLUMNS[c] not in tracked)]  # fmt: skip
    if untracked:
        raise ProgramError(f"column(s) {', '.join(untracked)} need whole_person to track what they show")
    default_columns = tuple(data.get("default_columns", ()))
    if set(default_columns) - set(columns):
        raise ProgramError("default_columns must be among the program's worklist_columns")
    if data["billing"] not in BILLING_MODELS:
        raise ProgramError(f"billing must be one of {', '.join(BILLING_MODELS)}")
    roles = tuple(data["care_team_roles"]) + tuple(data["worked_by"])
    if set(roles) - set(ROLES):
        raise ProgramError(f"unknown role(s): {', '.join(sorted(set(roles) - set(ROLES)))}")
    if data["case_review"] and "psychiatric-consultant" not in data["care_team_roles"]:
        raise ProgramError("case review needs a psychiatric consultant on the care team")
    first_review = data.get("first_review")
    first_review_weeks = int(first_review["within_weeks"]) if isinstance(first_review, Mapping) else None
    if first_review_weeks is not None and not (data["case_review"] and 1 <= first_review_weeks <= 52):
        raise ProgramError("first_review: only for a program with case review, within 1 to 52 weeks")
    eligibility = data["eligibility"]
    return Program(
        key=key,
        title=data["title"],
        model=data["model"],
        order=int(data.get("order", 0)),
        ages_months=_ages(eligibility.get("ages_months")),
        conditions=tuple(eligibility.get("conditions", [])),
        default=bool(eligibility.get("default", False)),
        cautions=tuple((c["condition"], c["text"]) for c in eligibility.get("cautions", [])),
        suggest_when=tuple(SuggestRule(**rule) for rule in eligibility.get("suggest_when", [])),
        measures=measures,
        outcome=outcome,
        follow_up=follow_up,
        flags=flags,
        worklist_columns=columns,
        billing=data["billing"],
        care_team_roles=tuple(data["care_team_roles"]),
        worked_by=tuple(data["worked_by"]),
        case_review=bool(data["case_review"]),
        consent_required=bool(data["consent_required"]),
        diagnoses=_diagnoses(eligibility.get("diagnoses")),
        whole_person=whole_person,
        default_columns=default_columns,
        first_review_weeks=first_review_weeks,
    )


def _whole_person(value: Any, series: set[str]) -> WholePerson | None:
    if value is None:
        return None
    unknown = sorted(set(value) - {"symptoms", "mania_series", "medical", "social", "_comment"})
    if unknown:
        raise ProgramError(f"whole_person: unknown field(s) {', '.join(unknown)}")
    found = WholePerson(tuple(value.get("symptoms", [])), value.get("mania_series"),
                        bool(value.get("medical", False)), bool(value.get("social", False)))  # fmt: skip
    named = [*found.symptoms, *filter(None, [found.mania_series])]
    if not found.symptoms or set(named) - series:
        raise ProgramError(f"whole_person: symptoms must name score series ({', '.join(sorted(series))})")
    return found


def _diagnoses(value: Any) -> Diagnoses | None:
    if value is None:
        return None
    found = Diagnoses(tuple(value.get("icd10cm_prefixes", [])), tuple(value.get("snomed", [])))
    if not (found.icd10cm_prefixes or found.snomed) or not all(
        isinstance(c, str) and c for c in (*found.icd10cm_prefixes, *found.snomed)
    ):
        raise ProgramError("eligibility.diagnoses lists ICD-10-CM prefixes and/or SNOMED CT codes")
    return found


def _ages(value: Any) -> tuple[int, int | None]:
    bounds = age_bounds(value) if value is not None else (0, None)
    if bounds is None:
        raise ProgramError(
            "eligibility.ages_months must be [lowest, highest] completed months (highest may be null)"
        )
    return bounds


def load_programs(folder: Path = DATA_FOLDER) -> dict[str, Program]:
    """Every program definition, checked; a broken file raises ProgramError naming it."""
    programs: dict[str, Program] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("model") in OTHER_MODELS:
                continue  # a tiered program with its own reader (fhir_mappings/healthysteps)
            programs[path.stem] = _program(data, path.stem)
        except (KeyError, TypeError, ValueError) as exc:
            reason = exc if isinstance(exc, ProgramError) else f"missing or malformed {exc}"
            raise ProgramError(f"program {path.stem}: {reason}") from None
    if sum(p.default for p in programs.values()) != 1:
        raise ProgramError("exactly one program must be the default suggestion (eligibility.default)")
    return dict(sorted(programs.items(), key=lambda pair: (pair[1].order, pair[0])))


PROGRAMS: dict[str, Program] = load_programs()


DEFAULT_PROGRAM = next(p for p in PROGRAMS.values() if p.default)


def program_for(key: str | None) -> Program | None:
    return PROGRAMS.get(key or "")


def program_or_default(key: str | None) -> Program:
    """The program's definition; an enrolment in a program this deployment no longer defines reads as the default."""
    return PROGRAMS.get(key or "", DEFAULT_PROGRAM)


def programs_for_age(months: int | None, programs: Mapping[str, Program] = PROGRAMS) -> dict[str, Program]:
    """The programs a patient of this age may be enrolled in (no adult CoCM for an infant)."""
    return {key: p for key, p in programs.items() if p.fits_age(months)}


def suggest_program(history: Iterable[ScorePoint], conditions: Iterable[ConditionRow], age_months: int | None = None,
                    programs: Mapping[str, Program] = PROGRAMS) -> tuple[str | None, list[str]]:  # fmt: skip
    """The program suggested from the latest scores and the EHR conditions among those for the patient's age,
    with the cautions to show; None when no program is for this age."""
    fitting = programs_for_age(age_months, programs)
    latest = {p.instrument: p for p in sorted(own(history), key=lambda p: p.when)}
    conditions = list(conditions)
    active = {c.group for c in conditions if c.active}
    # A program for a diagnosis (SMI) comes first: its patients need it whatever their scores say.
    chosen = next((p for p in fitting.values() if p.eligible_by_diagnosis(conditions)), None)
    chosen = chosen or next((p for p in fitting.values() if p.suggested_by(latest, active)), None)
    chosen = chosen or next((p for p in fitting.values() if p.default), None)
    chosen = chosen or next(iter(fitting.values()), None)
    return (chosen.key, chosen.cautions_for(active)) if chosen else (None, [])


def measures_due(program: Program, history: Iterable[ScorePoint], active_conditions: set[str],
                 age_years: int | None, today: date) -> list[DueItem]:  # fmt: skip
    """The program's measures whose cadence has come round (or that were never taken)."""
    due = []
    points = own(history)
    for measure in program.measures:
        if measure.only_with_condition and measure.only_with_condition not in active_conditions:
            continue
        taken = [p for p in points if p.instrument == measure.series]
        last = max(taken, key=lambda p: p.when) if taken else None
        if last is None or today - last.day >= timedelta(days=measure.every_days):
            when = (
                "never recorded" if last is None else f"last {last.score}, {(today - last.day).days} days ago"
            )
            due.append(DueItem(measure.instrument_for(age_years), f"{program.title}: {measure.series} every "
                               f"{measure.every_days // 7} weeks ({when})."))  # fmt: skip
    return due


def due_with_programs(due: Iterable[DueItem], enrolled_in: Iterable[str], history: Iterable[ScorePoint],
                      active_conditions: set[str], age_years: int | None, today: date) -> list[DueItem]:  # fmt: skip
    """A due list with the measures of the programs the patient is actively enrolled in, one item per instrument."""
    points = list(history)
    found = list(due)
    for key in enrolled_in:
        program = program_for(key)
        if program is not None:
            found += measures_due(program, points, active_conditions, age_years, today)
    unique: dict[str, DueItem] = {}
    for item in found:
        unique.setdefault(item.instrument, item)
    return list(unique.values())

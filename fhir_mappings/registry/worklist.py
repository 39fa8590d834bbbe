"""The care manager's worklist: one row per enrolled patient, flags, caseload statistics, sorting, CSV. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from fhir_mappings.common.dates import age_text
from fhir_mappings.common.export import csv_text
from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.billing import MonthCode, month_code, month_of
from fhir_mappings.registry.programs import COLUMNS, Program, program_or_default
from fhir_mappings.registry.resources import PHASES, PROGRAM_TITLES, Contact, Enrolment, WorkTask
from fhir_mappings.registry.scores import Scores
from fhir_mappings.screening.history import ScorePoint, own
from fhir_mappings.smi.row import MEDICAL_FLAG_LABELS, SOCIAL_FLAG_LABELS, WholePersonView, whole_person
from fhir_mappings.smi.social import Answered

#: The EHR's medical resources of one patient as last read: Observations, MedicationRequests, when.
MedicalInputs = tuple[list[dict[str, Any]], list[dict[str, Any]], datetime]

#: Flags in the order a care manager works them: the default worklist order and the case review's.
FLAG_PRIORITY = (
    "safety",
    "mania",
    "review",
    "not-improving",
    "first-review-overdue",
    "medical",
    "overdue",
    "no-contact",
    "social",
    "new",
)
FLAG_LABELS = {
    "safety": "Safety",
    "mania": "Mania screen positive",
    "medical": "Medical",
    "social": "Social",
    "not-improving": "Not improving",
    "no-contact": "No recent contact",
    "overdue": "Follow-up overdue",
    "review": "Flagged for review",
    "new": "New (never reviewed)",
    "first-review-overdue": "First review overdue",
}


@dataclass(frozen=True)
class Row:
    enrolment: Enrolment
    weeks_in_treatment: int
    last_contact: date | None
    contacts_by_type: dict[str, int]
    phq9: Scores
    gad7: Scores
    response: bool
    remission: bool
    flags: tuple[str, ...]
    last_review: date | None
    last_recommendations: str | None
    minutes_this_month: int
    billing: MonthCode
    open_tasks: tuple[WorkTask, ...] = field(default_factory=tuple)
    age: int | None = None
    #: The age as shown: months under two years (`9 mo`), years and months under three.
    age_label: str | None = None
    #: When the next contact is due: the earliest open follow-up Task, else the program's cadence.
    follow_up_due: date | None = None
    #: When the next program measure is due, and which series.
    measure_due: date | None = None
    measure_due_series: str | None = None
    #: Symptoms, body and life (programs with `whole_person`: SMI); None for other programs.
    whole: WholePersonView | None = None

    @property
    def program(self) -> Program:
        return program_or_default(self.enrolment.program)

    @property
    def patient(self) -> str:
        return self.enrolment.patient_name or "Name not recorded"

    @property
    def identity(self) -> str:
        """Birth date, age and MRN: what tells two patients of one name apart."""
        return _identity(self.enrolment, self.age_label)

    @property
    def priority(self) -> int:
        """The rank of the most urgent flag (0 = safety); rows without flags come last."""
        return min(
            (FLAG_PRIORITY.index(f) for f in self.flags if f in FLAG_PRIORITY), default=len(FLAG_PRIORITY)
        )

    def member_name(self, role: str) -> str:
        member = self.enrolment.member(role)
        return member.name if member else ""

    def display_value(self, column: str) -> str:
        """The column's value as the worklist shows it (what a column filter matches)."""
        value = self.sort_value(column)
        if column == "flags":
            return " ".join(FLAG_LABELS[f] for f in self.flags)
        if column == "status":
            return self.enrolment.phase.replace("-", " ")
        if column in WHOLE_PERSON_TEXT:
            return WHOLE_PERSON_TEXT[column](self.whole) if self.whole else ""
        if isinstance(value, date):
            return "" if value in (date.min, date.max) else value.isoformat()
        if isinstance(value, int | float) and value in (-1, 999.0):
            return ""
        return str(value)

    def sort_value(self, column: str) -> Any:
        e = self.enrolment
        values: dict[str, Any] = {
            "patient": self.patient.lower(),
            "pcp": self.member_name("pcp"),
            "care_manager": self.member_name("care-manager"),
            "consultant": self.member_name("psychiatric-consultant"),
            "program": e.program,
            "enrolled": e.start,
            "weeks": self.weeks_in_treatment,
            "last_contact": self.last_contact or date.min,
            "contacts": sum(self.contacts_by_type.values()),
            "phq9_first": self.phq9.first if self.phq9.first is not None else -1,
            "phq9_latest": self.phq9.latest if self.phq9.latest is not None else -1,
            "phq9_change": self.phq9.change_pct if self.phq9.change_pct is not None else 999.0,
            "gad7_first": self.gad7.first if self.gad7.first is not None else -1,
            "gad7_latest": self.gad7.latest if self.gad7.latest is not None else -1,
            "gad7_change": self.gad7.change_pct if self.gad7.change_pct is not None else 999.0,
            "flags": (self.priority, -len(self.flags)),
            "follow_up_due": self.follow_up_due or date.max,
            "measure_due": self.measure_due or date.max,
            "dob": e.birth_date or date.max,
            "last_review": self.last_review or date.min,
            "status": e.phase,
            "minutes": self.minutes_this_month,
            "billing": self.billing.label,
        }
        if column in WHOLE_PERSON_SORT:
            return WHOLE_PERSON_SORT[column](self.whole) if self.whole else (-1, 0.0)
        return values.get(column, self.patient.lower())


def _latest(view: WholePersonView, kind: str) -> float | None:
    reading = view.medical.latest.get(kind) if view.medical else None
    return reading.value if reading else None


def _number_text(value: float | None, unit: str = "") -> str:
    return "" if value is None else f"{value:g}{unit}"


def _answer(view: WholePersonView, domain: str) -> str:
    status = view.status(domain)
    return status.latest.answer.label if status and status.latest else ""


def _symptoms_text(view: WholePersonView) -> str:
    return " · ".join(f"{s.series} {s.latest}" for s in view.symptoms if s.latest is not None)


#: What the whole-person columns show as text (the column filter matches it).
WHOLE_PERSON_TEXT: dict[str, Callable[[WholePersonView], str]] = {
    "symptoms": _symptoms_text,
    "medical": lambda v: " ".join(MEDICAL_FLAG_LABELS.get(f, f) for f in v.medical_flags),
    "social": lambda v: " ".join(SOCIAL_FLAG_LABELS.get(f, f) for f in v.social_flags),
    "bp": lambda v: v.medical.bp.text if v.medical and v.medical.bp else "",
    "bmi": lambda v: _number_text(_latest(v, "bmi")),
    "weight_change": lambda v: _number_text(v.medical.weight_change_pct if v.medical else None),
    "hba1c": lambda v: _number_text(_latest(v, "hba1c")),
    "ldl": lambda v: _number_text(_latest(v, "ldl")),
    "smoking": lambda v: (v.medical.smoking or "") if v.medical else "",
    "housing": lambda v: _answer(v, "housing"),
    "employment": lambda v: _answer(v, "employment"),
    "justice": lambda v: _answer(v, "justice"),
    "connection": lambda v: _answer(v, "connection"),
}


def _met_rank(view: WholePersonView, domain: str) -> tuple[int, float]:
    """Not met before met; unknown sorts as the lowest, as a missing value does in every column."""
    status = view.status(domain)
    met = status.met_now if status else None
    return (-1 if met is None else 1 if met else 0, 0.0)


def _value_rank(value: float | None) -> tuple[int, float]:
    """A missing value sorts as the lowest, as the other columns' do (last on a descending sort)."""
    return (0, value) if value is not None else (-1, 0.0)


WHOLE_PERSON_SORT: dict[str, Callable[[WholePersonView], tuple[int, float]]] = {
    # The composite columns sort by how many flags they raise (most first on a descending sort).
    "symptoms": lambda v: (0, float(sum(1 for s in v.symptoms if s.positive or s.verdict == "worsened"))),
    "medical": lambda v: (0, float(len(v.medical_flags))) if v.medical else (-1, 0.0),
    "social": lambda v: (0, float(len(v.social_flags))),
    "bp": lambda v: _value_rank(float(v.medical.bp.systolic) if v.medical and v.medical.bp else None),
    "bmi": lambda v: _value_rank(_latest(v, "bmi")),
    "weight_change": lambda v: _value_rank(v.medical.weight_change_pct if v.medical else None),
    "hba1c": lambda v: _value_rank(_latest(v, "hba1c")),
    "ldl": lambda v: _value_rank(_latest(v, "ldl")),
    "smoking": lambda v: (0 if v.medical and v.medical.smoking == "current" else 1, 0.0),
    "housing": lambda v: _met_rank(v, "housing"),
    "employment": lambda v: _met_rank(v, "employment"),
    "justice": lambda v: _met_rank(v, "justice"),
    "connection": lambda v: _met_rank(v, "connection"),
}


def _identity(e: Enrolment, age: str | None) -> str:
    parts = [f"DOB {e.birth_date.isoformat()}" if e.birth_date else "DOB not recorded"]
    if age is not None:
        parts.append(age)
    parts.append(f"MRN {e.mrn}" if e.mrn else "MRN not recorded")
    return " · ".join(parts)


def patient_identity(e: Enrolment, today: date) -> str:
    """`DOB 1980-05-02 · 46 y · MRN 100007`: shown beside the name on every registry page."""
    return _identity(e, age_text(e.birth_date, today))


def columns_for(programs: Iterable[str]) -> tuple[str, ...]:
    """The worklist columns the shown programs' definitions ask for, in the standard order."""
    wanted = {c for key in programs for c in program_or_default(key).worklist_columns}
    return tuple(c for c in COLUMNS if c in wanted)


def build_rows(
    enrolments: Iterable[Enrolment],
    contacts: Iterable[Contact],
    tasks: Iterable[WorkTask],
    scores: Mapping[PatientKey, list[ScorePoint]],
    today: date,
    *,
    no_contact_weeks: int = 4,
    safety_pending: Iterable[PatientKey] = (),
    medical: Mapping[PatientKey, MedicalInputs] | None = None,
    social: Mapping[PatientKey, list[Answered]] | None = None,
) -> list[Row]:
    """One row per active enrolment. `safety_pending`: patients with a positive safety item whose safety Task
    is not (yet) in the registry store: flagged until a person completes that Task. `medical` (the EHR's copy)
    and `social` (registry answers) feed the whole-person part of programs that track them (SMI)."""
    contacts_by_plan: dict[str, list[Contact]] = {}
    for contact in contacts:
        contacts_by_plan.setdefault(contact.careplan_id, []).append(contact)
    tasks_by_plan: dict[str, list[WorkTask]] = {}
    tasks_by_patient: dict[PatientKey, list[WorkTask]] = {}
    for task in tasks:
        if task.careplan_id:
            tasks_by_plan.setdefault(task.careplan_id, []).append(task)
        if task.key is not None:
            tasks_by_patient.setdefault(task.key, []).append(task)
    alerts = set(safety_pending)
    rows = []
    for e in enrolments:
        if not e.active or not e.collaborative:
            continue
        mine = contacts_by_plan.get(e.id, [])
        plan_tasks = tasks_by_plan.get(e.id, [])
        patient_tasks = tasks_by_patient.get(e.key, [])
        points = own(scores.get(e.key, []))  # a caregiver's screens on the chart are not the patient's
        program = program_or_default(e.program)
        rules = program.outcome
        window = (e.start, rules.baseline_days_before_enrolment, rules.baseline_days_after_enrolment)
        phq = Scores.of([p for p in points if p.instrument == "PHQ-9"], *window)
        gad = Scores.of([p for p in points if p.instrument == "GAD-7"], *window)
        outcome = Scores.of([p for p in points if p.instrument == rules.series], *window)
        weeks = max(0, (today - e.start).days // 7)
        last_contact = max((c.when for c in mine), default=None)
        reviews = [t for t in plan_tasks if t.kind == "case-review" and not t.open and t.completed]
        last_review = max(reviews, key=lambda t: t.completed or date.min, default=None)
        response = outcome.change_pct is not None and outcome.change_pct <= -rules.response_drop_pct
        remission = (
            outcome.latest is not None
            and outcome.latest < rules.remission_below
            and outcome.first is not None
        )
        flags = []
        if e.key in alerts or any(t.kind == "safety-follow-up" and t.open for t in patient_tasks):
            flags.append("safety")
        if weeks >= rules.not_improving_after_weeks and outcome.first is not None and not response:
            flags.append("not-improving")
        reference_day = last_contact or e.start
        if (today - reference_day).days > 7 * no_contact_weeks:
            flags.append("no-contact")
        if any(t.kind == "follow-up" and t.open and t.due and t.due < today for t in plan_tasks):
            flags.append("overdue")
        if e.flagged_for_review or any(t.kind == "case-review" and t.open for t in plan_tasks):
            flags.append("review")
        # Never reviewed: new to the caseload until the first review is due (the program's `first_review`, else
        # its first follow-up window), then (programs with case review) the first review is overdue.
        if last_review is None and (today - e.start).days < program.new_for_days:
            flags.append("new")
        elif last_review is None and program.case_review and program.first_review_weeks is not None:
            flags.append("first-review-overdue")
        whole = None
        if program.whole_person is not None:
            whole = whole_person(program.whole_person, points, e.start, today, window=window[1:],
                                 medical=(medical or {}).get(e.key), answers=(social or {}).get(e.key, ()))  # fmt: skip
            flags += list(whole.flags)
        flags = sorted(dict.fromkeys(flags), key=FLAG_PRIORITY.index)
        flags = [
            flag for flag in flags if flag in program.flags or flag == "safety"
        ]  # safety is never hidden
        follow_ups = [t.due for t in plan_tasks if t.kind == "follow-up" and t.open and t.due]
        cadence = program.follow_up
        follow_up_due = min(follow_ups) if follow_ups else (
            last_contact + timedelta(days=cadence.every_days(e.phase)) if last_contact
            else e.start + timedelta(days=cadence.first_within_days))  # fmt: skip
        measure_due, measure_series = _next_measure(program, points, e.start)
        rows.append(Row(
            enrolment=e,
            weeks_in_treatment=weeks,
            last_contact=last_contact,
            contacts_by_type=dict(Counter(c.contact_type for c in mine)),
            phq9=phq,
            gad7=gad,
            response=response,
            remission=remission,
            flags=tuple(flags),
            last_review=last_review.completed if last_review else None,
            last_recommendations=last_review.recommendations if last_review else None,
            minutes_this_month=sum(c.minutes for c in mine if month_of(c.when) == month_of(today)),
            billing=month_code(e, mine, today),
            open_tasks=tuple(t for t in plan_tasks + [t for t in patient_tasks if t.careplan_id is None] if t.open),
            age=e.age(today),
            age_label=age_text(e.birth_date, today),
            follow_up_due=follow_up_due,
            measure_due=measure_due,
            measure_due_series=measure_series,
            whole=whole,
        ))  # fmt: skip
    return rows


def measures_due(program: Program, points: list[ScorePoint], enrolled: date) -> list[tuple[date, str]]:
    """Each program measure's due day: its last score plus its cadence, or the enrolment day if never taken since.
    A measure only for a condition counts when the patient has scores in its series. Earliest first."""
    due: list[tuple[date, str]] = []
    for measure in program.measures:
        taken = [p.day for p in points if p.instrument == measure.series]
        if measure.only_with_condition and not taken:
            continue
        since = [
            d for d in taken if d >= enrolled - timedelta(days=program.outcome.baseline_days_before_enrolment)
        ]
        due.append((max(since) + timedelta(days=measure.every_days) if since else enrolled, measure.series))
    return sorted(due)


def _next_measure(
    program: Program, points: list[ScorePoint], enrolled: date
) -> tuple[date | None, str | None]:
    """The earliest due program measure and its series."""
    due = measures_due(program, points, enrolled)
    return due[0] if due else (None, None)


def filter_rows(rows: Iterable[Row], *, flag: str | None = None, member: str | None = None,
                program: str | None = None, text: str | None = None, column: str | None = None,
                value: str | None = None) -> list[Row]:  # fmt: skip
    """Rows matching every given filter (`member`: the patients where that practitioner has any role on the care
    team); `column` + `value` filters any column by what it shows (a number
    with a comparison, such as `>=10` on PHQ-9 latest, or text contained in it)."""
    result = []
    for row in rows:
        if column in COLUMNS and value and not _matches(row.display_value(column), value.strip()):
            continue
        if flag and flag not in row.flags:
            continue
        if member and not row.enrolment.has_member(member):
            continue
        if program and row.enrolment.program != program:
            continue
        if text and text.lower() not in row.patient.lower():
            continue
        result.append(row)
    return result


def _matches(shown: str, wanted: str) -> bool:
    for operator in (">=", "<=", ">", "<", "="):
        if wanted.startswith(operator):
            try:
                number, limit = float(shown), float(wanted[len(operator) :])
            except ValueError:
                return False
            return {">=": number >= limit, "<=": number <= limit, ">": number > limit, "<": number < limit,
                    "=": number == limit}[operator]  # fmt: skip
    return wanted.lower() in shown.lower()


def sort_rows(rows: Iterable[Row], column: str, descending: bool = False) -> list[Row]:
    """Sorted by a column, ties by name then date of birth (a stable order: a reload never reshuffles)."""
    column = column if column in COLUMNS else "flags"
    ordered = sorted(rows, key=lambda r: (r.patient.lower(), r.sort_value("dob"), r.enrolment.id))
    return sorted(ordered, key=lambda r: r.sort_value(column), reverse=descending)


@dataclass(frozen=True)
class CaseloadStats:
    size: int
    contacted_30d: int
    improving: int
    remission: int
    with_baseline: int

    @staticmethod
    def pct(part: int, whole: int) -> str:
        return f"{round(100 * part / whole)}%" if whole else "—"


def caseload_stats(rows: list[Row], today: date) -> CaseloadStats:
    baseline = [r for r in rows if r.phq9.first is not None and r.phq9.latest is not None]
    return CaseloadStats(
        size=len(rows),
        contacted_30d=sum(1 for r in rows if r.last_contact and (today - r.last_contact).days <= 30),
        improving=sum(1 for r in baseline if r.phq9.change_pct is not None and r.phq9.change_pct <= -50),
        remission=sum(1 for r in baseline if r.remission),
        with_baseline=len(baseline),
    )


REVIEW_GROUPS = (
    ("safety", "Safety"),
    ("mania", "Mania screen positive"),
    ("review", "Flagged for review by the care manager"),
    ("not-improving", "Not improving"),
    ("first-review-overdue", "Never reviewed: first review overdue"),
    # SMI: out-of-target or overdue medical measures, for the psychiatric consultant and the primary-care liaison.
    ("medical", "Medical flags (for the consultant and the primary-care liaison)"),
    ("new", "New to the caseload"),
)


def review_group(row: Row) -> str | None:
    """The case review group a row belongs to (its most urgent), or None when it need not come to review."""
    return next((key for key, _ in REVIEW_GROUPS if key in row.flags), None)


def review_priority(rows: Iterable[Row]) -> list[Row]:
    """Psychiatric case review order: safety first, then a positive mania screen, patients the care manager
    flagged for review, not improving, never reviewed past the first review's day, medical flags (SMI), then new
    to the caseload; longest in treatment first
    within a group, then by name. Only programs whose definition has case review (CoCM) come to it."""
    order = [key for key, _ in REVIEW_GROUPS]
    chosen = [(review_group(r), r) for r in rows if r.program.case_review]
    ranked = [(order.index(group), r) for group, r in chosen if group is not None]
    ranked.sort(key=lambda pair: (pair[0], -pair[1].weeks_in_treatment, pair[1].patient.lower(),
                                  pair[1].sort_value("dob")))  # fmt: skip
    return [r for _, r in ranked]


CSV_HEADER = ("Patient", "Date of birth", "Age", "MRN", "PCP", "Care manager", "Psychiatric consultant", "Program", "Status",
              "Enrolled", "Weeks in treatment", "Last contact", "Contacts", "Next follow-up due", "Next measure due",
              "PHQ-9 first", "PHQ-9 latest",
              "PHQ-9 change %", "GAD-7 first", "GAD-7 latest", "GAD-7 change %", "Response", "Remission", "Flags",
              "Last review", "Recommendations", "Minutes this month", "Billing this month")  # fmt: skip


#: The whole-person columns added when any row is of a program that tracks them (SMI).
WHOLE_PERSON_CSV = ("Symptoms", "Mania screen", "BP", "BMI", "Weight change %", "HbA1c", "LDL", "Smoking",
                    "Medical flags", "Housing", "Work or school", "Jail stays", "Social contact", "Social flags",
                    "EHR medical data read")  # fmt: skip


def _local(instant: datetime | None, zone: tzinfo | None) -> str:
    """An instant as a spreadsheet's reader reads it: the site's local time, no offset (issue 28)."""
    if instant is None:
        return ""
    if instant.tzinfo is not None and zone is not None:
        instant = instant.astimezone(zone)
    return instant.strftime("%Y-%m-%d %H:%M")


def _whole_csv(r: Row, zone: tzinfo | None) -> list[Any]:
    view = r.whole
    if view is None:
        return [""] * len(WHOLE_PERSON_CSV)
    return [WHOLE_PERSON_TEXT["symptoms"](view), "positive" if "mania" in r.flags else "",
            *(WHOLE_PERSON_TEXT[c](view) for c in ("bp", "bmi", "weight_change", "hba1c", "ldl", "smoking")),
            # Flags in words, not their keys: a spreadsheet a person opens (issue 28).
            "; ".join(MEDICAL_FLAG_LABELS.get(f, f) for f in view.medical_flags),
            *(WHOLE_PERSON_TEXT[c](view) for c in ("housing", "employment", "justice", "connection")),
            "; ".join(SOCIAL_FLAG_LABELS.get(f, f) for f in view.social_flags),
            _local(view.medical_read_at, zone)]  # fmt: skip


def rows_csv(rows: Iterable[Row], zone: tzinfo | None = None) -> str:
    """The worklist as CSV; times in `zone` (the deployment's time zone), without an offset."""

    def line(r: Row) -> list[Any]:
        e = r.enrolment
        return [r.patient, e.birth_date.isoformat() if e.birth_date else "", r.age if r.age is not None else "",
                e.mrn or "", r.member_name("pcp"), r.member_name("care-manager"),
                r.member_name("psychiatric-consultant"), PROGRAM_TITLES.get(e.program, e.program),
                PHASES[e.phase][1] if e.phase in PHASES else e.phase, e.start.isoformat(),
                r.weeks_in_treatment, r.last_contact.isoformat() if r.last_contact else "",
                sum(r.contacts_by_type.values()), r.follow_up_due.isoformat() if r.follow_up_due else "",
                r.measure_due.isoformat() if r.measure_due else "", r.phq9.first, r.phq9.latest, r.phq9.change_pct, r.gad7.first,
                r.gad7.latest, r.gad7.change_pct, r.response, r.remission, "; ".join(FLAG_LABELS.get(f, f) for f in r.flags),
                r.last_review.isoformat() if r.last_review else "", r.last_recommendations or "",
                r.minutes_this_month, r.billing.label]  # fmt: skip

    rows = list(rows)
    if any(r.whole is not None for r in rows):
        return csv_text((*CSV_HEADER, *WHOLE_PERSON_CSV), ([*line(r), *_whole_csv(r, zone)] for r in rows))
    return csv_text(CSV_HEADER, (line(r) for r in rows))

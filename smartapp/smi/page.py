"""What the SMI patient page shows beside the registry's: three trends side by side (symptoms, body, life), each
with its targets, and what is due (program measures, metabolic monitoring, social questions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from markupsafe import Markup

from fhir_mappings.common.identity import PatientKey
from fhir_mappings.registry.programs import Program
from fhir_mappings.registry.worklist import MedicalInputs, Row, measures_due
from fhir_mappings.screening.history import ScorePoint, series
from fhir_mappings.screening.instruments import CATALOGUE
from fhir_mappings.smi.medical import MEDICAL
from fhir_mappings.smi.social import SOCIAL, Answered, Domain, next_due
from smartapp.smi.charts import SMALL_HEIGHT, measure_svg, symptom_svg
from smartapp.smi.medical import EhrMedical


def symptom_target(program: Program, series: str) -> str:
    """What a symptom series is aimed at, in words, from the program's outcome rules and the instrument's file."""
    parts = []
    if series == program.outcome.series:
        parts.append(f"remission below {program.outcome.remission_below}; response is a "
                     f"{program.outcome.response_drop_pct} % drop")  # fmt: skip
    instrument = CATALOGUE.series_instrument(series)
    if instrument is not None and series != program.outcome.series:
        if instrument.positive_at_most is not None:
            parts.append(f"{instrument.positive_at_most + 1} or more")
        elif instrument.positive_at is not None:
            parts.append(f"below {instrument.positive_at} ({instrument.positive_at} or more is positive)")
        rule = instrument.change
        if rule is not None:
            parts.append(f"a {rule.size_text} change is meaningful ({rule.better} is better)")
    return "; ".join(parts) or "none set"


#: The body's targets in words, from the medical outcomes file.
BODY_TARGETS = (f"BP below {MEDICAL.systolic_below}/{MEDICAL.diastolic_below} · HbA1c below {MEDICAL.hba1c_below:g} % "
                f"· weight gain under {MEDICAL.weight_gain_pct:g} % from the baseline at the antipsychotic start")  # fmt: skip


#: The summary on top of the SMI patient page lists what is overdue and what falls due within this many days.
DUE_SOON_DAYS = 14


@dataclass
class Due:
    what: str
    when: date
    overdue: bool


@dataclass
class WholePersonPage:
    symptom_charts: list[tuple[str, list[ScorePoint], Markup]] = field(default_factory=list)
    #: (title, target in words, chart) of weight, blood pressure and HbA1c.
    body_charts: list[tuple[str, str, Markup]] = field(default_factory=list)
    #: Social answers by domain over time: (domain, [(day, answer label, good)]) — the last six days asked.
    life: list[tuple[Domain, list[tuple[date, str, bool | None]]]] = field(default_factory=list)
    life_days: list[date] = field(default_factory=list)
    due: list[Due] = field(default_factory=list)
    #: What the summary on top leads with: the overdue and what falls due within DUE_SOON_DAYS.
    due_now: list[Due] = field(default_factory=list)
    #: Each symptom series' target in words.
    targets: dict[str, str] = field(default_factory=dict)
    body_targets: str = BODY_TARGETS


def medical_inputs(copy: EhrMedical, iss: str) -> dict[PatientKey, MedicalInputs]:
    """The EHR medical copy of an issuer's patients, as the worklist rows take it (one store read)."""
    return {key: (r.observations, r.requests, r.read_at) for key, r in copy.for_issuer(iss).items()}


def whole_person_page(program: Program, row: Row, points: list[ScorePoint], answers: list[Answered],
                      today: date) -> WholePersonPage:  # fmt: skip
    page = WholePersonPage()
    plan, whole = program.whole_person, row.whole
    if plan is None or whole is None:
        return page
    for name in plan.symptoms:
        mine = series(points, name)
        if mine:
            page.symptom_charts.append((name, mine, symptom_svg(mine, name)))
            page.targets[name] = symptom_target(program, name)
    for when, name in measures_due(program, points, row.enrolment.start):
        page.due.append(Due(name, when, when < today))
    summary = whole.medical
    if summary is not None:
        weights = [(r.day, r.value) for r in summary.readings if r.kind == "weight"]
        baseline = summary.weight_baseline
        limit = round(baseline.value * (1 + MEDICAL.weight_gain_pct / 100), 1) if baseline else None
        weight_target = (f"below {limit:g} kg ({MEDICAL.weight_gain_pct:g} % over the baseline {round(baseline.value, 2):g} kg)"
                         if baseline and limit else "")  # fmt: skip
        pressures = summary.pressures
        bp_target = f"below {MEDICAL.systolic_below}/{MEDICAL.diastolic_below}"
        hba1c = [(r.day, r.value) for r in summary.readings if r.kind == "hba1c"]
        hba1c_target = f"below {MEDICAL.hba1c_below:g} %"
        charts = [
            ("Weight (kg)", weight_target, measure_svg("Weight", "kg", [("weight", weights)], target=limit,
                                                       target_label=weight_target, height=SMALL_HEIGHT)),
            ("Blood pressure (mmHg)", bp_target, measure_svg(
                "Blood pressure", "mmHg", [("systolic", [(p.day, float(p.systolic)) for p in pressures]),
                                           ("diastolic", [(p.day, float(p.diastolic)) for p in pressures])],
                target=float(MEDICAL.systolic_below), target_label=f"systolic {bp_target}",
                height=SMALL_HEIGHT)),
            ("HbA1c (%)", hba1c_target, measure_svg("HbA1c", "%", [("HbA1c", hba1c)], target=MEDICAL.hba1c_below,
                                                    target_label=hba1c_target, height=SMALL_HEIGHT)),
        ]  # fmt: skip
        page.body_charts = [chart for chart in charts if chart[2]]
        for check in summary.monitoring:
            page.due.append(Due(f"{check.label} (antipsychotic monitoring)", check.next_due, check.overdue))
    if plan.social:
        days = sorted({a.day for a in answers})[-6:]
        page.life_days = days
        for domain in SOCIAL.domains:
            cells = [(a.day, a.answer.label, a.answer.good) for a in answers if a.domain == domain.key
                     and a.day in days]  # fmt: skip
            page.life.append((domain, cells))
        if whole.social_due:
            when = next_due(answers, row.enrolment.start)
            page.due.append(Due("Social status questions", when, when < today))
    page.due.sort(key=lambda d: d.when)
    page.due_now = [d for d in page.due if d.overdue or (d.when - today).days <= DUE_SOON_DAYS]
    return page

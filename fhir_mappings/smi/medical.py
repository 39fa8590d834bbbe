"""Medical outcomes for people with serious mental illness, from the EHR's Observations and MedicationRequests:
latest blood pressure, BMI, weight change from baseline, HbA1c, glucose, LDL and smoking status, each against its
target; antipsychotics; the metabolic monitoring schedule; and gap flags built from first principles ("on an
antipsychotic, no glucose or HbA1c in 12 months") — never labelled as HEDIS rates. Codes, targets and schedules
are data (`fhir_mappings/data/smi/medical.json`). Pure and total: unreadable resources are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhir_mappings.common.access import codes, obj, objs, text
from fhir_mappings.common.dates import parse_date

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "smi" / "medical.json"
KINDS = ("bp_panel", "systolic", "diastolic", "bmi", "weight", "waist", "hba1c", "glucose", "ldl", "smoking")
READING_KINDS = ("bp", "bmi", "weight", "waist", "hba1c", "glucose", "ldl")
_POUND_KG = 0.45359237


class MedicalConfigError(ValueError):
    """A medical outcomes file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Monitoring:
    key: str
    label: str
    any_of: tuple[str, ...]
    weeks_after_start: tuple[int, ...]
    then_every_days: int


@dataclass(frozen=True)
class Gap:
    key: str
    label: str
    any_of: tuple[str, ...]
    within_days: int


@dataclass(frozen=True)
class MedicalConfig:
    codes: dict[str, tuple[str, ...]]
    systolic_below: int
    diastolic_below: int
    hba1c_below: float
    hba1c_poor_control_above: float
    weight_gain_pct: float
    baseline_days_before_start: int
    smoking: dict[str, tuple[str, ...]]
    ingredients: tuple[str, ...]
    rxnorm: tuple[str, ...]
    monitoring: tuple[Monitoring, ...]
    monitoring_grace_days: int
    gaps: tuple[Gap, ...]

    def kind_of(self, observation: Mapping[str, Any]) -> str | None:
        found = set(codes(observation.get("code"), LOINC))
        return next((kind for kind in KINDS if found & set(self.codes.get(kind, ()))), None)

    @property
    def search_codes(self) -> str:
        """The `code` search parameter for every Observation the summary reads."""
        return ",".join(f"{LOINC}|{c}" for kind in KINDS for c in self.codes.get(kind, ()))


def load_medical(path: Path = DATA_FILE) -> MedicalConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        targets = data["targets"]
        config = MedicalConfig(
            codes={k: tuple(v) for k, v in data["codes"].items() if not k.startswith("_")},
            systolic_below=int(targets["systolic_below"]),
            diastolic_below=int(targets["diastolic_below"]),
            hba1c_below=float(targets["hba1c_below"]),
            hba1c_poor_control_above=float(targets["hba1c_poor_control_above"]),
            weight_gain_pct=float(targets["weight_gain_pct"]),
            baseline_days_before_start=int(targets["baseline_days_before_start"]),
            smoking={k: tuple(v) for k, v in data["smoking"].items() if not k.startswith("_")},
            ingredients=tuple(i.lower() for i in data["antipsychotics"]["ingredients"]),
            rxnorm=tuple(data["antipsychotics"]["rxnorm"]),
            monitoring=tuple(
                Monitoring(
                    m["key"],
                    m["label"],
                    tuple(m["any_of"]),
                    tuple(m["weeks_after_start"]),
                    int(m["then_every_days"]),
                )
                for m in data["monitoring"]
            ),  # fmt: skip
            monitoring_grace_days=int(data["monitoring_grace_days"]),
            gaps=tuple(
                Gap(g["key"], g["label"], tuple(g["any_of"]), int(g["within_days"])) for g in data["gaps"]
            ),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise MedicalConfigError(f"{path.name}: missing or malformed {exc}") from None
    unknown = set(config.codes) - set(KINDS)
    named = {k for m in config.monitoring for k in m.any_of} | {k for g in config.gaps for k in g.any_of}
    if unknown or named - set(READING_KINDS):
        raise MedicalConfigError(
            f"{path.name}: unknown kind(s) {sorted(unknown | (named - set(READING_KINDS)))}"
        )
    if any(not m.weeks_after_start or m.then_every_days < 1 for m in config.monitoring):
        raise MedicalConfigError(
            f"{path.name}: a monitoring entry needs its weeks and a cadence of a day or more"
        )
    return config


MEDICAL = load_medical()


@dataclass(frozen=True)
class Reading:
    kind: str
    day: date
    value: float
    unit: str


@dataclass(frozen=True)
class BloodPressure:
    """A blood pressure shown in whole mmHg; `exact` keeps the values as recorded, which the target compares (139.6
    is below 140 even though it shows as 140)."""

    day: date
    systolic: int
    diastolic: int
    exact: tuple[float, float] | None = None

    @property
    def exact_systolic(self) -> float:
        return self.exact[0] if self.exact else float(self.systolic)

    @property
    def exact_diastolic(self) -> float:
        return self.exact[1] if self.exact else float(self.diastolic)

    @property
    def text(self) -> str:
        return f"{self.systolic}/{self.diastolic}"


@dataclass(frozen=True)
class Antipsychotic:
    name: str
    start: date | None
    active: bool


@dataclass(frozen=True)
class MonitoringStatus:
    key: str
    label: str
    last: date | None
    next_due: date
    overdue: bool


@dataclass
class MedicalSummary:
    bp: BloodPressure | None = None
    bp_controlled: bool | None = None
    latest: dict[str, Reading] = field(default_factory=dict)
    weight_baseline: Reading | None = None
    #: Weight change from the baseline in %, rounded to one decimal for display; the flag compares the exact value
    #: (`weight_change_exact`): 4.96 % shows as 5.0 but is not a gain of 5 % or more.
    weight_change_pct: float | None = None
    weight_change_exact: float | None = None
    hba1c_poor_control: bool = False
    smoking: str | None = None  # "current", "former", "never" or the EHR's text
    antipsychotics: list[Antipsychotic] = field(default_factory=list)
    antipsychotic_start: date | None = None
    monitoring: list[MonitoringStatus] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    pressures: list[BloodPressure] = field(default_factory=list)

    @property
    def on_antipsychotic(self) -> bool:
        return any(a.active for a in self.antipsychotics)


def _counts(observation: Mapping[str, Any]) -> bool:
    return observation.get("status") in ("final", "amended", "corrected", "preliminary")


def _day(observation: Mapping[str, Any]) -> date | None:
    return parse_date(observation.get("effectiveDateTime")) or parse_date(
        obj(observation.get("effectivePeriod")).get("start")
    )


def _number(quantity: Any) -> tuple[float, str] | None:
    quantity = obj(quantity)
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value), text(quantity.get("code")) or text(quantity.get("unit")) or ""


def _kg(value: float, unit: str) -> float | None:
    unit = unit.lower()
    if unit in ("kg", "kilogram", "kilograms"):
        return value
    if unit in ("[lb_av]", "lb", "lbs", "pound", "pounds"):
        return value * _POUND_KG
    if unit == "g":
        return value / 1000
    return None


def readings(
    observations: Iterable[Any], config: MedicalConfig = MEDICAL
) -> tuple[list[Reading], list[BloodPressure]]:
    """Numeric readings (weight in kg) and blood pressures (from a panel's components or separate systolic and
    diastolic Observations taken at the same time), oldest first."""
    found: list[Reading] = []
    systolic: dict[tuple[date, str], float] = {}
    diastolic: dict[tuple[date, str], float] = {}
    pressures: list[BloodPressure] = []
    for observation in (obj(o) for o in observations):
        kind, day = config.kind_of(observation), _day(observation)
        if kind is None or day is None or not _counts(observation):
            continue
        when = str(observation.get("effectiveDateTime") or day.isoformat())
        if kind == "bp_panel":
            parts = {
                config.kind_of(c): _number(obj(c).get("valueQuantity"))
                for c in objs(observation.get("component"))
            }
            sys_, dia = parts.get("systolic"), parts.get("diastolic")
            if sys_ and dia and 40 <= sys_[0] <= 300 and 20 <= dia[0] <= 200:
                pressures.append(BloodPressure(day, round(sys_[0]), round(dia[0]), (sys_[0], dia[0])))
            continue
        number = _number(observation.get("valueQuantity"))
        if number is None or kind == "smoking":
            continue
        value, unit = number
        if kind == "systolic":
            systolic[(day, when)] = value
        elif kind == "diastolic":
            diastolic[(day, when)] = value
        elif kind == "weight":
            kg = _kg(value, unit)
            if kg is not None and 2 <= kg <= 400:
                found.append(Reading("weight", day, kg, "kg"))
        elif value >= 0:
            found.append(Reading(kind, day, value, unit))
    pressures += [BloodPressure(k[0], round(s), round(diastolic[k]), (s, diastolic[k]))
                  for k, s in systolic.items() if k in diastolic]  # fmt: skip
    found.sort(key=lambda r: r.day)
    pressures.sort(key=lambda p: p.day)
    return found, pressures


def smoking_status(observations: Iterable[Any], config: MedicalConfig = MEDICAL) -> str | None:
    """The latest smoking status: current, former or never, else the EHR's own words."""
    latest: tuple[date, Mapping[str, Any]] | None = None
    for observation in (obj(o) for o in observations):
        day = _day(observation)
        if config.kind_of(observation) == "smoking" and day and _counts(observation):
            if latest is None or day >= latest[0]:
                latest = (day, observation)
    if latest is None:
        return None
    concept = obj(latest[1].get("valueCodeableConcept"))
    found = set(codes(concept, SNOMED))
    for status in ("current", "former", "never"):
        if found & set(config.smoking.get(status, ())):
            return status
    words = text(concept.get("text")) or next(
        (text(c.get("display")) for c in objs(concept.get("coding"))), None
    )
    if words and "current" in words.lower():
        return "current"
    return words


def antipsychotics(requests: Iterable[Any], config: MedicalConfig = MEDICAL) -> list[Antipsychotic]:
    """Antipsychotic orders by ingredient (or a site-listed RxNorm code): the earliest order of each ingredient
    gives its start; it is active while any of its orders is active or on hold."""
    by_name: dict[str, Antipsychotic] = {}
    for request in (obj(r) for r in requests):
        if request.get("resourceType") != "MedicationRequest" or request.get("status") == "entered-in-error":
            continue
        concept = obj(request.get("medicationCodeableConcept"))
        words = " ".join(filter(None, [text(concept.get("text")), *(text(c.get("display"))
                                                                     for c in objs(concept.get("coding")))])).lower()  # fmt: skip
        name = next((i for i in config.ingredients if i in words), None)
        if name is None and set(codes(concept)) & set(config.rxnorm):
            name = text(concept.get("text")) or "antipsychotic"
        if name is None:
            continue
        start = parse_date(request.get("authoredOn"))
        active = request.get("status") in ("active", "on-hold")
        known = by_name.get(name)
        if known is not None:
            starts = [d for d in (known.start, start) if d is not None]
            start, active = (min(starts) if starts else None), known.active or active
        by_name[name] = Antipsychotic(name, start, active)
    return sorted(by_name.values(), key=lambda a: (not a.active, a.name))


def _latest_day(kinds: Iterable[str], found: list[Reading], pressures: list[BloodPressure]) -> date | None:
    days = [r.day for r in found if r.kind in kinds] + ([p.day for p in pressures] if "bp" in kinds else [])
    return max(days) if days else None


def summarise(observations: Iterable[Any], requests: Iterable[Any], today: date,
              config: MedicalConfig = MEDICAL) -> MedicalSummary:  # fmt: skip
    """Everything the SMI row and the patient page show about the body, with its flags."""
    observations = list(observations)
    found, pressures = readings(observations, config)
    summary = MedicalSummary(readings=found, pressures=pressures)
    summary.smoking = smoking_status(observations, config)
    summary.antipsychotics = antipsychotics(requests, config)
    active_starts = [a.start for a in summary.antipsychotics if a.active and a.start]
    summary.antipsychotic_start = min(active_starts) if active_starts else None
    for reading in found:
        summary.latest[reading.kind] = reading
    if pressures:
        summary.bp = pressures[-1]
        summary.bp_controlled = (summary.bp.exact_systolic < config.systolic_below
                                 and summary.bp.exact_diastolic < config.diastolic_below)  # fmt: skip
    weights = [r for r in found if r.kind == "weight"]
    if weights:
        summary.weight_baseline = _baseline(weights, summary.antipsychotic_start, config)
        latest = weights[-1]
        if summary.weight_baseline is not None and latest.day > summary.weight_baseline.day:
            base = summary.weight_baseline.value
            summary.weight_change_exact = (latest.value - base) / base * 100
            summary.weight_change_pct = round(summary.weight_change_exact, 1)
    hba1c = summary.latest.get("hba1c")
    summary.hba1c_poor_control = hba1c is not None and hba1c.value > config.hba1c_poor_control_above
    flags = summary.flags
    if summary.bp_controlled is False:
        flags.append("bp-out-of-target")
    if hba1c is not None and hba1c.value >= config.hba1c_below:
        flags.append("hba1c-out-of-target")
    if summary.weight_change_exact is not None and summary.weight_change_exact >= config.weight_gain_pct:
        flags.append("weight-gain")
    if summary.smoking == "current":
        flags.append("current-smoker")
    if summary.on_antipsychotic:
        start = summary.antipsychotic_start
        for item in config.monitoring:
            summary.monitoring.append(_monitoring(item, start, found, pressures, today, config))
        for gap in config.gaps:
            last = _latest_day(gap.any_of, found, pressures)
            if last is None or (today - last).days > gap.within_days:
                summary.gaps.append(gap)
                flags.append(gap.key)
        if any(m.overdue for m in summary.monitoring):
            flags.append("monitoring-overdue")
    return summary


def _baseline(weights: list[Reading], start: date | None, config: MedicalConfig) -> Reading | None:
    """The baseline weight: the last before the antipsychotic started (within the window), else the first after
    it; without an antipsychotic, the first weight on record."""
    if start is None:
        return weights[0]
    window = start - timedelta(days=config.baseline_days_before_start)
    before = [w for w in weights if window <= w.day <= start]
    after = [w for w in weights if w.day > start]
    return before[-1] if before else (after[0] if after else None)


def _monitoring(item: Monitoring, start: date | None, found: list[Reading], pressures: list[BloodPressure],
                today: date, config: MedicalConfig) -> MonitoringStatus:  # fmt: skip
    """When the next check is due: the first scheduled week after the last check (a check within a week before a
    scheduled week meets it); once the scheduled weeks are done, the cadence runs from the last check ("then
    quarterly" is three months after the last weighing). Overdue once the grace days after it have passed.
    Without a start date the schedule begins today."""
    begin = start or today
    window = begin - timedelta(days=config.baseline_days_before_start)
    done = [d for d in [r.day for r in found if r.kind in item.any_of]
            + ([p.day for p in pressures] if "bp" in item.any_of else []) if d >= window]  # fmt: skip
    last = max(done) if done else None
    weeks = [begin + timedelta(weeks=w) for w in item.weeks_after_start]
    if last is None:
        next_due = weeks[0]
    else:
        later = [p for p in weeks if p > last + timedelta(days=7)]
        next_due = later[0] if later else last + timedelta(days=item.then_every_days)
    return MonitoringStatus(item.key, item.label, last, next_due,
                            today > next_due + timedelta(days=config.monitoring_grace_days))  # fmt: skip
